package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/quidpro/quid/app"
)

// restrict sets the member's restriction through the API and returns the
// state it answers.
func (a *api) restrict(tok string, restricted bool) map[string]any {
	a.t.Helper()
	return expect(a.t, a.do(req{Method: "PUT", Path: "/v1/me/restriction", Token: tok, Body: map[string]any{"restricted": restricted}}), 200).json(a.t)
}

// accrueNow runs one accrual pass as the worker would.
func (a *api) accrueNow() app.AccrualResult {
	a.t.Helper()
	r, err := a.svc.accrual.RunOnce(context.Background())
	if err != nil {
		a.t.Fatal(err)
	}
	return r
}

// creditsOf lists an exchange's period credits, oldest period first.
type credit struct{ Start, End time.Time }

func (a *api) creditsOf(exchangeID string) []credit {
	a.t.Helper()
	var out []credit
	if err := a.svc.db.Raw(`SELECT period_start AS start, period_end AS "end" FROM ledger_entries
		WHERE exchange_id = ? AND kind = 'period_credit' ORDER BY period_start`, exchangeID).Scan(&out).Error; err != nil {
		a.t.Fatal(err)
	}
	return out
}

// outboxEvent is one event waiting in the outbox, for one recipient.
type outboxEvent struct {
	Recipient string
	Payload   map[string]any
}

// webhookEvents returns the outbox events of one type, each payload checked
// against the event's schema in openapi.yaml's webhooks section.
func (a *api) webhookEvents(eventType string) []outboxEvent {
	a.t.Helper()
	var rows []struct{ RecipientID, Payload string }
	if err := a.svc.db.Raw(`SELECT recipient_id::text AS recipient_id, payload::text AS payload FROM webhook_outbox
		WHERE event_type = ? ORDER BY created_at, id`, eventType).Scan(&rows).Error; err != nil {
		a.t.Fatal(err)
	}
	item := specDoc(a.t).Webhooks[eventType]
	if item == nil || item.Post == nil || item.Post.RequestBody == nil {
		a.t.Fatalf("openapi.yaml's webhooks section has no %s", eventType)
	}
	schema := item.Post.RequestBody.Value.Content.Get("application/json").Schema.Value
	out := make([]outboxEvent, 0, len(rows))
	for _, r := range rows {
		var v any
		if err := json.Unmarshal([]byte(r.Payload), &v); err != nil {
			a.t.Fatal(err)
		}
		if err := schema.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
			a.t.Errorf("%s payload does not match openapi.yaml: %v\n%s", eventType, err, r.Payload)
		}
		out = append(out, outboxEvent{Recipient: r.RecipientID, Payload: v.(map[string]any)})
	}
	return out
}

func hourlyContract(f fixtures) map[string]any {
	body := contractBody(f)
	body["duration"] = nil
	body["reward"] = map[string]any{"join_bonus": 0, "vesting": nil, "points_per_period": 10, "period": "PT1H", "max_periods": nil}
	return body
}

// TestRestrictedWindowNeverEarnsEvenWhenTheWorkerRunsLate: the member
// restricted processing for three and a half hours of a ten-and-a-half-hour
// consent and the worker ran only at the end. The periods that overlap the
// restriction are skipped, those wholly before and after it are paid, on
// the grid anchored at the join; a second run pays nothing more, and quid
// verify finds every rule holding.
func TestRestrictedWindowNeverEarnsEvenWhenTheWorkerRunsLate(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	id := a.publishContract(f, hourlyContract(f))
	a.enrol(f.member)
	ex := a.joinContract(f.member, id)["id"].(string)
	a.restrict(f.member, true)
	if st := a.restrict(f.member, false); st["restricted"] != false || len(st["periods"].([]any)) != 1 {
		t.Fatalf("after lifting: %v", st)
	}

	// Back in time: joined 10h30m ago, restricted from 2h30m to 6h after the join.
	const ago = "10 hours 30 minutes"
	if err := a.svc.db.Exec(`UPDATE exchanges SET joined_at = joined_at - CAST(? AS interval),
		next_period_end = next_period_end - CAST(? AS interval) WHERE id = ?`, ago, ago, ex).Error; err != nil {
		t.Fatal(err)
	}
	var joined time.Time
	if err := a.svc.db.Raw(`SELECT joined_at FROM exchanges WHERE id = ?`, ex).Scan(&joined).Error; err != nil {
		t.Fatal(err)
	}
	from, until := joined.Add(150*time.Minute), joined.Add(6*time.Hour)
	if err := a.svc.db.Exec(`UPDATE member_restrictions SET started_at = ?, ended_at = ? WHERE member_id = 'alice'`, from, until).Error; err != nil {
		t.Fatal(err)
	}

	r := a.accrueNow()
	var got []int
	for _, c := range a.creditsOf(ex) {
		k := int(c.Start.Sub(joined) / time.Hour)
		if !c.Start.Equal(joined.Add(time.Duration(k)*time.Hour)) || !c.End.Equal(c.Start.Add(time.Hour)) {
			t.Fatalf("credit [%s, %s) is off the hourly grid anchored at %s", c.Start, c.End, joined)
		}
		if c.Start.Before(until) && c.End.After(from) {
			t.Errorf("period %d [%s, %s) overlaps the restriction [%s, %s) and was paid", k, c.Start, c.End, from, until)
		}
		got = append(got, k)
	}
	if want := []int{0, 1, 6, 7, 8, 9}; fmt.Sprint(got) != fmt.Sprint(want) || r.Credits != len(want) {
		t.Fatalf("periods paid %v (%d credits), want %v: before the restriction and every whole period after it", got, r.Credits, want)
	}
	if again := a.accrueNow(); again.Credits != 0 {
		t.Fatalf("a second run paid %d more", again.Credits)
	}
	v := expect(t, a.do(req{Method: "GET", Path: "/v1/me/exchanges/" + ex, Token: f.member}), 200).json(t)
	if v["status"] != "active" || v["points_earned"] != float64(60) {
		t.Fatalf("the exchange: status %v, earned %v; want active with 60 points", v["status"], v["points_earned"])
	}
	var counters struct{ CreditedPeriods, SkippedPeriods int }
	if err := a.svc.db.Raw(`SELECT credited_periods, skipped_periods FROM exchanges WHERE id = ?`, ex).Scan(&counters).Error; err != nil {
		t.Fatal(err)
	}
	if counters.CreditedPeriods != 6 || counters.SkippedPeriods != 4 {
		t.Fatalf("counters %+v, want 6 credited and 4 skipped", counters)
	}
	// Backdating moved joined_at away from the join's consent event, which
	// quid verify notices; the rules about credits must all hold.
	rep, _ := verifyJSONReport(t, a.cfg.DatabaseURL)
	for _, r := range rep.Rules {
		switch r.ID {
		case app.RuleCreditOutsideRestriction.ID, app.RuleCreditInsideConsent.ID, app.RuleOneCreditPerPeriod.ID, app.RuleBalanceEqualsEntries.ID:
			if !r.Passed {
				t.Errorf("quid verify fails %s: %+v", r.ID, r)
			}
		}
	}
}

// TestLiftingARestrictionRestoresEarningForLaterWholePeriods runs on the
// real clock with one-second periods: nothing is paid while restricted,
// however long the worker waits, and after lifting every whole period that
// starts after the lift is paid again.
func TestLiftingARestrictionRestoresEarningForLaterWholePeriods(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	body := hourlyContract(f)
	body["reward"].(map[string]any)["period"] = "PT1S"
	id := a.publishContract(f, body)
	a.enrol(f.member)
	ex := a.joinContract(f.member, id)["id"].(string)
	st := a.restrict(f.member, true)
	if st["restricted"] != true || st["since"] == nil {
		t.Fatalf("restricting: %v", st)
	}
	if me := expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: f.member}), 200).json(t); me["restricted"] != true {
		t.Fatalf("GET /v1/me does not show the restriction: %v", me)
	}
	time.Sleep(2500 * time.Millisecond)
	a.accrueNow()
	st = a.restrict(f.member, false)
	time.Sleep(2500 * time.Millisecond)
	a.accrueNow()

	period := st["periods"].([]any)[0].(map[string]any)
	from, _ := time.Parse(time.RFC3339Nano, period["from"].(string))
	until, _ := time.Parse(time.RFC3339Nano, period["until"].(string))
	credits := a.creditsOf(ex)
	if len(credits) == 0 {
		t.Fatal("nothing was paid after the restriction was lifted")
	}
	for _, c := range credits {
		if c.Start.Before(until) && c.End.After(from) {
			t.Errorf("period [%s, %s) overlaps the restriction [%s, %s) and was paid", c.Start, c.End, from, until)
		}
	}
	// Every whole period after the lift that has ended is paid.
	last := credits[len(credits)-1]
	if time.Since(last.End) > 1500*time.Millisecond {
		t.Errorf("the last credit ended at %s; later whole periods were not paid", last.End)
	}
	if me := expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: f.member}), 200).json(t); me["restricted"] != false {
		t.Fatalf("GET /v1/me still shows a restriction: %v", me)
	}
}

// TestRestrictionRefusesPartnerReadsLogsTheAttemptAndTellsRecipients: while
// restricted, a partner that consent grants data gets 403
// processing-restricted and no data, the member sees the refused attempt in
// their access log, a partner without a grant still gets no-consent, the
// exchange stays active, and every recipient with an active grant gets
// member.restricted and then member.restriction_lifted; lifting lets the
// same read through again.
func TestRestrictionRefusesPartnerReadsLogsTheAttemptAndTellsRecipients(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	id := a.publishContract(f, contractBody(f))
	a.enrol(f.member)
	ex := a.joinContract(f.member, id)["id"].(string)
	read := func(tok string) response {
		return a.do(req{Method: "GET", Path: "/v1/partner/members/alice/data?purpose=loyalty.personalised_offers", Token: tok})
	}
	expect(t, read(f.partner), 200)

	a.restrict(f.member, true)
	if again := a.restrict(f.member, true); len(again["periods"].([]any)) != 1 {
		t.Fatalf("restricting twice opened another period: %v", again)
	}
	expectProblem(t, read(f.partner), 403, "processing-restricted")
	expectProblem(t, read(token(t, app.RolePartner, f.adCo)), 403, "no-consent")
	if v := expect(t, a.do(req{Method: "GET", Path: "/v1/me/exchanges/" + ex, Token: f.member}), 200).json(t); v["status"] != "active" {
		t.Fatalf("restriction ended the exchange: %v", v["status"])
	}
	log := expect(t, a.do(req{Method: "GET", Path: "/v1/me/access-log", Token: f.member}), 200).json(t)["items"].([]any)
	latest := log[0].(map[string]any)
	if latest["refused"] != "processing-restricted" || len(latest["categories"].([]any)) != 0 || latest["accessor_id"] != f.partnerCo {
		t.Fatalf("the refused read is not in the member's access log as refused: %v", latest)
	}

	a.restrict(f.member, false)
	got := expect(t, read(f.partner), 200).json(t)
	if got["attributes"].(map[string]any)["location.city"] != "Oslo" {
		t.Fatalf("after lifting: %v", got)
	}

	for _, event := range []string{"member.restricted", "member.restriction_lifted"} {
		var told []string
		for _, e := range a.webhookEvents(event) {
			data := e.Payload["data"].(map[string]any)
			if data["member_id"] != "alice" || fmt.Sprint(data["exchanges"]) != fmt.Sprint([]any{ex}) {
				t.Errorf("%s payload: %v", event, e.Payload)
			}
			told = append(told, e.Recipient)
		}
		sort.Strings(told)
		want := []string{f.brand, f.partnerCo}
		sort.Strings(want)
		if fmt.Sprint(told) != fmt.Sprint(want) {
			t.Errorf("%s went to %v, want every recipient the active exchange grants data to: %v", event, told, want)
		}
	}
}

// expectProblem checks a problem's status and code.
func expectProblem(t *testing.T, r response, status int, code string) {
	t.Helper()
	expect(t, r, status)
	if got := problemCode(t, r); got != code {
		t.Fatalf("problem code %q, want %q: %s", got, code, r.Body)
	}
}
