package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/config"
	"github.com/quidpro/quid/infra/postgres"
	"github.com/quidpro/quid/infra/postgres/pgtest"
	"github.com/quidpro/quid/migrations"
)

// verifyWorkload is a database after a realistic life: joins on three
// contract families, vesting, period credits, an expiry that voids a bonus,
// a cancellation, a redemption, a re-consent to a narrower version, a
// termination, and an erasure followed by the same subject enrolling and
// joining again.
type verifyWorkload struct {
	url string
	// exchanges by member: the first family's exchange (v2's for dave)
	exchanges map[string]string
}

var (
	workloadOnce sync.Once
	workload     verifyWorkload
	workloadErr  string
)

// sharedWorkload builds the workload once per test binary; each caller then
// gets its own copy of it (cloneDatabase), so tampering stays private.
func sharedWorkload(t *testing.T) verifyWorkload {
	t.Helper()
	workloadOnce.Do(func() {
		// Built under a throwaway testing.T-like scope: the database must
		// outlive the first test that asks for it.
		wt := &onceT{TB: t}
		workload = buildVerifyWorkload(wt)
		workloadErr = wt.failure
	})
	if workloadErr != "" {
		t.Fatalf("workload: %s", workloadErr)
	}
	return workload
}

// onceT lets the shared workload use the API harness without tying the
// database's life to the test that happened to build it: cleanups are not
// run (the cluster is a test cluster), failures are recorded.
type onceT struct {
	testing.TB
	mu      sync.Mutex
	failure string
}

func (o *onceT) Cleanup(func()) {}
func (o *onceT) Fatalf(format string, args ...any) {
	o.mu.Lock()
	o.failure = fmt.Sprintf(format, args...)
	o.mu.Unlock()
	panic(o)
}
func (o *onceT) Fatal(args ...any)                 { o.Fatalf("%s", fmt.Sprint(args...)) }
func (o *onceT) Errorf(format string, args ...any) { o.Fatalf(format, args...) }
func (o *onceT) Helper()                           {}

func buildVerifyWorkload(t *onceT) (w verifyWorkload) {
	defer func() {
		if r := recover(); r != nil && r != any(t) {
			panic(r)
		}
	}()
	a := newAPI(t)
	defer a.svc.close()
	f := a.fixtures()
	ctx := context.Background()

	// Family A: bonus vesting after 1 s, 10 points a second, at most 5.
	bodyA := contractBody(f)
	bodyA["duration"] = "PT1H"
	bodyA["reward"] = map[string]any{"join_bonus": 100, "vesting": "PT1S", "points_per_period": 10, "period": "PT1S", "max_periods": 5}
	a1 := a.publishContract(f, bodyA)
	// Family B: consent lasts 2 s, the bonus would vest after 10 s: voided at expiry.
	bodyB := contractBody(f)
	bodyB["title"] = "Short club"
	bodyB["duration"] = "PT2S"
	bodyB["reward"] = map[string]any{"join_bonus": 50, "vesting": "PT10S", "points_per_period": 7, "period": "PT1S"}
	b1 := a.publishContract(f, bodyB)
	// Family C: terminated by the marketer while alice is in it.
	bodyC := contractBody(f)
	bodyC["title"] = "Closing club"
	bodyC["reward"] = map[string]any{"join_bonus": 0, "points_per_period": 3, "period": "PT1S"}
	c1 := a.publishContract(f, bodyC)

	members := []string{"alice", "bob", "carol", "dave", "erin"}
	tok := map[string]string{}
	w.exchanges = map[string]string{}
	for _, m := range members {
		tok[m] = token(t, app.RoleMember, m)
		a.enrol(tok[m])
		w.exchanges[m] = a.joinContract(tok[m], a1)["id"].(string)
	}
	a.joinContract(tok["alice"], b1)
	a.joinContract(tok["bob"], b1)
	a.joinContract(tok["alice"], c1)
	// dave joins with Global Privacy Control, affirmed: a consent event
	// whose seal covers the signal (migration 00017).
	expect(t, a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: tok["dave"], Headers: map[string]string{"Sec-GPC": "1"},
		Body: map[string]any{"contract_id": b1, "affirm_despite_gpc": true}}), 201)

	time.Sleep(2500 * time.Millisecond)
	if _, err := a.svc.accrual.RunOnce(ctx); err != nil {
		t.Fatalf("accrue: %v", err)
	}
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + w.exchanges["bob"], Token: tok["bob"]}), 200)
	expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: tok["carol"], Body: map[string]any{"points": 30, "reference": "coffee"}}), 201)
	// carol redeems a reward of the catalogue twice and cancels one.
	gift := a.createReward(f, map[string]any{"cost": 1, "stock": 5})
	for range 2 {
		expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: tok["carol"], Body: map[string]any{"reward_id": gift}}), 201)
	}
	var mine struct{ Items []struct{ ID string } }
	expect(t, a.do(req{Method: "GET", Path: "/v1/me/redemptions", Token: tok["carol"]}), 200).decode(t, &mine)
	expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions/" + mine.Items[0].ID + "/cancel", Token: tok["carol"]}), 200)
	// carol renews her one-hour consent twice, each time in its window.
	for range 2 {
		a.openRenewalWindow(w.exchanges["carol"])
		expect(t, a.do(req{Method: "POST", Path: "/v1/me/exchanges/" + w.exchanges["carol"] + "/renew", Token: tok["carol"]}), 200)
	}
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + c1 + "/retire", Token: f.marketer, Body: map[string]any{"terminate_active": true}}), 200)

	// Version 2 of A no longer gives PartnerCo anything: dave re-consents.
	d := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + a1 + "/versions", Token: f.marketer}), 201).json(t)["id"].(string)
	items := []any{map[string]any{"category": "location.city", "purpose": "loyalty.personalised_offers", "recipients": []string{f.brand}}}
	expect(t, a.do(req{Method: "PATCH", Path: "/v1/contracts/" + d, Token: f.marketer, Body: map[string]any{"items": items}}), 200)
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + d + "/publish", Token: f.marketer}), 200)
	w.exchanges["dave"] = a.joinContract(tok["dave"], d)["id"].(string)

	// erin spends what she holds, erases everything, enrols again under the
	// same subject and joins. (Points still held at erasure are forfeited
	// by an expiry entry, which no release before migration 00024 can hold:
	// TestVerifyAcceptsHistoryFromBeforeTheSealAndFromAnOlderRelease goes
	// down to 00009, so the shared workload writes none; the forfeiture's
	// own test runs verify after it.)
	// She cancels first and the worker settles, so nothing falls due between
	// her redemption and her erasure.
	a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + w.exchanges["erin"], Token: tok["erin"]})
	a.accrueNow()
	if held := expect(t, a.do(req{Method: "GET", Path: "/v1/me/points", Token: tok["erin"]}), 200).json(t)["available"].(float64); held > 0 {
		expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: tok["erin"], Body: map[string]any{"points": held, "reference": "all before erasure"}}), 201)
	}
	// Her last exchange, ended by the erasure, owes nothing yet: no bonus,
	// a first period a month long.
	bodyE := contractBody(f)
	bodyE["title"] = "Monthly club"
	bodyE["reward"] = map[string]any{"join_bonus": 0, "points_per_period": 1, "period": "P1M"}
	a.joinContract(tok["erin"], a.publishContract(f, bodyE))
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: tok["erin"]}), 200)
	a.enrol(tok["erin"])
	w.exchanges["erin"] = a.joinContract(tok["erin"], d)["id"].(string)

	time.Sleep(1100 * time.Millisecond)
	if _, err := a.svc.accrual.RunOnce(ctx); err != nil {
		t.Fatalf("accrue: %v", err)
	}
	w.url = a.cfg.DatabaseURL
	return w
}

// cloneDatabase copies the database at source (which must have no open
// connections) into a fresh one, dropped when the test ends.
func cloneDatabase(t *testing.T, source string) string {
	t.Helper()
	server := pgtest.ServerURL(t)
	admin, err := sql.Open("pgx", server)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	src, err := url.Parse(source)
	if err != nil {
		t.Fatal(err)
	}
	from := strings.TrimPrefix(src.Path, "/")
	name := "quid_test_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
	// Clones of one source cannot run at once (CREATE DATABASE ... TEMPLATE
	// needs the source to itself): retry while another clone is copying.
	for try := 0; ; try++ {
		_, err = admin.Exec(fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, from))
		if err == nil || try == 100 || !strings.Contains(err.Error(), "being accessed by other users") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("clone database: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", server)
		if err == nil {
			_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			admin.Close()
		}
	})
	u := *src
	u.Path = "/" + name
	return u.String()
}

// execAsOwner runs statements on one connection of the database owner, the
// way someone with the keys could get past the application and its guards.
func execAsOwner(t *testing.T, dbURL string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, s := range stmts {
		if _, err := conn.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// verifyJSONReport runs quid verify --json and decodes its report.
func verifyJSONReport(t *testing.T, dbURL string) (verifyReportJSON, error) {
	t.Helper()
	out, errOut, err := runVerify(context.Background(), dbURL, "--json")
	var rep verifyReportJSON
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		t.Fatalf("--json output does not parse: %v\n%s\n%s", jerr, out, errOut)
	}
	return rep, err
}

func TestVerifyPassesEveryRuleAfterARealisticWorkload(t *testing.T) {
	t.Parallel()
	w := sharedWorkload(t)
	db := cloneDatabase(t, w.url)
	report := mustVerify(t, db)
	t.Logf("\n%s", report)
	if !strings.HasPrefix(report, "quid verify: OK") {
		t.Fatalf("report does not say OK:\n%s", report)
	}
	rep, err := verifyJSONReport(t, db)
	if err != nil || !rep.OK || rep.RulesBroken != 0 {
		t.Fatalf("--json: ok=%v broken=%d err=%v", rep.OK, rep.RulesBroken, err)
	}
	if len(rep.Rules) != len(app.InvariantRules) {
		t.Fatalf("%d rules reported, want %d", len(rep.Rules), len(app.InvariantRules))
	}
	for _, r := range rep.Rules {
		// Every rule looked at something: a clean report of a rule that
		// checked nothing would prove nothing.
		if !r.Passed || r.Checked == 0 {
			t.Errorf("rule %s: passed=%v checked=%d %s", r.ID, r.Passed, r.Checked, r.CheckedWhat)
		}
		if !strings.Contains(report, fmt.Sprintf("pass  %-25s %d %s checked", r.ID, r.Checked, r.CheckedWhat)) {
			t.Errorf("the text report lacks the line for %s with %d %s", r.ID, r.Checked, r.CheckedWhat)
		}
	}
	// The workload reached every state the rules reason about.
	var statuses, kinds string
	withDB(t, db, func(q *sql.DB) {
		_ = q.QueryRow(`SELECT string_agg(DISTINCT status, ',' ORDER BY status) FROM exchanges`).Scan(&statuses)
		_ = q.QueryRow(`SELECT string_agg(DISTINCT kind, ',' ORDER BY kind) FROM ledger_entries`).Scan(&kinds)
	})
	if statuses != "active,cancelled,erased,expired,superseded,terminated" {
		t.Errorf("exchange statuses %q: the workload misses one", statuses)
	}
	if kinds != "bonus_pending,bonus_vested,bonus_voided,period_credit,redemption,reversal" {
		t.Errorf("ledger kinds %q: the workload misses one", kinds)
	}
	// Erasure rewrote member ids in the sealed tables, and that is no
	// tampering: the rules above passed over these rows.
	var pseudonymised int
	withDB(t, db, func(q *sql.DB) {
		_ = q.QueryRow(`SELECT (SELECT count(*) FROM ledger_entries WHERE member_id LIKE 'erased:%')
			+ (SELECT count(*) FROM consent_events WHERE member_id LIKE 'erased:%')`).Scan(&pseudonymised)
	})
	if pseudonymised == 0 {
		t.Error("no pseudonymised ledger entry or consent event: the workload did not exercise erasure")
	}
}

// Migration 00010 seals the rows written before it, and rows written after
// it by a release that knows nothing of the seal (its INSERTs name no seal
// column, or name one with a forged value) are sealed by the database all
// the same; a later migration adding columns breaks no seal: verify passes
// over all of them.
func TestVerifyAcceptsHistoryFromBeforeTheSealAndFromAnOlderRelease(t *testing.T) {
	t.Parallel()
	w := sharedWorkload(t)
	db := cloneDatabase(t, w.url)
	ctx := context.Background()
	// The older release's session runs in another time zone than the
	// migration's and verify's: seals must not depend on it.
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("timezone", "Asia/Kolkata")
	u.RawQuery = q.Encode()
	withDB(t, u.String(), func(q *sql.DB) {
		p, err := goose.NewProvider(goose.DialectPostgres, q, migrations.FS)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.DownTo(ctx, 9); err != nil {
			t.Fatalf("down to 00009: %v", err)
		}
		var sealed bool
		if err := q.QueryRow(`SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'ledger_entries' AND column_name = 'digest')`).Scan(&sealed); err != nil || sealed {
			t.Fatalf("the seal survived going down to 00009 (%v)", err)
		}
		if _, err := p.Up(ctx); err != nil {
			t.Fatalf("up again: %v", err)
		}
		for _, stmt := range []string{
			// The next release's migration adds columns, with defaults.
			`ALTER TABLE ledger_entries ADD COLUMN next_release_flag boolean NOT NULL DEFAULT false`,
			`ALTER TABLE consent_events ADD COLUMN next_release_flag boolean NOT NULL DEFAULT false`,
			// An older release's writes: its own column lists.
			`INSERT INTO ledger_entries (member_id, kind, points, reference, created_at) VALUES ('carol', 'redemption', -5, 'old release', now())`,
			`INSERT INTO consent_events (exchange_id, member_id, contract_id, terms_hash, kind, actor, at)
				SELECT id, member_id, contract_id, terms_hash, 'cancelled', 'member', now() FROM exchanges WHERE member_id = 'carol' AND status = 'active'`,
			`UPDATE exchanges SET status = 'cancelled', ended_at = (SELECT max(at) FROM consent_events WHERE member_id = 'carol'), next_period_end = NULL
				WHERE member_id = 'carol' AND status = 'active'`,
			`INSERT INTO deletion_acks (exchange_id, recipient_id, member_id, due_at)
				SELECT e.id, rid::uuid, e.member_id, e.ended_at + interval '30 days'
				FROM exchanges e JOIN contracts c ON c.id = e.contract_id, jsonb_array_elements(c.terms->'items') i, jsonb_array_elements_text(i->'recipients') rid
				WHERE e.member_id = 'carol' AND e.status = 'cancelled' ON CONFLICT DO NOTHING`,
			// A writer that names the seal columns cannot choose their values.
			`INSERT INTO ledger_entries (member_id, kind, points, created_at, seq, digest) VALUES ('carol', 'reversal', 5, now(), 1, '\x00')`,
		} {
			if _, err := q.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	})
	t.Logf("\n%s", mustVerify(t, db))
}

func withDB(t *testing.T, dbURL string, fn func(*sql.DB)) {
	t.Helper()
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fn(db)
}

// TestVerifyNamesTheRuleAndMemberOfEveryKindOfTampering breaks each
// invariant the way only someone past the application could (as the
// database owner, past the triggers where needed), on its own copy of the
// workload, and checks that verify exits 1 naming the rule, the member and
// the rows, in text and in JSON alike.
func TestVerifyNamesTheRuleAndMemberOfEveryKindOfTampering(t *testing.T) {
	t.Parallel()
	w := sharedWorkload(t)
	bobEx, aliceEx := w.exchanges["bob"], w.exchanges["alice"]
	cases := []struct {
		name   string
		rule   app.InvariantRule
		member string
		row    string // a row name the violation must list
		sql    []string
	}{
		{"a cached balance moved without an entry", app.RuleBalanceEqualsEntries, "carol", "members/carol",
			[]string{`UPDATE members SET available = available + 7 WHERE id = 'carol'`}},
		{"an exchange's credit counter disagrees with its credits", app.RuleBalanceEqualsEntries, "alice", "exchanges/" + aliceEx,
			[]string{`UPDATE exchanges SET credited_periods = credited_periods + 1 WHERE id = '` + aliceEx + `'`}},
		{"a balance dipped below zero in the past", app.RuleBalanceNotNegative, "carol", "ledger_entries/",
			[]string{`INSERT INTO ledger_entries (member_id, kind, points, created_at) VALUES ('carol', 'redemption', -1000, '2000-01-01T00:00:00Z'),
				('carol', 'reversal', 1000, now())`}},
		{"a cached balance is negative", app.RuleBalanceNotNegative, "carol", "members/carol",
			[]string{`ALTER TABLE members DROP CONSTRAINT members_available_check`, `DROP TRIGGER ledger_lots ON ledger_entries`,
				`INSERT INTO ledger_entries (member_id, kind, points, created_at) VALUES ('carol', 'redemption', -100000, now())`,
				`UPDATE members SET available = available - 100000 WHERE id = 'carol'`}},
		{"a period credited after the member cancelled", app.RuleCreditInsideConsent, "bob", "exchanges/" + bobEx,
			[]string{`INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, period_start, period_end, created_at)
				SELECT member_id, 'period_credit', 10, id, contract_id, family_id, terms_hash, ended_at + interval '1 hour', ended_at + interval '1 hour 1 second', now() + interval '2 hours'
				FROM exchanges WHERE id = '` + bobEx + `'`,
				`UPDATE members SET available = available + 10 WHERE id = 'bob'`,
				`UPDATE exchanges SET credited_periods = credited_periods + 1 WHERE id = '` + bobEx + `'`}},
		{"a period credited while the member had restricted processing", app.RuleCreditOutsideRestriction, "alice", "member_restrictions/",
			[]string{`INSERT INTO member_restrictions (member_id, started_at, ended_at)
				SELECT member_id, min(period_start) + interval '1 microsecond', min(period_end) FROM ledger_entries
				WHERE exchange_id = '` + aliceEx + `' AND kind = 'period_credit' GROUP BY member_id`}},
		{"a period credited twice", app.RuleOneCreditPerPeriod, "alice", "exchanges/" + aliceEx,
			[]string{`DROP INDEX ledger_one_credit_per_period`,
				`INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, period_start, period_end, created_at)
				SELECT member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, period_start, period_end, created_at
				FROM ledger_entries WHERE exchange_id = '` + aliceEx + `' AND kind = 'period_credit' ORDER BY period_start LIMIT 1`,
				`UPDATE members SET available = available + 10 WHERE id = 'alice'`,
				`UPDATE exchanges SET credited_periods = credited_periods + 1 WHERE id = '` + aliceEx + `'`}},
		{"a cancellation's consent event deleted", app.RuleConsentEventsComplete, "bob", "exchanges/" + bobEx,
			[]string{`SET session_replication_role = replica`,
				`DELETE FROM consent_events WHERE exchange_id = '` + bobEx + `' AND kind = 'cancelled'`}},
		{"a second join event for one exchange", app.RuleConsentEventsComplete, "alice", "exchanges/" + aliceEx,
			[]string{`INSERT INTO consent_events (exchange_id, member_id, contract_id, terms_hash, kind, actor, at)
				SELECT exchange_id, member_id, contract_id, terms_hash, kind, actor, at + interval '1 second' FROM consent_events
				WHERE exchange_id = '` + aliceEx + `' AND kind = 'joined'`}},
		{"an expiry moved without a renewal", app.RuleConsentEventsComplete, "alice", "exchanges/" + aliceEx,
			[]string{`UPDATE exchanges SET expires_at = expires_at + interval '1 hour' WHERE id = '` + aliceEx + `'`}},
		{"a renewal recorded under other terms", app.RuleConsentEventsComplete, "carol", "exchanges/" + w.exchanges["carol"],
			[]string{`SET session_replication_role = replica`,
				`UPDATE consent_events SET terms_hash = 'sha256:' || repeat('0', 64) WHERE exchange_id = '` + w.exchanges["carol"] + `' AND kind = 'renewed'`}},
		{"a renewal event deleted, the expiry kept", app.RuleConsentEventsComplete, "carol", "exchanges/" + w.exchanges["carol"],
			[]string{`SET session_replication_role = replica`,
				`DELETE FROM consent_events WHERE id = (SELECT max(id) FROM consent_events WHERE exchange_id = '` + w.exchanges["carol"] + `' AND kind = 'renewed')`}},
		{"a join bonus paid twice in one family", app.RuleBonusOncePerFamily, "alice", "ledger_entries/",
			[]string{`DROP INDEX ledger_one_bonus_per_family`,
				`INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, created_at)
				SELECT member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, now() FROM ledger_entries
				WHERE exchange_id = '` + aliceEx + `' AND kind = 'bonus_pending'`,
				`UPDATE members SET pending = pending + 100 WHERE id = 'alice'`}},
		{"a join bonus paid again after erasure", app.RuleBonusOncePerFamily, "erin", "ledger_entries/",
			[]string{`INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, created_at)
				SELECT member_id, 'bonus_pending', 100, id, contract_id, family_id, terms_hash, now() FROM exchanges WHERE id = '` + w.exchanges["erin"] + `'`,
				`UPDATE members SET pending = pending + 100 WHERE id = 'erin'`}},
		{"a recipient's deletion duty removed", app.RuleDeletionDuties, "bob", "deletion_acks/" + bobEx,
			[]string{`DELETE FROM deletion_acks WHERE exchange_id = '` + bobEx + `'`}},
		{"a ledger entry rewritten past its trigger", app.RuleHistoryUnchanged, "alice", "ledger_entries/",
			[]string{`ALTER TABLE ledger_entries DISABLE TRIGGER ledger_append_only`,
				`UPDATE ledger_entries SET created_at = created_at - interval '1 day' WHERE exchange_id = '` + aliceEx + `' AND kind = 'bonus_vested'`,
				`ALTER TABLE ledger_entries ENABLE TRIGGER ledger_append_only`}},
		{"a ledger entry deleted from the middle, balances fixed up", app.RuleHistoryUnchanged, "alice", "ledger_entries/",
			[]string{`SET session_replication_role = replica`,
				`DELETE FROM ledger_entries WHERE id = (SELECT id FROM ledger_entries WHERE exchange_id = '` + aliceEx + `' AND kind = 'period_credit' ORDER BY period_start LIMIT 1)`,
				`UPDATE members SET available = available - 10 WHERE id = 'alice'`,
				`UPDATE exchanges SET credited_periods = credited_periods - 1 WHERE id = '` + aliceEx + `'`}},
		{"a consent event rewritten past its trigger", app.RuleHistoryUnchanged, "bob", "consent_events/",
			[]string{`SET session_replication_role = replica`,
				`UPDATE consent_events SET actor = 'system' WHERE exchange_id = '` + bobEx + `' AND kind = 'cancelled'`}},
		{"a consent event's GPC signal erased past its trigger", app.RuleHistoryUnchanged, "dave", "consent_events/",
			[]string{`SET session_replication_role = replica`,
				`UPDATE consent_events SET gpc = false WHERE member_id = 'dave' AND gpc`}},
		{"a GPC signal forged onto a consent event past its trigger", app.RuleHistoryUnchanged, "carol", "consent_events/",
			[]string{`SET session_replication_role = replica`,
				`UPDATE consent_events SET gpc = true WHERE member_id = 'carol' AND kind = 'joined'`}},
		{"an entry written past the seal trigger", app.RuleHistoryUnchanged, "carol", "ledger_entries/",
			[]string{`SET session_replication_role = replica`,
				`INSERT INTO ledger_entries (member_id, kind, points, created_at) VALUES ('carol', 'reversal', 0, now())`}},
		{"a posting's amount changed past its trigger", app.RuleTransactionsBalanced, "alice", "ledger_entries/",
			[]string{`SET session_replication_role = replica`,
				`UPDATE ledger_postings SET amount = amount - 40 WHERE account = 'available'
				   AND entry_id = (SELECT id FROM ledger_entries WHERE exchange_id = '` + aliceEx + `' AND kind = 'bonus_vested')`,
				`UPDATE members SET available = available - 40 WHERE id = 'alice'`}},
		{"a posting deleted past its trigger", app.RuleTransactionsBalanced, "carol", "ledger_entries/",
			[]string{`SET session_replication_role = replica`,
				`DELETE FROM ledger_postings WHERE account = 'redeemed'
				   AND entry_id = (SELECT id FROM ledger_entries WHERE member_id = 'carol' AND kind = 'redemption' ORDER BY seq LIMIT 1)`}},
		{"both legs of a transaction rewritten alike", app.RuleHistoryUnchanged, "alice", "ledger_postings/",
			[]string{`SET session_replication_role = replica`,
				`UPDATE ledger_postings SET amount = amount + sign(amount) * 5
				   WHERE entry_id = (SELECT id FROM ledger_entries WHERE exchange_id = '` + aliceEx + `' AND kind = 'bonus_vested')`}},
		{"a balanced pair of postings slipped into a transaction", app.RuleHistoryUnchanged, "bob", "ledger_postings/",
			[]string{`INSERT INTO ledger_postings (entry_id, account, amount)
				SELECT id, 'issued', -500 FROM ledger_entries WHERE exchange_id = '` + bobEx + `' AND kind = 'bonus_vested'
				UNION ALL SELECT id, 'voided', 500 FROM ledger_entries WHERE exchange_id = '` + bobEx + `' AND kind = 'bonus_vested'`}},
		{"a cached pending balance moved without a posting", app.RuleBalanceEqualsPostings, "dave", "members/dave",
			[]string{`UPDATE members SET pending = pending + 3 WHERE id = 'dave'`}},
		{"the programme's redeemed account emptied past its trigger", app.RuleBalanceEqualsPostings, "", "accounts/redeemed",
			[]string{`SET session_replication_role = replica`,
				`UPDATE ledger_postings SET account = 'voided' WHERE account = 'redeemed'`,
				`INSERT INTO ledger_postings (entry_id, account, amount) SELECT id, 'redeemed', -1000 FROM ledger_entries WHERE member_id = 'carol' AND kind = 'redemption'`}},
		{"a lot's remaining points moved without an entry", app.RuleLotsEqualAvailable, "alice", "members/alice",
			[]string{`UPDATE points_lots l SET remaining = remaining - 1 FROM ledger_entries c
				   WHERE c.id = l.entry_id AND c.member_id = 'alice' AND l.remaining > 0 AND l.entry_id = (
				     SELECT l2.entry_id FROM points_lots l2 JOIN ledger_entries c2 ON c2.id = l2.entry_id
				     WHERE c2.member_id = 'alice' AND l2.remaining > 0 LIMIT 1)`}},
		{"a reward's stock moved without a redemption", app.RuleCatalogueStockCounted, "", "rewards/",
			[]string{`UPDATE rewards SET stock_left = stock_left - 1`}},
		{"a cancelled redemption whose points never came back", app.RuleCatalogueStockCounted, "carol", "reward_redemptions/",
			[]string{`UPDATE reward_redemptions SET status = 'active', cancelled_at = NULL, reversal_id = NULL WHERE status = 'cancelled'`,
				`UPDATE rewards SET stock_left = stock_left - 1`,
				`UPDATE reward_redemptions SET points = points + 1`}},
		{"the lots trigger dropped", app.RuleGuardsInPlace, "", "triggers/ledger_entries.ledger_lots",
			[]string{`DROP TRIGGER ledger_lots ON ledger_entries`}},
		{"the posting trigger dropped", app.RuleGuardsInPlace, "", "triggers/ledger_entries.ledger_post",
			[]string{`DROP TRIGGER ledger_post ON ledger_entries`}},
		{"an append-only trigger left disabled", app.RuleGuardsInPlace, "", "triggers/ledger_entries.ledger_append_only",
			[]string{`ALTER TABLE ledger_entries DISABLE TRIGGER ledger_append_only`}},
		{"a seal trigger dropped", app.RuleGuardsInPlace, "", "triggers/consent_events.consent_events_seal",
			[]string{`DROP TRIGGER consent_events_seal ON consent_events`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := cloneDatabase(t, w.url)
			execAsOwner(t, db, tc.sql...)
			out, _, err := runVerify(context.Background(), db)
			if !errors.Is(err, errInvariantsBroken) {
				t.Fatalf("verify returned %v, want errInvariantsBroken\n%s", err, out)
			}
			// The text report: the rule's FAIL line, then its violations.
			section := ruleSection(out, tc.rule.ID)
			if !strings.HasPrefix(section, "FAIL  "+tc.rule.ID) {
				t.Fatalf("the report does not fail %s:\n%s", tc.rule.ID, out)
			}
			if tc.member != "" && !strings.Contains(section, fmt.Sprintf("member %q", tc.member)) {
				t.Errorf("the %s section does not name member %q:\n%s", tc.rule.ID, tc.member, section)
			}
			if !strings.Contains(section, "rows: ") || !strings.Contains(section, tc.row) {
				t.Errorf("the %s section does not list row %s:\n%s", tc.rule.ID, tc.row, section)
			}
			// The JSON report says the same.
			rep, err := verifyJSONReport(t, db)
			if !errors.Is(err, errInvariantsBroken) || rep.OK {
				t.Fatalf("--json: ok=%v err=%v", rep.OK, err)
			}
			found := false
			for _, r := range rep.Rules {
				if r.ID != tc.rule.ID {
					if !r.Passed && !strings.Contains(out, "FAIL  "+r.ID) {
						t.Errorf("--json fails %s, the text report does not", r.ID)
					}
					continue
				}
				if r.Passed || r.Violations == 0 {
					t.Fatalf("--json passes %s", r.ID)
				}
				for _, v := range r.Shown {
					if v.MemberID == tc.member && strings.Contains(strings.Join(v.Rows, " "), tc.row) && strings.Contains(section, v.Detail) {
						found = true
					}
				}
			}
			if !found {
				t.Errorf("--json has no %s violation of member %q listing %s that the text report shows too", tc.rule.ID, tc.member, tc.row)
			}
			t.Logf("\n%s", section)
		})
	}
}

// ruleSection is the part of a text report about one rule: its status line
// and the violation lines under it.
func ruleSection(report, ruleID string) string {
	lines := strings.Split(report, "\n")
	for i, l := range lines {
		if len(l) > 6 && strings.HasPrefix(l[6:], ruleID+" ") {
			end := i + 1
			for end < len(lines) && strings.HasPrefix(lines[end], "        ") {
				end++
			}
			return strings.Join(lines[i:end], "\n")
		}
	}
	return ""
}

// TestVerifyWritesNothing runs verify over a connection that refuses every
// write (default_transaction_read_only, as on a hot standby) and checks that
// no table changed.
func TestVerifyWritesNothing(t *testing.T) {
	t.Parallel()
	w := sharedWorkload(t)
	db := cloneDatabase(t, w.url)
	fp := func() string {
		var s string
		withDB(t, db, func(q *sql.DB) {
			if err := q.QueryRow(`SELECT string_agg(t, ',' ORDER BY t) FROM (
				SELECT 'members:' || md5(string_agg(m::text, ',' ORDER BY m.id)) AS t FROM members m
				UNION ALL SELECT 'ledger:' || md5(string_agg(l::text, ',' ORDER BY l.id)) FROM ledger_entries l
				UNION ALL SELECT 'events:' || md5(string_agg(c::text, ',' ORDER BY c.id)) FROM consent_events c
				UNION ALL SELECT 'exchanges:' || md5(string_agg(e::text, ',' ORDER BY e.id)) FROM exchanges e
				UNION ALL SELECT 'acks:' || md5(string_agg(a::text, ',' ORDER BY a.exchange_id, a.recipient_id)) FROM deletion_acks a) x`).Scan(&s); err != nil {
				t.Fatal(err)
			}
		})
		return s
	}
	before := fp()
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("default_transaction_read_only", "on")
	q.Set("timezone", "Pacific/Chatham") // seals do not depend on the session's zone
	u.RawQuery = q.Encode()
	readOnly := u.String()
	withDB(t, readOnly, func(q *sql.DB) {
		if _, err := q.Exec(`CREATE TEMP TABLE probe (x int)`); err == nil {
			t.Fatal("the read-only connection accepted a write: the test proves nothing")
		}
	})
	report := mustVerify(t, readOnly)
	if !strings.HasPrefix(report, "quid verify: OK") {
		t.Fatalf("report:\n%s", report)
	}
	if after := fp(); after != before {
		t.Fatalf("verify changed the database: %s → %s", before, after)
	}
}

// TestVerifyStreamsAndCapsWhatItShows breaks one rule for many members and
// checks that every violation is counted, at most --max-shown are kept, and
// that violations reach the caller while the rows are still streaming: the
// live heap, sampled inside the callback, stays small although keeping
// every row first would take tens of MiB. Not parallel, so no other test
// allocates while the heap is sampled.
func TestVerifyStreamsAndCapsWhatItShows(t *testing.T) {
	w := sharedWorkload(t)
	db := cloneDatabase(t, w.url)
	const members = 50000
	execAsOwner(t, db, fmt.Sprintf(`INSERT INTO members (id, available, created_at, updated_at)
		SELECT 'bulk-' || g || repeat('x', 100), 5, now(), now() FROM generate_series(1, %d) g`, members))

	gdb, err := postgres.Open(context.Background(), db, slog.New(slog.NewTextHandler(io.Discard, nil)), postgres.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := gdb.DB()
	defer sqlDB.Close()
	store, err := postgres.NewInvariants(gdb)
	if err != nil {
		t.Fatal(err)
	}
	liveHeap := func() int64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	base, peak, seen := liveHeap(), int64(0), 0
	_, _, err = store.CheckInvariants(context.Background(), func(v app.Violation) error {
		if v.RuleID == app.RuleBalanceEqualsEntries.ID {
			seen++
			if seen%5000 == 0 {
				peak = max(peak, liveHeap()-base)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != members {
		t.Fatalf("%d violations streamed, want %d", seen, members)
	}
	if peak > 4<<20 {
		t.Fatalf("the live heap grew by %d bytes while %d violations streamed: rows are being collected", peak, members)
	}
	t.Logf("live heap grew by at most %d KiB while %d violations streamed", peak>>10, members)

	rep, err := verifyJSONReport(t, db)
	if !errors.Is(err, errInvariantsBroken) {
		t.Fatalf("verify: %v", err)
	}
	for _, r := range rep.Rules {
		if r.ID != app.RuleBalanceEqualsEntries.ID {
			continue
		}
		if r.Violations != members || len(r.Shown) != rep.MaxShown || r.NotShown != members-int64(rep.MaxShown) {
			t.Fatalf("%d violations, %d shown, %d not shown; want %d, %d, %d", r.Violations, len(r.Shown), r.NotShown, members, rep.MaxShown, members-rep.MaxShown)
		}
	}
	out, _, _ := runVerify(context.Background(), db, "--max-shown", "3")
	if !strings.Contains(out, fmt.Sprintf("… and %d more not shown (at most 3 per rule", members-3)) {
		t.Fatalf("the text report does not say how many it left out:\n%.2000s", out)
	}
}

// The seals chain each member's rows in the order they were inserted, which
// the member's row lock makes well defined: concurrent writers for the same
// members (redemptions, re-joins, cancellations, several accrual passes)
// leave a history verify accepts.
func TestVerifyAcceptsHistoryWrittenConcurrently(t *testing.T) {
	t.Parallel()
	w := sharedWorkload(t)
	db := cloneDatabase(t, w.url)
	a := newAPI(t, func(c *config.Config) { c.DatabaseURL = db })
	var offers struct{ Items []struct{ ID string } }
	expect(t, a.do(req{Method: "GET", Path: "/v1/offers"}), 200).decode(t, &offers)
	if len(offers.Items) == 0 {
		t.Fatal("no offer to join")
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch m := []string{"carol", "alice", "dave", "erin"}[i%4]; {
			case i%5 == 0:
				_, _ = a.svc.accrual.RunOnce(context.Background())
			case i%3 == 0:
				a.send(req{Method: "POST", Path: "/v1/me/exchanges", Token: token(t, app.RoleMember, m), Body: map[string]any{"contract_id": offers.Items[i%len(offers.Items)].ID}})
			case i%7 == 0:
				a.send(req{Method: "DELETE", Path: "/v1/me/exchanges/" + w.exchanges[m], Token: token(t, app.RoleMember, m)})
			default:
				a.send(req{Method: "POST", Path: "/v1/me/redemptions", Token: token(t, app.RoleMember, m), Body: map[string]any{"points": 1, "reference": "concurrent"}})
			}
		}()
	}
	wg.Wait()
	var redemptions int
	withDB(t, db, func(q *sql.DB) {
		_ = q.QueryRow(`SELECT count(*) FROM ledger_entries WHERE kind = 'redemption'`).Scan(&redemptions)
	})
	if redemptions < 10 {
		t.Fatalf("only %d redemptions landed: the writers did not really race", redemptions)
	}
	t.Logf("%d redemptions in the ledger\n%s", redemptions, mustVerify(t, db))
}

// A verify that cannot run still answers --json with one JSON object, so
// a monitoring script reading stdout never parses empty input; exit 2.
func TestVerifyJSONReportsWhyItCouldNotRun(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	env := map[string]string{"DATABASE_URL": "postgres://nobody:wrong@127.0.0.1:1/quid?connect_timeout=2"}
	for _, args := range [][]string{{"verify", "--json"}, {"verify", "--json", "--bogus"}, {"verify", "-json", "--max-shown", "abc"}} {
		stdout.Reset()
		err := run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
		if err == nil || errors.Is(err, errInvariantsBroken) {
			t.Fatalf("%v against no database: %v", args, err)
		}
		var out struct {
			OK    *bool  `json:"ok"`
			Error string `json:"error"`
		}
		if jerr := json.Unmarshal(stdout.Bytes(), &out); jerr != nil || out.OK == nil || *out.OK || out.Error == "" {
			t.Fatalf("%v: stdout %q is not {\"ok\": false, \"error\": …}: %v", args, stdout.String(), jerr)
		}
	}
}
