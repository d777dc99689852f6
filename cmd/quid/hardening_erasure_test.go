package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/config"
)

// logBuffer captures every log line of a service, at every level.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newLoggedAPI is newAPI with the production logger (the one `quid serve`
// builds) writing debug and up into a buffer.
func newLoggedAPI(t *testing.T, mod ...func(*config.Config)) (*api, *logBuffer) {
	t.Helper()
	cfg := testConfig(t, mod...)
	logs := &logBuffer{}
	svc, err := build(context.Background(), cfg, newLogger(logs, slog.LevelDebug, "json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.close)
	return &api{t: t, svc: svc, cfg: cfg}, logs
}

// needles are the forms in which a probe value could be stored or logged:
// as is, JSON-escaped, and base64 / base64url encoded at each of the three
// alignments (a JWS such as a consent receipt carries its claims that way).
func needles(probe string) []string {
	out := []string{probe, strings.ReplaceAll(probe, "|", `\u007c`)}
	for pad := 0; pad < 3; pad++ {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
			s := enc.EncodeToString([]byte(strings.Repeat("x", pad) + probe))
			start := (pad*4 + 2) / 3 // skip characters that also encode the padding
			end := len(strings.TrimRight(s, "=")) - 3
			if end > start+8 {
				out = append(out, s[start:end])
			}
		}
	}
	return out
}

// probeHit is a probe found in a column.
type probeHit struct {
	Table, Column, Probe string
	Rows                 int
}

// scanDatabase looks for every probe in every column of every table of the
// public schema, enumerated from information_schema so that a column added
// later is scanned too. Each column is read as text (bytea decoded).
func scanDatabase(t *testing.T, a *api, probes []string) []probeHit {
	t.Helper()
	var cols []struct{ TableName, ColumnName, DataType string }
	if err := a.svc.db.Raw(`SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
		WHERE c.table_schema = 'public' ORDER BY 1, 2`).Scan(&cols).Error; err != nil {
		t.Fatal(err)
	}
	if len(cols) < 50 {
		t.Fatalf("only %d columns found", len(cols))
	}
	var hits []probeHit
	for _, c := range cols {
		expr := fmt.Sprintf(`%q::text`, c.ColumnName)
		if c.DataType == "bytea" {
			expr = fmt.Sprintf(`encode(%q, 'escape')`, c.ColumnName)
		}
		for _, p := range probes {
			for _, n := range needles(p) {
				var count int
				if err := a.svc.db.Raw(fmt.Sprintf(`SELECT count(*) FROM %q WHERE strpos(%s, ?) > 0`, c.TableName, expr), n).
					Scan(&count).Error; err != nil {
					t.Fatalf("scan %s.%s: %v", c.TableName, c.ColumnName, err)
				}
				if count > 0 {
					hits = append(hits, probeHit{c.TableName, c.ColumnName, p, count})
					break
				}
			}
		}
	}
	return hits
}

func scanLogs(logs string, probes []string) []string {
	var found []string
	for _, p := range probes {
		for _, n := range needles(p) {
			if strings.Contains(logs, n) {
				found = append(found, p)
				break
			}
		}
	}
	return found
}

// TestErasureLeavesNothingTheMemberTypedOrThatNamesThem runs the member
// lifecycle with a probe value in every member-supplied field and as the
// member id, erases, and then searches every column of every table and
// every log line for the probes. The one documented exception: the
// member.erasure_requested events not yet delivered carry the member id,
// which is how a recipient knows whose data to delete; delivery
// pseudonymises them.
func TestErasureLeavesNothingTheMemberTypedOrThatNamesThem(t *testing.T) {
	t.Parallel()
	a, logs := newLoggedAPI(t)
	f := a.fixtures()
	body := contractBody(f)
	body["reward"] = map[string]any{"join_bonus": 200, "vesting": "PT1S", "points_per_period": 5, "period": "PT1S", "max_periods": 100}
	contract := a.publishContract(f, body)

	subject := "prb9member-ee01@example.com"
	probes := []string{subject, "prb9city-aa11", "prb9mail-bb22", "prb9purchase-cc33", "prb9giftname-dd44", "prb9refmail-ee55",
		"prb9idemjoin-ff66", "prb9idemredeem-gg77"}
	member := token(t, app.RoleMember, subject)
	expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: member, Body: map[string]any{"attributes": map[string]any{
		"location.city": "prb9city-aa11", "contact.email": "prb9mail-bb22@example.com",
		"commerce.purchase_history": []string{"prb9purchase-cc33"}, "demographic.birthdate": "1990-05-01"}}}), 201)
	join := req{Method: "POST", Path: "/v1/me/exchanges", Token: member, Body: map[string]any{"contract_id": contract},
		Headers: map[string]string{"Idempotency-Key": "prb9idemjoin-ff66"}}
	ex := expect(t, a.do(join), 201).json(t)
	expect(t, a.do(join), 201) // replayed from the stored response

	time.Sleep(1500 * time.Millisecond)
	if _, err := a.svc.accrual.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	redeem := req{Method: "POST", Path: "/v1/me/redemptions", Token: member,
		Body:    map[string]any{"points": 10, "reference": "Gift card to prb9giftname-dd44, prb9refmail-ee55@example.com"},
		Headers: map[string]string{"Idempotency-Key": "prb9idemredeem-gg77"}}
	expect(t, a.do(redeem), 201)
	expect(t, a.do(redeem), 201)
	points := expect(t, a.do(req{Method: "GET", Path: "/v1/me/points", Token: member}), 200)
	if !strings.Contains(string(points.Body), "prb9giftname-dd44") {
		t.Fatalf("the member's own reference is missing from their points: %s", points.Body)
	}
	read := "/v1/partner/members/" + url.PathEscape(subject) + "/data?purpose=loyalty.personalised_offers"
	expect(t, a.do(req{Method: "GET", Path: read, Token: f.partner}), 200)
	// A restriction still in force (and the read it refused) and an
	// objection name the member too.
	expect(t, a.do(req{Method: "PUT", Path: "/v1/me/restriction", Token: member, Body: map[string]any{"restricted": true}}), 200)
	expect(t, a.do(req{Method: "GET", Path: read, Token: f.partner}), 403)
	expect(t, a.do(req{Method: "POST", Path: "/v1/me/objections", Token: member, Body: map[string]any{"purpose": "research.market"}}), 201)
	expect(t, a.do(req{Method: "GET", Path: "/v1/audit?member_id=" + url.QueryEscape(subject), Token: f.admin}), 200)
	expect(t, a.do(req{Method: "GET", Path: "/v1/me/export", Token: member}), 200)
	expect(t, a.do(req{Method: "GET", Path: "/v1/me/transparency", Token: member}), 200)
	if hits := scanDatabase(t, a, probes); len(hits) == 0 {
		t.Fatal("the probes are not in the database before erasure: the scan finds nothing")
	}

	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: member}), 200)

	hits := scanDatabase(t, a, probes)
	var left []probeHit
	for _, h := range hits {
		if h.Table == "webhook_outbox" && h.Column == "payload" && h.Probe == subject {
			var n int
			a.svc.db.Raw(`SELECT count(*) FROM webhook_outbox WHERE strpos(payload::text, ?) > 0
				AND NOT (event_type = 'member.erasure_requested' AND delivered_at IS NULL AND failed_at IS NULL)`, subject).Scan(&n)
			if n == 0 {
				continue // the documented exception
			}
		}
		left = append(left, h)
	}
	if len(left) > 0 {
		t.Fatalf("after erasure the probes are still stored: %+v", left)
	}
	if found := scanLogs(logs.String(), probes); len(found) > 0 {
		t.Fatalf("the logs hold %v:\n%s", found, logs.String())
	}

	// Delivered (or given up), the erasure requests lose the member id too.
	var pending []string
	a.svc.db.Raw(`SELECT id FROM webhook_outbox WHERE event_type = 'member.erasure_requested'`).Scan(&pending)
	if len(pending) == 0 {
		t.Fatal("no erasure request was written")
	}
	for i, id := range pending {
		var err error
		if i%2 == 0 {
			err = a.svc.store.MarkDelivered(context.Background(), id, 200)
		} else {
			err = a.svc.store.MarkAttemptFailed(context.Background(), id, 500, "gone", time.Now(), true)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if hits := scanDatabase(t, a, probes); len(hits) > 0 {
		t.Fatalf("after delivery the probes are still stored: %+v", hits)
	}

	// The ledger kept its amounts and still balances under the pseudonym.
	var bad int
	a.svc.db.Raw(`SELECT count(*) FROM members m WHERE m.available <> (SELECT coalesce(sum(points), 0) FROM ledger_entries l
		WHERE l.member_id = m.id AND l.kind IN ('period_credit', 'bonus_vested', 'redemption', 'reversal', 'expiry'))`).Scan(&bad)
	if bad != 0 {
		t.Fatal("a pseudonymised balance no longer equals its entries")
	}
	var exchanges int
	a.svc.db.Raw(`SELECT count(*) FROM exchanges WHERE id = ? AND member_id LIKE 'erased:%' AND status = 'erased'`, ex["id"]).Scan(&exchanges)
	if exchanges != 1 {
		t.Fatal("the erased exchange was not kept under the pseudonym")
	}
}

// TestAnErasedMemberMayEnrolAgainWithoutASecondBonus follows the erasure's
// own next step: PUT /v1/me starts a fresh member, with no link to the old
// data, who is not paid a join bonus twice for the same contract family.
func TestAnErasedMemberMayEnrolAgainWithoutASecondBonus(t *testing.T) {
	t.Parallel()
	a, f, contract, _ := withJoinedMember(t)
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: f.member}), 200)
	gone := expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: f.member}), 404).json(t)
	if !strings.Contains(gone["detail"].(string), "PUT /v1/me") {
		t.Fatalf("the answer does not name the next step: %v", gone)
	}
	expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: f.member, Body: map[string]any{"attributes": map[string]any{
		"location.city": "Bergen", "demographic.birthdate": "1990-05-01", "commerce.purchase_history": []string{"tea"}}}}), 201)
	me := expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: f.member}), 200).json(t)
	if attrs := me["attributes"].(map[string]any); attrs["contact.email"] != nil || attrs["location.city"] != "Bergen" {
		t.Fatalf("the new profile carries old data: %v", me)
	}
	for _, view := range []string{"/v1/me/exchanges", "/v1/me/access-log", "/v1/me/points"} {
		if items := expect(t, a.do(req{Method: "GET", Path: view, Token: f.member}), 200).json(t)["items"].([]any); len(items) != 0 {
			t.Fatalf("%s shows the erased member's history: %v", view, items)
		}
	}
	ex := a.joinContract(f.member, contract)
	if ex["bonus"] != nil {
		if b, ok := ex["bonus"].(map[string]any); ok && b["points"] != float64(0) && b["state"] != "none" {
			t.Fatalf("the join bonus was paid a second time: %v", ex)
		}
	}
	points := expect(t, a.do(req{Method: "GET", Path: "/v1/me/points", Token: f.member}), 200).json(t)
	if points["pending"] != float64(0) || points["available"] != float64(0) {
		t.Fatalf("the join bonus was paid a second time: %v", points)
	}
	// Another member joining the same contract still gets the bonus.
	bob := token(t, app.RoleMember, "bob")
	a.enrol(bob)
	a.joinContract(bob, contract)
	if p := expect(t, a.do(req{Method: "GET", Path: "/v1/me/points", Token: bob}), 200).json(t); p["pending"] != float64(200) {
		t.Fatalf("bob's bonus: %v", p)
	}
	// And the re-enrolled member can be erased again.
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: f.member}), 200)
}

// TestStoredIdempotentResponsesExpireAfterADay: a stored response older
// than 24 hours no longer answers (the key starts afresh, even before the
// worker ran), and the worker deletes old responses, safely on several
// replicas at once.
func TestStoredIdempotentResponsesExpireAfterADay(t *testing.T) {
	t.Parallel()
	a, f, contract, _ := withJoinedMember(t)
	other := a.publishContract(f, contractBody(f))
	bob := token(t, app.RoleMember, "bob")
	a.enrol(bob)
	join := func(id string) response {
		return a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: bob, Body: map[string]any{"contract_id": id},
			Headers: map[string]string{"Idempotency-Key": "k1"}})
	}
	expect(t, join(contract), 201)
	expect(t, join(other), 422) // same key, other request: refused while the key is fresh
	if err := a.svc.db.Exec(`UPDATE idempotency_keys SET created_at = now() - interval '25 hours'`).Error; err != nil {
		t.Fatal(err)
	}
	r := expect(t, join(other), 201)
	if r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatal("an expired response was replayed")
	}
	if err := a.svc.db.Exec(`UPDATE idempotency_keys SET created_at = now() - interval '25 hours'`).Error; err != nil {
		t.Fatal(err)
	}
	third := a.publishContract(f, contractBody(f))
	expect(t, a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: bob, Body: map[string]any{"contract_id": third},
		Headers: map[string]string{"Idempotency-Key": "fresh"}}), 201)
	concurrently(t, 4, func() error {
		_, err := a.svc.store.ExpireIdempotency(context.Background())
		return err
	})
	var old, kept int
	a.svc.db.Raw(`SELECT count(*) FROM idempotency_keys WHERE created_at <= now() - interval '24 hours'`).Scan(&old)
	a.svc.db.Raw(`SELECT count(*) FROM idempotency_keys`).Scan(&kept)
	if old != 0 {
		t.Fatalf("%d expired responses kept", old)
	}
	if kept != 1 {
		t.Fatal("a fresh response was deleted")
	}
	// The accrual worker's housekeeping runs the same expiry on its timer.
	if err := a.svc.db.Exec(`UPDATE idempotency_keys SET created_at = now() - interval '25 hours'`).Error; err != nil {
		t.Fatal(err)
	}
	if err := a.svc.accrual.Housekeeping(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.svc.db.Raw(`SELECT count(*) FROM idempotency_keys`).Scan(&kept)
	if kept != 0 {
		t.Fatal("the worker does not expire idempotent responses")
	}
}
