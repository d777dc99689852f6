package main

import (
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/quidpro/quid/app"
)

var requestSeries = regexp.MustCompile(`^quid_http_requests_total\{method="((?:[^"\\]|\\.)*)",route="((?:[^"\\]|\\.)*)",status="((?:[^"\\]|\\.)*)"\} `)

// Values fiber hands out must never outlive the request that owns their
// buffer: mixed methods and paths on keep-alive connections, over a real
// listener, leave /metrics answering 200 with every label one of the known
// routes, methods and statuses — and unknown methods or paths cannot grow
// the label space.
func TestMetricsStayExactUnderMixedKeepAliveTraffic(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	addr := a.listen(t)
	ex := setupExchangeWorld(t, a)

	routes := map[string]bool{"unmatched": true}
	for _, r := range a.svc.app.GetRoutes(true) {
		routes[r.Path] = true
	}
	methods := map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true,
		"OPTIONS": true, "CONNECT": true, "TRACE": true, "other": true}

	member := "Authorization: Bearer " + ex.memberToken
	long := "/v1/" + strings.Repeat("abcdefghij", 600)
	type call struct{ method, path, body string }
	calls := []call{
		{"POST", "/v1/me/exchanges", `{"contract_id":"` + ex.contractID + `"}`},
		{"GET", "/v1/me/exchanges", ""},
		{"HEAD", "/v1/offers", ""},
		{"OPTIONS", "/v1/offers", ""},
		{"GET", "/v1/offers?limit=3", ""},
		{"DELETE", "/v1/me/exchanges/00000000-0000-0000-0000-000000000000", ""},
		{"GET", "/no/such/route/" + strings.Repeat("x", 300), ""},
		{"PATCH", "/v1/me", `{}`},
		{"GET", long, ""},
		{"PUT", "/v1/me", `{"attributes":{"contact.email":"m@example.com"}}`},
		{"HEAD", "/v1/me/points", ""},
		{"GET", "/v1/catalog/purposes", ""},
		{"TRACE", "/v1/offers", ""},
		{"PURGE", "/v1/offers", ""},
		{"GETT", "/healthz", ""},
		{"POST", "/v1/contracts/" + ex.contractID + "/transparency", `{}`},
	}
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := dialWire(t, addr)
			for i := 0; i < 60; i++ {
				k := calls[(i+c)%len(calls)]
				headers := []string{member}
				if k.body != "" {
					headers = append(headers, "Content-Type: application/json")
				}
				if r := w.do(k.method, k.path, k.body, headers...); r.StatusCode >= 500 {
					t.Errorf("%s %.60s → %d: %s", k.method, k.path, r.StatusCode, r.Body)
				}
				if i%15 == 0 {
					if r := w.do("GET", "/metrics", ""); r.StatusCode != 200 {
						t.Errorf("/metrics → %d during traffic: %s", r.StatusCode, r.Body)
					}
				}
			}
		}()
	}
	wg.Wait()

	w := dialWire(t, addr)
	r := w.do("GET", "/metrics", "")
	if r.StatusCode != 200 {
		t.Fatalf("/metrics → %d: %s", r.StatusCode, r.Body)
	}
	seen := map[string]bool{}
	series := 0
	for _, line := range strings.Split(string(r.Body), "\n") {
		if !strings.HasPrefix(line, "quid_http_requests_total") {
			continue
		}
		m := requestSeries.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("unexpected series line %q", line)
			continue
		}
		series++
		method, route, status := m[1], m[2], m[3]
		if !routes[route] {
			t.Errorf("route label %q is not a registered route", route)
		}
		if !methods[method] {
			t.Errorf("method label %q is not a known method", method)
		}
		if n := len(status); n != 3 || status < "100" || status > "599" {
			t.Errorf("status label %q is not a status code", status)
		}
		key := route + " " + method + " " + status
		if seen[key] {
			t.Errorf("label set %s appears twice", key)
		}
		seen[key] = true
	}
	if series < 8 {
		t.Fatalf("only %d request series recorded:\n%s", series, r.Body)
	}
	if len(seen) > len(routes)*len(methods)*8 {
		t.Fatalf("%d label sets: the label space is not bounded", len(seen))
	}

	// Requests refused at the edge, before routing, count against the route
	// they were sent to, not as unmatched.
	w.do("PUT", "/v1/me?x=%FF", `{}`, member, "Content-Type: application/json")
	w.do("GET", "/v1/offers", "{}", "Content-Encoding: br")
	w.do("GET", "/V1/ME/EXCHANGES/"+ex.contractID+"/", "", member, "Idempotency-Key: \xff")
	// Refused before fiber runs (framing, size): counted all the same.
	w.raw("GET", "GET /v1/me HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n")
	w.raw("PUT", "PUT /v1/me HTTP/1.1\r\nHost: q\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n")
	w.do("GET", "//v1/offers", "")
	r = w.do("GET", "/metrics", "")
	if strings.Contains(string(r.Body), `route="/v1/offers",status="404"`) {
		t.Error("GET //v1/offers (404) is counted against /v1/offers")
	}
	for _, want := range []string{`method="PUT",route="/v1/me",status="422"`, `method="GET",route="/v1/offers",status="415"`,
		`method="GET",route="/v1/me/exchanges/:id",status="422"`, `method="GET",route="/v1/me",status="400"`,
		`method="PUT",route="/v1/me",status="413"`} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("no series with %s", want)
		}
	}
}

// exchangeWorld is a published contract and an enrolled member.
type exchangeWorld struct {
	contractID  string
	memberToken string
}

func setupExchangeWorld(t testing.TB, a *api) exchangeWorld {
	t.Helper()
	admin := token(t, app.RoleAdmin, "admin-1")
	marketer := token(t, app.RoleMarketer, "mk-1")
	var rec struct{ ID string }
	expect(t, a.do(req{Method: "POST", Path: "/v1/recipients", Token: admin, Body: map[string]any{
		"name": "Acme", "kind": "first_party", "country": "NO", "privacy_policy_url": "https://acme.example/privacy"}}), 201).decode(t, &rec)
	var ct struct{ ID string }
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: marketer, Body: map[string]any{
		"title": "Newsletter", "summary": "Your e-mail for points.", "retention": "P30D",
		"items":          []map[string]any{{"category": "contact.email", "purpose": "communications.service_messages", "recipients": []string{rec.ID}}},
		"reward":         map[string]any{"join_bonus": 10},
		"value_estimate": map[string]any{"amount": "4.80", "currency": "EUR", "per": "P1Y"},
		"value_method":   "revenue_attributable", "value_explanation": "Revenue per member and year."}}), 201).decode(t, &ct)
	expect(t, a.do(req{Method: "PUT", Path: "/v1/programme", Token: admin, Body: programmeBody("EUR", "0.01")}), 200)
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + ct.ID + "/publish", Token: marketer}), 200)
	member := token(t, app.RoleMember, "member-wire")
	expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: member, Body: map[string]any{
		"attributes": map[string]any{"contact.email": "m@example.com"}}}), 201)
	return exchangeWorld{contractID: ct.ID, memberToken: member}
}
