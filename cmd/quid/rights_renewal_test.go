package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/quidpro/quid/app"
)

// verifiedReceipt checks a consent receipt against the published JWKS with
// a JOSE stack other than the signer's, and returns its claims.
func verifiedReceipt(t *testing.T, a *api, receipt string) map[string]any {
	t.Helper()
	var jwks jose.JSONWebKeySet
	expect(t, a.do(req{Method: "GET", Path: "/.well-known/jwks.json"}), 200).decode(t, &jwks)
	sig, err := jose.ParseSignedCompact(receipt, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	if typ, _ := sig.Signatures[0].Header.ExtraHeaders["typ"].(string); typ != "consent-receipt+jwt" {
		t.Fatalf("receipt typ %q", typ)
	}
	keys := jwks.Key(sig.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the JWKS", sig.Signatures[0].Header.KeyID)
	}
	payload, err := sig.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("receipt does not verify: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// openRenewalWindowSQL brings one exchange's expiry forward to the
// contract's notice from now, so that its renewal window opens now: a
// notice is always shorter than the duration, so a test cannot have the
// window open at the join. The renewal then sets the expiry on the grid
// from joined_at again, which quid verify checks.
const openRenewalWindowSQL = `UPDATE exchanges e SET expires_at = clock_timestamp() + CAST(c.terms->>'renewal_notice' AS interval)
FROM contracts c WHERE c.id = e.contract_id AND e.id = ?
    AND e.expires_at > clock_timestamp() + CAST(c.terms->>'renewal_notice' AS interval)`

func (a *api) openRenewalWindow(exchangeID string) {
	a.t.Helper()
	if err := a.svc.db.Exec(openRenewalWindowSQL, exchangeID).Error; err != nil {
		a.t.Fatalf("open the renewal window of %s: %v", exchangeID, err)
	}
}

func renew(a *api, tok, id string) response {
	return a.do(req{Method: "POST", Path: "/v1/me/exchanges/" + id + "/renew", Token: tok})
}

// TestRenewalKeepsTheTermsHashAndIssuesAReceiptThatVerifies: renewing
// extends consent by one more duration on the same terms hash, with a new
// receipt that verifies with the published key and says it is a renewal;
// the exchange, its view and the export show it; consent (partner reads,
// period credits) then runs to the new expiry, including a period that did
// not fit before the old one.
func TestRenewalKeepsTheTermsHashAndIssuesAReceiptThatVerifies(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	body := contractBody(f)
	body["duration"] = "PT2S"
	// The first 3-second period ends after the 2-second consent: only a
	// renewal makes it earnable.
	body["reward"] = map[string]any{"join_bonus": 0, "points_per_period": 10, "period": "PT3S"}
	id := a.publishContract(f, body)
	// The statement says how renewal works, and the notice is in the hashed terms.
	st := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/transparency"}), 200).json(t)
	// The default notice for a 2-second consent is half of it.
	if plain, _ := st["duration_plain"].(string); !strings.Contains(plain, "renew") || st["terms"].(map[string]any)["renewal_notice"] != "PT1S" {
		t.Fatalf("the statement does not describe renewal: %v / %v", st["duration_plain"], st["terms"])
	}
	a.enrol(f.member)
	joined := a.joinContract(f.member, id)
	exID := joined["id"].(string)
	joinedAt, _ := time.Parse(time.RFC3339Nano, joined["joined_at"].(string))
	time.Sleep(time.Until(joinedAt.Add(1050 * time.Millisecond))) // the window opens a second before expiry
	view := a.exchangeByID(f.member, exID)
	if view["renewable"] != true || view["expires_at"] == nil {
		t.Fatalf("the view does not offer renewal: %v", view)
	}
	r := expect(t, renew(a, f.member, exID), 200).json(t)
	expires, _ := time.Parse(time.RFC3339Nano, r["expires_at"].(string))
	if !expires.Equal(joinedAt.Add(4 * time.Second)) {
		t.Fatalf("renewed expiry %v, want joined_at + 2 durations (%v)", expires, joinedAt.Add(4*time.Second))
	}
	if r["terms_hash"] != joined["terms_hash"] || r["status"] != "active" || r["receipt"] == joined["receipt"] {
		t.Fatalf("renewal: %v", r)
	}
	claims := verifiedReceipt(t, a, r["receipt"].(string))
	if claims["terms_hash"] != joined["terms_hash"] || claims["exchange_id"] != exID || claims["sub"] != "alice" ||
		claims["renewal"] != float64(1) || claims["renewed_at"] == nil || claims["expires_at"] != r["expires_at"] ||
		claims["joined_at"] != joined["joined_at"] {
		t.Fatalf("renewal receipt claims: %v", claims)
	}
	if got := a.exchangeByID(f.member, exID); got["receipt"] != r["receipt"] || got["expires_at"] != r["expires_at"] {
		t.Fatalf("the exchange does not carry the renewal: %v", got)
	}

	// Past the old expiry, consent still holds.
	time.Sleep(time.Until(joinedAt.Add(2200 * time.Millisecond)))
	expect(t, a.do(req{Method: "GET", Path: "/v1/partner/members/alice/data?purpose=loyalty.personalised_offers", Token: f.partner}), 200)
	// Past the new one, the 3-second period was earned and nothing more.
	time.Sleep(time.Until(joinedAt.Add(4300 * time.Millisecond)))
	if _, err := a.svc.accrual.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	credits := 0
	for _, e := range expect(t, a.do(req{Method: "GET", Path: "/v1/me/points", Token: f.member}), 200).json(t)["items"].([]any) {
		if e.(map[string]any)["kind"] == "period_credit" {
			credits++
		}
	}
	if credits != 1 {
		t.Fatalf("%d period credits, want the one 3-second period inside the renewed consent", credits)
	}
	if ended := a.exchangeByID(f.member, exID); ended["status"] != "expired" || ended["ended_at"] != r["expires_at"] {
		t.Fatalf("the renewed consent ended %v at %v, want expired at %v", ended["status"], ended["ended_at"], r["expires_at"])
	}
	export := expect(t, a.do(req{Method: "GET", Path: "/v1/me/export", Token: f.member}), 200).json(t)
	renewals := export["renewals"].([]any)
	if len(renewals) != 1 || renewals[0].(map[string]any)["terms_hash"] != joined["terms_hash"] ||
		renewals[0].(map[string]any)["exchange_id"] != exID {
		t.Fatalf("export renewals: %v", renewals)
	}
	kinds := map[string]int{}
	for _, e := range export["consent_log"].([]any) {
		kinds[e.(map[string]any)["kind"].(string)]++
	}
	if kinds["joined"] != 1 || kinds["renewed"] != 1 || kinds["expired"] != 1 {
		t.Fatalf("consent log kinds: %v", kinds)
	}
	// Expired consent is not renewed: join again.
	refusedWith(t, renew(a, f.member, exID), 409, "exchange-not-active")
}

func refusedWith(t *testing.T, r response, status int, code string) map[string]any {
	t.Helper()
	p := expect(t, r, status).json(t)
	if p["code"] != code {
		t.Fatalf("code %v, want %s: %v", p["code"], code, p)
	}
	return p
}

// TestRenewalIsRefusedWhenTheTermsMovedOnOrConsentCannotBeRenewed: a
// family with a newer published version answers 409 newer-version naming
// the version to join; consent without a duration, cancelled consent, a
// window not open yet and another member's exchange are refused, and
// nothing is written.
func TestRenewalIsRefusedWhenTheTermsMovedOnOrConsentCannotBeRenewed(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	a.enrol(f.member)

	open := a.publishContract(f, contractBody(f)) // P12M, notice P14D: not open yet
	notYet := a.joinContract(f.member, open)["id"].(string)
	if v := a.exchangeByID(f.member, notYet); v["renewable"] != false {
		t.Fatalf("renewable before the window: %v", v)
	}
	refusedWith(t, renew(a, f.member, notYet), 409, "renewal-not-open")

	body := contractBody(f)
	body["title"] = "Open-ended club"
	delete(body, "duration")
	forever := a.joinContract(f.member, a.publishContract(f, body))["id"].(string)
	refusedWith(t, renew(a, f.member, forever), 409, "not-renewable")

	short := contractBody(f)
	short["title"] = "Short club"
	short["duration"] = "PT1H"
	v1 := a.publishContract(f, short)
	onV1 := a.joinContract(f.member, v1)
	bob := token(t, app.RoleMember, "bob")
	a.enrol(bob)
	expect(t, renew(a, bob, onV1["id"].(string)), 404)
	v2 := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v1 + "/versions", Token: f.marketer}), 201).json(t)["id"].(string)
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v2 + "/publish", Token: f.marketer}), 200)
	if v := a.exchangeByID(f.member, onV1["id"].(string)); v["renewable"] != false {
		t.Fatalf("renewable although version 2 is published: %v", v)
	}
	p := refusedWith(t, renew(a, f.member, onV1["id"].(string)), 409, "newer-version")
	if nv, _ := p["newer_version"].(map[string]any); nv["contract_id"] != v2 || nv["version"] != float64(2) {
		t.Fatalf("newer-version does not point to version 2: %v", p)
	}
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + onV1["id"].(string), Token: f.member}), 200)
	refusedWith(t, renew(a, f.member, onV1["id"].(string)), 409, "exchange-not-active")

	var renewed int64
	a.svc.db.Raw(`SELECT count(*) FROM consent_events WHERE kind = 'renewed'`).Scan(&renewed)
	if renewed != 0 {
		t.Fatalf("%d renewed events written by refused renewals", renewed)
	}
}

// TestExpiringConsentRemindsTheBrandOncePerExpiry: once the renewal
// window opens, the contract's first-party recipients get one
// exchange.expiring (valid per openapi.yaml) however many workers run at
// once; a renewal makes the next reminder due at the new expiry; consent
// whose window is not open, or which already lapsed, gets none.
func TestExpiringConsentRemindsTheBrandOncePerExpiry(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	a.enrol(f.member)
	due := contractBody(f)
	due["duration"] = "PT1H"
	due["renewal_notice"] = "PT20M"
	dueEx := a.joinContract(f.member, a.publishContract(f, due))["id"].(string)
	a.openRenewalWindow(dueEx)
	notDue := contractBody(f)
	notDue["title"] = "Long club"
	a.joinContract(f.member, a.publishContract(f, notDue)) // P12M, notice P14D
	lapsed := contractBody(f)
	lapsed["title"] = "Lapsed club"
	lapsed["duration"] = "PT1S"
	lapsedContract := a.publishContract(f, lapsed)
	bob := token(t, app.RoleMember, "bob")
	a.enrol(bob)
	a.joinContract(bob, lapsedContract)
	time.Sleep(1100 * time.Millisecond) // bob's consent lapses before any worker ran

	remind := func() {
		t.Helper()
		concurrently(t, 4, func() error {
			_, err := a.svc.store.RemindExpiring(context.Background())
			return err
		})
	}
	remind()
	got := outboxEvents(t, a, "exchange.expiring")
	if len(got) != 1 {
		t.Fatalf("reminders went to %v, want the brand only, once", keys(anyMap(got)))
	}
	brand, ok := got["Brand"]
	if !ok {
		t.Fatalf("the brand was not reminded: %v", keys(anyMap(got)))
	}
	d := brand["data"].(map[string]any)
	if d["exchange_id"] != dueEx || d["renewable"] != true || d["renewal_notice"] != "PT20M" || d["newer_version"] != nil {
		t.Fatalf("reminder data: %v", d)
	}
	remind()
	if again := outboxEvents(t, a, "exchange.expiring"); len(again) != 0 {
		t.Fatalf("reminded twice for one expiry: %v", keys(anyMap(again)))
	}
	expect(t, renew(a, f.member, dueEx), 200)
	remind()
	if early := outboxEvents(t, a, "exchange.expiring"); len(early) != 0 {
		t.Fatalf("reminded of the new expiry before its window: %v", keys(anyMap(early)))
	}
	a.openRenewalWindow(dueEx)
	renewed := a.exchangeByID(f.member, dueEx)
	remind()
	next := outboxEvents(t, a, "exchange.expiring")
	if b, ok := next["Brand"]; !ok || len(next) != 1 || !sameInstant(b["data"].(map[string]any)["expires_at"], renewed["expires_at"]) {
		t.Fatalf("after the renewal, reminders %v, want one for the new expiry %v", next, renewed["expires_at"])
	}
	// The worker loop runs the reminders too.
	if err := a.svc.accrual.Housekeeping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if more := outboxEvents(t, a, "exchange.expiring"); len(more) != 0 {
		t.Fatalf("housekeeping reminded again: %v", keys(anyMap(more)))
	}
}

// TestRenewalTellsEveryRecipientOfTheTermsTheNewExpiry: a renewal queues,
// in its transaction, exactly one exchange.renewed (valid per openapi.yaml)
// for every recipient the terms name, first and third party, each with
// the categories it receives, the old and the new expires_at and never a
// value; a recipient the terms do not name, and another member's exchange
// on the same terms, get nothing; each further renewal tells them once
// more; a refused renewal (window not open yet) queues nothing and writes
// nothing at all.
func TestRenewalTellsEveryRecipientOfTheTermsTheNewExpiry(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	a.enrol(f.member)
	bob := token(t, app.RoleMember, "bob")
	a.enrol(bob)

	notYet := a.joinContract(f.member, a.publishContract(f, contractBody(f)))["id"].(string) // P12M, notice P14D
	a.unchangedBy("a renewal before its window", func() {
		refusedWith(t, renew(a, f.member, notYet), 409, "renewal-not-open")
	})
	if got := outboxEvents(t, a, "exchange.renewed"); len(got) != 0 {
		t.Fatalf("a refused renewal told %v", keys(anyMap(got)))
	}

	body := contractBody(f)
	body["title"], body["duration"] = "Short club", "PT1H"
	contract := a.publishContract(f, body)
	joined := a.joinContract(f.member, contract)
	a.joinContract(bob, contract)
	exID := joined["id"].(string)
	for renewal := 1; renewal <= 2; renewal++ {
		// The expiry the renewal moves on from: the window opened brings
		// it forward.
		a.openRenewalWindow(exID)
		previous := a.exchangeByID(f.member, exID)["expires_at"]
		r := expect(t, renew(a, f.member, exID), 200).json(t)
		got := outboxEvents(t, a, "exchange.renewed") // one per recipient, each valid per openapi.yaml
		if len(got) != 2 || got["Brand"] == nil || got["PartnerCo"] == nil {
			t.Fatalf("renewal %d told %v, want Brand and PartnerCo (the terms' recipients), AdCo never", renewal, keys(anyMap(got)))
		}
		var renewedAt []time.Time
		if err := a.svc.db.Raw(`SELECT at FROM consent_events WHERE exchange_id = ? AND kind = 'renewed' ORDER BY id`, exID).
			Scan(&renewedAt).Error; err != nil || len(renewedAt) != renewal {
			t.Fatalf("renewed consent events: %v %v", renewedAt, err)
		}
		want := map[string]string{"Brand": "commerce.purchase_history,location.city", "PartnerCo": "demographic.age_over_18,location.city"}
		for name, p := range got {
			d := p["data"].(map[string]any)
			if d["exchange_id"] != exID || d["contract_id"] != contract || d["member_id"] != "alice" || d["terms_hash"] != joined["terms_hash"] ||
				d["status"] != "active" || !sameInstant(d["expires_at"], r["expires_at"]) || !sameInstant(d["previous_expires_at"], previous) {
				t.Fatalf("renewal %d, %s's exchange.renewed: %v; want the new expiry %v after %v", renewal, name, d, r["expires_at"], previous)
			}
			if at, _ := time.Parse(time.RFC3339Nano, d["renewed_at"].(string)); !at.Equal(renewedAt[renewal-1]) {
				t.Fatalf("%s was told of a renewal at %v, the consent log says %v", name, d["renewed_at"], renewedAt[renewal-1])
			}
			if cats := eventCategories(p); cats != want[name] {
				t.Fatalf("%s was told categories %s, want what it receives: %s", name, cats, want[name])
			}
			raw, _ := json.Marshal(p)
			for _, value := range []string{"Oslo", "espresso", "1990-05-01", "alice@example.com"} {
				if strings.Contains(string(raw), value) {
					t.Fatalf("%s's exchange.renewed carries the value %q: %s", name, value, raw)
				}
			}
		}
	}
}

// sameInstant says whether two RFC 3339 texts name the same instant,
// whatever digits of the second each writes.
func sameInstant(a, b any) bool {
	as, _ := a.(string)
	bs, _ := b.(string)
	at, errA := time.Parse(time.RFC3339Nano, as)
	bt, errB := time.Parse(time.RFC3339Nano, bs)
	return errA == nil && errB == nil && at.Equal(bt)
}

// TestRenewalsRacingATerminatingRetirementNeitherDeadlockNorFail: members
// renew (and cancel, object, erase) while the marketer retires the version
// with termination, all released at once, many times over. Every writer of
// a member's exchanges takes its locks in the one order (the version's
// lock, then the member's row, then exchange rows), so PostgreSQL never
// has to abort one of them as a deadlock: no request answers 5xx, the
// retirement succeeds each time, and each exchange tells one consistent
// story — renewed then terminated (renewal 200), or terminated and the
// renewal refused 409 exchange-not-active; a cancel, objection or erasure
// either ended it first or found it terminated.
func TestRenewalsRacingATerminatingRetirementNeitherDeadlockNorFail(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	addr := a.listen(t)
	f := a.fixtures()
	const rounds, renewers = 12, 6
	// Members renewers..renewers+2 cancel, object and erase instead.
	const cancels, objects, erases = renewers, renewers + 1, renewers + 2
	body := contractBody(f)
	body["duration"] = "PT1H"
	stories := map[string]int{}
	for round := range rounds {
		body["title"] = fmt.Sprintf("Race %d", round)
		contract := a.publishContract(f, body)
		toks, exchanges := make([]string, erases+1), make([]string, erases+1)
		for i := range toks {
			toks[i] = token(t, app.RoleMember, fmt.Sprintf("race-%d-%d", round, i))
			a.enrol(toks[i])
			exchanges[i] = a.joinContract(toks[i], contract)["id"].(string)
			a.openRenewalWindow(exchanges[i])
		}
		out := releasedTogether(t, a, addr, len(toks)+1, func(i int) req {
			switch {
			case i < renewers:
				return req{Method: "POST", Path: "/v1/me/exchanges/" + exchanges[i] + "/renew", Token: toks[i]}
			case i == cancels:
				return req{Method: "DELETE", Path: "/v1/me/exchanges/" + exchanges[i], Token: toks[i]}
			case i == objects:
				return req{Method: "POST", Path: "/v1/me/objections", Token: toks[i], Body: map[string]any{"purpose": "loyalty.personalised_offers"}}
			case i == erases:
				return req{Method: "DELETE", Path: "/v1/me", Token: toks[i]}
			}
			return req{Method: "POST", Path: "/v1/contracts/" + contract + "/retire", Token: f.marketer, Body: map[string]any{"terminate_active": true}}
		})
		for _, o := range out {
			if o.resp.Status >= 500 {
				t.Fatalf("round %d: %s %s answered %d while racing the retirement: %s", round, o.req.Method, o.req.Path, o.resp.Status, o.resp.Body)
			}
		}
		retired := out[len(toks)]
		if retired.resp.Status != 200 {
			t.Fatalf("round %d: the retirement answered %d: %s", round, retired.resp.Status, retired.resp.Body)
		}
		terminated := 0
		for i, ex := range exchanges {
			var kinds []string
			if err := a.svc.db.Raw(`SELECT kind FROM consent_events WHERE exchange_id = ? ORDER BY id`, ex).Scan(&kinds).Error; err != nil {
				t.Fatal(err)
			}
			story, r := strings.Join(kinds, ","), out[i].resp
			if strings.HasSuffix(story, ",terminated") {
				terminated++
			}
			ok := false
			switch {
			case i < renewers && r.Status == 200:
				ok = story == "joined,renewed,terminated"
			case i < renewers && r.Status == 409:
				ok = story == "joined,terminated" && problemCode(t, r) == "exchange-not-active"
			case i == cancels && r.Status == 200:
				ok = story == "joined,cancelled" || story == "joined,terminated"
			case i == objects && r.Status == 201:
				ok = story == "joined,cancelled" || story == "joined,terminated"
			case i == erases && r.Status == 200:
				ok = story == "joined,erased" || story == "joined,terminated"
			}
			if !ok {
				t.Fatalf("round %d: %s %s answered %d and the exchange's consent log is %q: %s",
					round, out[i].req.Method, out[i].req.Path, r.Status, story, r.Body)
			}
			if i < renewers {
				stories[story]++
				// Brand and PartnerCo are told of a renewal that happened, once;
				// of a refused one, never.
				var told int
				if err := a.svc.db.Raw(`SELECT count(*) FROM webhook_outbox WHERE event_type = 'exchange.renewed' AND payload->'data'->>'exchange_id' = ?`,
					ex).Scan(&told).Error; err != nil {
					t.Fatal(err)
				}
				if want := map[bool]int{true: 2}[r.Status == 200]; told != want {
					t.Fatalf("round %d: renewal answered %d and %d exchange.renewed events were queued, want %d", round, r.Status, told, want)
				}
			}
		}
		if n := retired.resp.json(t)["terminated_exchanges"]; n != float64(terminated) {
			t.Fatalf("round %d: the retirement says it terminated %v exchanges, the consent log shows %d", round, n, terminated)
		}
	}
	t.Logf("renewals racing the retirement: %v", stories)
}

// TestConsentWithADurationNamesTheBrandToRemind: a contract whose consent
// lapses must name a first-party recipient, the one exchange.expiring
// reminds; without one the draft is refused at /duration, writing nothing.
func TestConsentWithADurationNamesTheBrandToRemind(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	body := oneItemContract("location.city", "loyalty.programme_operation", []string{f.partnerCo}, nil)
	body["duration"] = "P1Y"
	var r response
	a.unchangedBy("a lapsing contract nobody is reminded of", func() {
		r = a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: body})
	})
	problemAt(t, r, 422, "/duration")
	body["items"].([]any)[0].(map[string]any)["recipients"] = []string{f.partnerCo, f.brand}
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: body}), 201)
	delete(body, "duration")
	body["items"].([]any)[0].(map[string]any)["recipients"] = []string{f.partnerCo}
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: body}), 201)
}

// renewalGPC is the gpc flag of each renewed consent event of exchange id
// in the member's export, oldest first.
func renewalGPC(t *testing.T, a *api, tok, id string) []bool {
	t.Helper()
	var export struct {
		ConsentLog []struct {
			ExchangeID string `json:"exchange_id"`
			Kind       string
			GPC        bool
		} `json:"consent_log"`
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/me/export", Token: tok}), 200).decode(t, &export)
	var out []bool
	for _, e := range export.ConsentLog {
		if e.ExchangeID == id && e.Kind == "renewed" {
			out = append(out, e.GPC)
		}
	}
	return out
}

// TestRenewalUnderGlobalPrivacyControlNeedsAffirmationAndIsRecorded:
// renewal gives consent again, so the join's GPC rule holds. With Sec-GPC:
// 1 (alone or in a list, as the join reads it), renewing terms that share
// with a third party is 409 gpc-conflict writing nothing, unless the
// optional body affirms it; the renewed consent event then records gpc
// true, and a renewal without the signal records false. The body is
// decoded strictly, as every other body.
func TestRenewalUnderGlobalPrivacyControlNeedsAffirmationAndIsRecorded(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	a.enrol(f.member)
	bob := token(t, app.RoleMember, "bob")
	a.enrol(bob)
	body := contractBody(f) // shares with PartnerCo, a third party
	body["duration"] = "PT1H"
	contract := a.publishContract(f, body)
	ex := a.joinContract(f.member, contract)["id"].(string)
	bobEx := a.joinContract(bob, contract)["id"].(string)
	a.openRenewalWindow(ex)
	a.openRenewalWindow(bobEx)
	path := "/v1/me/exchanges/" + ex + "/renew"

	for _, r := range []req{
		{Method: "POST", Path: path, Token: f.member, Headers: map[string]string{"Sec-GPC": "1"}},
		{Method: "POST", Path: path, Token: f.member, Headers: map[string]string{"Sec-GPC": "0, 1"}},
		{Method: "POST", Path: path, Token: f.member, Headers: map[string]string{"Sec-GPC": "1"}, Body: map[string]any{"affirm_despite_gpc": false}},
		{Method: "POST", Path: path, Token: f.member, Headers: map[string]string{"Sec-GPC": "1"}, Body: map[string]any{}},
	} {
		a.unchangedBy("a renewal under GPC without affirmation", func() {
			refusedWith(t, a.do(r), 409, "gpc-conflict")
		})
	}
	a.unchangedBy("a renewal with a body it does not take", func() {
		problemAt(t, a.do(req{Method: "POST", Path: path, Token: f.member, Headers: map[string]string{"Sec-GPC": "1"},
			Body: map[string]any{"affirm_despite_gpc": true, "contract_id": contract}}), 422, "/contract_id")
		expect(t, a.do(req{Method: "POST", Path: path, Token: f.member, Headers: map[string]string{"Sec-GPC": "1", "Content-Type": "text/plain"},
			Body: `{"affirm_despite_gpc":true}`}), 415)
		expect(t, a.do(req{Method: "POST", Path: path, Token: f.member, Body: `{"affirm_despite_gpc":true,"affirm_despite_gpc":false}`}), 422)
	})
	if got := renewalGPC(t, a, f.member, ex); len(got) != 0 {
		t.Fatalf("refused renewals wrote renewed events: %v", got)
	}

	expect(t, a.do(req{Method: "POST", Path: path, Token: f.member, Headers: map[string]string{"Sec-GPC": "1"},
		Body: map[string]any{"affirm_despite_gpc": true}}), 200)
	if got := renewalGPC(t, a, f.member, ex); len(got) != 1 || !got[0] {
		t.Fatalf("the affirmed renewal under GPC is logged as %v, want one renewed event with gpc true", got)
	}
	expect(t, renew(a, bob, bobEx), 200)
	if got := renewalGPC(t, a, bob, bobEx); len(got) != 1 || got[0] {
		t.Fatalf("a renewal without GPC is logged as %v, want one renewed event with gpc false", got)
	}
}

// TestRenewingTwiceInARowIsRefusedSoRenewalsCannotStack: the renewal
// notice is always shorter than the duration, so a renewal moves the window
// past the present and a second renewal (a double-submit) is 409
// renewal-not-open. A notice not shorter than the duration is 422 at
// /renewal_notice on create and on a draft's PATCH; a short contract that
// sets none takes half its duration (P7D: P3DT12H), so it is not renewable
// at the join.
func TestRenewingTwiceInARowIsRefusedSoRenewalsCannotStack(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	a.enrol(f.member)
	for _, c := range []struct{ duration, notice string }{{"PT1H", "PT2H"}, {"P7D", "P7D"}, {"PT2M", "P1Y"}, {"P30D", "P1M"}} {
		body := contractBody(f)
		body["duration"], body["renewal_notice"] = c.duration, c.notice
		problemAt(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: body}), 422, "/renewal_notice")
	}
	body := contractBody(f)
	body["duration"] = "P7D"
	draft := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: body}), 201).json(t)
	if draft["renewal_notice"] != "P3DT12H" {
		t.Fatalf("default notice for P7D: %v, want half the duration", draft["renewal_notice"])
	}
	draftPath := "/v1/contracts/" + draft["id"].(string)
	problemAt(t, a.do(req{Method: "PATCH", Path: draftPath, Token: f.marketer, Body: map[string]any{"renewal_notice": "P14D"}}), 422, "/renewal_notice")
	expect(t, a.do(req{Method: "PATCH", Path: draftPath, Token: f.marketer, Body: map[string]any{"renewal_notice": "P1D"}}), 200)
	problemAt(t, a.do(req{Method: "PATCH", Path: draftPath, Token: f.marketer, Body: map[string]any{"duration": "PT12H"}}), 422, "/renewal_notice")
	expect(t, a.do(req{Method: "PATCH", Path: draftPath, Token: f.marketer, Body: map[string]any{"renewal_notice": nil}}), 200)
	expect(t, a.do(req{Method: "POST", Path: draftPath + "/publish", Token: f.marketer}), 200)
	st := expect(t, a.do(req{Method: "GET", Path: draftPath + "/transparency"}), 200).json(t)
	if st["terms"].(map[string]any)["renewal_notice"] != "P3DT12H" {
		t.Fatalf("published terms: %v", st["terms"])
	}

	ex := a.joinContract(f.member, draft["id"].(string))["id"].(string)
	if v := a.exchangeByID(f.member, ex); v["renewable"] != false {
		t.Fatalf("renewable at the join: %v", v)
	}
	refusedWith(t, renew(a, f.member, ex), 409, "renewal-not-open")
	a.openRenewalWindow(ex)
	expect(t, renew(a, f.member, ex), 200)
	a.unchangedBy("a second renewal in a row", func() {
		refusedWith(t, renew(a, f.member, ex), 409, "renewal-not-open")
	})
	if v := a.exchangeByID(f.member, ex); v["renewable"] != false {
		t.Fatalf("renewable right after a renewal: %v", v)
	}
}

// TestRenewalNotOpenShowsAnOpeningTimeThatIsNeverEarly: the detail of
// renewal-not-open names when the window opens, rounded up to the second,
// so a client that retries at that time is not refused again.
func TestRenewalNotOpenShowsAnOpeningTimeThatIsNeverEarly(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	a.enrol(f.member)
	body := contractBody(f)
	body["duration"], body["renewal_notice"] = "PT1H", "PT30M"
	contract := a.publishContract(f, body)
	for range 3 { // each join lands at another fraction of a second
		ex := a.joinContract(f.member, contract)["id"].(string)
		expires, _ := time.Parse(time.RFC3339Nano, a.exchangeByID(f.member, ex)["expires_at"].(string))
		opens := expires.Add(-30 * time.Minute)
		p := refusedWith(t, renew(a, f.member, ex), 409, "renewal-not-open")
		detail, _ := p["detail"].(string)
		var shown string
		if _, err := fmt.Sscanf(detail, "renewal opens at %s", &shown); err != nil {
			t.Fatalf("detail %q: %v", detail, err)
		}
		at, err := time.Parse(time.RFC3339, strings.TrimSuffix(shown, ","))
		if err != nil {
			t.Fatalf("detail %q: %v", detail, err)
		}
		if at.Before(opens) || at.Sub(opens) >= time.Second {
			t.Fatalf("detail shows %v; the window opens at %v: a retry then would be early", at, opens)
		}
		expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + ex, Token: f.member}), 200)
	}
}
