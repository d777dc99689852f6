package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
)

// world is what a tour of every route needs to exist beforehand.
type world struct {
	f        fixtures
	contract string // published
	draft    string
	exchange string // alice's, active
	// session signs a browser in (web pages) and returns its Cookie value;
	// with the database down it still returns one (nobody's), so a tour
	// run then meets the page's own refusal.
	session func(role app.Role, sub string) string
}

func (a *api) world() world {
	a.t.Helper()
	f := a.fixtures()
	w := world{f: f, contract: a.publishContract(f, contractBody(f))}
	store := a.svc.store
	w.session = func(role app.Role, sub string) string {
		cookie, _ := newWebSession(store, role, sub, time.Hour)
		return cookie
	}
	w.draft = expect(a.t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: contractBody(f)}), 201).json(a.t)["id"].(string)
	a.enrol(f.member)
	w.exchange = a.joinContract(f.member, w.contract)["id"].(string)
	return w
}

// routeCall is one request of a tour, labelled with the route it exercises
// as fiber names it ("GET /v1/me/exchanges/:id").
type routeCall struct {
	route string
	r     req
	// web is the role of the signed-in browser a web page call (under
	// /account) is made as, its cookie in r.Headers; "" for the API and for
	// pages called signed out.
	web app.Role
}

// tour calls every route of the API once with a request that is valid as far
// as the edge can tell, so that every route that can touch the database
// does. sub is the member (and recipient/contract name) this tour uses;
// call returns the response, from which later steps take ids when it
// succeeded (otherwise they fall back to the world's).
func tour(w world, sub string, call func(routeCall) response) {
	t := func(role app.Role, s string) string { return tokenFor(role, s) }
	member := t(app.RoleMember, sub)
	id := func(r response, fallback string) string {
		if r.Status < 300 {
			if v, ok := jsonField(r.Body, "id"); ok {
				return v
			}
		}
		return fallback
	}
	do := func(route, method, path, tok string, body any) response {
		return call(routeCall{route: route, r: req{Method: method, Path: path, Token: tok, Body: body}})
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.yaml", "/.well-known/jwks.json", "/.well-known/gpc.json",
		"/v1/catalog/categories", "/v1/catalog/purposes", "/v1/offers", "/v1/programme"} {
		do("GET "+p, "GET", p, "", nil)
	}
	f := w.f
	do("PUT /v1/programme", "PUT", "/v1/programme", f.admin, programmeBody("EUR", "0.01"))
	do("PUT /v1/programme/tiers", "PUT", "/v1/programme/tiers", f.admin, tiersBody())
	do("GET /v1/programme/tiers", "GET", "/v1/programme/tiers", "", nil)
	do("POST /v1/recipients", "POST", "/v1/recipients", f.admin, map[string]any{
		"name": "R " + sub, "kind": "third_party", "country": "DE", "privacy_policy_url": "https://r.example/privacy"})
	do("GET /v1/recipients", "GET", "/v1/recipients", f.admin, nil)
	do("GET /v1/recipients/:id", "GET", "/v1/recipients/"+f.partnerCo, f.marketer, nil)

	draft := id(do("POST /v1/contracts", "POST", "/v1/contracts", f.marketer, contractBody(f)), w.draft)
	do("GET /v1/contracts", "GET", "/v1/contracts", f.marketer, nil)
	do("GET /v1/contracts/:id", "GET", "/v1/contracts/"+w.contract, "", nil)
	do("PATCH /v1/contracts/:id", "PATCH", "/v1/contracts/"+draft, f.marketer, map[string]any{"title": "Coffee club " + sub})
	do("POST /v1/contracts/:id/publish", "POST", "/v1/contracts/"+draft+"/publish", f.marketer, nil)
	do("POST /v1/contracts/:id/versions", "POST", "/v1/contracts/"+draft+"/versions", f.marketer, nil)
	do("GET /v1/contracts/:id/stats", "GET", "/v1/contracts/"+w.contract+"/stats", f.marketer, nil)
	do("GET /v1/contracts/:id/transparency", "GET", "/v1/contracts/"+w.contract+"/transparency", "", nil)
	do("GET /v1/contracts/:id/notice", "GET", "/v1/contracts/"+w.contract+"/notice", "", nil)
	do("POST /v1/contracts/:id/retire", "POST", "/v1/contracts/"+draft+"/retire", f.marketer, nil)

	do("PUT /v1/me", "PUT", "/v1/me", member, map[string]any{"attributes": map[string]any{
		"location.city": "Oslo", "commerce.purchase_history": []string{"espresso"}, "demographic.birthdate": "1990-05-01"}})
	do("GET /v1/me", "GET", "/v1/me", member, nil)
	ex := id(do("POST /v1/me/exchanges", "POST", "/v1/me/exchanges", member, map[string]any{"contract_id": w.contract}), w.exchange)
	do("GET /v1/me/exchanges", "GET", "/v1/me/exchanges", member, nil)
	do("GET /v1/me/exchanges/:id", "GET", "/v1/me/exchanges/"+ex, member, nil)
	do("GET /v1/me/exchanges/:id/record", "GET", "/v1/me/exchanges/"+ex+"/record", member, nil)
	do("POST /v1/me/exchanges/:id/renew", "POST", "/v1/me/exchanges/"+ex+"/renew", member, nil)
	do("GET /v1/me/points", "GET", "/v1/me/points", member, nil)
	do("POST /v1/me/redemptions", "POST", "/v1/me/redemptions", member, map[string]any{"points": 1, "reference": "coffee"})
	reward := id(do("POST /v1/rewards", "POST", "/v1/rewards", f.marketer, map[string]any{"name": "Gift " + sub, "cost": 1}), zeroUUID)
	do("GET /v1/rewards", "GET", "/v1/rewards", "", nil)
	do("GET /v1/rewards/:id", "GET", "/v1/rewards/"+reward, "", nil)
	do("PATCH /v1/rewards/:id", "PATCH", "/v1/rewards/"+reward, f.marketer, map[string]any{"cost": 2})
	redeemed := do("POST /v1/me/redemptions", "POST", "/v1/me/redemptions", member, map[string]any{"reward_id": reward})
	redemption := zeroUUID
	if redeemed.Status == 201 {
		var r struct{ Redemption struct{ ID string } }
		if json.Unmarshal(redeemed.Body, &r) == nil {
			redemption = r.Redemption.ID
		}
	}
	do("GET /v1/me/redemptions", "GET", "/v1/me/redemptions", member, nil)
	do("POST /v1/me/redemptions/:id/cancel", "POST", "/v1/me/redemptions/"+redemption+"/cancel", member, nil)
	do("POST /v1/rewards/:id/retire", "POST", "/v1/rewards/"+reward+"/retire", f.marketer, nil)
	do("GET /v1/me/transparency", "GET", "/v1/me/transparency", member, nil)
	do("GET /v1/me/export", "GET", "/v1/me/export", member, nil)
	do("GET /v1/partner/members/:member_id/data", "GET", "/v1/partner/members/"+url.PathEscape(sub)+"/data?purpose=loyalty.personalised_offers", f.partner, nil)
	do("GET /v1/me/access-log", "GET", "/v1/me/access-log", member, nil)
	do("GET /v1/me/recipients", "GET", "/v1/me/recipients", member, nil)
	do("GET /v1/me/restriction", "GET", "/v1/me/restriction", member, nil)
	do("PUT /v1/me/restriction", "PUT", "/v1/me/restriction", member, map[string]any{"restricted": true})
	do("PUT /v1/me/restriction", "PUT", "/v1/me/restriction", member, map[string]any{"restricted": false})
	do("POST /v1/me/objections", "POST", "/v1/me/objections", member, map[string]any{"purpose": "research.market"})
	do("GET /v1/me/objections", "GET", "/v1/me/objections", member, nil)
	do("GET /v1/me/objections/:purpose", "GET", "/v1/me/objections/research.market", member, nil)
	do("DELETE /v1/me/objections/:purpose", "DELETE", "/v1/me/objections/research.market", member, nil)
	do("PUT /v1/partner/webhook", "PUT", "/v1/partner/webhook", f.partner, map[string]any{"url": "http://127.0.0.1:9/hooks"})
	do("DELETE /v1/me/exchanges/:id", "DELETE", "/v1/me/exchanges/"+ex, member, nil)
	do("POST /v1/partner/deletions", "POST", "/v1/partner/deletions", f.partner, map[string]any{"exchange_id": ex})
	do("GET /v1/audit", "GET", "/v1/audit", f.admin, nil)
	do("GET /v1/audit/overdue-deletions", "GET", "/v1/audit/overdue-deletions", f.admin, nil)
	do("GET /v1/audit/webhook-deliveries", "GET", "/v1/audit/webhook-deliveries", f.admin, nil)
	do("GET /v1/reports/points-liability", "GET", "/v1/reports/points-liability?from=2026-01-01&to=2026-02-01", f.admin, nil)
	webTour(w, sub, call)
	do("DELETE /v1/me", "DELETE", "/v1/me", member, nil)
}

// webTour calls every web page (/account) once, as a browser: signed in as
// the tour's member (or as a marketer) with the session cookie, forms as
// application/x-www-form-urlencoded with the session's CSRF token. One line
// per route: page(route, who, path) for a GET, form(route, who, path,
// fields) for a POST; who is "" for a page anyone may open.
func webTour(w world, sub string, call func(routeCall) response) {
	cookies := map[app.Role]string{}
	page := func(route string, who app.Role, path string) response {
		if who != "" && cookies[who] == "" {
			cookies[who] = w.session(who, sub)
		}
		return call(routeCall{route: route, r: webGet(cookies[who], path), web: who})
	}
	form := func(route string, who app.Role, path string, fields url.Values) response {
		if who != "" && cookies[who] == "" {
			cookies[who] = w.session(who, sub)
		}
		return call(routeCall{route: route, r: webPost(cookies[who], path, fields), web: who})
	}
	const member, marketer = app.RoleMember, app.RoleMarketer
	page("GET /account/static/quid.css", "", "/account/static/quid.css")
	page("GET /account/signin", "", "/account/signin?return_to=%2Faccount")
	page("GET /account/signed-out", "", "/account/signed-out")
	page("GET /account/erased", "", "/account/erased")
	page("GET /account", member, "/account")

	// The member's offers and exchanges (a join through the pages gives the
	// exchange the later lines use; the world's when it did not succeed).
	c := w.contract
	page("GET /account/offers", member, "/account/offers?limit=20")
	page("GET /account/offers/:id", member, "/account/offers/"+c)
	form("POST /account/offers/:id/join", member, "/account/offers/"+c+"/join", nil)
	ex := w.exchange
	joined := form("POST /account/offers/:id/join/confirm", member, "/account/offers/"+c+"/join/confirm", url.Values{"key": {"tour-" + sub}})
	if loc := joined.Header.Get("Location"); joined.Status == 303 && strings.HasPrefix(loc, "/account/exchanges/") {
		ex = strings.SplitN(strings.TrimPrefix(loc, "/account/exchanges/"), "?", 2)[0]
	}
	page("GET /account/exchanges", member, "/account/exchanges?limit=20")
	page("GET /account/exchanges/:id", member, "/account/exchanges/"+ex)
	page("GET /account/exchanges/:id/receipt", member, "/account/exchanges/"+ex+"/receipt")
	page("GET /account/exchanges/:id/record", member, "/account/exchanges/"+ex+"/record")
	form("POST /account/exchanges/:id/renew", member, "/account/exchanges/"+ex+"/renew", nil)
	page("GET /account/points", member, "/account/points?limit=20")
	form("POST /account/rewards/:id/redeem", member, "/account/rewards/"+zeroUUID+"/redeem", url.Values{"key": {"tour-r-" + sub}})
	form("POST /account/redemptions/:id/cancel", member, "/account/redemptions/"+zeroUUID+"/cancel", nil)
	form("POST /account/exchanges/:id/cancel", member, "/account/exchanges/"+ex+"/cancel", nil)
	form("POST /account/exchanges/:id/cancel/confirm", member, "/account/exchanges/"+ex+"/cancel/confirm", nil)

	// Who read and who holds the member's data, the profile, the rights.
	page("GET /account/access-log", member, "/account/access-log")
	page("GET /account/recipients", member, "/account/recipients")
	page("GET /account/profile", member, "/account/profile")
	form("POST /account/profile", member, "/account/profile", url.Values{"key": {"contact.email"}, "contact.email": {"tour@example.com"}})
	form("POST /account/profile/remove", member, "/account/profile/remove", url.Values{"key": {"contact.email"}})
	page("GET /account/rights", member, "/account/rights")
	page("GET /account/rights/export", member, "/account/rights/export")
	form("POST /account/rights/restriction", member, "/account/rights/restriction", url.Values{"restricted": {"true"}})
	form("POST /account/rights/restriction", member, "/account/rights/restriction", url.Values{"restricted": {"false"}})
	form("POST /account/rights/objections", member, "/account/rights/objections", url.Values{"purpose": {"research.market"}})
	form("POST /account/rights/objections/lift", member, "/account/rights/objections/lift", url.Values{"purpose": {"research.market"}})

	// The marketer's contracts.
	page("GET /account/contracts", marketer, "/account/contracts?status=published&limit=20")
	page("GET /account/contracts/:id", marketer, "/account/contracts/"+c)
	page("GET /account/contracts/:id/publish", marketer, "/account/contracts/"+w.draft+"/publish")
	form("POST /account/contracts/:id/publish", marketer, "/account/contracts/"+w.draft+"/publish", nil)
	page("GET /account/contracts/:id/new-version", marketer, "/account/contracts/"+c+"/new-version")
	form("POST /account/contracts/:id/new-version", marketer, "/account/contracts/"+c+"/new-version", nil)
	page("GET /account/contracts/:id/retire", marketer, "/account/contracts/"+w.draft+"/retire")
	form("POST /account/contracts/:id/retire", marketer, "/account/contracts/"+w.draft+"/retire", nil)

	// Last: they end the member's session.
	form("POST /account/signout", marketer, "/account/signout", nil)
	form("POST /account/rights/erase", member, "/account/rights/erase", nil)
	form("POST /account/rights/erase/confirm", member, "/account/rights/erase/confirm", nil)
}

// tokenFor mints a test token without a testing.TB, for tours run from
// several goroutines.
func tokenFor(role app.Role, sub string) string {
	return token(panicTB{}, role, sub)
}

type panicTB struct{ testing.TB }

func (panicTB) Helper()                   {}
func (panicTB) Fatal(args ...any)         { panic(fmt.Sprint(args...)) }
func (panicTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

func jsonField(body []byte, name string) (string, bool) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return "", false
	}
	v, ok := m[name].(string)
	return v, ok
}

// servedRoutes lists the routes the app registers, as tour labels them.
func servedRoutes(a *api) []string {
	seen := map[string]bool{}
	for _, r := range a.svc.app.GetRoutes(true) {
		if r.Method == "HEAD" || r.Method == "USE" || r.Path == "/" {
			continue
		}
		seen[r.Method+" "+strings.TrimSuffix(r.Path, "/")] = true
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkTourCoversEveryRoute fails when the server has a route the tour
// does not call, so a new route cannot escape the tests built on it.
func checkTourCoversEveryRoute(t *testing.T, a *api, toured map[string]bool) {
	t.Helper()
	for _, r := range servedRoutes(a) {
		if !toured[r] {
			t.Errorf("route %s is served but not in tour(); add it", r)
		}
	}
}
