package main

import (
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/infra/config"
)

// With the database unreachable every route that needs it answers 503
// problem+json with Retry-After, never 500, and the service recovers on its
// own when the database is back (kind 14).
func TestDatabaseDownIsServiceUnavailableOnEveryRoute(t *testing.T) {
	t.Parallel()
	var proxy *flakyProxy
	a := newAPI(t, func(c *config.Config) { proxy = throughProxy(t, c) })
	w := a.world()
	// No database needed: served from memory.
	inMemory := map[string]bool{"GET /healthz": true, "GET /metrics": true, "GET /openapi.yaml": true,
		"GET /.well-known/jwks.json": true, "GET /.well-known/gpc.json": true, "GET /v1/catalog/categories": true, "GET /v1/catalog/purposes": true,
		// The web pages a signed-out browser opens need no session.
		"GET /account/static/quid.css": true, "GET /account/signin": true, "GET /account/signed-out": true, "GET /account/erased": true}

	proxy.down()
	// The hot path first, while every pooled connection is dead but nothing
	// has noticed yet: the join uses the driver directly.
	r := a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: w.f.member, Body: map[string]any{"contract_id": w.contract}})
	if r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Errorf("first join after the database went away: %d %s, want 503 with Retry-After", r.Status, r.Body)
	}
	toured := map[string]bool{}
	tour(w, "bob", func(c routeCall) response {
		toured[c.route] = true
		r := a.do(c.r) // checked against openapi.yaml
		switch {
		case c.route == "GET /readyz":
			expect(t, r, 503)
		case inMemory[c.route]:
			if r.Status >= 500 {
				t.Errorf("%s: %d without the database: %s", c.route, r.Status, r.Body)
			}
		case isWebPath(c.r.Path):
			// A page says it, as a page: the browser shows it, not JSON.
			checkWebPage(t, c.route+" with the database down", r, 503)
			if r.Header.Get("Retry-After") == "" {
				t.Errorf("%s with the database down: no Retry-After", c.route)
			}
		case r.Status != 503 || r.Header.Get("Retry-After") == "" ||
			r.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(r.Body), `"code":"unavailable"`):
			t.Errorf("%s with the database down: %d Retry-After=%q %s, want 503 problem+json with Retry-After",
				c.route, r.Status, r.Header.Get("Retry-After"), r.Body)
		}
		return r
	})
	checkTourCoversEveryRoute(t, a, toured)

	proxy.up()
	deadline := time.Now().Add(15 * time.Second)
	for a.do(req{Method: "GET", Path: "/v1/me", Token: w.f.member}).Status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("requests did not recover after the database came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	tour(w, "carol", func(c routeCall) response {
		r := a.do(c.r)
		if r.Status >= 500 {
			t.Errorf("%s after recovery: %d %s", c.route, r.Status, r.Body)
		}
		return r
	})
}
