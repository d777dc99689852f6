package main

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/config"
)

func (a *api) object(tok, purpose string, status int) map[string]any {
	a.t.Helper()
	return expect(a.t, a.do(req{Method: "POST", Path: "/v1/me/objections", Token: tok, Body: map[string]any{"purpose": purpose}}), status).json(a.t)
}

// offersAs lists the offers as a caller sees them, by id.
func (a *api) offersAs(tok string) (map[string]map[string]any, response) {
	a.t.Helper()
	r := expect(a.t, a.do(req{Method: "GET", Path: "/v1/offers", Token: tok}), 200)
	out := map[string]map[string]any{}
	for _, it := range r.json(a.t)["items"].([]any) {
		o := it.(map[string]any)
		out[o["id"].(string)] = o
	}
	return out, r
}

func contractFor(f fixtures, title string, items ...map[string]any) map[string]any {
	body := contractBody(f)
	body["title"] = title
	list := make([]any, len(items))
	for i, it := range items {
		list[i] = it
	}
	body["items"] = list
	return body
}

// TestObjectionEndsTheRightExchangesAndOnlyThem: alice objects to
// loyalty.personalised_offers. Her exchange whose contract uses it ends as
// cancelled (actor objection) with a cancel's effects — pending bonus voided,
// recipients told and owed deletion — while her exchanges on contracts that
// do not use it, and bob's on the same contract, stay active. The contract
// cannot be joined until she lifts the objection, and her offers mark it.
func TestObjectionEndsTheRightExchangesAndOnlyThem(t *testing.T) {
	t.Parallel()
	// Rendered offers are shared for a minute, so a member's marks that
	// reached the shared cache would show in the next caller's page.
	a := newAPI(t, func(c *config.Config) { c.PublicCacheTTL = time.Minute })
	f := a.fixtures()
	bob := token(t, app.RoleMember, "bob")
	objected := contractBody(f) // personalised offers and programme operation
	reward(objected)["vesting"] = "P1D"
	usesIt := a.publishContract(f, objected)
	analytics := a.publishContract(f, contractFor(f, "Analytics",
		map[string]any{"category": "location.city", "purpose": "analytics.product_improvement", "recipients": []string{f.brand}}))
	operation := a.publishContract(f, contractFor(f, "Operation",
		map[string]any{"category": "location.city", "purpose": "loyalty.programme_operation", "recipients": []string{f.brand, f.partnerCo}}))
	a.enrol(f.member)
	a.enrol(bob)
	ended := a.joinContract(f.member, usesIt)["id"].(string)
	kept := []string{a.joinContract(f.member, analytics)["id"].(string), a.joinContract(f.member, operation)["id"].(string),
		a.joinContract(bob, usesIt)["id"].(string)}

	problemAt(t, a.do(req{Method: "POST", Path: "/v1/me/objections", Token: f.member, Body: map[string]any{"purpose": "loyalty.no_such_purpose"}}), 422, "/purpose")
	res := a.object(f.member, "loyalty.personalised_offers", 201)
	if fmt.Sprint(res["ended_exchanges"]) != fmt.Sprint([]any{ended}) || res["purpose_label"] == "" {
		t.Fatalf("objecting ended %v, want exactly [%s]", res["ended_exchanges"], ended)
	}
	if again := a.object(f.member, "loyalty.personalised_offers", 200); len(again["ended_exchanges"].([]any)) != 0 ||
		again["objected_at"] != res["objected_at"] {
		t.Fatalf("objecting again: %v", again)
	}

	ex := expect(t, a.do(req{Method: "GET", Path: "/v1/me/exchanges/" + ended, Token: f.member}), 200).json(t)
	if ex["status"] != "cancelled" || ex["bonus"].(map[string]any)["state"] != "voided" {
		t.Fatalf("the exchange using the purpose: status %v, bonus %v; want cancelled with the bonus voided", ex["status"], ex["bonus"])
	}
	for i, id := range kept {
		tok := f.member
		if i == 2 {
			tok = bob
		}
		if v := expect(t, a.do(req{Method: "GET", Path: "/v1/me/exchanges/" + id, Token: tok}), 200).json(t); v["status"] != "active" {
			t.Errorf("exchange %d, whose contract does not use the purpose or is another member's, is %v", i, v["status"])
		}
	}
	if me := expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: f.member}), 200).json(t); me["balance"].(map[string]any)["pending"] != float64(400) {
		t.Errorf("pending balance %v: want 400, the kept exchanges' bonuses (the ended one's voided)", me["balance"])
	}

	export := expect(t, a.do(req{Method: "GET", Path: "/v1/me/export", Token: f.member}), 200).json(t)
	var endings []string
	for _, e := range export["consent_log"].([]any) {
		e := e.(map[string]any)
		if e["kind"] != "joined" {
			endings = append(endings, fmt.Sprintf("%s %s by %s", e["exchange_id"], e["kind"], e["actor"]))
		}
	}
	if want := []string{ended + " cancelled by objection"}; fmt.Sprint(endings) != fmt.Sprint(want) {
		t.Fatalf("consent log endings %v, want %v", endings, want)
	}
	if objs := export["objections"].([]any); len(objs) != 1 || objs[0].(map[string]any)["purpose"] != "loyalty.personalised_offers" {
		t.Fatalf("export objections: %v", objs)
	}
	var told []string
	for _, e := range a.webhookEvents("exchange.cancelled") {
		if e.Payload["data"].(map[string]any)["exchange_id"] == ended {
			told = append(told, e.Recipient)
		}
	}
	sort.Strings(told)
	want := []string{f.brand, f.partnerCo}
	sort.Strings(want)
	if fmt.Sprint(told) != fmt.Sprint(want) {
		t.Errorf("exchange.cancelled went to %v, want %v", told, want)
	}
	var owed int
	if err := a.svc.db.Raw(`SELECT count(*) FROM deletion_acks WHERE exchange_id = ?`, ended).Scan(&owed).Error; err != nil || owed != 2 {
		t.Errorf("deletion duties of the ended exchange: %d (%v), want 2", owed, err)
	}

	// Joining refused until lifted; offers marked for alice only.
	if r := a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: f.member, Body: map[string]any{"contract_id": usesIt}}); r.Status != 409 || problemCode(t, r) != "objected-purpose" {
		t.Fatalf("joining a contract using the objected purpose: %d %s", r.Status, r.Body)
	}
	mine, r := a.offersAs(f.member)
	if mine[usesIt]["conflicts_with_objection"] != true || mine[analytics]["conflicts_with_objection"] != false ||
		mine[operation]["conflicts_with_objection"] != false || r.Header.Get("Cache-Control") != "private, no-store" {
		t.Fatalf("alice's offers: %v / %v / %v, Cache-Control %q", mine[usesIt]["conflicts_with_objection"],
			mine[analytics]["conflicts_with_objection"], mine[operation]["conflicts_with_objection"], r.Header.Get("Cache-Control"))
	}
	// With the shared cache live, alice's page (marked again) must not
	// reach anyone else.
	a.waitForSharedOffersCache(usesIt)
	if mine, _ := a.offersAs(f.member); mine[usesIt]["conflicts_with_objection"] != true {
		t.Fatalf("alice's offers with the shared cache live: %v", mine[usesIt])
	}
	public, r := a.offersAs("")
	if _, marked := public[usesIt]["conflicts_with_objection"]; marked || r.Header.Get("Cache-Control") != "public, max-age=5" {
		t.Fatalf("the public offers carry per-member data or are not public: %v %q", public[usesIt], r.Header.Get("Cache-Control"))
	}
	// After alice's marked page, the shared cache still answers bob and
	// strangers without her marks.
	if bobs, _ := a.offersAs(bob); bobs[usesIt]["conflicts_with_objection"] != false {
		t.Fatalf("bob's offers: %v", bobs[usesIt])
	}
	if again, _ := a.offersAs(""); fmt.Sprint(again[usesIt]) != fmt.Sprint(public[usesIt]) {
		t.Fatal("the public offers changed after a member's marked page")
	}

	list := expect(t, a.do(req{Method: "GET", Path: "/v1/me/objections", Token: f.member}), 200).json(t)["items"].([]any)
	if len(list) != 1 {
		t.Fatalf("objections: %v", list)
	}
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/objections/" + url.PathEscape("loyalty.personalised_offers"), Token: f.member}), 204)
	if r := a.do(req{Method: "DELETE", Path: "/v1/me/objections/loyalty.personalised_offers", Token: f.member}); r.Status != 404 || problemCode(t, r) != "objection-not-found" {
		t.Fatalf("lifting again: %d %s", r.Status, r.Body)
	}
	a.joinContract(f.member, usesIt)
	if mine, _ := a.offersAs(f.member); mine[usesIt]["conflicts_with_objection"] != false {
		t.Fatalf("after lifting, the offer is still marked: %v", mine[usesIt])
	}
}

// waitForSharedOffersCache waits until the public offers are served from
// the shared response cache (its change feed is live): a change to a
// contract made without telling the feed (triggers off) then stays unseen.
func (a *api) waitForSharedOffersCache(contractID string) {
	a.t.Helper()
	a.svc.runWorkers(a.t)
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		before, _ := a.offersAs("")
		if err := a.svc.db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(`SET LOCAL session_replication_role = replica`).Error; err != nil {
				return err
			}
			return tx.Exec(`UPDATE contracts SET terms = jsonb_set(terms, '{summary}', to_jsonb(CAST(? AS text))) WHERE id = ?`,
				fmt.Sprintf("unseen change %d", i), contractID).Error
		}); err != nil {
			a.t.Fatal(err)
		}
		after, _ := a.offersAs("")
		if after[contractID]["summary"] == before[contractID]["summary"] {
			return
		}
		if time.Now().After(deadline) {
			a.t.Fatal("the shared offers cache never became live")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEveryObjectionStaysInTheExportAndItsLocationAnswers: the Location a
// POST answers names the standing objection (GET 200, then 404 once
// lifted); the list of objections in force pages with sealed cursors and
// refuses a tampered one; the export keeps every objection the member
// made, the lifted one with when it was lifted, and an objection made again
// after a lift appears twice.
func TestEveryObjectionStaysInTheExportAndItsLocationAnswers(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	a.enrol(f.member)
	r := expect(t, a.do(req{Method: "POST", Path: "/v1/me/objections", Token: f.member, Body: map[string]any{"purpose": "research.market"}}), 201)
	loc := r.Header.Get("Location")
	one := expect(t, a.do(req{Method: "GET", Path: loc, Token: f.member}), 200).json(t)
	if one["purpose"] != "research.market" || one["lifted_at"] != nil {
		t.Fatalf("GET %s: %v", loc, one)
	}
	a.object(f.member, "communications.newsletter", 201)
	a.object(f.member, "analytics.audience_insights", 201)

	var seen []string
	path := "/v1/me/objections?limit=1"
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("the objection pages never end")
		}
		body := expect(t, a.do(req{Method: "GET", Path: path, Token: f.member}), 200).json(t)
		items := body["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("page of %d with limit 1", len(items))
		}
		seen = append(seen, items[0].(map[string]any)["purpose"].(string))
		next, _ := body["next_cursor"].(string)
		if next == "" {
			break
		}
		path = "/v1/me/objections?limit=1&cursor=" + url.QueryEscape(next)
		tampered := "/v1/me/objections?limit=1&cursor=" + url.QueryEscape(next[:len(next)-2]+"AA")
		problemAt(t, a.do(req{Method: "GET", Path: tampered, Token: f.member}), 422, "/query/cursor")
	}
	if fmt.Sprint(seen) != "[research.market communications.newsletter analytics.audience_insights]" {
		t.Fatalf("pages in order %v", seen)
	}
	problemAt(t, a.do(req{Method: "GET", Path: "/v1/me/objections?cursor=not-a-cursor", Token: f.member}), 422, "/query/cursor")

	expect(t, a.do(req{Method: "DELETE", Path: loc, Token: f.member}), 204)
	if r := a.do(req{Method: "GET", Path: loc, Token: f.member}); r.Status != 404 || problemCode(t, r) != "objection-not-found" {
		t.Fatalf("GET of a lifted objection: %d %s", r.Status, r.Body)
	}
	a.object(f.member, "research.market", 201)

	var export struct {
		Objections []struct {
			Purpose  string
			LiftedAt *string `json:"lifted_at"`
		}
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/me/export", Token: f.member}), 200).decode(t, &export)
	var lifted, standing []string
	for _, o := range export.Objections {
		if o.LiftedAt != nil {
			lifted = append(lifted, o.Purpose)
		} else {
			standing = append(standing, o.Purpose)
		}
	}
	sort.Strings(standing)
	if fmt.Sprint(lifted) != "[research.market]" || fmt.Sprint(standing) != "[analytics.audience_insights communications.newsletter research.market]" {
		t.Fatalf("export objections: lifted %v, standing %v", lifted, standing)
	}
}

// TestRestrictionIsReadableAndShownWhereverTheMemberIs: GET
// /v1/me/restriction answers the state PUT set, PUT /v1/me shows it like
// GET /v1/me, and a null where true or false is needed is 422 saying so.
func TestRestrictionIsReadableAndShownWhereverTheMemberIs(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	a.enrol(f.member)
	if got := expect(t, a.do(req{Method: "GET", Path: "/v1/me/restriction", Token: f.member}), 200).json(t); got["restricted"] != false {
		t.Fatalf("before: %v", got)
	}
	expect(t, a.do(req{Method: "PUT", Path: "/v1/me/restriction", Token: f.member, Body: map[string]any{"restricted": true}}), 200)
	got := expect(t, a.do(req{Method: "GET", Path: "/v1/me/restriction", Token: f.member}), 200).json(t)
	if got["restricted"] != true || len(got["periods"].([]any)) != 1 {
		t.Fatalf("after: %v", got)
	}
	put := expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: f.member, Body: map[string]any{"attributes": map[string]any{"location.city": "Bergen"}}}), 200).json(t)
	if put["restricted"] != true {
		t.Fatalf("PUT /v1/me hides the restriction: %v", put)
	}
	var r response
	a.unchangedBy("a null restriction", func() {
		r = a.do(req{Method: "PUT", Path: "/v1/me/restriction", Token: f.member, Body: map[string]any{"restricted": nil}})
	})
	problemAt(t, r, 422, "/restricted")
	if p := problemOf(t, r); len(p.Errors) != 1 || !strings.Contains(p.Errors[0].Detail, "null") {
		t.Fatalf("null restriction: %s", r.Body)
	}
	// A purpose key as long as a path segment may be is judged by the
	// catalogue in the body as in the path.
	long := "research." + strings.Repeat("x", 230)
	problemAt(t, a.do(req{Method: "POST", Path: "/v1/me/objections", Token: f.member, Body: map[string]any{"purpose": long}}), 422, "/purpose")
	if r := a.do(req{Method: "DELETE", Path: "/v1/me/objections/" + long, Token: f.member}); r.Status != 404 {
		t.Fatalf("DELETE of a long purpose: %d", r.Status)
	}
}
