package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/config"
)

func (a *api) enrol(tok string) {
	a.t.Helper()
	expect(a.t, a.do(req{Method: "PUT", Path: "/v1/me", Token: tok, Body: map[string]any{"attributes": map[string]any{
		"location.city": "Oslo", "commerce.purchase_history": []string{"espresso", "croissant"},
		"demographic.birthdate": "1990-05-01", "contact.email": "alice@example.com"}}}), 201)
}

func (a *api) joinContract(tok, contractID string) map[string]any {
	a.t.Helper()
	return expect(a.t, a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: tok, Body: map[string]any{"contract_id": contractID}}), 201).json(a.t)
}

// withJoinedMember is a fresh API where the member alice has joined the
// standard test contract.
func withJoinedMember(t *testing.T) (*api, fixtures, string, map[string]any) {
	t.Helper()
	a := newAPI(t)
	f := a.fixtures()
	id := a.publishContract(f, contractBody(f))
	a.enrol(f.member)
	return a, f, id, a.joinContract(f.member, id)
}

func TestEnrolmentValidatesEveryAttribute(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	alice := token(t, app.RoleMember, "alice")
	expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: alice}), 404)
	expect(t, a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: alice, Body: map[string]any{"contract_id": "00000000-0000-0000-0000-000000000000"}}), 404)
	tests := []struct {
		key     string
		value   any
		pointer string
	}{
		{"contact.email", "not-an-email", "/attributes/contact.email"},
		{"demographic.birthdate", "01/05/1990", "/attributes/demographic.birthdate"},
		{"contact.phone", "12345", "/attributes/contact.phone"},
		{"demographic.age_over_18", true, "/attributes/demographic.age_over_18"},
		{"contact.shoe_size", "44", "/attributes/contact.shoe_size"},
		{"commerce.purchase_history", "espresso", "/attributes/commerce.purchase_history"},
		{"commerce.purchase_history", []any{}, "/attributes/commerce.purchase_history"},
		{"contact.email", "\u3164@\u3164", "/attributes/contact.email"},
		{"location.address", map[string]any{"city": "Oslo", "country": "ZZ"}, "/attributes/location.address"},
		// RFC 6901: a key holding "/" or "~" is one token, escaped.
		{"a/b~c", "x", "/attributes/a~1b~0c"},
	}
	for _, tt := range tests {
		r := a.do(req{Method: "PUT", Path: "/v1/me", Token: alice, Body: map[string]any{"attributes": map[string]any{tt.key: tt.value}}})
		problemAt(t, r, 422, tt.pointer)
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: alice}), 404)
	a.enrol(alice)
	me := expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: alice, Body: map[string]any{"attributes": map[string]any{"location.city": "Bergen", "contact.email": nil}}}), 200).json(t)
	attrs := me["attributes"].(map[string]any)
	if attrs["location.city"] != "Bergen" || attrs["contact.email"] != nil || attrs["demographic.birthdate"] != "1990-05-01" {
		t.Fatalf("attributes: %v", attrs)
	}
}

// memberViews are every GET a member has of their own data.
var memberViews = []string{"/v1/me", "/v1/me/exchanges", "/v1/me/points", "/v1/me/transparency", "/v1/me/access-log", "/v1/me/export", "/v1/me/recipients"}

func TestMembersWhoAreNotEnrolledGetNotFoundFromEveryView(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	nobody := token(t, app.RoleMember, "nobody")
	for _, path := range memberViews {
		r := expect(t, a.do(req{Method: "GET", Path: path, Token: nobody}), 404)
		if code := r.json(t)["code"]; code != "member-not-enrolled" {
			t.Errorf("%s: code %v, want member-not-enrolled", path, code)
		}
	}
}

// exchangeByID is the member's view of one exchange.
func (a *api) exchangeByID(tok, id string) map[string]any {
	a.t.Helper()
	return expect(a.t, a.do(req{Method: "GET", Path: "/v1/me/exchanges/" + id, Token: tok}), 200).json(a.t)
}

func TestConsentLapsesAtItsExpiryEvenBeforeTheWorkerRuns(t *testing.T) {
	t.Parallel()
	a := newAPI(t) // the accrual worker is not running
	f := a.fixtures()
	body := contractBody(f)
	body["duration"] = "PT1S"
	body["reward"] = map[string]any{"join_bonus": 100, "vesting": "PT3S"}
	id := a.publishContract(f, body)
	a.enrol(f.member)
	ex := a.joinContract(f.member, id)
	exID := ex["id"].(string)
	time.Sleep(1200 * time.Millisecond)

	seen := a.exchangeByID(f.member, exID)
	if seen["status"] != "expired" || seen["ended_at"] != ex["expires_at"] {
		t.Fatalf("a lapsed exchange reads as %v ended %v, want expired at %v", seen["status"], seen["ended_at"], ex["expires_at"])
	}
	// The recipients owe deletion from the moment consent lapsed, and the
	// member sees it before anything has recorded the expiry.
	mine := expect(t, a.do(req{Method: "GET", Path: "/v1/me/transparency", Token: f.member}), 200).json(t)
	lapsed := mine["exchanges"].([]any)[0].(map[string]any)
	if s := lapsed["deletion_summary"]; s != "0 of 2 recipients confirmed deletion" {
		t.Fatalf("deletions of lapsed consent before the expiry is written: %v %v", s, lapsed["deletions"])
	}
	if ack := expect(t, confirmDeletion(a, f.partner, exID), 200).json(t); ack["state"] != "deleted" {
		t.Fatalf("confirming deletion of lapsed consent: %v", ack)
	}
	cancelled := expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + exID, Token: f.member}), 200).json(t)
	if cancelled["status"] != "expired" || cancelled["ended_at"] != ex["expires_at"] {
		t.Fatalf("cancelling lapsed consent: %v", cancelled)
	}
	again := a.joinContract(f.member, id) // not 409: the first consent is over
	if again["id"] == exID {
		t.Fatal("joined the lapsed exchange again")
	}
	time.Sleep(2500 * time.Millisecond) // past the first bonus's vesting time
	if _, err := a.svc.store.AccrueBatch(context.Background(), 100); err != nil {
		t.Fatal(err)
	}
	me := expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: f.member}), 200).json(t)
	if b := me["balance"].(map[string]any); b["available"] != float64(0) || b["pending"] != float64(0) {
		t.Fatalf("the bonus of consent that lapsed before vesting was paid: %v", b)
	}
	var kinds []string
	a.svc.db.Raw(`SELECT kind || ':' || actor FROM consent_events WHERE exchange_id = ? ORDER BY id`, exID).Scan(&kinds)
	if strings.Join(kinds, ",") != "joined:member,expired:system" {
		t.Fatalf("consent log of the lapsed exchange: %v", kinds)
	}
	// Terminating the version does not rewrite lapsed consent as terminated,
	// written by a worker or not.
	a.joinContract(f.member, id)
	time.Sleep(1200 * time.Millisecond)
	retired := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + id + "/retire", Token: f.marketer, Body: map[string]any{"terminate_active": true}}), 200).json(t)
	// The raw counts: the published ones are k-anonymous (stats_test.go).
	stats, _, err := a.svc.store.ContractStats(context.Background(), id)
	if err != nil || retired["terminated_exchanges"] != float64(0) || stats.Expired != 3 || stats.Terminated != 0 {
		t.Fatalf("retire %v, stats %+v, %v", retired, stats, err)
	}
}

func TestReconsentAfterALapseStartsAfreshWithoutASecondBonus(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	body := contractBody(f)
	body["duration"] = "PT1S"
	v1 := a.publishContract(f, body)
	a.enrol(f.member)
	old := a.joinContract(f.member, v1)
	v2 := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v1 + "/versions", Token: f.marketer}), 201).json(t)["id"].(string)
	expect(t, a.do(req{Method: "PATCH", Path: "/v1/contracts/" + v2, Token: f.marketer, Body: `{"duration": "P1Y"}`}), 200)
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v2 + "/publish", Token: f.marketer}), 200)
	time.Sleep(1200 * time.Millisecond)
	joined := a.joinContract(f.member, v2)
	if ended := a.exchangeByID(f.member, old["id"].(string)); ended["status"] != "expired" || ended["ended_at"] != old["expires_at"] {
		t.Fatalf("the lapsed exchange was %v at %v, want expired at its expiry", ended["status"], ended["ended_at"])
	}
	me := expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: f.member}), 200).json(t)
	if b := me["balance"].(map[string]any); b["pending"] != float64(0) || joined["status"] != "active" {
		t.Fatalf("the family's bonus was voided with the lapse and must not come back: %v", b)
	}
}

func TestJoinReturnsAReceiptThatVerifiesWithThePublishedKey(t *testing.T) {
	t.Parallel()
	a, _, id, ex := withJoinedMember(t)
	if ex["status"] != "active" || ex["receipt"] == "" {
		t.Fatalf("join: %v", ex)
	}
	var jwks jose.JSONWebKeySet
	expect(t, a.do(req{Method: "GET", Path: "/.well-known/jwks.json"}), 200).decode(t, &jwks)
	// go-jose is not the library that signed: any standard JOSE stack must verify it.
	sig, err := jose.ParseSignedCompact(ex["receipt"].(string), []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	keys := jwks.Key(sig.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in JWKS", sig.Signatures[0].Header.KeyID)
	}
	payload, err := sig.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("receipt does not verify: %v", err)
	}
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	contract := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id}), 200).json(t)
	if claims["terms_hash"] != contract["terms_hash"] || claims["sub"] != "alice" || claims["contract_id"] != id ||
		claims["exchange_id"] != ex["id"] || len(claims["items"].([]any)) != 3 || claims["jti"] == nil {
		t.Fatalf("receipt claims: %v", claims)
	}
	// A restart keeps the key, so old receipts stay verifiable.
	again, err := build(context.Background(), a.cfg, a.svc.log)
	if err != nil {
		t.Fatal(err)
	}
	defer again.close()
	var after jose.JSONWebKeySet
	expect(t, (&api{t: t, svc: again, cfg: a.cfg}).do(req{Method: "GET", Path: "/.well-known/jwks.json"}), 200).decode(t, &after)
	if len(after.Key(sig.Signatures[0].Header.KeyID)) != 1 {
		t.Fatal("signing key lost across restart")
	}
}

func TestMembersSeeAndCancelOnlyTheirOwnExchanges(t *testing.T) {
	t.Parallel()
	a, f, id, ex := withJoinedMember(t)
	path := "/v1/me/exchanges/" + ex["id"].(string)
	bob := token(t, app.RoleMember, "bob")
	a.enrol(bob)
	expect(t, a.do(req{Method: "GET", Path: path, Token: bob}), 404)
	expect(t, a.do(req{Method: "DELETE", Path: path, Token: bob}), 404)
	expect(t, a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: f.member, Body: map[string]any{"contract_id": id}}), 409)

	cancelled := expect(t, a.do(req{Method: "DELETE", Path: path, Token: f.member}), 200).json(t)
	if cancelled["status"] != "cancelled" || cancelled["cancelled_at"] == nil {
		t.Fatalf("cancel: %v", cancelled)
	}
	again := expect(t, a.do(req{Method: "DELETE", Path: path, Token: f.member}), 200).json(t)
	if again["cancelled_at"] != cancelled["cancelled_at"] {
		t.Fatal("a repeated cancel moved the cancellation time")
	}
	list := expect(t, a.do(req{Method: "GET", Path: "/v1/me/exchanges", Token: f.member}), 200).json(t)
	item := list["items"].([]any)[0].(map[string]any)
	if item["status"] != "cancelled" || item["points_earned"] != float64(0) {
		t.Fatalf("list: %v", item)
	}
	mine := expect(t, a.do(req{Method: "GET", Path: "/v1/me/transparency", Token: f.member}), 200).json(t)
	ex0 := mine["exchanges"].([]any)[0].(map[string]any)
	if len(ex0["shares"].([]any)) != 3 {
		t.Fatalf("transparency: %v", ex0)
	}
	// Joining again is allowed, but the join bonus was already given once.
	rejoined := a.joinContract(f.member, id)
	if rejoined["bonus"] != nil {
		t.Fatalf("bonus paid again: %v", rejoined["bonus"])
	}
}

func TestIdempotencyKeyOverHTTP(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	one, two := a.publishContract(f, contractBody(f)), a.publishContract(f, contractBody(f))
	a.enrol(f.member)
	key := map[string]string{"Idempotency-Key": "join-1"}
	first := expect(t, a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: f.member, Headers: key, Body: map[string]any{"contract_id": one}}), 201)
	replay := expect(t, a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: f.member, Headers: key, Body: map[string]any{"contract_id": one}}), 201)
	if string(replay.Body) != string(first.Body) || replay.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay differs:\n%s\n%s", first.Body, replay.Body)
	}
	problemAt(t, a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: f.member, Headers: key, Body: map[string]any{"contract_id": two}}), 422, "/headers/Idempotency-Key")
}

// The acceptance scenario of the ledger: with one-second periods, a member
// sees three credits after about 3.5 s, and none after cancelling.
func TestOneSecondPeriodsPayWhileActiveAndStopAtCancellation(t *testing.T) {
	t.Parallel()
	a := newAPI(t, func(c *config.Config) { c.AccrualInterval = 100 * time.Millisecond })
	a.svc.runWorkers(t)
	f := a.fixtures()
	body := contractBody(f)
	body["reward"] = map[string]any{"join_bonus": 0, "points_per_period": 5, "period": "PT1S"}
	id := a.publishContract(f, body)
	a.enrol(f.member)
	ex := a.joinContract(f.member, id)
	credits := func() []any {
		pts := expect(t, a.do(req{Method: "GET", Path: "/v1/me/points", Token: f.member}), 200).json(t)
		return pts["items"].([]any)
	}
	// Three periods end 3 s after joining; a loaded machine may run the
	// worker late, so wait for the credits rather than a fixed time.
	time.Sleep(3 * time.Second)
	got := credits()
	for deadline := time.Now().Add(15 * time.Second); len(got) < 3 && time.Now().Before(deadline); got = credits() {
		time.Sleep(100 * time.Millisecond)
	}
	if len(got) < 3 {
		t.Fatalf("%d credits for three ended periods: %v", len(got), got)
	}
	newest := got[0].(map[string]any)
	if newest["kind"] != "period_credit" || newest["exchange_id"] != ex["id"] || newest["terms_hash"] == nil || newest["period_end"] == nil {
		t.Fatalf("entry: %v", newest)
	}
	cancelled := expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + ex["id"].(string), Token: f.member}), 200).json(t)
	cancelledAt, err := time.Parse(time.RFC3339Nano, cancelled["cancelled_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	for _, c := range credits() {
		end, err := time.Parse(time.RFC3339Nano, c.(map[string]any)["period_end"].(string))
		if err != nil || end.After(cancelledAt) {
			t.Fatalf("a credit for a period ending %v, after the cancellation at %v", end, cancelledAt)
		}
	}
	me := expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: f.member}), 200).json(t)
	balance := me["balance"].(map[string]any)
	if balance["available"] != float64(5*len(credits())) {
		t.Fatalf("balance %v does not equal the credits", balance)
	}
	// Spend, and be refused when the balance is short.
	r := expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: f.member, Body: map[string]any{"points": 10, "reference": "coffee"}}), 201).json(t)
	if r["entry"].(map[string]any)["points"] != float64(-10) {
		t.Fatalf("redemption: %v", r)
	}
	problemAt(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: f.member, Body: map[string]any{"points": 1000, "reference": "car"}}), 422, "/points")
	// The raw counts: the published ones are k-anonymous (stats_test.go).
	stats, _, err := a.svc.store.ContractStats(context.Background(), id)
	if err != nil || stats.Joins != 1 || stats.Cancelled != 1 || stats.PointsIssued < 15 {
		t.Fatalf("stats: %+v, %v", stats, err)
	}
	if strings.Contains(string(expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/stats", Token: f.marketer}), 200).Body), "alice") {
		t.Fatal("stats leak a member id")
	}
}
