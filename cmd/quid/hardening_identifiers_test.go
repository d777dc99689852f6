package main

import (
	"encoding/base64"
	"fmt"
	"github.com/golang-jwt/jwt/v5"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/auth"
	"github.com/quidpro/quid/infra/config"
)

// idpSubjects are member ids an identity provider can issue: the token's sub
// becomes the member id, so each must work everywhere a member id goes.
var idpSubjects = []string{
	"auth0|abc", "auth0|64b7f3e2a1c9d8e7f6a5b4c3", "google-oauth2|112233445566778899", "a&b", "o'brien", `x"y`,
	`back\slash`, "with space", "josé", "a/b", "{brace}", "comma,id", "jane.doe+tag@example.com",
	"https://idp.example/u?x=1&y=2#f", "%41", "a+b", "a;b", "🦊fox", "CaseSensitive|ID", "a%2Fb", "[bracket]", "tab-less~tilde", "..", ".", "a/../b", " padded ", "trailing/",
	strings.Repeat("é", 200) + strings.Repeat("😀", 55), // 255 characters, 620 bytes
}

// curlTarget is the request target curl sends for a path holding id: the
// bytes as typed, except what a user must encode to keep the URL's
// structure (space, "#", "?", "/", "%").
func curlTarget(id string) string {
	r := strings.NewReplacer("%", "%25", " ", "%20", "#", "%23", "?", "%3F", "/", "%2F")
	return r.Replace(id)
}

// doRaw sends target exactly as given on the request line (as curl does),
// and checks the response against openapi.yaml as the request to specPath.
func (a *api) doRaw(method, target, specPath, tok string) response {
	a.t.Helper()
	hr := httptest.NewRequest(method, "http://quid.test/", nil)
	hr.URL = &url.URL{Opaque: target}
	hr.RequestURI = ""
	hr.Host = "quid.test"
	if tok != "" {
		hr.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := a.svc.app.Test(hr, -1)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, target, err)
	}
	out, _ := io.ReadAll(res.Body)
	res.Body.Close()
	resp := response{Status: res.StatusCode, Header: res.Header, Body: out}
	a.checkSpec(req{Method: method, Path: specPath}, nil, resp)
	return resp
}

// TestMemberLifecycleWorksForEveryIdentifierAnIdentityProviderIssues runs
// enrol, join, accrual (1 s periods), partner reads (Go-encoded and
// curl-encoded), the access log, the audit filter, export, webhook payloads,
// deletion acknowledgements and erasure for each id.
func TestMemberLifecycleWorksForEveryIdentifierAnIdentityProviderIssues(t *testing.T) {
	t.Parallel()
	a := newAPI(t, func(c *config.Config) { c.AccrualInterval = 100 * time.Millisecond })
	a.svc.runWorkers(t)
	f := a.fixtures()
	body := contractBody(f)
	body["reward"] = map[string]any{"join_bonus": 0, "points_per_period": 5, "period": "PT1S"}
	contractID := a.publishContract(f, body)

	type member struct {
		id, tok, city, exchange string
	}
	members := make([]*member, len(idpSubjects))
	for i, id := range idpSubjects {
		m := &member{id: id, tok: token(t, app.RoleMember, id), city: fmt.Sprintf("City %d of %s", i, id)}
		members[i] = m
		expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: m.tok, Body: map[string]any{"attributes": map[string]any{
			"location.city": m.city, "commerce.purchase_history": []string{"espresso"},
			"demographic.birthdate": "1990-05-01"}}}), 201)
		joined := expect(t, a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: m.tok,
			Body: map[string]any{"contract_id": contractID}}), 201)
		m.exchange = joined.json(t)["id"].(string)
		if loc := joined.Header.Get("Location"); loc != "/v1/me/exchanges/"+m.exchange {
			t.Fatalf("Location %q", loc)
		}
		me := expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: m.tok}), 200).json(t)
		if me["id"] != id {
			t.Fatalf("GET /v1/me id = %v, want %q", me["id"], id)
		}
	}

	// Accrual credits every member: none is skipped for its id.
	deadline := time.Now().Add(15 * time.Second)
	for _, m := range members {
		for {
			pts := expect(t, a.do(req{Method: "GET", Path: "/v1/me/points", Token: m.tok}), 200).json(t)
			if len(pts["items"].([]any)) >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("member %q was never credited: %v", m.id, pts)
			}
			time.Sleep(100 * time.Millisecond)
		}
		bal := expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: m.tok}), 200).json(t)["balance"].(map[string]any)
		if bal["available"].(float64) < 10 {
			t.Fatalf("member %q balance %v", m.id, bal)
		}
	}

	const purpose = "?purpose=loyalty.personalised_offers"
	for _, m := range members {
		// Go's net/http client escapes a path segment with url.PathEscape;
		// curl sends what was typed.
		for how, target := range map[string]string{
			"go":   "/v1/partner/members/" + url.PathEscape(m.id) + "/data" + purpose,
			"curl": "/v1/partner/members/" + curlTarget(m.id) + "/data" + purpose,
		} {
			r := a.doRaw("GET", target, "/v1/partner/members/x/data"+purpose, f.partner)
			if r.Status != 200 {
				t.Fatalf("%s-encoded partner read of %q (%s) → %d: %s", how, m.id, target, r.Status, r.Body)
			}
			got := r.json(t)
			if got["member_id"] != m.id || got["attributes"].(map[string]any)["location.city"] != m.city {
				t.Fatalf("%s-encoded partner read of %q: %s", how, m.id, r.Body)
			}
		}
		log := expect(t, a.do(req{Method: "GET", Path: "/v1/me/access-log", Token: m.tok}), 200).json(t)["items"].([]any)
		if len(log) != 2 {
			t.Fatalf("member %q has %d access-log entries, want 2", m.id, len(log))
		}
		for _, e := range log {
			e := e.(map[string]any)
			if e["member_id"] != m.id || len(e["exchanges"].([]any)) != 1 || e["exchanges"].([]any)[0] != m.exchange {
				t.Fatalf("access-log entry of %q: %v", m.id, e)
			}
		}
		audit := expect(t, a.do(req{Method: "GET", Path: "/v1/audit?member_id=" + url.QueryEscape(m.id), Token: f.admin}), 200).json(t)["items"].([]any)
		if len(audit) != 2 || audit[0].(map[string]any)["member_id"] != m.id {
			t.Fatalf("audit filter for %q: %v", m.id, audit)
		}
		export := expect(t, a.do(req{Method: "GET", Path: "/v1/me/export", Token: m.tok}), 200).json(t)
		if export["member"].(map[string]any)["id"] != m.id || len(export["access_log"].([]any)) != 2 || len(export["ledger"].([]any)) < 2 {
			t.Fatalf("export of %q: %v", m.id, export)
		}
	}

	// Webhook payloads and deletion acknowledgements name the member exactly.
	events := func(m *member, event string) int {
		var n int
		if err := a.svc.db.Raw(`SELECT count(*) FROM webhook_outbox WHERE event_type = ? AND payload->'data'->>'member_id' = ?`, event, m.id).
			Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, m := range members {
		if n := events(m, "exchange.joined"); n != 2 {
			t.Fatalf("%d exchange.joined events for %q, want 2", n, m.id)
		}
	}
	for _, m := range members {
		expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: m.tok}), 200)
		if n := events(m, "member.erasure_requested"); n != 2 {
			t.Fatalf("%d member.erasure_requested events for %q, want 2", n, m.id)
		}
		var acks int
		a.svc.db.Raw(`SELECT count(*) FROM deletion_acks WHERE exchange_id = ?`, m.exchange).Scan(&acks)
		if acks != 2 {
			t.Fatalf("%d deletion acknowledgements for %q, want 2", acks, m.id)
		}
		expect(t, confirmDeletion(a, f.partner, m.exchange), 200)
		r := a.doRaw("GET", "/v1/partner/members/"+url.PathEscape(m.id)+"/data"+purpose, "/v1/partner/members/x/data"+purpose, f.partner)
		if r.Status == 200 || r.Status >= 500 {
			t.Fatalf("partner read of erased %q → %d", m.id, r.Status)
		}
	}
}

// TestPathParametersAreDecodedOnceAndChecked sends every route that takes a
// path parameter values that cannot name anything: UUID routes answer 404
// ("anything else names nothing"), the member id route 422 naming the
// parameter; nothing is a 5xx.
func TestPathParametersAreDecodedOnceAndChecked(t *testing.T) {
	t.Parallel()
	a, f, contractID, ex := withJoinedMember(t)
	exchangeID := ex["id"].(string)

	uuidRoutes := []struct {
		method, path, tok string
	}{
		{"GET", "/v1/recipients/{}", f.admin},
		{"GET", "/v1/contracts/{}", ""},
		{"PATCH", "/v1/contracts/{}", f.marketer},
		{"POST", "/v1/contracts/{}/publish", f.marketer},
		{"POST", "/v1/contracts/{}/retire", f.marketer},
		{"POST", "/v1/contracts/{}/versions", f.marketer},
		{"GET", "/v1/contracts/{}/stats", f.marketer},
		{"GET", "/v1/contracts/{}/transparency", ""},
		{"GET", "/v1/contracts/{}/notice", ""},
		{"GET", "/v1/me/exchanges/{}", f.member},
		{"DELETE", "/v1/me/exchanges/{}", f.member},
	}
	bad := []string{"%zz", "%00", "%FF", "%0D%0A", "%20", "not-a-uuid", url.PathEscape("a/b"), strings.Repeat("a", 300),
		url.PathEscape(contractID + "\x00")}
	for _, id := range idpSubjects {
		bad = append(bad, url.PathEscape(id))
	}
	for _, rt := range uuidRoutes {
		for _, p := range bad {
			target := strings.Replace(rt.path, "{}", p, 1)
			r := a.doRaw(rt.method, target, strings.Replace(rt.path, "{}", "00000000-0000-0000-0000-000000000000", 1), rt.tok)
			if r.Status != 404 {
				t.Fatalf("%s %s → %d, want 404: %s", rt.method, target, r.Status, r.Body)
			}
		}
	}
	// A UUID sent percent-encoded is decoded once and names its resource.
	encoded := func(id string) string {
		var b strings.Builder
		for _, c := range []byte(id) {
			fmt.Fprintf(&b, "%%%02X", c)
		}
		return b.String()
	}
	if r := a.doRaw("GET", "/v1/contracts/"+encoded(contractID), "/v1/contracts/"+contractID, ""); r.Status != 200 {
		t.Fatalf("percent-encoded contract id → %d", r.Status)
	}
	if r := a.doRaw("GET", "/v1/me/exchanges/"+encoded(exchangeID), "/v1/me/exchanges/"+exchangeID, f.member); r.Status != 200 {
		t.Fatalf("percent-encoded exchange id → %d", r.Status)
	}
	// Decoded once, not twice: %2541 is the id "%41", not "A".
	if r := a.doRaw("GET", "/v1/contracts/"+strings.ReplaceAll(encoded(contractID), "%", "%25"), "/v1/contracts/"+contractID, ""); r.Status != 404 {
		t.Fatalf("doubly encoded contract id → %d, want 404", r.Status)
	}

	const purpose = "?purpose=loyalty.personalised_offers"
	for _, p := range []string{"%zz", "%4", "%00", "%FF", "%C3%28", "%0D%0A", "a%0Ab", "%20%20", "%09", url.PathEscape(strings.Repeat("x", 256)),
		url.PathEscape(strings.Repeat("😀", 256)), url.PathEscape(strings.Repeat("x", 3000))} {
		r := a.doRaw("GET", "/v1/partner/members/"+p+"/data"+purpose, "/v1/partner/members/x/data"+purpose, f.partner)
		problemAt(t, r, 422, "/path/member_id")
	}
	for _, q := range []string{"member_id", "recipient_id"} {
		for _, v := range []string{"%00", "%FF", "%0D%0A", "%20", url.QueryEscape(strings.Repeat("x", 256)), url.QueryEscape(strings.Repeat("x", 3000))} {
			problemAt(t, a.do(req{Method: "GET", Path: "/v1/audit?" + q + "=" + v, Token: f.admin}), 422, "/query/"+q)
		}
	}
}

// TestTokenSubjectsThatCannotBeIdentifiersAreRefused covers the token's sub:
// the member id of a member and the recipient id of a partner.
func TestTokenSubjectsThatCannotBeIdentifiersAreRefused(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	bad := []string{"", " ", " \t ", "a\x00b", "a\r\nb", "a\nb", "\x7f", strings.Repeat("x", 256), strings.Repeat("😀", 256),
		strings.Repeat("😀", 680)} // 2,720 bytes: more than a btree index row holds
	for _, sub := range bad {
		for _, tt := range []struct {
			role   app.Role
			method string
			path   string
		}{
			{app.RoleMember, "PUT", "/v1/me"},
			{app.RoleMember, "GET", "/v1/me"},
			{app.RolePartner, "GET", "/v1/partner/members/alice/data?purpose=loyalty.personalised_offers"},
			{app.RoleAdmin, "GET", "/v1/audit"},
		} {
			tok, err := auth.Mint(testSecret, app.Principal{Subject: sub, Role: tt.role}, time.Hour, "", "", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			var body any
			if tt.method == "PUT" {
				body = map[string]any{"attributes": joinableProfile()}
			}
			r := a.do(req{Method: tt.method, Path: tt.path, Token: tok, Body: body})
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("sub %q on %s %s → %d, want 401: %s", sub, tt.method, tt.path, r.Status, r.Body)
			}
		}
	}
	// A lone surrogate escape decodes to U+FFFD, so "a\ud800" and "a\udfff"
	// would name one member: they are refused, signed by hand since no
	// encoder writes them.
	for _, sub := range []string{`sur\ud800x`, `sur\udfffx`, `sur\ufffdx`, `\udc00`} {
		payload := `{"sub":"` + sub + `","role":"member","exp":` + strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10) + `}`
		signing := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
			base64.RawURLEncoding.EncodeToString([]byte(payload))
		sig, err := jwt.SigningMethodHS256.Sign(signing, []byte(testSecret))
		if err != nil {
			t.Fatal(err)
		}
		tok := signing + "." + base64.RawURLEncoding.EncodeToString(sig)
		if r := a.do(req{Method: "PUT", Path: "/v1/me", Token: tok, Body: map[string]any{"attributes": joinableProfile()}}); r.Status != http.StatusUnauthorized {
			t.Errorf("sub %s → %d, want 401: %s", sub, r.Status, r.Body)
		}
	}
	// The longest allowed subject enrols.
	longest := strings.Repeat("😀", 255)
	expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: token(t, app.RoleMember, longest),
		Body: map[string]any{"attributes": joinableProfile()}}), 201)
}
