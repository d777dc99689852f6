package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/quidpro/quid/app"
)

// The principals of the authorization matrix, in the order of its columns.
const (
	asNone          = iota // no Authorization header
	asMember               // alice: owns the exchanges and the data the rows name
	asOtherMember          // bob: an enrolled member with exchanges of his own
	asMarketer             // mark
	asPartner              // PartnerCo: a recipient the contracts name
	asOtherPartner         // AdCo: a registered recipient no contract names
	asOrphanPartner        // partner tokens whose subject is no recipient id, some of them another spelling of PartnerCo's
	asAdmin                // root
	principalCount
)

var principalNames = [principalCount]string{"none", "member", "other member", "marketer", "partner",
	"other partner", "partner without recipient", "admin"}

// matrixWorld is what the matrix rows build their requests from: one
// published contract both members joined, and the principals' tokens.
type matrixWorld struct {
	a      *api
	f      fixtures
	tokens [principalCount][]string // a column may hold several tokens, each a case
	// cookies are the principals' signed-in browsers, for the web rows: a
	// partner cannot sign in to the pages, yet a session row saying so
	// must still be refused.
	cookies  [principalCount][]string
	contract string // published, with an immediately vested bonus
	draft    string
	aliceEx  string // alice's exchange of contract, active
	// objections counts the purposes freshObjectionPurpose handed out.
	objections int
}

// contract publishes a fresh copy of the matrix's contract, for rows whose
// success uses it up (a join, a retirement).
func (m *matrixWorld) freshContract() string {
	body := contractBody(m.f)
	reward(body)["vesting"] = "PT0S"
	return m.a.publishContract(m.f, body)
}

// freshObjectionPurpose is a catalogue purpose no contract of the world
// uses and nobody objects to yet, a new one for each row that needs one.
func (m *matrixWorld) freshObjectionPurpose() string {
	m.objections++
	return []string{"research.market", "analytics.audience_insights", "communications.sms_marketing", "communications.newsletter"}[m.objections-1]
}

func (m *matrixWorld) freshDraft() string {
	return expect(m.a.t, m.a.do(req{Method: "POST", Path: "/v1/contracts", Token: m.f.marketer, Body: contractBody(m.f)}), 201).json(m.a.t)["id"].(string)
}

func newMatrixWorld(a *api) *matrixWorld {
	f := a.fixtures()
	m := &matrixWorld{a: a, f: f}
	partner := func(sub string) string { return token(a.t, app.RolePartner, sub) }
	// A recipient is named by its id as the API hands it out: PostgreSQL
	// (and uuid.Parse) also read other spellings of it, which must name no one.
	orphans := []string{partner(uuid.NewString())}
	for _, spelling := range []string{strings.ToUpper(f.partnerCo), "{" + f.partnerCo + "}",
		strings.ReplaceAll(f.partnerCo, "-", ""), "urn:uuid:" + f.partnerCo} {
		orphans = append(orphans, partner(spelling))
	}
	m.tokens = [principalCount][]string{
		asNone: {""}, asMember: {f.member}, asOtherMember: {token(a.t, app.RoleMember, "bob")}, asMarketer: {f.marketer},
		asPartner: {f.partner}, asOtherPartner: {partner(f.adCo)}, asOrphanPartner: orphans, asAdmin: {f.admin},
	}
	m.cookies = [principalCount][]string{
		asNone: {""}, asMember: {a.webSession(app.RoleMember, "alice")}, asOtherMember: {a.webSession(app.RoleMember, "bob")},
		asMarketer: {a.webSession(app.RoleMarketer, "mark")}, asPartner: {a.webSession(app.RolePartner, f.partnerCo)},
		asOtherPartner: {a.webSession(app.RolePartner, f.adCo)}, asOrphanPartner: {a.webSession(app.RolePartner, uuid.NewString())},
		asAdmin: {a.webSession(app.RoleAdmin, "root")},
	}
	m.contract = m.freshContract()
	m.draft = m.freshDraft()
	a.enrol(f.member)
	a.enrol(m.tokens[asOtherMember][0])
	m.aliceEx = a.joinContract(f.member, m.contract)["id"].(string)
	a.joinContract(m.tokens[asOtherMember][0], m.contract)
	// Something for every partner-facing list to show: a read by PartnerCo.
	expect(a.t, a.do(req{Method: "GET", Path: "/v1/partner/members/alice/data?purpose=loyalty.personalised_offers", Token: f.partner}), 200)
	return m
}

// authzRow is one row of the matrix: a request to a route and the status
// every principal gets for it. req builds the request once per row (it may
// create what the owner's call uses up); the matrix sends it with each
// principal's token in turn.
type authzRow struct {
	route string // as servedRoutes names it
	what  string // tells rows of one route apart
	req   func(m *matrixWorld) req
	want  [principalCount]int
	// web rows are pages (under /account): sent with each principal's
	// session cookie (and its CSRF token in a form) instead of a token.
	web bool
}

// Columns: none, member, other member, marketer, partner, other partner,
// partner without recipient, admin.
var (
	public      = [principalCount]int{200, 200, 200, 200, 200, 200, 200, 200}
	adminOnly   = [principalCount]int{401, 403, 403, 403, 403, 403, 403, 200}
	staffReads  = [principalCount]int{401, 403, 403, 200, 403, 403, 403, 200}
	memberReads = [principalCount]int{401, 200, 200, 403, 403, 403, 403, 403}
)

func get(path string) func(*matrixWorld) req {
	return func(*matrixWorld) req { return req{Method: "GET", Path: path} }
}

var authzMatrix = []authzRow{
	{route: "GET /healthz", req: get("/healthz"), want: public},
	{route: "GET /readyz", req: get("/readyz"), want: public},
	{route: "GET /metrics", req: get("/metrics"), want: public},
	{route: "GET /openapi.yaml", req: get("/openapi.yaml"), want: public},
	{route: "GET /.well-known/jwks.json", req: get("/.well-known/jwks.json"), want: public},
	{route: "GET /.well-known/gpc.json", req: get("/.well-known/gpc.json"), want: public},
	{route: "GET /v1/catalog/categories", req: get("/v1/catalog/categories"), want: public},
	{route: "GET /v1/catalog/purposes", req: get("/v1/catalog/purposes"), want: public},
	{route: "GET /v1/offers", req: get("/v1/offers"), want: public},
	{route: "GET /v1/programme", req: get("/v1/programme"), want: public},
	{route: "PUT /v1/programme", want: adminOnly, req: func(*matrixWorld) req {
		return req{Method: "PUT", Path: "/v1/programme", Body: programmeBody("EUR", "0.01")}
	}},
	// The PUT row comes first: GET answers 404 until tiers are set.
	{route: "PUT /v1/programme/tiers", want: adminOnly, req: func(*matrixWorld) req {
		return req{Method: "PUT", Path: "/v1/programme/tiers", Body: tiersBody()}
	}},
	{route: "GET /v1/programme/tiers", req: get("/v1/programme/tiers"), want: public},

	{route: "POST /v1/recipients", want: [principalCount]int{401, 403, 403, 403, 403, 403, 403, 201},
		req: func(*matrixWorld) req {
			return req{Method: "POST", Path: "/v1/recipients", Body: map[string]any{
				"name": "Matrix " + uuid.NewString()[:8], "kind": "third_party", "country": "DE", "privacy_policy_url": "https://m.example/privacy"}}
		}},
	{route: "GET /v1/recipients", req: get("/v1/recipients"), want: staffReads},
	{route: "GET /v1/recipients/:id", want: staffReads,
		req: func(m *matrixWorld) req { return req{Method: "GET", Path: "/v1/recipients/" + m.f.partnerCo} }},

	{route: "POST /v1/contracts", want: [principalCount]int{401, 403, 403, 201, 403, 403, 403, 403},
		req: func(m *matrixWorld) req { return req{Method: "POST", Path: "/v1/contracts", Body: contractBody(m.f)} }},
	{route: "GET /v1/contracts", req: get("/v1/contracts"), want: staffReads},
	{route: "GET /v1/contracts/:id", what: "published", want: public,
		req: func(m *matrixWorld) req { return req{Method: "GET", Path: "/v1/contracts/" + m.contract} }},
	// A draft exists only for staff: everyone else is told there is no such contract.
	{route: "GET /v1/contracts/:id", what: "draft", want: [principalCount]int{404, 404, 404, 200, 404, 404, 404, 200},
		req: func(m *matrixWorld) req { return req{Method: "GET", Path: "/v1/contracts/" + m.draft} }},
	{route: "GET /v1/contracts/:id/transparency", what: "published", want: public,
		req: func(m *matrixWorld) req {
			return req{Method: "GET", Path: "/v1/contracts/" + m.contract + "/transparency"}
		}},
	{route: "GET /v1/contracts/:id/transparency", what: "draft", want: [principalCount]int{404, 404, 404, 200, 404, 404, 404, 200},
		req: func(m *matrixWorld) req {
			return req{Method: "GET", Path: "/v1/contracts/" + m.draft + "/transparency"}
		}},
	{route: "GET /v1/contracts/:id/notice", what: "published", want: public,
		req: func(m *matrixWorld) req { return req{Method: "GET", Path: "/v1/contracts/" + m.contract + "/notice"} }},
	// A draft has no notice, for staff either: the notice is of published terms.
	{route: "GET /v1/contracts/:id/notice", what: "draft", want: [principalCount]int{404, 404, 404, 404, 404, 404, 404, 404},
		req: func(m *matrixWorld) req { return req{Method: "GET", Path: "/v1/contracts/" + m.draft + "/notice"} }},
	{route: "PATCH /v1/contracts/:id", want: [principalCount]int{401, 403, 403, 200, 403, 403, 403, 403},
		req: func(m *matrixWorld) req {
			return req{Method: "PATCH", Path: "/v1/contracts/" + m.draft, Body: map[string]any{"title": "Renamed"}}
		}},
	{route: "POST /v1/contracts/:id/publish", want: [principalCount]int{401, 403, 403, 200, 403, 403, 403, 403},
		req: func(m *matrixWorld) req {
			return req{Method: "POST", Path: "/v1/contracts/" + m.freshDraft() + "/publish"}
		}},
	{route: "POST /v1/contracts/:id/versions", want: [principalCount]int{401, 403, 403, 201, 403, 403, 403, 403},
		req: func(m *matrixWorld) req {
			return req{Method: "POST", Path: "/v1/contracts/" + m.contract + "/versions"}
		}},
	{route: "GET /v1/contracts/:id/stats", want: staffReads,
		req: func(m *matrixWorld) req { return req{Method: "GET", Path: "/v1/contracts/" + m.contract + "/stats"} }},
	{route: "POST /v1/contracts/:id/retire", want: [principalCount]int{401, 403, 403, 200, 403, 403, 403, 403},
		req: func(m *matrixWorld) req {
			return req{Method: "POST", Path: "/v1/contracts/" + m.freshContract() + "/retire"}
		}},

	// Each member acts on their own profile and balance.
	{route: "PUT /v1/me", want: memberReads,
		req: func(*matrixWorld) req {
			return req{Method: "PUT", Path: "/v1/me", Body: map[string]any{"attributes": map[string]any{"location.city": "Bergen"}}}
		}},
	{route: "GET /v1/me", req: get("/v1/me"), want: memberReads},
	{route: "GET /v1/me/exchanges", req: get("/v1/me/exchanges"), want: memberReads},
	{route: "POST /v1/me/exchanges", want: [principalCount]int{401, 201, 201, 403, 403, 403, 403, 403},
		req: func(m *matrixWorld) req {
			return req{Method: "POST", Path: "/v1/me/exchanges", Body: map[string]any{"contract_id": m.freshContract()}}
		}},
	// Another member's exchange does not exist for bob (DESIGN rule 8).
	{route: "GET /v1/me/exchanges/:id", want: [principalCount]int{401, 200, 404, 403, 403, 403, 403, 403},
		req: func(m *matrixWorld) req { return req{Method: "GET", Path: "/v1/me/exchanges/" + m.aliceEx} }},
	// The consent record follows the exchange: bob's is not found either.
	{route: "GET /v1/me/exchanges/:id/record", want: [principalCount]int{401, 200, 404, 403, 403, 403, 403, 403},
		req: func(m *matrixWorld) req { return req{Method: "GET", Path: "/v1/me/exchanges/" + m.aliceEx + "/record"} }},
	{route: "DELETE /v1/me/exchanges/:id", want: [principalCount]int{401, 200, 404, 403, 403, 403, 403, 403},
		req: func(m *matrixWorld) req {
			ex := m.a.joinContract(m.f.member, m.freshContract())["id"].(string)
			return req{Method: "DELETE", Path: "/v1/me/exchanges/" + ex}
		}},
	// Renewal of alice's one-hour consent, its window opened.
	{route: "POST /v1/me/exchanges/:id/renew", want: [principalCount]int{401, 200, 404, 403, 403, 403, 403, 403},
		req: func(m *matrixWorld) req {
			body := contractBody(m.f)
			body["duration"] = "PT1H"
			ex := m.a.joinContract(m.f.member, m.a.publishContract(m.f, body))["id"].(string)
			m.a.openRenewalWindow(ex)
			return req{Method: "POST", Path: "/v1/me/exchanges/" + ex + "/renew"}
		}},
	{route: "GET /v1/me/points", req: get("/v1/me/points"), want: memberReads},
	{route: "POST /v1/me/redemptions", want: [principalCount]int{401, 201, 201, 403, 403, 403, 403, 403},
		req: func(*matrixWorld) req {
			return req{Method: "POST", Path: "/v1/me/redemptions", Body: map[string]any{"points": 1, "reference": "coffee"}}
		}},
	{route: "POST /v1/me/redemptions", what: "a reward of the catalogue", want: [principalCount]int{401, 201, 201, 403, 403, 403, 403, 403},
		req: func(m *matrixWorld) req {
			return req{Method: "POST", Path: "/v1/me/redemptions", Body: map[string]any{"reward_id": m.a.createReward(m.f, map[string]any{"cost": 1})}}
		}},
	{route: "GET /v1/me/redemptions", req: get("/v1/me/redemptions"), want: memberReads},
	// Alice's redemption: only she names it.
	{route: "POST /v1/me/redemptions/:id/cancel", want: [principalCount]int{401, 200, 404, 403, 403, 403, 403, 403},
		req: func(m *matrixWorld) req {
			reward := m.a.createReward(m.f, map[string]any{"cost": 1})
			id := expect(m.a.t, m.a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: m.f.member, Body: map[string]any{"reward_id": reward}}), 201).
				json(m.a.t)["redemption"].(map[string]any)["id"].(string)
			return req{Method: "POST", Path: "/v1/me/redemptions/" + id + "/cancel"}
		}},
	{route: "GET /v1/rewards", req: get("/v1/rewards"), want: public},
	{route: "GET /v1/rewards/:id", want: public, req: func(m *matrixWorld) req {
		return req{Method: "GET", Path: "/v1/rewards/" + m.a.createReward(m.f, nil)}
	}},
	{route: "POST /v1/rewards", want: [principalCount]int{401, 403, 403, 201, 403, 403, 403, 403},
		req: func(*matrixWorld) req { return req{Method: "POST", Path: "/v1/rewards", Body: rewardBody(nil)} }},
	{route: "PATCH /v1/rewards/:id", want: [principalCount]int{401, 403, 403, 200, 403, 403, 403, 403},
		req: func(m *matrixWorld) req {
			return req{Method: "PATCH", Path: "/v1/rewards/" + m.a.createReward(m.f, nil), Body: map[string]any{"cost": 2}}
		}},
	{route: "POST /v1/rewards/:id/retire", want: [principalCount]int{401, 403, 403, 200, 403, 403, 403, 403},
		req: func(m *matrixWorld) req {
			return req{Method: "POST", Path: "/v1/rewards/" + m.a.createReward(m.f, nil) + "/retire"}
		}},
	{route: "GET /v1/me/transparency", req: get("/v1/me/transparency"), want: memberReads},
	{route: "GET /v1/me/export", req: get("/v1/me/export"), want: memberReads},
	{route: "GET /v1/me/access-log", req: get("/v1/me/access-log"), want: memberReads},
	{route: "GET /v1/me/recipients", req: get("/v1/me/recipients"), want: memberReads},
	// Lifting a restriction nobody asked for changes nothing, so the partner
	// read below still answers.
	{route: "GET /v1/me/restriction", req: get("/v1/me/restriction"), want: memberReads},
	{route: "PUT /v1/me/restriction", want: memberReads,
		req: func(*matrixWorld) req {
			return req{Method: "PUT", Path: "/v1/me/restriction", Body: map[string]any{"restricted": false}}
		}},
	// A purpose no contract of the world uses: nothing ends.
	{route: "POST /v1/me/objections", want: [principalCount]int{401, 201, 201, 403, 403, 403, 403, 403},
		req: func(m *matrixWorld) req {
			purpose := m.freshObjectionPurpose()
			return req{Method: "POST", Path: "/v1/me/objections", Body: map[string]any{"purpose": purpose}}
		}},
	{route: "GET /v1/me/objections", req: get("/v1/me/objections"), want: memberReads},
	// Each member objects first and reads their own; only a member's token
	// names an objection at all.
	{route: "GET /v1/me/objections/:purpose", want: [principalCount]int{401, 200, 200, 403, 403, 403, 403, 403},
		req: func(m *matrixWorld) req {
			purpose := m.freshObjectionPurpose()
			for _, tok := range []string{m.f.member, m.tokens[asOtherMember][0]} {
				expect(m.a.t, m.a.do(req{Method: "POST", Path: "/v1/me/objections", Token: tok, Body: map[string]any{"purpose": purpose}}), 201)
			}
			return req{Method: "GET", Path: "/v1/me/objections/" + purpose}
		}},
	// Each member objects first; the owner lifts their own (204), and only a
	// member's token names an objection at all.
	{route: "DELETE /v1/me/objections/:purpose", want: [principalCount]int{401, 204, 204, 403, 403, 403, 403, 403},
		req: func(m *matrixWorld) req {
			purpose := m.freshObjectionPurpose()
			for _, tok := range []string{m.f.member, m.tokens[asOtherMember][0]} {
				expect(m.a.t, m.a.do(req{Method: "POST", Path: "/v1/me/objections", Token: tok, Body: map[string]any{"purpose": purpose}}), 201)
			}
			return req{Method: "DELETE", Path: "/v1/me/objections/" + purpose}
		}},

	// A partner reads only what alice granted it; for every other partner the
	// answer is the one a stranger gets (403 no-consent), never whether alice
	// is a member.
	{route: "GET /v1/partner/members/:member_id/data", want: [principalCount]int{401, 403, 403, 403, 200, 403, 403, 403},
		req: get("/v1/partner/members/alice/data?purpose=loyalty.personalised_offers")},
	{route: "PUT /v1/partner/webhook", want: [principalCount]int{401, 403, 403, 403, 200, 200, 403, 403},
		req: func(*matrixWorld) req {
			return req{Method: "PUT", Path: "/v1/partner/webhook", Body: map[string]any{"url": "http://127.0.0.1:9/hooks"}}
		}},
	// An ended exchange of alice's that named PartnerCo: no other partner
	// learns it exists.
	{route: "POST /v1/partner/deletions", want: [principalCount]int{401, 403, 403, 403, 200, 404, 404, 403},
		req: func(m *matrixWorld) req {
			ex := m.a.joinContract(m.f.member, m.freshContract())["id"].(string)
			expect(m.a.t, m.a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + ex, Token: m.f.member}), 200)
			return req{Method: "POST", Path: "/v1/partner/deletions", Body: map[string]any{"exchange_id": ex}}
		}},

	{route: "GET /v1/audit", req: get("/v1/audit"), want: adminOnly},
	{route: "GET /v1/audit/overdue-deletions", req: get("/v1/audit/overdue-deletions"), want: adminOnly},
	{route: "GET /v1/audit/webhook-deliveries", req: get("/v1/audit/webhook-deliveries"), want: adminOnly},
	{route: "GET /v1/reports/points-liability", req: get("/v1/reports/points-liability?from=2026-01-01&to=2026-02-01"), want: adminOnly},

	// The web pages (issue 13), signed in with a session cookie: a page a
	// principal may not open is a 403 page, signed out a GET is sent to sign
	// in (303) and a form is a 401 page. One line per route.
	{route: "GET /account/static/quid.css", web: true, req: webRow("GET", "/account/static/quid.css", nil), want: public},
	{route: "GET /account/signin", web: true, req: webRow("GET", "/account/signin", nil), want: public},
	{route: "GET /account/signed-out", web: true, req: webRow("GET", "/account/signed-out", nil), want: public},
	// A member's start page; a marketer's is their contracts.
	{route: "GET /account", web: true, req: webRow("GET", "/account", nil), want: [principalCount]int{303, 200, 200, 303, 403, 403, 403, 303}},
	{route: "GET /account/erased", web: true, req: webRow("GET", "/account/erased", nil), want: public},
	{route: "GET /account/offers", web: true, req: webRow("GET", "/account/offers", nil), want: memberPage},
	{route: "GET /account/offers/:id", web: true, req: webAt("GET", func(m *matrixWorld) string { return "/account/offers/" + m.contract }, nil), want: memberPage},
	{route: "POST /account/offers/:id/join", web: true, want: memberForm(200, 200),
		req: webAt("POST", func(m *matrixWorld) string { return "/account/offers/" + m.freshContract() + "/join" }, nil)},
	{route: "POST /account/offers/:id/join/confirm", web: true, want: memberForm(303, 303),
		req: webAt("POST", func(m *matrixWorld) string { return "/account/offers/" + m.freshContract() + "/join/confirm" }, url.Values{"key": {"matrix-join"}})},
	{route: "GET /account/exchanges", web: true, req: webRow("GET", "/account/exchanges", nil), want: memberPage},
	{route: "GET /account/exchanges/:id", web: true, req: webAt("GET", aliceExchange(""), nil), want: alicesPage},
	{route: "GET /account/exchanges/:id/receipt", web: true, req: webAt("GET", aliceExchange("/receipt"), nil), want: alicesPage},
	{route: "GET /account/exchanges/:id/record", web: true, req: webAt("GET", aliceExchange("/record"), nil), want: alicesPage},
	// Not yet in its renewal window: a 409 page for alice, bob learns nothing.
	{route: "POST /account/exchanges/:id/renew", web: true, req: webAt("POST", aliceExchange("/renew"), nil), want: memberForm(409, 404)},
	{route: "GET /account/points", web: true, req: webRow("GET", "/account/points", nil), want: memberPage},
	{route: "POST /account/rewards/:id/redeem", web: true, want: memberForm(404, 404),
		req: webAt("POST", func(*matrixWorld) string { return "/account/rewards/" + zeroUUID + "/redeem" }, url.Values{"key": {"matrix-redeem"}})},
	{route: "POST /account/redemptions/:id/cancel", web: true, want: memberForm(404, 404),
		req: webAt("POST", func(*matrixWorld) string { return "/account/redemptions/" + zeroUUID + "/cancel" }, nil)},
	{route: "POST /account/exchanges/:id/cancel", web: true, req: webAt("POST", aliceExchange("/cancel"), nil), want: memberForm(200, 404)},
	{route: "POST /account/exchanges/:id/cancel/confirm", web: true, want: memberForm(303, 404),
		req: webAt("POST", func(m *matrixWorld) string {
			return "/account/exchanges/" + m.a.joinContract(m.f.member, m.freshContract())["id"].(string) + "/cancel/confirm"
		}, nil)},
	{route: "GET /account/access-log", web: true, req: webRow("GET", "/account/access-log", nil), want: memberPage},
	{route: "GET /account/recipients", web: true, req: webRow("GET", "/account/recipients", nil), want: memberPage},
	{route: "GET /account/profile", web: true, req: webRow("GET", "/account/profile", nil), want: memberPage},
	{route: "POST /account/profile", web: true, want: memberForm(303, 303),
		req: webRow("POST", "/account/profile", url.Values{"key": {"contact.email"}, "contact.email": {"matrix@example.com"}})},
	{route: "POST /account/profile/remove", web: true, want: memberForm(303, 303),
		req: webRow("POST", "/account/profile/remove", url.Values{"key": {"contact.email"}})},
	{route: "GET /account/rights", web: true, req: webRow("GET", "/account/rights", nil), want: memberPage},
	{route: "GET /account/rights/export", web: true, req: webRow("GET", "/account/rights/export", nil), want: memberPage},
	{route: "POST /account/rights/restriction", web: true, want: memberForm(303, 303),
		req: webRow("POST", "/account/rights/restriction", url.Values{"restricted": {"false"}})},
	{route: "POST /account/rights/objections", web: true, want: memberForm(303, 303),
		req: webRow("POST", "/account/rights/objections", url.Values{"purpose": {"loyalty.personalised_offers"}})},
	{route: "POST /account/rights/objections/lift", web: true, want: memberForm(303, 303),
		req: webRow("POST", "/account/rights/objections/lift", url.Values{"purpose": {"loyalty.personalised_offers"}})},
	// The confirmation step writes nothing.
	{route: "POST /account/rights/erase", web: true, req: webRow("POST", "/account/rights/erase", nil), want: memberForm(200, 200)},

	{route: "GET /account/contracts", web: true, req: webRow("GET", "/account/contracts", nil), want: staffPage},
	{route: "GET /account/contracts/:id", web: true, req: webAt("GET", func(m *matrixWorld) string { return "/account/contracts/" + m.contract }, nil), want: staffPage},
	{route: "GET /account/contracts/:id/publish", web: true, req: webAt("GET", func(m *matrixWorld) string { return "/account/contracts/" + m.draft + "/publish" }, nil), want: marketerPage},
	{route: "POST /account/contracts/:id/publish", web: true, want: marketerForm,
		req: webAt("POST", func(m *matrixWorld) string { return "/account/contracts/" + m.freshDraft() + "/publish" }, nil)},
	{route: "GET /account/contracts/:id/new-version", web: true, req: webAt("GET", func(m *matrixWorld) string { return "/account/contracts/" + m.contract + "/new-version" }, nil), want: marketerPage},
	{route: "POST /account/contracts/:id/new-version", web: true, want: marketerForm,
		req: webAt("POST", func(m *matrixWorld) string { return "/account/contracts/" + m.freshContract() + "/new-version" }, nil)},
	{route: "GET /account/contracts/:id/retire", web: true, req: webAt("GET", func(m *matrixWorld) string { return "/account/contracts/" + m.contract + "/retire" }, nil), want: marketerPage},
	{route: "POST /account/contracts/:id/retire", web: true, want: marketerForm,
		req: webAt("POST", func(m *matrixWorld) string { return "/account/contracts/" + m.freshContract() + "/retire" }, nil)},

	// Last: erasure ends alice's and bob's data for every row after it.
	{route: "DELETE /v1/me", want: [principalCount]int{401, 200, 200, 403, 403, 403, 403, 403},
		req: func(*matrixWorld) req { return req{Method: "DELETE", Path: "/v1/me"} }},
	// After erasure: alice's and bob's sessions ended with it (a 401 page
	// now); nobody else may erase through the pages.
	{route: "POST /account/rights/erase/confirm", web: true, req: webRow("POST", "/account/rights/erase/confirm", nil),
		want: [principalCount]int{401, 401, 401, 403, 403, 403, 403, 403}},
	// Last of all: it ends each session (anyone may end their own).
	{route: "POST /account/signout", web: true, req: webRow("POST", "/account/signout", nil), want: [principalCount]int{303, 303, 303, 303, 303, 303, 303, 303}},
}

// The web pages' columns: signed out a GET is sent to sign in (303) and a
// form is a 401 page; a principal the page is not for gets a 403 page.
var (
	memberPage   = [principalCount]int{303, 200, 200, 403, 403, 403, 403, 403}
	alicesPage   = [principalCount]int{303, 200, 404, 403, 403, 403, 403, 403}
	staffPage    = [principalCount]int{303, 403, 403, 200, 403, 403, 403, 200}
	marketerPage = [principalCount]int{303, 403, 403, 200, 403, 403, 403, 403}
	marketerForm = [principalCount]int{401, 403, 403, 303, 403, 403, 403, 403}
)

// memberForm is a member's form: alice gets the first status, bob the
// second.
func memberForm(alice, bob int) [principalCount]int {
	return [principalCount]int{401, alice, bob, 403, 403, 403, 403, 403}
}

// aliceExchange is the path of a page of alice's exchange.
func aliceExchange(suffix string) func(*matrixWorld) string {
	return func(m *matrixWorld) string { return "/account/exchanges/" + m.aliceEx + suffix }
}

// webAt is webRow with a path built from the world.
func webAt(method string, path func(*matrixWorld) string, fields url.Values) func(*matrixWorld) req {
	return func(m *matrixWorld) req { return webRow(method, path(m), fields)(m) }
}

// TestEveryRouteAnswersEveryPrincipalAsTheMatrixSays sends each row's
// request (and HEAD for a GET) as every principal and compares the status
// with the row; every refusal must leave every table as it was. The rows must be exactly the
// served routes, so a new route cannot ship without deciding who may call it.
func TestEveryRouteAnswersEveryPrincipalAsTheMatrixSays(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	rowed := map[string]bool{}
	for _, row := range authzMatrix {
		rowed[row.route] = true
	}
	served := map[string]bool{}
	for _, r := range servedRoutes(a) {
		served[r] = true
		if !rowed[r] {
			t.Errorf("route %s is served but has no row in authzMatrix; add one", r)
		}
	}
	for r := range rowed {
		if !served[r] {
			t.Errorf("authzMatrix has a row for %s, which is not served; remove it", r)
		}
	}
	m := newMatrixWorld(a)
	cases, tokens := 0, 0
	for _, ts := range m.tokens {
		tokens += len(ts)
	}
	for _, row := range authzMatrix {
		base := row.req(m)
		// Refusals first, so that the owner's success cannot change what the
		// others are answered; then the successes in column order; then the
		// refusals again, so that nothing a success left behind (a cached
		// response, a row) lets anyone else in.
		var refused, allowed []int
		for p := range principalCount {
			if row.want[p] >= 400 {
				refused = append(refused, p)
			} else {
				allowed = append(allowed, p)
			}
		}
		for pass, ps := range [][]int{refused, allowed, refused} {
			for _, p := range ps {
				creds := m.tokens[p]
				if row.web {
					creds = m.cookies[p]
				}
				for i, tok := range creds {
					// HEAD runs GET's handler and must answer as GET does.
					methods := []string{base.Method}
					if base.Method == "GET" {
						methods = append(methods, "HEAD")
					}
					for _, method := range methods {
						r := base
						r.Method, r.Token = method, tok
						if row.web {
							r = withSession(base, tok)
							r.Method = method
						}
						name := fmt.Sprintf("%s %s [%s] as %s #%d (pass %d)", r.Method, r.Path, row.what, principalNames[p], i, pass)
						var got response
						if row.want[p] >= 400 {
							a.unchangedBy(name, func() { got = a.do(r) })
						} else {
							got = a.do(r)
						}
						cases++
						if got.Status != row.want[p] {
							t.Errorf("%s: status %d, want %d: %s", name, got.Status, row.want[p], got.Body)
						}
						if row.web && got.Status >= 400 {
							checkWebPage(t, name, got, row.want[p])
						}
						if !row.web && got.Status == http.StatusUnauthorized && !strings.HasPrefix(got.Header.Get("WWW-Authenticate"), "Bearer") {
							t.Errorf("%s: 401 without a Bearer challenge", name)
						}
					}
				}
			}
		}
	}
	t.Logf("authorization matrix: %d rows × %d principals (%d tokens) = %d requests", len(authzMatrix), principalCount, tokens, cases)
}

// webRow is a web row's request, without a cookie: a page, or a form with
// fields (withSession adds the cookie and its CSRF token).
func webRow(method, path string, fields url.Values) func(*matrixWorld) req {
	return func(*matrixWorld) req {
		if method == "POST" {
			return webPost("", path, fields)
		}
		return webGet("", path)
	}
}
