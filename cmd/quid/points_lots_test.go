package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
	"github.com/quidpro/quid/infra/config"
	"github.com/quidpro/quid/migrations"
)

// pointsExpireAfter sets QUID_POINTS_EXPIRE_AFTER for a test's service.
func pointsExpireAfter(d string) func(*config.Config) {
	return func(c *config.Config) { c.PointsExpireAfter = domain.MustParseDuration(d) }
}

// secondLots publishes a contract paying 10 points a second for n seconds
// (no join bonus), enrols and joins each member, waits out the n periods
// and accrues: each member then has n lots of 10, expiring as the service's
// QUID_POINTS_EXPIRE_AFTER says. It returns the exchange ids.
func (a *api) secondLots(f fixtures, n int, members ...string) map[string]string {
	a.t.Helper()
	body := contractBody(f)
	body["reward"] = map[string]any{"join_bonus": 0, "points_per_period": 10, "period": "PT1S", "max_periods": n}
	id := a.publishContract(f, body)
	out := map[string]string{}
	for _, m := range members {
		tok := token(a.t, app.RoleMember, m)
		a.enrol(tok)
		out[m] = a.joinContract(tok, id)["id"].(string)
	}
	time.Sleep(time.Duration(n)*time.Second + 300*time.Millisecond)
	if r := a.accrueNow(); r.Credits != n*len(members) || r.ExpiredPoints != 0 {
		a.t.Fatalf("accrual: %+v, want %d credits and nothing expired", r, n*len(members))
	}
	// Each lot expires QUID_POINTS_EXPIRE_AFTER after the end of the period
	// that earned it (the service's sessions carry the setting).
	var lots, off int
	if err := a.svc.db.Raw(`SELECT count(*), count(*) FILTER (WHERE l.expires_at IS DISTINCT FROM c.period_end + CAST(? AS interval))
		FROM points_lots l JOIN ledger_entries c ON c.id = l.entry_id`, a.cfg.PointsExpireAfter.String()).Row().Scan(&lots, &off); err != nil {
		a.t.Fatal(err)
	}
	if lots != n*len(members) || off != 0 {
		a.t.Fatalf("%d lots, %d of them not expiring %s after their period's end", lots, off, a.cfg.PointsExpireAfter)
	}
	return out
}

// spreadExpiry backdates a member's lots (as the accrual tests backdate
// joins): the lot at FEFO rank r expires r-due+½ days from now, so the
// first due lots are past their time and the others a day apart after.
func (a *api) spreadExpiry(member string, due int) {
	a.t.Helper()
	if err := a.svc.db.Exec(`UPDATE points_lots l SET expires_at = now() + (r.rank - ? + 0.5) * interval '1 day'
		FROM (SELECT l2.entry_id, row_number() OVER (ORDER BY l2.expires_at NULLS LAST, c.created_at, l2.entry_id) - 1 AS rank
		      FROM points_lots l2 JOIN ledger_entries c ON c.id = l2.entry_id WHERE c.member_id = ?) r
		WHERE r.entry_id = l.entry_id`, due, member).Error; err != nil {
		a.t.Fatal(err)
	}
}

type lotRow struct {
	ID                         string
	Points, Remaining, Expired int64
	ExpiresAt                  *time.Time
}

// lotsOf lists a member's lots in FEFO order (first to expire first, then
// those that never expire, oldest first).
func (a *api) lotsOf(member string) []lotRow {
	a.t.Helper()
	var out []lotRow
	if err := a.svc.db.Raw(`SELECT l.entry_id AS id, l.points, l.remaining, l.expired, l.expires_at
		FROM points_lots l JOIN ledger_entries c ON c.id = l.entry_id WHERE c.member_id = ?
		ORDER BY l.expires_at NULLS LAST, c.created_at, l.entry_id`, member).Scan(&out).Error; err != nil {
		a.t.Fatal(err)
	}
	return out
}

// ageLots moves every lot of the member's expiry back, as if that much
// more time had passed with no worker running.
func (a *api) ageLots(member, by string) {
	a.t.Helper()
	if err := a.svc.db.Exec(`UPDATE points_lots l SET expires_at = expires_at - CAST(? AS interval)
		FROM ledger_entries c WHERE c.id = l.entry_id AND c.member_id = ?`, by, member).Error; err != nil {
		a.t.Fatal(err)
	}
}

func (a *api) expiriesOf(member string) []int64 {
	a.t.Helper()
	var out []int64
	if err := a.svc.db.Raw(`SELECT points FROM ledger_entries WHERE member_id = ? AND kind = 'expiry' ORDER BY seq`, member).Scan(&out).Error; err != nil {
		a.t.Fatal(err)
	}
	return out
}

func (a *api) availableOf(member string) int64 {
	a.t.Helper()
	var n int64
	if err := a.svc.db.Raw(`SELECT available FROM members WHERE id = ?`, member).Scan(&n).Error; err != nil {
		a.t.Fatal(err)
	}
	return n
}

// checkLots asserts, lot by lot in FEFO order, how much each has left and
// how much of it expired.
func checkLots(t *testing.T, member string, lots []lotRow, want func(i int) (remaining, expired int64)) {
	t.Helper()
	for i, l := range lots {
		r, e := want(i)
		if l.Remaining != r || l.Expired != e {
			t.Errorf("%s's lot %d of %d (expires %v): remaining %d, expired %d; want %d, %d", member, i, len(lots), l.ExpiresAt, l.Remaining, l.Expired, r, e)
		}
	}
}

// A worker that has not run for a month (the lots' times set back as the
// accrual tests backdate) expires exactly the lots whose time has come,
// once, however many replicas run it at the same time; later runs expire
// nothing more until more lots fall due, and then exactly those.
func TestAWorkerAMonthLateExpiresExactlyTheLotsDueOnce(t *testing.T) {
	t.Parallel()
	a := newAPI(t, pointsExpireAfter("P30D"))
	f := a.fixtures()
	a.secondLots(f, 12, "alice", "bob")
	a.spreadExpiry("alice", 5)
	a.spreadExpiry("bob", 0)
	ctx := context.Background()
	var expired atomic.Int64
	concurrently(t, 4, func() error {
		r, err := a.svc.accrual.RunOnce(ctx)
		expired.Add(r.ExpiredPoints)
		return err
	})
	if got := a.expiriesOf("alice"); len(got) != 1 || got[0] != -50 || expired.Load() != 50 {
		t.Fatalf("alice's expiry entries %v (workers reported %d expired), want one of -50", got, expired.Load())
	}
	checkLots(t, "alice", a.lotsOf("alice"), func(i int) (int64, int64) {
		if i < 5 {
			return 0, 10
		}
		return 10, 0
	})
	if got := a.expiriesOf("bob"); len(got) != 0 || a.availableOf("bob") != 120 {
		t.Fatalf("bob (nothing due) has expiry entries %v and available %d, want none and 120", got, a.availableOf("bob"))
	}
	if a.availableOf("alice") != 70 {
		t.Fatalf("alice's available is %d, want 120 credited - 50 expired", a.availableOf("alice"))
	}
	for range 2 {
		if r := a.accrueNow(); r.PointsExpiries != 0 || r.ExpiredPoints != 0 {
			t.Fatalf("a later run expired again: %+v", r)
		}
	}

	// A month passes with no worker: alice's lots 5..34 (there are 12) and
	// bob's 0..29 fall due, and one run expires exactly those, once.
	a.ageLots("alice", "30 days")
	a.ageLots("bob", "4 days")
	concurrently(t, 4, func() error { _, err := a.svc.accrual.RunOnce(ctx); return err })
	if got := a.expiriesOf("alice"); len(got) != 2 || got[1] != -70 {
		t.Fatalf("alice's expiry entries %v, want -50 then -70", got)
	}
	if got := a.expiriesOf("bob"); len(got) != 1 || got[0] != -40 {
		t.Fatalf("bob's expiry entries %v, want one of -40 (lots 0..3)", got)
	}
	checkLots(t, "alice", a.lotsOf("alice"), func(int) (int64, int64) { return 0, 10 })
	checkLots(t, "bob", a.lotsOf("bob"), func(i int) (int64, int64) {
		if i < 4 {
			return 0, 10
		}
		return 10, 0
	})
	if a.availableOf("alice") != 0 || a.availableOf("bob") != 80 {
		t.Fatalf("available: alice %d, bob %d; want 0 and 80", a.availableOf("alice"), a.availableOf("bob"))
	}
	if r := a.accrueNow(); r.PointsExpiries != 0 {
		t.Fatalf("a later run expired again: %+v", r)
	}
	mustVerify(t, a.cfg.DatabaseURL)
}

// Redemptions racing the expiry worker take their points from the lots
// that expire first among those still unexpired, in the order they commit,
// and never from a lot whose time has come (even before the worker
// expired it): the due lots expire whole, exactly once, whoever gets to
// the member first.
func TestRedemptionsTakeTheLotsThatExpireFirstWhileExpiryRunsConcurrently(t *testing.T) {
	t.Parallel()
	a := newAPI(t, pointsExpireAfter("P30D"))
	f := a.fixtures()
	a.secondLots(f, 12, "alice")
	a.spreadExpiry("alice", 3)
	a.accrueNow() // expires lots 0..2
	a.ageLots("alice", "2 days")
	// Now lots 3 and 4 are due but not expired; lots 5..11 are available.
	var n atomic.Int64
	concurrently(t, 8, func() error {
		if n.Add(1) <= 3 {
			_, err := a.svc.accrual.RunOnce(context.Background())
			return err
		}
		r := a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: f.member, Body: map[string]any{"points": 7, "reference": "race"}})
		if r.Status != 201 {
			return fmt.Errorf("redeem: %d %s", r.Status, r.Body)
		}
		return nil
	})
	lots := a.lotsOf("alice")
	// Lots 0..4 expired whole; the 5 redemptions of 7 took lots 5..7
	// whole and 5 of lot 8; lots 9..11 are untouched.
	checkLots(t, "alice", lots, func(i int) (int64, int64) {
		switch {
		case i < 5:
			return 0, 10
		case i < 8:
			return 0, 0
		case i == 8:
			return 5, 0
		}
		return 10, 0
	})
	var expiredTotal int64
	for _, p := range a.expiriesOf("alice") {
		expiredTotal += p
	}
	if expiredTotal != -50 || a.availableOf("alice") != 120-50-35 {
		t.Fatalf("expired %d and available %d, want -50 and %d", expiredTotal, a.availableOf("alice"), 120-50-35)
	}
	// Each redemption took from lots no earlier in FEFO order than the one
	// committed before it took from.
	rank := map[string]int{}
	for i, l := range lots {
		rank[l.ID] = i
	}
	var taken []struct {
		Seq  int64
		Lot  string
		Kind string
	}
	if err := a.svc.db.Raw(`SELECT r.seq, k.lot_id AS lot, r.kind FROM points_lot_consumptions k JOIN ledger_entries r ON r.id = k.entry_id
		WHERE r.member_id = 'alice' ORDER BY r.seq`).Scan(&taken).Error; err != nil {
		t.Fatal(err)
	}
	last, redemptions := -1, 0
	for _, k := range taken {
		if k.Kind != "redemption" {
			continue
		}
		redemptions++
		if rank[k.Lot] < 5 {
			t.Errorf("redemption %d took from lot %d, which was due to expire", k.Seq, rank[k.Lot])
		}
		if rank[k.Lot] < last {
			t.Errorf("redemption %d took from lot %d after an earlier one took from lot %d: not first-expiring first", k.Seq, rank[k.Lot], last)
		}
		last = max(last, rank[k.Lot])
	}
	if redemptions == 0 {
		t.Fatal("no record of what the redemptions took")
	}
	mustVerify(t, a.cfg.DatabaseURL)
}

// After credits, expiries, redemptions, a reversal that restores exactly
// the lots its redemption took, a cancellation (which expires nothing
// already earned) and an erasure, every transaction's postings sum to zero
// and quid verify finds nothing wrong (lots equal available included).
func TestEveryTransactionSumsToZeroAfterRedemptionsReversalsAndExpiries(t *testing.T) {
	t.Parallel()
	a := newAPI(t, pointsExpireAfter("P30D"))
	f := a.fixtures()
	exs := a.secondLots(f, 6, "alice", "bob")
	before := a.lotsOf("alice")
	r := expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: f.member, Body: map[string]any{"points": 25, "reference": "cinema"}}), 201).json(t)
	redemption := r["entry"].(map[string]any)["id"].(string)
	// The catalogue's cancel will write this reversal; no route does yet.
	if err := a.svc.db.Exec(`INSERT INTO ledger_entries (member_id, kind, points, reverses, created_at) VALUES ('alice', 'reversal', 25, ?, now())`, redemption).Error; err != nil {
		t.Fatal(err)
	}
	if err := a.svc.db.Exec(`UPDATE members SET available = available + 25 WHERE id = 'alice'`).Error; err != nil {
		t.Fatal(err)
	}
	after := a.lotsOf("alice")
	for i := range before {
		if before[i].ID != after[i].ID || before[i].Remaining != after[i].Remaining {
			t.Fatalf("the reversal did not restore lot %d as it was: %+v, now %+v", i, before[i], after[i])
		}
	}
	expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: f.member, Body: map[string]any{"points": 15, "reference": "cinema"}}), 201)
	// Cancelling expires nothing already earned.
	held := a.availableOf("alice")
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + exs["alice"], Token: f.member}), 200)
	if a.availableOf("alice") != held || len(a.expiriesOf("alice")) != 0 {
		t.Fatalf("cancelling moved available from %d to %d", held, a.availableOf("alice"))
	}
	a.spreadExpiry("alice", 3)
	a.spreadExpiry("bob", 2)
	if r := a.accrueNow(); r.ExpiredPoints != 5+10+20 {
		t.Fatalf("expired %d points, want what alice's lots 0..2 hold (0, 5 and 10) and bob's 0 and 1 (20)", r.ExpiredPoints)
	}
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: token(t, app.RoleMember, "bob")}), 200)
	var kinds []string
	if err := a.svc.db.Raw(`SELECT DISTINCT kind FROM ledger_entries ORDER BY kind`).Scan(&kinds).Error; err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprint([]string{"expiry", "period_credit", "redemption", "reversal"}); fmt.Sprint(kinds) != want {
		t.Fatalf("the mix wrote %v, want %s", kinds, want)
	}
	var unbalanced, entries int
	if err := a.svc.db.Raw(`SELECT count(*) FILTER (WHERE coalesce(s.total, 1) <> 0), count(*) FROM ledger_entries l
		LEFT JOIN (SELECT entry_id, sum(amount) AS total FROM ledger_postings GROUP BY entry_id) s ON s.entry_id = l.id`).Row().Scan(&unbalanced, &entries); err != nil {
		t.Fatal(err)
	}
	if unbalanced != 0 {
		t.Fatalf("%d of %d transactions do not sum to zero", unbalanced, entries)
	}
	mustVerify(t, a.cfg.DatabaseURL)
}

// A redemption never spends points whose time has come, even when the
// worker has not expired them yet: it expires them itself, under the
// member's lock, before it checks the balance (and a refused redemption
// writes nothing, that expiry included).
func TestARedemptionNeverSpendsPointsWhoseTimeHasComeBeforeTheWorkerRuns(t *testing.T) {
	t.Parallel()
	a := newAPI(t, pointsExpireAfter("P30D"))
	f := a.fixtures()
	a.secondLots(f, 6, "alice")
	a.spreadExpiry("alice", 2) // 20 of alice's 60 points are past their time
	a.unchangedBy("a refused redemption", func() {
		r := a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: f.member, Body: map[string]any{"points": 41, "reference": "too much"}})
		if p := problemOf(t, r); r.Status != 422 || p.Code != "insufficient-points" {
			t.Fatalf("redeeming 41 of 40 unexpired points: %d %s", r.Status, r.Body)
		}
	})
	r := expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: f.member, Body: map[string]any{"points": 40, "reference": "all"}}), 201).json(t)
	if b := r["balance"].(map[string]any); b["available"] != float64(0) {
		t.Fatalf("balance after redeeming every unexpired point: %v", b)
	}
	if got := a.expiriesOf("alice"); len(got) != 1 || got[0] != -20 {
		t.Fatalf("alice's expiry entries %v, want the redemption's own expiry of -20", got)
	}
	mustVerify(t, a.cfg.DatabaseURL)
}

// A member sees "N points expire on D" in GET /v1/me and GET /v1/me/points:
// their lots' remaining points per expiry time, soonest first, the first
// three, lots a redemption emptied left out; none when points never expire.
func TestMembersSeeWhenTheirPointsExpireSoonestFirst(t *testing.T) {
	t.Parallel()
	a := newAPI(t, pointsExpireAfter("P30D"))
	f := a.fixtures()
	a.secondLots(f, 5, "alice")
	a.spreadExpiry("alice", 0)
	expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: f.member, Body: map[string]any{"points": 15, "reference": "x"}}), 201)
	lots := a.lotsOf("alice")
	want := []any{}
	for _, l := range lots[1:4] {
		want = append(want, map[string]any{"points": float64(l.Remaining), "on": l.ExpiresAt.UTC().Format(time.RFC3339Nano)})
	}
	if want[0].(map[string]any)["points"] != float64(5) {
		t.Fatalf("lots after the redemption: %+v", lots)
	}
	for _, path := range []string{"/v1/me", "/v1/me/points"} {
		got := expect(t, a.do(req{Method: "GET", Path: path, Token: f.member}), 200).json(t)["expiring"]
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s shows expiring %v, want %v", path, got, want)
		}
	}

	never := newAPI(t)
	g := never.fixtures()
	never.enrol(g.member)
	for _, path := range []string{"/v1/me", "/v1/me/points"} {
		if got := expect(t, never.do(req{Method: "GET", Path: path, Token: g.member}), 200).json(t)["expiring"]; fmt.Sprint(got) != "[]" {
			t.Errorf("%s shows expiring %v where points never expire", path, got)
		}
	}
}

// The brand is told once, QUID_POINTS_EXPIRING_NOTICE before, that a
// member's points will expire: one points.expiring per lot whose expiry is
// within the notice, however many replicas run the reminder and however
// often, none for lots further off.
func TestTheBrandIsToldOnceBeforePointsExpire(t *testing.T) {
	t.Parallel()
	a := newAPI(t, pointsExpireAfter("P30D"), func(c *config.Config) { c.PointsExpiringNotice = domain.MustParseDuration("P14D") })
	f := a.fixtures()
	a.secondLots(f, 5, "alice")
	a.spreadExpiry("alice", -10) // lot r expires in r+10½ days: lots 0..3 within 14 days
	ctx := context.Background()
	for range 2 {
		concurrently(t, 3, func() error { return a.svc.accrual.Housekeeping(ctx) })
	}
	var events []struct {
		RecipientID string
		Payload     []byte
	}
	if err := a.svc.db.Raw(`SELECT recipient_id, payload FROM webhook_outbox WHERE event_type = 'points.expiring'
		ORDER BY payload->'data'->>'expires_at'`).Scan(&events).Error; err != nil {
		t.Fatal(err)
	}
	lots := a.lotsOf("alice")
	if len(events) != 4 {
		t.Fatalf("%d points.expiring events, want one for each of the 4 lots within the notice", len(events))
	}
	for i, e := range events {
		checkWebhookPayload(t, "points.expiring", e.Payload)
		var p struct {
			Data struct {
				MemberID  string `json:"member_id"`
				Points    int64
				ExpiresAt time.Time `json:"expires_at"`
			}
		}
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if e.RecipientID != f.brand || p.Data.MemberID != "alice" || p.Data.Points != 10 || !p.Data.ExpiresAt.Equal(*lots[i].ExpiresAt) {
			t.Errorf("event %d to %s: %s; want 10 of alice's points expiring at %v, to the brand", i, e.RecipientID, e.Payload, lots[i].ExpiresAt)
		}
	}
}

// Points whose lots are past their time are not the member's to spend (a
// redemption expires them first), so every view of the balance leaves
// them out before the worker has expired them, and lists only expiries
// still to come; the views write nothing, and redeeming exactly the
// balance shown succeeds (attack report F1).
func TestEveryBalanceShownLeavesOutPointsPastTheirTimeBeforeTheWorkerRuns(t *testing.T) {
	t.Parallel()
	a := newAPI(t, pointsExpireAfter("P30D"))
	f := a.fixtures()
	a.secondLots(f, 6, "alice")
	a.spreadExpiry("alice", 2) // 20 of alice's 60 points are past their time
	stored := func() (available int64) {
		if err := a.svc.db.Raw(`SELECT available FROM members WHERE id = 'alice'`).Row().Scan(&available); err != nil {
			t.Fatal(err)
		}
		return available
	}
	onlyFuture := func(view string, exp any) {
		t.Helper()
		now := time.Now()
		for _, x := range exp.([]any) {
			on, err := time.Parse(time.RFC3339Nano, x.(map[string]any)["on"].(string))
			if err != nil || !on.After(now) {
				t.Fatalf("%s lists points expiring on %v, not after now (%v)", view, x, err)
			}
		}
	}
	balanceOf := func(view string, b any) {
		t.Helper()
		if got := b.(map[string]any)["available"]; got != float64(40) {
			t.Fatalf("%s shows available %v, want the 40 points still spendable", view, got)
		}
	}
	me := expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: f.member}), 200).json(t)
	balanceOf("GET /v1/me", me["balance"])
	onlyFuture("GET /v1/me", me["expiring"])
	pts := expect(t, a.do(req{Method: "GET", Path: "/v1/me/points", Token: f.member}), 200).json(t)
	balanceOf("GET /v1/me/points", pts)
	onlyFuture("GET /v1/me/points", pts["expiring"])
	st := expect(t, a.do(req{Method: "GET", Path: "/v1/me/transparency", Token: f.member}), 200).json(t)
	balanceOf("GET /v1/me/transparency", st["points"].(map[string]any)["balance"])
	onlyFuture("GET /v1/me/transparency", st["points"].(map[string]any)["expiring"])
	ex := expect(t, a.do(req{Method: "GET", Path: "/v1/me/export", Token: f.member}), 200).json(t)
	balanceOf("GET /v1/me/export", ex["member"].(map[string]any)["balance"])
	put := expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: f.member,
		Body: map[string]any{"attributes": map[string]any{"location.city": "Bergen"}}}), 200).json(t)
	balanceOf("PUT /v1/me", put["balance"])
	if got := stored(); got != 60 || len(a.expiriesOf("alice")) != 0 {
		t.Fatalf("the reads wrote: stored available %d, expiries %v", got, a.expiriesOf("alice"))
	}
	r := expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: f.member, Body: map[string]any{"points": 40, "reference": "all shown"}}), 201).json(t)
	if b := r["balance"].(map[string]any); b["available"] != float64(0) {
		t.Fatalf("balance after redeeming the balance shown: %v", b)
	}
	mustVerify(t, a.cfg.DatabaseURL)
}

// Erasure forfeits the member's points in its own transaction: nobody can
// spend them again, so their available points go to the programme's
// expired account (breakage) and the unvested bonus is voided, the
// liability report no longer owes them, and no worker run afterwards
// credits, expires or reminds anyone of points under the pseudonym
// (attack report F6).
func TestErasureForfeitsThePointsSoTheyLeaveTheLiabilityAndNoReminderNamesThem(t *testing.T) {
	t.Parallel()
	a := newAPI(t, pointsExpireAfter("P30D"), func(c *config.Config) { c.PointsExpiringNotice = domain.MustParseDuration("P14D") })
	f := a.fixtures()
	from := time.Now().Add(-time.Hour)
	a.secondLots(f, 5, "alice")
	a.joinContract(f.member, a.publishContract(f, contractBody(f))) // a bonus of 200 vesting in 14 days
	a.spreadExpiry("alice", -10)                                    // every lot within the reminder's notice
	// Owed but not yet settled by the worker when she erases: a bonus of 5
	// that vested after a second and two periods of 10.
	quick := contractBody(f)
	quick["reward"] = map[string]any{"join_bonus": 5, "vesting": "PT1S", "points_per_period": 10, "period": "PT1S", "max_periods": 2}
	a.joinContract(f.member, a.publishContract(f, quick))
	time.Sleep(2300 * time.Millisecond)
	before := a.liability(f.admin, from, time.Now().Add(time.Minute))
	if c := before.RollForward.Closing; c.Available != 50 || c.Pending != 205 {
		t.Fatalf("before the erasure the liability closes at %+v, want 50 available and 205 pending", c)
	}
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: f.member}), 200)
	var erased struct {
		ID                 string
		Available, Pending int64
		Lots               int
	}
	if err := a.svc.db.Raw(`SELECT m.id, m.available, m.pending, (SELECT count(*) FROM points_lots l JOIN ledger_entries c ON c.id = l.entry_id
		WHERE c.member_id = m.id AND l.remaining > 0) AS lots FROM members m WHERE m.erased_at IS NOT NULL`).Scan(&erased).Error; err != nil {
		t.Fatal(err)
	}
	if erased.Available != 0 || erased.Pending != 0 || erased.Lots != 0 {
		t.Fatalf("the erased member still holds %+v", erased)
	}
	after := a.liability(f.admin, from, time.Now().Add(time.Minute))
	if c := after.RollForward.Closing; c.Available != 0 || c.Pending != 0 {
		t.Fatalf("after the erasure the liability closes at %+v, want nothing owed", c)
	}
	if e, v := after.RollForward.Expired.Points, after.RollForward.Voided.Points; e != 75 || v != 200 {
		t.Fatalf("the forfeiture shows as %d expired and %d voided, want 75 (50 held, 5 vested and 20 credited by the end) and 200", e, v)
	}
	entries := func() (n int) {
		if err := a.svc.db.Raw(`SELECT count(*) FROM ledger_entries WHERE member_id = ?`, erased.ID).Row().Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	n := entries()
	a.accrueNow()
	if err := a.svc.accrual.Housekeeping(context.Background()); err != nil {
		t.Fatal(err)
	}
	var events int
	if err := a.svc.db.Raw(`SELECT count(*) FROM webhook_outbox WHERE payload->'data'->>'member_id' = ? AND event_type <> 'member.erasure_requested'
		AND created_at > (SELECT erased_at FROM members WHERE id = ?)`, erased.ID, erased.ID).Row().Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != 0 || entries() != n {
		t.Fatalf("after the erasure the workers queued %d member events and wrote %d ledger entries", events, entries()-n)
	}
	mustVerify(t, a.cfg.DatabaseURL)
}

// Members erased before erasure forfeited points still held them; migration
// 00031 forfeits them as erasure now does, and quid verify stays clean.
func TestMigration00031ForfeitsThePointsOfMembersErasedBefore(t *testing.T) {
	t.Parallel()
	a := newAPI(t, pointsExpireAfter("P30D"))
	f := a.fixtures()
	a.secondLots(f, 3, "alice", "bob")
	// As an earlier release left an erasure: the row marked erased, its points kept.
	if err := a.svc.db.Exec(`UPDATE members SET erased_at = now() WHERE id = 'alice'`).Error; err != nil {
		t.Fatal(err)
	}
	withDB(t, a.cfg.DatabaseURL, func(q *sql.DB) {
		p, err := goose.NewProvider(goose.DialectPostgres, q, migrations.FS)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.DownTo(context.Background(), 30); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Up(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	var held []int64
	if err := a.svc.db.Raw(`SELECT available FROM members ORDER BY id`).Scan(&held).Error; err != nil {
		t.Fatal(err)
	}
	if len(held) != 2 || held[0] != 0 || held[1] != 30 {
		t.Fatalf("after 00031 alice (erased) and bob hold %v, want [0 30]", held)
	}
	if got := a.expiriesOf("alice"); len(got) != 1 || got[0] != -30 {
		t.Fatalf("alice's expiry entries %v, want one forfeiture of 30", got)
	}
	mustVerify(t, a.cfg.DatabaseURL)
}
