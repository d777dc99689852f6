package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
)

// Fair joins (issue 11; DESIGN rules 9 and 10, Global Privacy Control).

// joinableProfile holds every attribute the standard test contracts share
// (contractBody), with an adult's birthdate: fixtures that are about
// something else enrol with it so that their joins pass rules 9 and 10.
func joinableProfile() map[string]any {
	return map[string]any{"location.city": "Oslo", "commerce.purchase_history": []string{"espresso"},
		"demographic.birthdate": "1990-05-01"}
}

// bornYearsAgo is a birthdate that makes its holder years old (and a
// month) today, whatever the time zone.
func bornYearsAgo(years int) string {
	return time.Now().UTC().AddDate(-years, -1, 0).Format(time.DateOnly)
}

// enrolWith enrols the member holding token tok with exactly attrs.
func (a *api) enrolWith(tok string, attrs map[string]any) {
	a.t.Helper()
	r := a.do(req{Method: "PUT", Path: "/v1/me", Token: tok, Body: map[string]any{"attributes": attrs}})
	if r.Status != 200 && r.Status != 201 {
		a.t.Fatalf("enrol: %d %s", r.Status, r.Body)
	}
}

func (a *api) tryJoin(tok, contractID string, headers map[string]string, extra map[string]any) response {
	a.t.Helper()
	body := map[string]any{"contract_id": contractID}
	for k, v := range extra {
		body[k] = v
	}
	return a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: tok, Body: body, Headers: headers})
}

type problemBody struct {
	Code        string
	Detail      string
	ExchangeIDs []string `json:"exchange_ids"`
	Errors      []struct{ Pointer, Detail string }
}

func problemOf(t *testing.T, r response) problemBody {
	t.Helper()
	var p problemBody
	r.decode(t, &p)
	return p
}

// oneItemContract shares category for purpose with the given recipients.
func oneItemContract(category, purpose string, recipients []string, minAge any) map[string]any {
	body := map[string]any{
		"title": "One item", "summary": "One item.",
		"items":          []any{map[string]any{"category": category, "purpose": purpose, "recipients": recipients}},
		"retention":      "P30D",
		"reward":         map[string]any{"join_bonus": 10},
		"value_estimate": map[string]any{"amount": "4.80", "currency": "EUR", "per": "P1Y"},
		"value_method":   "revenue_attributable", "value_explanation": "Revenue per member and year.",
	}
	if minAge != nil {
		body["min_age"] = minAge
	}
	return body
}

func TestMemberWithAnEmptyProfileCannotJoinAndLearnsEveryMissingCategory(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	id := a.publishContract(f, contractBody(f))
	a.enrolWith(f.member, map[string]any{})
	var r response
	a.unchangedBy("a join with an empty profile", func() { r = a.tryJoin(f.member, id, nil, nil) })
	expect(t, r, 422)
	var pointers []string
	for _, e := range problemOf(t, r).Errors {
		pointers = append(pointers, e.Pointer)
	}
	sort.Strings(pointers)
	// demographic.age_over_18 is derived: its source is what must be held,
	// and the age rule's own need of it is not reported twice.
	want := []string{"/attributes/commerce.purchase_history", "/attributes/demographic.birthdate", "/attributes/location.city"}
	if !slices.Equal(pointers, want) {
		t.Fatalf("pointers %v, want %v: %s", pointers, want, r.Body)
	}
	// The member asked for a birthdate learns which shared fact needs it.
	for _, e := range problemOf(t, r).Errors {
		if e.Pointer == "/attributes/demographic.birthdate" && !strings.Contains(e.Detail, "demographic.age_over_18, computed from demographic.birthdate") {
			t.Errorf("birthdate asked for without naming the derived fact shared: %q", e.Detail)
		}
	}
	// Only part of the data: only the rest is missing.
	a.enrolWith(f.member, map[string]any{"location.city": "Oslo", "demographic.birthdate": "1990-05-01"})
	r = a.tryJoin(f.member, id, nil, nil)
	expect(t, r, 422)
	if errs := problemOf(t, r).Errors; len(errs) != 1 || errs[0].Pointer != "/attributes/commerce.purchase_history" {
		t.Fatalf("errors %+v, want only commerce.purchase_history", errs)
	}
	a.enrolWith(f.member, map[string]any{"commerce.purchase_history": []string{"espresso"}})
	a.joinContract(f.member, id)
}

func TestSharedAttributeCannotBeRemovedWhileActiveButCanBeCorrected(t *testing.T) {
	t.Parallel()
	a, f, _, ex := withJoinedMember(t)
	exID := ex["id"].(string)
	put := func(attrs map[string]any) response {
		return a.do(req{Method: "PUT", Path: "/v1/me", Token: f.member, Body: map[string]any{"attributes": attrs}})
	}
	for _, key := range []string{"location.city", "demographic.birthdate"} { // shared, and source of the shared age_over_18
		var r response
		a.unchangedBy("removing "+key, func() { r = put(map[string]any{key: nil, "contact.email": "new@example.com"}) })
		expect(t, r, 409)
		p := problemOf(t, r)
		if p.Code != "attribute-shared" || !slices.Equal(p.ExchangeIDs, []string{exID}) || !strings.Contains(p.Detail, key) {
			t.Fatalf("removing %s: %s", key, r.Body)
		}
	}
	// Rectification: a new value is fine.
	me := expect(t, put(map[string]any{"location.city": "Bergen", "demographic.birthdate": "1991-02-03"}), 200).json(t)
	if me["attributes"].(map[string]any)["location.city"] != "Bergen" {
		t.Fatalf("city not corrected: %v", me["attributes"])
	}
	// An attribute no active exchange shares can be removed.
	expect(t, put(map[string]any{"contact.email": nil}), 200)
	// Once the exchange is cancelled, the shared one can go too.
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + exID, Token: f.member}), 200)
	expect(t, put(map[string]any{"location.city": nil}), 200)
}

// Rule 10 holds for the whole exchange, not just at the join: a birthdate
// corrected to an age the active exchange's rule does not admit is refused
// like a removal, writing nothing; a correction that keeps the rule met is
// rectification.
// putProfile sends PUT /v1/me with attrs as the member holding tok.
func (a *api) putProfile(tok string, attrs map[string]any) response {
	a.t.Helper()
	return a.do(req{Method: "PUT", Path: "/v1/me", Token: tok, Body: map[string]any{"attributes": attrs}})
}

// endedBy is the ended_exchanges list of a PUT /v1/me answer.
func endedBy(t *testing.T, r response) []string {
	t.Helper()
	var body struct {
		Ended *[]string `json:"ended_exchanges"`
	}
	r.decode(t, &body)
	if body.Ended == nil {
		t.Fatalf("PUT /v1/me answered without ended_exchanges: %s", r.Body)
	}
	return *body.Ended
}

// consentEndings lists the export's ending consent events as
// "<exchange> <kind> by <actor>".
func (a *api) consentEndings(tok string) []string {
	a.t.Helper()
	export := expect(a.t, a.do(req{Method: "GET", Path: "/v1/me/export", Token: tok}), 200).json(a.t)
	var out []string
	for _, e := range export["consent_log"].([]any) {
		e := e.(map[string]any)
		if e["kind"] != "joined" {
			out = append(out, fmt.Sprintf("%s %s by %s", e["exchange_id"], e["kind"], e["actor"]))
		}
	}
	return out
}

// TestBirthdateCorrectedBelowAnAgeRuleIsAcceptedAndEndsTheExchange: a member
// in a third-party contract (16 or older) who tells Quid they are really
// 15 is not refused (GDPR Art. 16). In the same transaction the exchange
// ends as cancelled by the actor age_rule with a member cancel's effects:
// the pending bonus is voided, no later period will be paid, the partner
// can no longer read the data, and every recipient gets exchange.cancelled
// and owes deletion.
func TestBirthdateCorrectedBelowAnAgeRuleIsAcceptedAndEndsTheExchange(t *testing.T) {
	t.Parallel()
	a, f, _, ex := withJoinedMember(t) // shares with a third party: 16 or older
	exID := ex["id"].(string)
	read := func() response {
		return a.do(req{Method: "GET", Path: "/v1/partner/members/alice/data?purpose=loyalty.personalised_offers", Token: f.partner})
	}
	expect(t, read(), 200)

	r := expect(t, a.putProfile(f.member, map[string]any{"demographic.birthdate": bornYearsAgo(15)}), 200)
	if ended := endedBy(t, r); !slices.Equal(ended, []string{exID}) {
		t.Fatalf("ended_exchanges %v, want [%s]", ended, exID)
	}
	if born := r.json(t)["attributes"].(map[string]any)["demographic.birthdate"]; born != bornYearsAgo(15) {
		t.Fatalf("the corrected birthdate was not stored: %v", born)
	}
	got := expect(t, a.do(req{Method: "GET", Path: "/v1/me/exchanges/" + exID, Token: f.member}), 200).json(t)
	if got["status"] != "cancelled" || got["bonus"].(map[string]any)["state"] != "voided" {
		t.Fatalf("the exchange after the correction: status %v, bonus %v; want cancelled with the bonus voided", got["status"], got["bonus"])
	}
	if want := []string{exID + " cancelled by age_rule"}; !slices.Equal(a.consentEndings(f.member), want) {
		t.Fatalf("consent log endings %v, want %v", a.consentEndings(f.member), want)
	}
	if me := expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: f.member}), 200).json(t); me["balance"].(map[string]any)["pending"] != float64(0) {
		t.Errorf("pending balance %v: want 0, the bonus voided", me["balance"])
	}
	var unpaid bool
	if err := a.svc.db.Raw(`SELECT next_period_end IS NULL FROM exchanges WHERE id = ?`, exID).Scan(&unpaid).Error; err != nil || !unpaid {
		t.Errorf("a later period is still due (%v)", err)
	}
	expect(t, read(), 403)
	var told []string
	for _, e := range a.webhookEvents("exchange.cancelled") {
		if e.Payload["data"].(map[string]any)["exchange_id"] == exID {
			told = append(told, e.Recipient)
		}
	}
	want := []string{f.brand, f.partnerCo}
	sort.Strings(told)
	sort.Strings(want)
	if !slices.Equal(told, want) {
		t.Errorf("exchange.cancelled went to %v, want %v", told, want)
	}
	var owed int
	if err := a.svc.db.Raw(`SELECT count(*) FROM deletion_acks WHERE exchange_id = ? AND recipient_id = ?`, exID, f.partnerCo).
		Scan(&owed).Error; err != nil || owed != 1 {
		t.Errorf("the partner's deletion duty: %d (%v), want 1", owed, err)
	}
	t.Log(mustVerify(t, a.cfg.DatabaseURL))
}

// TestBirthdateCorrectionEndsOnlyTheExchangesWhoseAgeRuleFails: a member in
// a third-party contract (16) and a first-party one with min_age 18 who
// corrects their age to 17 keeps the first and loses the second; a further
// correction that keeps 16 met ends nothing.
func TestBirthdateCorrectionEndsOnlyTheExchangesWhoseAgeRuleFails(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	thirdParty := a.publishContract(f, oneItemContract("location.city", "loyalty.personalised_offers", []string{f.brand, f.partnerCo}, nil))
	adultsOnly := a.publishContract(f, oneItemContract("location.city", "loyalty.programme_operation", []string{f.brand}, 18))
	a.enrolWith(f.member, map[string]any{"location.city": "Oslo", "demographic.birthdate": bornYearsAgo(30)})
	kept := a.joinContract(f.member, thirdParty)["id"].(string)
	ended := a.joinContract(f.member, adultsOnly)["id"].(string)

	r := expect(t, a.putProfile(f.member, map[string]any{"demographic.birthdate": bornYearsAgo(17)}), 200)
	if got := endedBy(t, r); !slices.Equal(got, []string{ended}) {
		t.Fatalf("correcting to 17 ended %v, want only the min_age 18 exchange %s", got, ended)
	}
	for id, status := range map[string]string{kept: "active", ended: "cancelled"} {
		if v := expect(t, a.do(req{Method: "GET", Path: "/v1/me/exchanges/" + id, Token: f.member}), 200).json(t); v["status"] != status {
			t.Errorf("exchange %s is %v, want %s", id, v["status"], status)
		}
	}
	before := len(a.webhookEvents("exchange.cancelled"))
	r = expect(t, a.putProfile(f.member, map[string]any{"demographic.birthdate": bornYearsAgo(16)}), 200)
	if got := endedBy(t, r); len(got) != 0 {
		t.Fatalf("a correction that keeps 16 met ended %v", got)
	}
	if v := expect(t, a.do(req{Method: "GET", Path: "/v1/me/exchanges/" + kept, Token: f.member}), 200).json(t); v["status"] != "active" {
		t.Errorf("the third-party exchange is %v after a correction that keeps its rule met", v["status"])
	}
	if after := len(a.webhookEvents("exchange.cancelled")); after != before {
		t.Errorf("a correction that ends nothing sent %d exchange.cancelled", after-before)
	}
	// Any other change answers an empty list too.
	if got := endedBy(t, expect(t, a.putProfile(f.member, map[string]any{"location.city": "Bergen"}), 200)); len(got) != 0 {
		t.Fatalf("a city change ended %v", got)
	}
}

// TestBirthdateRemovalWhileAnAgeRuleNeedsItIsRefusedWritingNothing: the
// birthdate is not shared, but a third-party contract's age rule needs it;
// removing it (null) is 409 age-rule-shared naming the exchange, writing
// nothing; after the member cancels, it can be removed.
func TestBirthdateRemovalWhileAnAgeRuleNeedsItIsRefusedWritingNothing(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	id := a.publishContract(f, oneItemContract("location.city", "loyalty.personalised_offers", []string{f.brand, f.partnerCo}, nil))
	a.enrolWith(f.member, map[string]any{"location.city": "Oslo", "demographic.birthdate": bornYearsAgo(30)})
	exID := a.joinContract(f.member, id)["id"].(string)
	var r response
	a.unchangedBy("removing the birthdate an age rule needs", func() {
		r = a.putProfile(f.member, map[string]any{"demographic.birthdate": nil})
	})
	expect(t, r, 409)
	if p := problemOf(t, r); p.Code != "age-rule-shared" || !slices.Equal(p.ExchangeIDs, []string{exID}) {
		t.Fatalf("removal: %s", r.Body)
	}
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + exID, Token: f.member}), 200)
	expect(t, a.putProfile(f.member, map[string]any{"demographic.birthdate": nil}), 200)
}

func TestChildCannotJoinThirdPartyOrAdvertisingContracts(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	thirdParty := a.publishContract(f, oneItemContract("location.city", "loyalty.personalised_offers", []string{f.brand, f.partnerCo}, nil))
	firstPartyAds := a.publishContract(f, oneItemContract("location.city", "advertising.first_party", []string{f.brand}, nil))
	firstParty := a.publishContract(f, oneItemContract("location.city", "loyalty.programme_operation", []string{f.brand}, nil))
	firstParty18 := a.publishContract(f, oneItemContract("location.city", "loyalty.programme_operation", []string{f.brand}, 18))
	thirdParty18 := a.publishContract(f, oneItemContract("location.city", "loyalty.personalised_offers", []string{f.partnerCo}, 18))

	member := func(sub string, born string) string {
		tok := token(t, app.RoleMember, sub)
		attrs := map[string]any{"location.city": "Oslo"}
		if born != "" {
			attrs["demographic.birthdate"] = born
		}
		a.enrolWith(tok, attrs)
		return tok
	}
	child := member("child11", bornYearsAgo(11))
	unknown := member("noage", "")
	teen := member("teen17", bornYearsAgo(17))
	young := member("teen15", bornYearsAgo(15))

	var r response
	a.unchangedBy("an 11-year-old joining a third-party contract", func() { r = a.tryJoin(child, thirdParty, nil, nil) })
	expect(t, r, 403)
	if p := problemOf(t, r); p.Code != "under-minimum-age" || !strings.Contains(p.Detail, "16") {
		t.Fatalf("child: %s", r.Body)
	}
	a.unchangedBy("a member of unknown age joining a third-party contract", func() { r = a.tryJoin(unknown, thirdParty, nil, nil) })
	problemAt(t, r, 422, "/attributes/demographic.birthdate")

	cases := []struct {
		name, tok, contract string
		status              int
	}{
		{"15 for first-party advertising", young, firstPartyAds, 403},
		{"unknown age for first-party advertising", unknown, firstPartyAds, 422},
		{"17 for third party", teen, thirdParty, 201},
		{"11 for first party without min_age", child, firstParty, 201},
		{"unknown age for first party without min_age", unknown, firstParty, 201},
		{"17 for first party with min_age 18", teen, firstParty18, 403},
		{"unknown age for first party with min_age 18", unknown, firstParty18, 422},
		{"17 for third party with min_age 18", teen, thirdParty18, 403},
	}
	for _, c := range cases {
		if r := a.tryJoin(c.tok, c.contract, nil, nil); r.Status != c.status {
			t.Errorf("%s: %d, want %d: %s", c.name, r.Status, c.status, r.Body)
		}
	}
}

// TestEveryAdvertisingPurposeCarriesTheAgeFloorAndTheGPCRule runs over the
// whole kind: every purpose the catalogue flags as advertising, whatever
// its key, in a contract shared with the brand alone, needs the member aged
// 16 (the offer, the contract and the statement say so) and an affirmation
// under GPC; a first-party contract for a purpose that is not advertising
// needs neither.
func TestEveryAdvertisingPurposeCarriesTheAgeFloorAndTheGPCRule(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	var purposes struct {
		Items []struct {
			Key         string
			Advertising bool
		}
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/catalog/purposes"}), 200).decode(t, &purposes)
	var ads []string
	for _, p := range purposes.Items {
		if p.Advertising {
			ads = append(ads, p.Key)
		}
	}
	if !slices.Contains(ads, "loyalty.personalised_offers") || !slices.Contains(ads, "advertising.first_party") {
		t.Fatalf("advertising purposes %v", ads)
	}
	young := token(t, app.RoleMember, "teen15")
	a.enrolWith(young, map[string]any{"location.city": "Oslo", "demographic.birthdate": bornYearsAgo(15)})
	adult := token(t, app.RoleMember, "adult")
	a.enrolWith(adult, map[string]any{"location.city": "Oslo", "demographic.birthdate": bornYearsAgo(30)})
	gpc := map[string]string{"Sec-GPC": "1"}
	requiredAge := func(id string) any {
		c := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id}), 200).json(t)
		offers := expect(t, a.do(req{Method: "GET", Path: "/v1/offers?limit=100", Token: adult}), 200).json(t)["items"].([]any)
		for _, o := range offers {
			if o := o.(map[string]any); o["id"] == id && o["required_age"] != c["required_age"] {
				t.Errorf("%s: offer says required_age %v, contract %v", id, o["required_age"], c["required_age"])
			}
		}
		return c["required_age"]
	}
	for _, purpose := range ads {
		id := a.publishContract(f, oneItemContract("location.city", purpose, []string{f.brand}, nil))
		if got := requiredAge(id); got != float64(16) {
			t.Errorf("%s: required_age %v, want 16", purpose, got)
		}
		var st struct {
			AgeRule struct {
				MinAge *int `json:"min_age"`
			} `json:"age_rule"`
		}
		expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/transparency"}), 200).decode(t, &st)
		if st.AgeRule.MinAge == nil || *st.AgeRule.MinAge != 16 {
			t.Errorf("%s: statement age rule %v, want 16", purpose, st.AgeRule.MinAge)
		}
		var r response
		a.unchangedBy(purpose+": a 15-year-old joining", func() { r = a.tryJoin(young, id, nil, nil) })
		if r.Status != 403 || problemOf(t, r).Code != "under-minimum-age" {
			t.Errorf("%s: 15-year-old joined: %d %s", purpose, r.Status, r.Body)
		}
		a.unchangedBy(purpose+": a join under GPC without affirmation", func() { r = a.tryJoin(adult, id, gpc, nil) })
		if r.Status != 409 || problemOf(t, r).Code != "gpc-conflict" {
			t.Errorf("%s: GPC join without affirmation: %d %s", purpose, r.Status, r.Body)
		}
		expect(t, a.tryJoin(adult, id, gpc, map[string]any{"affirm_despite_gpc": true}), 201)
	}
	plain := a.publishContract(f, oneItemContract("location.city", "loyalty.programme_operation", []string{f.brand}, nil))
	if got := requiredAge(plain); got != nil {
		t.Errorf("first-party, not advertising: required_age %v, want null", got)
	}
	expect(t, a.tryJoin(young, plain, gpc, nil), 201)
}

// TestNoChildIsPaidForMarketingProfilingOrSensitiveData runs over the
// whole kind the age floor covers beyond third parties and advertising:
// every purpose the catalogue flags as direct marketing or as profiling,
// and every sensitive category, each in a contract shared with the brand
// alone, needs the member aged 16 (GDPR Recital 38); none of them asks a
// GPC affirmation unless it is advertising. A plain first-party contract
// stays open to any age. Every refusal names the field it is about.
func TestNoChildIsPaidForMarketingProfilingOrSensitiveData(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	var purposes struct {
		Items []struct {
			Key                 string
			Advertising         bool
			DirectMarketing     bool     `json:"direct_marketing"`
			AutomatedProcessing []string `json:"automated_processing"`
		}
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/catalog/purposes"}), 200).decode(t, &purposes)
	var cats struct {
		Items []struct {
			Key, Type, Example string
			Sensitive          bool
			Derived            any
		}
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/catalog/categories"}), 200).decode(t, &cats)
	type offer struct{ category, purpose string }
	var covered []offer
	for _, p := range purposes.Items {
		if p.DirectMarketing || slices.Contains(p.AutomatedProcessing, "dpv:Profiling") {
			covered = append(covered, offer{"location.city", p.Key})
		}
	}
	profile := map[string]any{"location.city": "Oslo"}
	for _, c := range cats.Items {
		if c.Sensitive && c.Derived == nil {
			covered = append(covered, offer{c.Key, "loyalty.programme_operation"})
			var v any
			if err := json.Unmarshal([]byte(c.Example), &v); err != nil {
				v = c.Example
			}
			profile[c.Key] = v
		}
	}
	if len(covered) < 8 {
		t.Fatalf("only %d covered offers: %v", len(covered), covered)
	}
	young := token(t, app.RoleMember, "teen15")
	youngProfile := map[string]any{"demographic.birthdate": bornYearsAgo(15)}
	adultProfile := map[string]any{"demographic.birthdate": bornYearsAgo(30)}
	for k, v := range profile {
		youngProfile[k], adultProfile[k] = v, v
	}
	a.enrolWith(young, youngProfile)
	adult := token(t, app.RoleMember, "adult")
	a.enrolWith(adult, adultProfile)
	gpc := map[string]string{"Sec-GPC": "1"}
	for _, o := range covered {
		id := a.publishContract(f, oneItemContract(o.category, o.purpose, []string{f.brand}, nil))
		c := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id}), 200).json(t)
		if c["required_age"] != float64(16) {
			t.Errorf("%s for %s: required_age %v, want 16", o.category, o.purpose, c["required_age"])
		}
		var r response
		a.unchangedBy(o.purpose+": a 15-year-old joining", func() { r = a.tryJoin(young, id, nil, nil) })
		if p := problemOf(t, r); r.Status != 403 || p.Code != "under-minimum-age" || len(p.Errors) != 1 || p.Errors[0].Pointer != "/attributes/demographic.birthdate" {
			t.Errorf("%s for %s, aged 15: %d %s", o.category, o.purpose, r.Status, r.Body)
		}
		advertising := false
		for _, p := range purposes.Items {
			advertising = advertising || p.Key == o.purpose && p.Advertising
		}
		if r := a.tryJoin(adult, id, gpc, nil); advertising != (r.Status == 409) || !advertising && r.Status != 201 {
			t.Errorf("%s for %s under GPC (advertising %v): %d %s", o.category, o.purpose, advertising, r.Status, r.Body)
		} else if advertising && problemOf(t, r).Errors[0].Pointer != "/affirm_despite_gpc" {
			t.Errorf("gpc-conflict names no field: %s", r.Body)
		}
	}
	plain := a.publishContract(f, oneItemContract("location.city", "loyalty.programme_operation", []string{f.brand}, nil))
	expect(t, a.tryJoin(young, plain, gpc, nil), 201)
	r := a.tryJoin(young, plain, nil, nil)
	if p := problemOf(t, r); r.Status != 409 || p.Code != "already-joined" || len(p.Errors) != 1 || p.Errors[0].Pointer != "/contract_id" {
		t.Errorf("joining twice: %d %s", r.Status, r.Body)
	}
}

// TestStatementListsEveryRightWithTheCallThatExercisesIt: issue 11 asks
// the statement (JSON and HTML) to describe every right; each names its
// basis and a call, and every call is a route the API serves (openapi.yaml).
func TestStatementListsEveryRightWithTheCallThatExercisesIt(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	id := a.publishContract(f, contractBody(f))
	var st struct {
		Rights []struct{ Key, Basis, Plain, Call string }
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/transparency"}), 200).decode(t, &st)
	want := []string{"withdraw", "access", "recipients", "rectification", "erasure", "restriction", "portability", "objection",
		"automated_decisions", "global_privacy_control", "renewal", "complaint"} // complaint: issue 12, GDPR Art. 77
	var got []string
	for _, r := range st.Rights {
		got = append(got, r.Key)
		if r.Basis == "" || r.Plain == "" || r.Call == "" {
			t.Errorf("right %s is not described: %+v", r.Key, r)
		}
		for _, call := range strings.Split(r.Call, ", ") {
			method, path, ok := strings.Cut(call, " ")
			if ok && strings.HasPrefix(path, "/v1/") && !specHasOperation(t, method, path) {
				t.Errorf("right %s names %s, which openapi.yaml does not serve", r.Key, call)
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("rights %v, want %v", got, want)
	}
	html := string(expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/transparency", Headers: map[string]string{"Accept": "text/html"}}), 200).Body)
	for _, w := range []string{"Your rights", "GDPR Art. 18", "PUT /v1/me/restriction", "GDPR Art. 21", "Global Privacy Control", "GET /v1/me/export", "DELETE /v1/me"} {
		if !strings.Contains(html, w) {
			t.Errorf("HTML statement lacks %q", w)
		}
	}
}

// specHasOperation tells whether openapi.yaml declares method on path.
func specHasOperation(t *testing.T, method, path string) bool {
	t.Helper()
	item := specDoc(t).Paths.Find(path)
	return item != nil && item.GetOperation(method) != nil
}

func TestStatementShowsTheAgeRuleAndTheRightToObject(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	thirdParty := a.publishContract(f, contractBody(f))
	firstParty := a.publishContract(f, oneItemContract("location.city", "loyalty.programme_operation", []string{f.brand}, nil))
	firstParty18 := a.publishContract(f, oneItemContract("location.city", "loyalty.programme_operation", []string{f.brand}, 18))
	var st struct {
		AgeRule struct {
			MinAge *int `json:"min_age"`
			Plain  string
		} `json:"age_rule"`
		Items []struct {
			Purpose struct {
				Key                 string
				DirectMarketing     bool     `json:"direct_marketing"`
				AutomatedProcessing []string `json:"automated_processing"`
				Rights              []string
			}
		}
		Terms json.RawMessage
	}
	for id, want := range map[string]int{thirdParty: 16, firstParty: 0, firstParty18: 18} {
		expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/transparency"}), 200).decode(t, &st)
		got := 0
		if st.AgeRule.MinAge != nil {
			got = *st.AgeRule.MinAge
		}
		if got != want || st.AgeRule.Plain == "" {
			t.Errorf("age rule %+v, want min_age %d", st.AgeRule, want)
		}
		if hasMinAge := strings.Contains(string(st.Terms), `"min_age":`); hasMinAge != (id == firstParty18) {
			t.Errorf("canonical terms of the contract with min_age %d: %s", want, st.Terms)
		}
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + thirdParty + "/transparency"}), 200).decode(t, &st)
	if !strings.Contains(st.AgeRule.Plain, "16 or older") {
		t.Errorf("age rule in words: %q", st.AgeRule.Plain)
	}
	var personalised bool
	for _, it := range st.Items {
		if it.Purpose.Key == "loyalty.personalised_offers" {
			personalised = true
			words := strings.Join(it.Purpose.Rights, " ")
			if !it.Purpose.DirectMarketing || !strings.Contains(words, "object to it at any time") ||
				!slices.Contains(it.Purpose.AutomatedProcessing, "dpv:Profiling") || !strings.Contains(words, "profiling") {
				t.Errorf("personalised offers: %+v", it.Purpose)
			}
		}
	}
	if !personalised {
		t.Fatal("no personalised offers item")
	}
	html := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + thirdParty + "/transparency", Headers: map[string]string{"Accept": "text/html"}}), 200)
	for _, want := range []string{"Who may join", "aged 16 or older", "object to it at any time", "profiling"} {
		if !strings.Contains(string(html.Body), want) {
			t.Errorf("HTML statement lacks %q", want)
		}
	}
}

func TestMinAgeIsPartOfTheTermsAndTheirHash(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	hash := func(id string) string {
		return expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id}), 200).json(t)["terms_hash"].(string)
	}
	plain := a.publishContract(f, oneItemContract("location.city", "loyalty.programme_operation", []string{f.brand}, nil))
	aged := a.publishContract(f, oneItemContract("location.city", "loyalty.programme_operation", []string{f.brand}, 18))
	if hash(plain) == hash(aged) {
		t.Fatal("min_age does not change the terms hash")
	}
	c := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + aged}), 200).json(t)
	if c["min_age"] != float64(18) {
		t.Fatalf("min_age %v", c["min_age"])
	}
	problemAt(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer,
		Body: oneItemContract("location.city", "loyalty.programme_operation", []string{f.brand}, 0)}), 422, "/min_age")
}

func TestGPCWithoutAffirmationWritesNothingAndTheConsentLogRecordsIt(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	thirdParty := a.publishContract(f, contractBody(f))
	firstParty := a.publishContract(f, oneItemContract("location.city", "loyalty.programme_operation", []string{f.brand}, nil))
	a.enrol(f.member)
	gpc := map[string]string{"Sec-GPC": "1"}
	var r response
	a.unchangedBy("a join with GPC and no affirmation", func() {
		r = a.tryJoin(f.member, thirdParty, gpc, nil)
	})
	expect(t, r, 409)
	if p := problemOf(t, r); p.Code != "gpc-conflict" || !strings.Contains(p.Detail, "Global Privacy Control") {
		t.Fatalf("gpc conflict: %s", r.Body)
	}
	a.unchangedBy("a join with GPC and an explicit false", func() {
		r = a.tryJoin(f.member, thirdParty, gpc, map[string]any{"affirm_despite_gpc": false})
	})
	expect(t, r, 409)
	// A signal sent as a list, or after a "0", is still the signal.
	for _, v := range []string{"0, 1", "1,1", " 1 "} {
		a.unchangedBy("a join with Sec-GPC "+v+" and no affirmation", func() {
			r = a.tryJoin(f.member, thirdParty, map[string]string{"Sec-GPC": v}, nil)
		})
		expect(t, r, 409)
	}
	// The signal does not stand in the way of a first-party, non-advertising
	// contract.
	expect(t, a.tryJoin(f.member, firstParty, gpc, nil), 201)
	// Affirmed, with a key; a retry with the signal switched off is another
	// request.
	key := map[string]string{"Sec-GPC": "1", "Idempotency-Key": "gpc-join-1"}
	joined := expect(t, a.tryJoin(f.member, thirdParty, key, map[string]any{"affirm_despite_gpc": true}), 201).json(t)
	replay := a.tryJoin(f.member, thirdParty, key, map[string]any{"affirm_despite_gpc": true})
	if expect(t, replay, 201).json(t)["id"] != joined["id"] || replay.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %s", replay.Body)
	}
	problemAt(t, a.tryJoin(f.member, thirdParty, map[string]string{"Idempotency-Key": "gpc-join-1"},
		map[string]any{"affirm_despite_gpc": true}), 422, "/headers/Idempotency-Key")

	var export struct {
		ConsentLog []struct {
			ExchangeID string `json:"exchange_id"`
			Kind       string
			GPC        bool
		} `json:"consent_log"`
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/me/export", Token: f.member}), 200).decode(t, &export)
	seen := 0
	for _, e := range export.ConsentLog {
		if e.Kind == "joined" {
			seen++
			if !e.GPC {
				t.Errorf("joined event of %s does not record GPC", e.ExchangeID)
			}
		}
	}
	if seen != 2 {
		t.Fatalf("%d joined events, want 2: %+v", seen, export.ConsentLog)
	}
	// Without the signal, nothing is recorded.
	bob := token(t, app.RoleMember, "bob")
	a.enrol(bob)
	a.joinContract(bob, thirdParty)
	expect(t, a.do(req{Method: "GET", Path: "/v1/me/export", Token: bob}), 200).decode(t, &export)
	if len(export.ConsentLog) != 1 || export.ConsentLog[0].GPC {
		t.Fatalf("bob's log: %+v", export.ConsentLog)
	}
}

func TestGPCSupportResourceIsServed(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	var g map[string]any
	expect(t, a.do(req{Method: "GET", Path: "/.well-known/gpc.json"}), 200).decode(t, &g)
	if g["gpc"] != true {
		t.Fatalf("gpc.json: %v", g)
	}
	if _, err := time.Parse(time.DateOnly, g["lastUpdate"].(string)); err != nil {
		t.Fatalf("lastUpdate: %v", g["lastUpdate"])
	}
}

func TestCatalogueFlagsDirectMarketingProfilingAndNewAgeFacts(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	var purposes struct {
		Items []struct {
			Key                 string
			DirectMarketing     bool     `json:"direct_marketing"`
			AutomatedProcessing []string `json:"automated_processing"`
		}
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/catalog/purposes"}), 200).decode(t, &purposes)
	byKey := map[string]int{}
	for i, p := range purposes.Items {
		byKey[p.Key] = i
	}
	for _, key := range []string{"communications.newsletter", "communications.sms_marketing", "advertising.third_party"} {
		if !purposes.Items[byKey[key]].DirectMarketing {
			t.Errorf("%s is not flagged direct marketing", key)
		}
	}
	if purposes.Items[byKey["loyalty.programme_operation"]].DirectMarketing {
		t.Error("running the programme is flagged direct marketing")
	}
	if !slices.Contains(purposes.Items[byKey["security.fraud_prevention"]].AutomatedProcessing, "dpv:AutomatedDecisionMaking") {
		t.Error("fraud prevention is not flagged as automated decision-making")
	}
	var cats struct {
		Items []struct {
			Key     string
			Derived *struct{ From string }
		}
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/catalog/categories"}), 200).decode(t, &cats)
	found := 0
	for _, c := range cats.Items {
		if c.Key == "demographic.age_over_13" || c.Key == "demographic.age_over_16" {
			found++
			if c.Derived == nil || c.Derived.From != "demographic.birthdate" {
				t.Errorf("%s is not derived from the birthdate", c.Key)
			}
		}
	}
	if found != 2 {
		t.Fatalf("found %d of the two new age facts", found)
	}
}
