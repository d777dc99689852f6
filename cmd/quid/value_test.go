package main

import (
	"context"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/config"
)

// Issue 12, first stage: who answers for the data, what the data is worth,
// what the reward is worth.

// The programme identity is versioned: each PUT adds a version, GET (public)
// answers the current one, and a refused PUT writes nothing.
func TestProgrammeIdentityIsVersionedAndPublic(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures() // sets version 1
	var got struct {
		Version       int
		PointValue    struct{ Currency, Amount string } `json:"point_value"`
		Jurisdictions []string
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/programme"}), 200).decode(t, &got)
	if got.Version != 1 || got.PointValue.Currency != "EUR" || got.PointValue.Amount != "0.01" {
		t.Fatalf("current programme: %+v", got)
	}
	body := programmeBody("EUR", "0.0100")
	body["jurisdictions"] = []string{"US-CA", "NO"}
	expect(t, a.do(req{Method: "PUT", Path: "/v1/programme", Token: f.admin, Body: body}), 200).decode(t, &got)
	if got.Version != 2 || got.PointValue.Amount != "0.01" || len(got.Jurisdictions) != 2 || got.Jurisdictions[0] != "NO" {
		t.Fatalf("second version: %+v (want version 2, amount 0.01, jurisdictions sorted)", got)
	}
	for pointer, mutate := range map[string]func(map[string]any){
		"/point_value/currency": func(b map[string]any) { b["point_value"] = map[string]any{"currency": "EURO", "amount": "0.01"} },
		"/point_value/amount":   func(b map[string]any) { b["point_value"] = map[string]any{"currency": "EUR", "amount": "1e-2"} },
		"/jurisdictions/0":      func(b map[string]any) { b["jurisdictions"] = []string{"ZZ"} },
		"/contact_email":        func(b map[string]any) { b["contact_email"] = "not an address" },
		"/supervisory_authority/complaint_url": func(b map[string]any) {
			b["supervisory_authority"] = map[string]any{"name": "Datatilsynet", "complaint_url": "javascript:alert(1)"}
		},
	} {
		b := programmeBody("EUR", "0.01")
		mutate(b)
		a.unchangedBy(pointer, func() {
			problemAt(t, a.do(req{Method: "PUT", Path: "/v1/programme", Token: f.admin, Body: b}), 422, pointer)
		})
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/programme"}), 200).decode(t, &got)
	if got.Version != 2 {
		t.Fatalf("a refused PUT changed the version: %d", got.Version)
	}
}

// A draft without a value estimate, method and explanation is refused at
// publish, each missing field named, and stays a draft; one in another
// currency than the programme's points too.
func TestAContractWithoutAValueEstimateCannotBePublishedOverHTTP(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	body := contractBody(f)
	delete(body, "value_estimate")
	delete(body, "value_method")
	delete(body, "value_explanation")
	id := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: body}), 201).json(t)["id"].(string)
	var r response
	a.unchangedBy("publish without a value estimate", func() {
		r = a.do(req{Method: "POST", Path: "/v1/contracts/" + id + "/publish", Token: f.marketer})
	})
	for _, p := range []string{"/value_estimate", "/value_method", "/value_explanation"} {
		problemAt(t, r, 422, p)
	}
	bad := contractBody(f)
	bad["value_estimate"] = map[string]any{"amount": "4.80", "currency": "EUR", "per": "a year"}
	if p := problemOf(t, expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: bad}), 422)); len(p.Errors) != 1 || p.Errors[0].Pointer != "/value_estimate/per" {
		t.Fatalf("an unreadable per: %+v, want one error at /value_estimate/per", p.Errors)
	}
	usd := contractBody(f)
	usd["value_estimate"] = map[string]any{"amount": "4.80", "currency": "USD", "per": "P1Y"}
	problemAt(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: usd}), 422, "/value_estimate/currency")
	expect(t, a.do(req{Method: "PATCH", Path: "/v1/contracts/" + id, Token: f.marketer, Body: map[string]any{
		"value_estimate": map[string]any{"amount": "4.8", "currency": "EUR", "per": "P1Y"},
		"value_method":   "expenses_related", "value_explanation": "What running the offers costs per member and year."}}), 200)
	pub := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + id + "/publish", Token: f.marketer}), 200).json(t)
	if est := pub["value_estimate"].(map[string]any); est["amount"] != "4.80" || pub["programme_version"] != float64(1) {
		t.Fatalf("published: value_estimate %v, programme_version %v", pub["value_estimate"], pub["programme_version"])
	}
}

// Publishing before any programme identity is set names /programme.
func TestAContractCannotBePublishedBeforeTheProgrammeIdentityIsSet(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	g := b.fixturesWithoutProgramme()
	if p := problemOf(t, expect(t, b.do(req{Method: "GET", Path: "/v1/programme"}), 404)); p.Code != "programme-not-found" {
		t.Fatalf("GET /v1/programme before one is set: %+v", p)
	}
	id := expect(t, b.do(req{Method: "POST", Path: "/v1/contracts", Token: g.marketer, Body: contractBody(g)}), 201).json(t)["id"].(string)
	problemAt(t, b.do(req{Method: "POST", Path: "/v1/contracts/" + id + "/publish", Token: g.marketer}), 422, "/programme")
}

// The reward is shown in money wherever it is shown, exactly: 0.003 EUR a
// point makes 333 points 0.999 EUR, shown 1.00; JPY has no minor unit.
func TestTheRewardIsShownInMoneyExactlyForAwkwardPointValues(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	expect(t, a.do(req{Method: "PUT", Path: "/v1/programme", Token: f.admin, Body: programmeBody("EUR", "0.003")}), 200)
	body := contractBody(f)
	reward(body)["join_bonus"], reward(body)["points_per_period"], reward(body)["vesting"] = 333, 5, "PT0S"
	id := a.publishContract(f, body)
	want := map[string]any{"currency": "EUR", "point_value": "0.003", "join_bonus": "1.00", "per_period": "0.02", "max_total": "1.18"}
	check := func(where string, got any) {
		t.Helper()
		m, _ := got.(map[string]any)
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s: reward_value.%s = %v, want %v (all: %v)", where, k, m[k], v, m)
			}
		}
	}
	check("contract", expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id}), 200).json(t)["reward_value"])
	check("offers", expect(t, a.do(req{Method: "GET", Path: "/v1/offers"}), 200).json(t)["items"].([]any)[0].(map[string]any)["reward_value"])
	check("statement", expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/transparency"}), 200).json(t)["reward_value"])
	a.enrol(f.member)
	joined := a.joinContract(f.member, id)
	ex := joined["id"].(string)
	check("consent receipt", verifiedReceipt(t, a, joined["receipt"].(string))["reward_value"])
	check("exchange", expect(t, a.do(req{Method: "GET", Path: "/v1/me/exchanges/" + ex, Token: f.member}), 200).json(t)["reward_value"])
	check("exchange list", expect(t, a.do(req{Method: "GET", Path: "/v1/me/exchanges", Token: f.member}), 200).json(t)["items"].([]any)[0].(map[string]any)["reward_value"])

	// The published version keeps the point value it was published under;
	// a JPY programme values the next version in whole yen.
	jpy := programmeBody("JPY", "1.5")
	expect(t, a.do(req{Method: "PUT", Path: "/v1/programme", Token: f.admin, Body: jpy}), 200)
	check("contract after the programme changed", expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id}), 200).json(t)["reward_value"])
	body = contractBody(f)
	body["value_estimate"] = map[string]any{"amount": "700", "currency": "JPY", "per": "P1Y"}
	reward(body)["join_bonus"], reward(body)["points_per_period"], reward(body)["max_periods"] = 1000, 15, nil
	jid := a.publishContract(f, body)
	want = map[string]any{"currency": "JPY", "point_value": "1.5", "join_bonus": "1500", "per_period": "22", "max_total": "1770"}
	check("JPY contract", expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + jid}), 200).json(t)["reward_value"])
	problemAt(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: map[string]any{
		"title": "x", "items": body["items"], "retention": "P30D", "reward": map[string]any{"join_bonus": 1},
		"value_estimate": map[string]any{"amount": "700.5", "currency": "JPY", "per": "P1Y"}}}), 422, "/value_estimate/amount")
}

// The terms hash changes with the programme identity version and with the
// value estimate: the same terms published under another identity version,
// or with another estimate, hash differently.
func TestTermsHashChangesWithTheProgrammeVersionAndTheValueEstimateOverHTTP(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	hashOf := func(body map[string]any) string {
		id := a.publishContract(f, body)
		return expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id}), 200).json(t)["terms_hash"].(string)
	}
	h1 := hashOf(contractBody(f))
	if again := hashOf(contractBody(f)); again != h1 {
		t.Fatalf("the same terms under the same identity hash differently: %s %s", h1, again)
	}
	expect(t, a.do(req{Method: "PUT", Path: "/v1/programme", Token: f.admin, Body: programmeBody("EUR", "0.01")}), 200)
	if h2 := hashOf(contractBody(f)); h2 == h1 {
		t.Error("the same terms under programme version 2 hash as under version 1")
	}
	body := contractBody(f)
	body["value_estimate"] = map[string]any{"amount": "5.00", "currency": "EUR", "per": "P1Y"}
	h3 := hashOf(body)
	if h3 == h1 || h3 == hashOf(contractBody(f)) {
		t.Error("another value estimate does not change the hash")
	}
}

// A version published before programme identities existed has no point
// value of its own: its reward in money follows the programme's current
// one, and a reader on another replica (response cache TTL an hour) sees a
// new point value as soon as it is set.
func TestAnOlderVersionsMoneyFollowsTheCurrentPointValueOnEveryReplica(t *testing.T) {
	t.Parallel()
	a := newAPI(t, func(c *config.Config) { c.PublicCacheTTL = time.Hour })
	svcB, err := build(context.Background(), a.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svcB.close)
	b := &api{t: t, svc: svcB, cfg: a.cfg}
	a.svc.runWorkers(t)
	svcB.runWorkers(t)
	f := a.fixtures()
	id := a.publishContract(f, contractBody(f))
	// As stored before this change: no programme, no value keys (past the
	// guard that keeps published terms immutable, as history is).
	if err := a.svc.db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SET LOCAL session_replication_role = replica`).Error; err != nil {
			return err
		}
		return tx.Exec(`UPDATE contracts SET terms = terms - 'programme' - 'value_estimate' - 'value_method' - 'value_explanation' WHERE id = ?`, id).Error
	}); err != nil {
		t.Fatal(err)
	}
	// The update bypassed the triggers: let B's cache forget the published
	// offer through a write that notifies, then read it as stored now.
	expect(t, a.do(req{Method: "POST", Path: "/v1/recipients", Token: f.admin, Body: map[string]any{
		"name": "Other", "kind": "third_party", "country": "DK", "privacy_policy_url": "https://other.example/privacy"}}), 201)
	joinBonus := func() any {
		t.Helper()
		rv, _ := expect(t, b.do(req{Method: "GET", Path: "/v1/offers"}), 200).json(t)["items"].([]any)[0].(map[string]any)["reward_value"].(map[string]any)
		return rv["join_bonus"] // nil when the offer has no money value
	}
	deadline := time.Now().Add(10 * time.Second)
	for joinBonus() != "2.00" {
		if time.Now().After(deadline) {
			t.Fatalf("200 points at 0.01 EUR: %v", joinBonus())
		}
		time.Sleep(20 * time.Millisecond)
	}
	expect(t, a.do(req{Method: "PUT", Path: "/v1/programme", Token: f.admin, Body: programmeBody("EUR", "0.02")}), 200)
	for joinBonus() != "4.00" {
		if time.Now().After(deadline) {
			t.Fatalf("replica B still shows %v after the point value doubled", joinBonus())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every e-mail field takes only a bare address that reaches one mailbox:
// the programme's contact (a mailto: link in the statement and the notice),
// an address the DPO contact names, and a member's contact.email. An
// address with a mailto: query (a hidden Bcc:), a fragment, a display name
// or a space is refused; a plus tag, an apostrophe or an IDN is not.
func TestEveryEmailFieldTakesOnlyABareAddress(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	hostile := []string{"privacy@acme.example?bcc=harvest", "privacy@acme.example&bcc=harvest", "privacy?bcc=x@acme.example",
		"privacy@acme.example#x", "pri%3Fvacy@acme.example", "Privacy <privacy@acme.example>", "privacy@acme .example",
		"privacy@-acme.example", "privacy@acme_corp.example", "privacy@acme.example.", "privacy@acme", `"a b"@acme.example`}
	for _, addr := range hostile {
		b := programmeBody("EUR", "0.01")
		b["contact_email"] = addr
		a.unchangedBy("contact_email "+addr, func() {
			problemAt(t, a.do(req{Method: "PUT", Path: "/v1/programme", Token: f.admin, Body: b}), 422, "/contact_email")
		})
		b = programmeBody("EUR", "0.01")
		b["dpo_contact"] = "Data-protection officer, " + addr
		// In free text, an address is a word; a full stop after it ends the
		// sentence.
		if !strings.ContainsAny(addr, ` "<`) && !strings.HasSuffix(addr, ".") {
			a.unchangedBy("dpo_contact "+addr, func() {
				problemAt(t, a.do(req{Method: "PUT", Path: "/v1/programme", Token: f.admin, Body: b}), 422, "/dpo_contact")
			})
		}
		member := token(t, app.RoleMember, "mail-"+strconv.Itoa(len(addr)))
		a.unchangedBy("contact.email "+addr, func() {
			expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: member, Body: map[string]any{"attributes": map[string]any{"contact.email": addr}}}), 422)
		})
	}
	for _, addr := range []string{"first.last+tag@sub.acme.example", "o'brien@acme.example", "privacy@bücher.example"} {
		b := programmeBody("EUR", "0.01")
		b["contact_email"], b["dpo_contact"] = addr, "Jane Doe, data-protection officer ("+addr+")."
		expect(t, a.do(req{Method: "PUT", Path: "/v1/programme", Token: f.admin, Body: b}), 200)
	}
}

// jsonPointer is a pointer made of JSON names (lower case, digits and
// underscores, as every field of the API is spelled) and array indexes:
// never a Go field name such as Value.
var jsonPointer = regexp.MustCompile(`^(/([a-z][a-z0-9_.]*|[0-9]+))+$`)

// A PATCH error inside a nested field points at it by its JSON names, as a
// POST error does: /value_estimate/per, never /value_estimate/Value/per
// (the Go field of the nullable wrapper). Every nested field of a PATCH is
// tried: the value estimate, the reward and the items.
func TestPatchErrorsInNestedFieldsPointAtTheirJSONNames(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	id := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: contractBody(f)}), 201).json(t)["id"].(string)
	for body, want := range map[string][]string{
		`{"value_estimate":{"amount":"4.80","currency":"EUR"}}`:                                              {"/value_estimate/per"},
		`{"value_estimate":{"per":"P1Y"}}`:                                                                   {"/value_estimate/amount", "/value_estimate/currency"},
		`{"value_estimate":{"amount":"4.80","currency":"EUR","per":"a year"}}`:                               {"/value_estimate/per"},
		`{"reward":{"join_bonus":-1}}`:                                                                       {"/reward/join_bonus"},
		`{"reward":{"join_bonus":1,"vesting":"soon"}}`:                                                       {"/reward/vesting"},
		`{"items":[{"purpose":"loyalty.programme_operation","recipients":["x"]}]}`:                           {"/items/0/category"},
		`{"items":[{"category":"location.city","purpose":"loyalty.programme_operation","recipients":[""]}]}`: {"/items/0/recipients/0"},
	} {
		var r response
		a.unchangedBy(body, func() { r = a.do(req{Method: "PATCH", Path: "/v1/contracts/" + id, Token: f.marketer, Body: body}) })
		p := problemOf(t, expect(t, r, 422))
		got := map[string]bool{}
		for _, e := range p.Errors {
			got[e.Pointer] = true
			if !jsonPointer.MatchString(e.Pointer) {
				t.Errorf("PATCH %s: the pointer %q is not made of JSON names", body, e.Pointer)
			}
		}
		for _, w := range want {
			if !got[w] {
				t.Errorf("PATCH %s: errors at %v, want one at %s", body, got, w)
			}
		}
	}
}

// A new version published under another controller (and authority) and a
// point worth 30 times less is a material change everywhere it is shown:
// the statement's changes (JSON and HTML) and the member's exchange. An
// identical programme identity PUT again says only that its version
// number changed, never that the company or the point value did.
func TestANewControllerOrACheaperPointIsAMaterialChangeForMembers(t *testing.T) {
	t.Parallel()
	a, f, v1, ex := withJoinedMember(t)
	latest := v1
	next := func() string {
		t.Helper()
		id := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + latest + "/versions", Token: f.marketer}), 201).json(t)["id"].(string)
		expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + id + "/publish", Token: f.marketer}), 200)
		latest = id
		return id
	}
	type changes struct {
		Material        bool
		MaterialReasons []string `json:"material_reasons"`
		Reward, Wording []struct{ Field, From, To string }
	}
	changesOf := func(id string) (changes, string) {
		var st struct {
			Changes *changes `json:"changes_since_previous"`
		}
		expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/transparency"}), 200).decode(t, &st)
		if st.Changes == nil {
			t.Fatalf("%s has no changes_since_previous", id)
		}
		return *st.Changes, pageText(expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/transparency", Headers: htmlAccept}), 200).Body)
	}

	// The same identity again: a new programme version, nothing new in it.
	expect(t, a.do(req{Method: "PUT", Path: "/v1/programme", Token: f.admin, Body: programmeBody("EUR", "0.01")}), 200)
	v2 := next()
	ch, page := changesOf(v2)
	if ch.Material || len(ch.Reward) != 0 || len(ch.Wording) != 1 || ch.Wording[0].Field != "programme_version" {
		t.Errorf("an identical identity re-published: %+v", ch)
	}
	if strings.Contains(page, "company responsible") || strings.Contains(page, "point is worth changed") {
		t.Errorf("the statement says the company or the point value changed when only a version number did")
	}

	broker := map[string]any{"legal_name": "Totally Different Data Broker Inc", "address": "9 Elsewhere, Delaware",
		"contact_email": "x@broker.example", "dpo_contact": "none",
		"supervisory_authority": map[string]any{"name": "FTC", "complaint_url": "https://ftc.example/"},
		"point_value":           map[string]any{"currency": "EUR", "amount": "0.0003"}, "jurisdictions": []string{"US"}}
	expect(t, a.do(req{Method: "PUT", Path: "/v1/programme", Token: f.admin, Body: broker}), 200)
	v3 := next()
	ch, page = changesOf(v3)
	if !ch.Material || len(ch.MaterialReasons) < 4 {
		t.Fatalf("a new controller, DPO, authority and a cheaper point: material %v, reasons %v", ch.Material, ch.MaterialReasons)
	}
	if strings.Contains(page, "No material change") || !strings.Contains(page, "Material change") ||
		!strings.Contains(page, "company responsible for your data") || !strings.Contains(page, "what a point is worth: 0.01 EUR before, 0.0003 EUR now") {
		t.Errorf("the statement page does not show the material change")
	}
	if nv, _ := a.exchangeByID(f.member, ex["id"].(string))["newer_version"].(map[string]any); nv["contract_id"] != v3 || nv["material"] != true {
		t.Errorf("the member's exchange: newer_version %v, want %s, material", nv, v3)
	}
}
