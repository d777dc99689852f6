package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
)

// tiersBody is a valid tier schedule: Silver from 1,000 points earned in
// twelve months, Gold from 5,000.
func tiersBody() map[string]any {
	return map[string]any{"window": "P12M", "tiers": []any{
		map[string]any{"name": "Silver", "threshold": 1000, "benefits": "Free coffee refills."},
		map[string]any{"name": "Gold", "threshold": 5000, "benefits": "Free coffee refills and a seat by the window."},
	}}
}

func TestAnAdminSetsTiersAndAnyoneReadsThem(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	expect(t, a.do(req{Method: "GET", Path: "/v1/programme/tiers"}), 404)
	got := expect(t, a.do(req{Method: "PUT", Path: "/v1/programme/tiers", Token: f.admin, Body: tiersBody()}), 200).json(t)
	if got["version"] != float64(1) || got["window"] != "P12M" || len(got["tiers"].([]any)) != 2 {
		t.Fatalf("PUT answered %v", got)
	}
	body := tiersBody()
	body["tiers"].([]any)[0].(map[string]any)["name"] = "  Bronze  "
	expect(t, a.do(req{Method: "PUT", Path: "/v1/programme/tiers", Token: f.admin, Body: body}), 200)
	var read struct {
		Version int
		Window  string
		Tiers   []struct {
			Name      string
			Threshold int64
			Benefits  string
		}
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/programme/tiers"}), 200).decode(t, &read)
	if read.Version != 2 || read.Tiers[0].Name != "Bronze" || read.Tiers[1].Threshold != 5000 {
		t.Fatalf("GET answered %+v, want version 2 with Bronze (trimmed) and Gold at 5000", read)
	}
	expect(t, a.do(req{Method: "PUT", Path: "/v1/programme/tiers", Token: f.marketer, Body: tiersBody()}), 403)
}

// Every invalid schedule is 422 at its field and writes nothing: thresholds
// must rise strictly, names be unique (whatever their case), texts bounded
// and free of control characters and bidirectional overrides.
func TestInvalidTiersAreRefusedAtTheirFieldAndWriteNothing(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	tier := func(name string, threshold any, benefits string) map[string]any {
		return map[string]any{"name": name, "threshold": threshold, "benefits": benefits}
	}
	cases := []struct {
		name    string
		body    map[string]any
		pointer string
	}{
		{"equal thresholds", map[string]any{"window": "P12M", "tiers": []any{tier("A", 10, ""), tier("B", 10, "")}}, "/tiers/1/threshold"},
		{"falling thresholds", map[string]any{"window": "P12M", "tiers": []any{tier("A", 10, ""), tier("B", 5, "")}}, "/tiers/1/threshold"},
		{"zero threshold", map[string]any{"window": "P12M", "tiers": []any{tier("A", 0, "")}}, "/tiers/0/threshold"},
		{"negative threshold", map[string]any{"window": "P12M", "tiers": []any{tier("A", -5, "")}}, "/tiers/0/threshold"},
		{"huge threshold", map[string]any{"window": "P12M", "tiers": []any{tier("A", json.Number("1000000000000000000000000"), "")}}, "/tiers/0/threshold"},
		{"threshold above the bound", map[string]any{"window": "P12M", "tiers": []any{tier("A", int64(1_000_000_000_001), "")}}, "/tiers/0/threshold"},
		{"fractional threshold", map[string]any{"window": "P12M", "tiers": []any{tier("A", 1.5, "")}}, "/tiers/0/threshold"},
		{"duplicate names", map[string]any{"window": "P12M", "tiers": []any{tier("Gold", 10, ""), tier("gold", 20, "")}}, "/tiers/1/name"},
		{"blank name", map[string]any{"window": "P12M", "tiers": []any{tier("   ", 10, "")}}, "/tiers/0/name"},
		{"invisible name", map[string]any{"window": "P12M", "tiers": []any{tier("\u200b\u2800", 10, "")}}, "/tiers/0/name"},
		{"long name", map[string]any{"window": "P12M", "tiers": []any{tier(strings.Repeat("é", 101), 10, "")}}, "/tiers/0/name"},
		{"bidi name", map[string]any{"window": "P12M", "tiers": []any{tier("Gold\u202eevil", 10, "")}}, "/tiers/0/name"},
		{"NUL name", map[string]any{"window": "P12M", "tiers": []any{tier("Go\x00ld", 10, "")}}, "/tiers/0/name"},
		{"newline name", map[string]any{"window": "P12M", "tiers": []any{tier("Go\nld", 10, "")}}, "/tiers/0/name"},
		{"bidi benefits", map[string]any{"window": "P12M", "tiers": []any{tier("Gold", 10, "free \u2066coffee")}}, "/tiers/0/benefits"},
		{"control benefits", map[string]any{"window": "P12M", "tiers": []any{tier("Gold", 10, "free\x1bcoffee")}}, "/tiers/0/benefits"},
		{"long benefits", map[string]any{"window": "P12M", "tiers": []any{tier("Gold", 10, strings.Repeat("b", 1001))}}, "/tiers/0/benefits"},
		{"no window", map[string]any{"tiers": []any{tier("Gold", 10, "")}}, "/window"},
		{"zero window", map[string]any{"window": "PT0S", "tiers": []any{tier("Gold", 10, "")}}, "/window"},
		{"bad window", map[string]any{"window": "12 months", "tiers": []any{tier("Gold", 10, "")}}, "/window"},
		{"long window", map[string]any{"window": "P11Y", "tiers": []any{tier("Gold", 10, "")}}, "/window"},
		{"no tiers field", map[string]any{"window": "P12M"}, "/tiers"},
		{"name not a string", map[string]any{"window": "P12M", "tiers": []any{tier("", 10, "")}}, "/tiers/0/name"},
	}
	var many []any
	for i := range 21 {
		many = append(many, tier(fmt.Sprintf("T%d", i), i+1, ""))
	}
	cases = append(cases, struct {
		name    string
		body    map[string]any
		pointer string
	}{"too many tiers", map[string]any{"window": "P12M", "tiers": many}, "/tiers"})
	a.unchangedBy("invalid tier schedules", func() {
		for _, c := range cases {
			raw, err := json.Marshal(c.body)
			if err != nil {
				t.Fatal(err)
			}
			r := a.do(req{Method: "PUT", Path: "/v1/programme/tiers", Token: f.admin, Body: string(raw),
				Headers: map[string]string{"Content-Type": "application/json"}})
			if r.Status != 422 {
				t.Errorf("%s: status %d, want 422: %s", c.name, r.Status, r.Body)
				continue
			}
			ok := false
			for _, e := range problemOf(t, r).Errors {
				ok = ok || e.Pointer == c.pointer
			}
			if !ok {
				t.Errorf("%s: no error at %s: %s", c.name, c.pointer, r.Body)
			}
		}
	})
	// Invalid UTF-8 is refused too (400 or 422, never stored).
	r := a.do(req{Method: "PUT", Path: "/v1/programme/tiers", Token: f.admin, Body: "{\"window\":\"P12M\",\"tiers\":[{\"name\":\"G\xffold\",\"threshold\":1}]}",
		Headers: map[string]string{"Content-Type": "application/json"}})
	if r.Status != 400 && r.Status != 422 {
		t.Fatalf("invalid UTF-8 name: status %d: %s", r.Status, r.Body)
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/programme/tiers"}), 404)
}

// tierOf reads GET /v1/me's tier standing.
type tierStanding struct {
	Current *struct {
		Name     string
		Benefits string
	}
	PointsEarned int64     `json:"points_earned"`
	Window       string    `json:"window"`
	WindowStart  time.Time `json:"window_start"`
	AsOf         time.Time `json:"as_of"`
	Next         *struct {
		Name         string
		Threshold    int64
		PointsNeeded int64 `json:"points_needed"`
	}
}

func (a *api) tierOf(tok string) *tierStanding {
	a.t.Helper()
	var me struct{ Tier *tierStanding }
	expect(a.t, a.do(req{Method: "GET", Path: "/v1/me", Token: tok}), 200).decode(a.t, &me)
	return me.Tier
}

// A member's tier and progress are computed from the ledger: period
// credits and vested bonuses count, a bonus voided before it vested does
// not, and spending points takes nothing back from what was earned.
func TestAMembersTierAndProgressComeFromThePointsTheyEarned(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	tok := token(t, app.RoleMember, "alice")
	a.enrol(tok)
	if got := a.tierOf(tok); got != nil {
		t.Fatalf("tier %+v before the programme has tiers, want null", got)
	}
	expect(t, a.do(req{Method: "PUT", Path: "/v1/programme/tiers", Token: f.admin, Body: map[string]any{"window": "P12M", "tiers": []any{
		map[string]any{"name": "Silver", "threshold": 30, "benefits": "Refills."},
		map[string]any{"name": "Gold", "threshold": 100, "benefits": "Refills and a seat."},
	}}}), 200)

	// A bonus of 500 that vests in a month, voided by cancelling: it never counts.
	voided := contractBody(f)
	voided["title"] = "Voided bonus"
	voided["reward"] = map[string]any{"join_bonus": 500, "vesting": "P30D"}
	ex := a.joinContract(tok, a.publishContract(f, voided))["id"].(string)
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + ex, Token: tok}), 200)
	// An immediate bonus of 5 and 10 points a second for 3 seconds.
	paid := contractBody(f)
	paid["reward"] = map[string]any{"join_bonus": 5, "points_per_period": 10, "period": "PT1S", "max_periods": 3}
	a.joinContract(tok, a.publishContract(f, paid))
	time.Sleep(3300 * time.Millisecond)
	a.accrueNow()

	got := a.tierOf(tok)
	if got == nil || got.PointsEarned != 35 || got.Current == nil || got.Current.Name != "Silver" || got.Current.Benefits != "Refills." ||
		got.Next == nil || got.Next.Name != "Gold" || got.Next.Threshold != 100 || got.Next.PointsNeeded != 65 || got.Window != "P12M" {
		t.Fatalf("tier %+v, want Silver with 35 earned (not the voided 500) and 65 to Gold", got)
	}
	if want := got.AsOf.AddDate(-1, 0, 0); !got.WindowStart.Equal(want) {
		t.Errorf("window_start %v, want as_of minus 12 months (%v)", got.WindowStart, want)
	}
	// Spending does not lower what was earned.
	expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: tok, Body: map[string]any{"points": 30, "reference": "cup"},
		Headers: map[string]string{"Idempotency-Key": "spend-1"}}), 201)
	if got := a.tierOf(tok); got.PointsEarned != 35 || got.Current.Name != "Silver" {
		t.Fatalf("after spending 30: %+v, want still 35 earned and Silver", got)
	}
}

type tierEvent struct {
	RecipientID string
	Payload     []byte
}

func (a *api) tierEvents() []tierEvent {
	a.t.Helper()
	var out []tierEvent
	if err := a.svc.db.Raw(`SELECT recipient_id, payload FROM webhook_outbox WHERE event_type = 'member.tier_changed' ORDER BY created_at, id`).Scan(&out).Error; err != nil {
		a.t.Fatal(err)
	}
	return out
}

// Tier changes are announced to the brand once each, however many workers
// run the job at once; the window rolls, so a member drops with no new
// activity, and a worker that runs late announces the tier as it is then.
func TestTierChangesAreAnnouncedOnceAndTiersDropAsTheWindowRolls(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	expect(t, a.do(req{Method: "PUT", Path: "/v1/programme/tiers", Token: f.admin, Body: map[string]any{"window": "PT8S", "tiers": []any{
		map[string]any{"name": "Bronze", "threshold": 10, "benefits": ""},
		map[string]any{"name": "Silver", "threshold": 30, "benefits": ""},
	}}}), 200)
	body := contractBody(f)
	body["reward"] = map[string]any{"join_bonus": 0, "points_per_period": 10, "period": "PT1S", "max_periods": 3}
	contract := a.publishContract(f, body)
	alice, bob := token(t, app.RoleMember, "alice"), token(t, app.RoleMember, "bob")
	a.enrol(alice) // attributes include "Oslo" and "espresso", which no event may carry
	a.enrol(bob)   // bob earns nothing: no tier, no event
	a.joinContract(alice, contract)
	time.Sleep(3300 * time.Millisecond)
	a.accrueNow()
	ctx := context.Background()
	for range 2 {
		concurrently(t, 4, func() error { return a.svc.accrual.Housekeeping(ctx) })
	}
	events := a.tierEvents()
	if len(events) != 1 {
		t.Fatalf("%d member.tier_changed events, want 1 (alice to Silver)", len(events))
	}
	check := func(e tierEvent, from, to any, earned int64) {
		t.Helper()
		checkWebhookPayload(t, "member.tier_changed", e.Payload)
		var p struct{ Data map[string]any }
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if e.RecipientID != f.brand || p.Data["member_id"] != "alice" || p.Data["from"] != from || p.Data["to"] != to ||
			p.Data["points_earned"] != float64(earned) || p.Data["window"] != "PT8S" {
			t.Errorf("event to %s: %s; want alice from %v to %v with %d earned, to the brand", e.RecipientID, e.Payload, from, to, earned)
		}
		if bytes.Contains(e.Payload, []byte("Oslo")) || bytes.Contains(e.Payload, []byte("espresso")) {
			t.Errorf("event carries an attribute value: %s", e.Payload)
		}
	}
	check(events[0], nil, "Silver", 30)

	// No new activity: once every credit has left the eight-second window
	// the member has no tier. The worker did not run in between (it would
	// have seen Bronze): run late, it announces the tier as it is now, once.
	time.Sleep(8 * time.Second)
	if got := a.tierOf(alice); got.PointsEarned != 0 || got.Current != nil || got.Next.Name != "Bronze" || got.Next.PointsNeeded != 10 {
		t.Fatalf("alice's standing after the window rolled: %+v, want nothing earned, no tier, 10 to Bronze", got)
	}
	for range 2 {
		concurrently(t, 4, func() error { return a.svc.accrual.Housekeeping(ctx) })
	}
	events = a.tierEvents()
	if len(events) != 2 {
		t.Fatalf("%d member.tier_changed events, want 2 (to Silver, then to none)", len(events))
	}
	check(events[1], "Silver", nil, 0)
	var stored *string
	if err := a.svc.db.Raw(`SELECT tier FROM member_tiers WHERE member_id = 'alice'`).Scan(&stored).Error; err != nil || stored != nil {
		t.Fatalf("alice's stored tier %v (%v), want none", stored, err)
	}
}

// Tiers never change what a contract pays: a Gold member and a member with
// no tier are credited exactly the statement's reward, and the contract's
// statement and terms hash are the same bytes with tiers set as without.
func TestTiersNeverChangeAContractsReward(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	big := contractBody(f)
	big["title"] = "Big earner"
	big["reward"] = map[string]any{"join_bonus": 1000, "vesting": "PT0S"}
	bigID := a.publishContract(f, big)
	body := contractBody(f)
	body["reward"] = map[string]any{"join_bonus": 7, "vesting": "PT0S", "points_per_period": 10, "period": "PT1S", "max_periods": 2}
	id := a.publishContract(f, body)
	statement := func() (string, []byte) {
		r := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/transparency"}), 200)
		html := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/transparency", Headers: map[string]string{"Accept": "text/html"}}), 200)
		return string(r.Body), html.Body
	}
	jsonBefore, htmlBefore := statement()

	expect(t, a.do(req{Method: "PUT", Path: "/v1/programme/tiers", Token: f.admin, Body: map[string]any{"window": "P12M", "tiers": []any{
		map[string]any{"name": "Gold", "threshold": 1000, "benefits": "Double points, says nobody."},
	}}}), 200)
	gold, plain := token(t, app.RoleMember, "gold"), token(t, app.RoleMember, "plain")
	a.enrol(gold)
	a.enrol(plain)
	a.joinContract(gold, bigID)
	if got := a.tierOf(gold); got.Current == nil || got.Current.Name != "Gold" {
		t.Fatalf("gold's tier %+v, want Gold", got)
	}
	a.joinContract(gold, id)
	a.joinContract(plain, id)
	time.Sleep(2300 * time.Millisecond)
	a.accrueNow()
	concurrently(t, 2, func() error { return a.svc.accrual.Housekeeping(context.Background()) })

	var rows []struct {
		MemberID string
		Kind     string
		Points   int64
	}
	if err := a.svc.db.Raw(`SELECT l.member_id, l.kind, l.points FROM ledger_entries l JOIN exchanges e ON e.id = l.exchange_id
		WHERE e.contract_id = ? ORDER BY l.member_id, l.kind, l.points`, id).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, r := range rows {
		got[r.MemberID] = append(got[r.MemberID], fmt.Sprintf("%s %d", r.Kind, r.Points))
	}
	want := "[bonus_pending 7 bonus_vested 7 period_credit 10 period_credit 10]"
	for _, m := range []string{"gold", "plain"} {
		if fmt.Sprint(got[m]) != want {
			t.Errorf("%s was paid %v by the contract, want exactly its terms: %s", m, got[m], want)
		}
	}
	jsonAfter, htmlAfter := statement()
	if jsonAfter != jsonBefore || !bytes.Equal(htmlAfter, htmlBefore) {
		t.Errorf("the statement changed with tiers:\nbefore %s\nafter  %s", jsonBefore, jsonAfter)
	}
	mustVerify(t, a.cfg.DatabaseURL)
}

// Erasure forgets a member's tier: the stored tier goes with the member's
// id, and the job never announces a tier for what the ledger keeps under
// the pseudonym.
func TestErasureForgetsAMembersTier(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	expect(t, a.do(req{Method: "PUT", Path: "/v1/programme/tiers", Token: f.admin, Body: map[string]any{"window": "P12M", "tiers": []any{
		map[string]any{"name": "Bronze", "threshold": 5, "benefits": ""},
	}}}), 200)
	body := contractBody(f)
	body["reward"] = map[string]any{"join_bonus": 10, "vesting": "PT0S"}
	tok := token(t, app.RoleMember, "alice")
	a.enrol(tok)
	a.joinContract(tok, a.publishContract(f, body))
	ctx := context.Background()
	if err := a.svc.accrual.Housekeeping(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(a.tierEvents()); n != 1 {
		t.Fatalf("%d tier events, want alice to Bronze", n)
	}
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: tok}), 200)
	if err := a.svc.accrual.Housekeeping(ctx); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := a.svc.db.Raw(`SELECT count(*) FROM member_tiers`).Scan(&rows).Error; err != nil || rows != 0 {
		t.Fatalf("%d member_tiers rows after erasure (%v), want none", rows, err)
	}
	if n := len(a.tierEvents()); n != 1 {
		t.Fatalf("%d tier events after erasure, want still 1 (none for the pseudonym)", n)
	}
}

// Many replicas running the tier job at the same instant announce each
// member's change exactly once.
func TestManyWorkersAnnounceEachTierChangeExactlyOnce(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	expect(t, a.do(req{Method: "PUT", Path: "/v1/programme/tiers", Token: f.admin, Body: map[string]any{"window": "P12M", "tiers": []any{
		map[string]any{"name": "Bronze", "threshold": 5, "benefits": ""},
	}}}), 200)
	body := contractBody(f)
	body["reward"] = map[string]any{"join_bonus": 10, "vesting": "PT0S"}
	id := a.publishContract(f, body)
	const members = 100
	for i := range members {
		tok := token(t, app.RoleMember, fmt.Sprintf("m%03d", i))
		a.enrol(tok)
		a.joinContract(tok, id)
	}
	ctx := context.Background()
	start := make(chan struct{})
	var total atomic.Int64
	done := make(chan error, 8)
	for range 8 {
		go func() {
			<-start
			n, err := a.svc.store.AnnounceTierChanges(ctx)
			total.Add(n)
			done <- err
		}()
	}
	close(start)
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := a.svc.store.AnnounceTierChanges(ctx); n != 0 || total.Load() != members {
		t.Fatalf("workers stored %d changes, a later run %d; want %d then 0", total.Load(), n, members)
	}
	var events, distinct int
	if err := a.svc.db.Raw(`SELECT count(*), count(DISTINCT payload->'data'->>'member_id') FROM webhook_outbox WHERE event_type = 'member.tier_changed'`).Row().Scan(&events, &distinct); err != nil {
		t.Fatal(err)
	}
	if events != members || distinct != members {
		t.Fatalf("%d member.tier_changed events for %d members, want one each for %d", events, distinct, members)
	}
}

// A member earning steadily at a threshold keeps their tier between the
// worker's runs: the credit of a period that has just ended is written at
// the next run, and the window counts up to the oldest period still to be
// credited, so the oldest credit never leaves it before its replacement
// arrives (an outside tester saw Gold, Silver, Gold… on every run, each
// change announced to the brand).
func TestATierDoesNotFlapWhileTheWorkerHasPeriodsToCredit(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	expect(t, a.do(req{Method: "PUT", Path: "/v1/programme/tiers", Token: f.admin, Body: map[string]any{"window": "PT4S", "tiers": []any{
		map[string]any{"name": "Silver", "threshold": 40, "benefits": ""},
	}}}), 200)
	body := contractBody(f)
	body["reward"] = map[string]any{"join_bonus": 0, "points_per_period": 10, "period": "PT1S"}
	contract := a.publishContract(f, body)
	alice := token(t, app.RoleMember, "alice")
	a.enrol(alice)
	a.joinContract(alice, contract)
	time.Sleep(5300 * time.Millisecond)
	a.accrueNow()
	ctx := context.Background()
	if err := a.svc.accrual.Housekeeping(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(a.tierEvents()); n != 1 {
		t.Fatalf("%d tier events after four credited periods, want 1 (to Silver)", n)
	}
	// Periods end, the worker has not credited them yet: nothing changes.
	time.Sleep(1600 * time.Millisecond)
	if err := a.svc.accrual.Housekeeping(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.tierOf(alice); got.Current == nil || got.PointsEarned != 40 {
		t.Errorf("between the worker's runs alice's standing is %+v, want Silver with 40 earned", got)
	}
	a.accrueNow()
	if err := a.svc.accrual.Housekeeping(ctx); err != nil {
		t.Fatal(err)
	}
	if events := a.tierEvents(); len(events) != 1 {
		t.Errorf("%d tier events, want only the first (to Silver): %s", len(events), events[len(events)-1].Payload)
	}
}
