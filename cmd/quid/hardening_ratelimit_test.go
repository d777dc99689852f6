package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	quid "github.com/quidpro/quid"
	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/config"
)

// limited is a config modifier turning both write limits on.
func limited(principal, address config.Quota, trusted ...string) func(*config.Config) {
	return func(c *config.Config) {
		c.RateLimitPrincipal, c.RateLimitAddress = principal, address
		for _, p := range trusted {
			c.TrustedProxies = append(c.TrustedProxies, netip.MustParsePrefix(p))
		}
	}
}

func isWriteMethod(m string) bool {
	return m == "POST" || m == "PUT" || m == "PATCH" || m == "DELETE"
}

// roleOf reads the role claim of a test token (signature not checked).
func roleOf(t *testing.T, tok string) app.Role {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct{ Role app.Role }
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.Role
}

// expectRateLimited asserts a 429 from policy with a Retry-After of whole
// seconds ≥ 1 and the draft-ietf-httpapi-ratelimit-headers fields naming
// the policy and its quota (a.do has checked the rest against openapi.yaml).
func expectRateLimited(t *testing.T, what string, r response, policy string, q config.Quota) {
	t.Helper()
	if r.Status != 429 {
		t.Fatalf("%s: status %d, want 429: %s", what, r.Status, r.Body)
	}
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > int(q.Window.Seconds()) {
		t.Errorf("%s: Retry-After %q, want whole seconds from 1 to %d", what, r.Header.Get("Retry-After"), int(q.Window.Seconds()))
	}
	if got, want := r.Header.Get("RateLimit-Policy"), fmt.Sprintf(`"%s";q=%d;w=%d`, policy, q.Requests, int(q.Window.Seconds())); got != want {
		t.Errorf("%s: RateLimit-Policy %q, want %q", what, got, want)
	}
	if got, want := r.Header.Get("RateLimit"), fmt.Sprintf(`"%s";r=0;t=%d`, policy, retry); got != want {
		t.Errorf("%s: RateLimit %q, want %q", what, got, want)
	}
	if code := r.json(t)["code"]; code != "rate-limited" {
		t.Errorf("%s: problem code %v", what, code)
	}
}

// Every write route (from the router, through tour) admits a principal's
// first n writes and refuses the n+1th with 429, writing nothing; every read
// route answers n+1 reads with one token without a 429. Each write route gets
// principals of its own, so the count starts from zero.
func TestEveryWriteRouteRefusesAPrincipalsWriteOverItsQuota(t *testing.T) {
	t.Parallel()
	const n = 4
	perPrincipal := config.Quota{Requests: n, Window: time.Minute}
	a := newAPI(t, limited(perPrincipal, config.Quota{Requests: 100_000, Window: time.Minute}))
	w := a.world()
	toured, refused := map[string]bool{}, map[string]bool{}
	fresh := 0
	partners := []string{w.f.brand, w.f.partnerCo, w.f.adCo}
	tour(w, "rl-alice", func(rc routeCall) response {
		toured[rc.route] = true
		r := rc.r
		if !isWriteMethod(r.Method) {
			var res response
			for i := 0; i <= n; i++ {
				if res = a.do(r); res.Status == 429 {
					t.Errorf("read %s answered 429 on call %d", rc.route, i+1)
				}
			}
			return res
		}
		fresh++
		sub := fmt.Sprintf("rl-%d", fresh)
		if rc.route == "POST /account/signout" {
			// One write per session: once it ends, the same cookie is
			// nobody's and signing out again writes nothing to limit.
			refused[rc.route] = true
			return a.do(r)
		}
		if rc.web != "" {
			// A signed-in browser of its own: the page's gate counts its
			// writes after the CSRF check, as the API's gate counts a
			// token's, and refuses the n+1th with a page.
			r = webPost(w.session(rc.web, sub), r.Path, formOf(t, r))
			first := a.do(r)
			for i := 1; i < n; i++ {
				if res := a.do(r); res.Status == 429 {
					t.Errorf("%s: write %d of %d answered 429", rc.route, i+1, n)
				}
			}
			a.unchangedBy(rc.route+" over quota", func() {
				res := a.do(r)
				checkWebPage(t, rc.route+" over quota", res, 429)
				if res.Header.Get("Retry-After") == "" {
					t.Errorf("%s over quota: no Retry-After", rc.route)
				}
			})
			refused[rc.route] = true
			return first
		}
		role := roleOf(t, r.Token)
		if role == app.RolePartner {
			// A partner's subject must name a recipient; each write route has its own.
			sub, partners = partners[0], partners[1:]
		}
		r.Token = tokenFor(role, sub)
		first := a.do(r)
		for i := 1; i < n; i++ {
			if res := a.do(r); res.Status == 429 {
				t.Errorf("%s: write %d of %d answered 429", rc.route, i+1, n)
			}
		}
		a.unchangedBy(rc.route+" over quota", func() {
			expectRateLimited(t, rc.route, a.do(r), "per-principal", perPrincipal)
		})
		refused[rc.route] = true
		return first
	})
	checkTourCoversEveryRoute(t, a, toured)
	writes := 0
	for _, route := range servedRoutes(a) {
		if isWriteMethod(strings.Fields(route)[0]) {
			writes++
			if !refused[route] {
				t.Errorf("write route %s was never refused over its quota", route)
			}
		}
	}
	if writes == 0 {
		t.Fatal("no write routes served")
	}
	t.Logf("%d write routes each refused their %dth write; every read route answered %d reads", writes, n+1, n+1)
}

// The principal is the token's subject and role: another member writing from
// the same address is not held back by the first one's spent quota, nor is
// the same subject in another role. The refusals are counted in /metrics.
func TestAnotherPrincipalFromTheSameAddressIsUnaffected(t *testing.T) {
	t.Parallel()
	q := config.Quota{Requests: 2, Window: time.Minute}
	a := newAPI(t, limited(q, config.Quota{Requests: 1000, Window: time.Minute}))
	profile := map[string]any{"attributes": joinableProfile()}
	alice, bob := token(t, app.RoleMember, "alice"), token(t, app.RoleMember, "bob")
	expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: alice, Body: profile}), 201)
	expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: alice, Body: profile}), 200)
	expectRateLimited(t, "alice's third write", a.do(req{Method: "PUT", Path: "/v1/me", Token: alice, Body: profile}), "per-principal", q)
	expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: bob, Body: profile}), 201)
	// alice as a marketer is another principal (a 422 for the empty body, not a 429).
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: token(t, app.RoleMarketer, "alice"), Body: map[string]any{}}), 422)
	// Reads stay open to alice.
	expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: alice}), 200)

	metrics := string(expect(t, a.do(req{Method: "GET", Path: "/metrics"}), 200).Body)
	for _, want := range []string{`quid_http_rate_limited_total{policy="per-principal"} 1`,
		`quid_http_rate_limited_total{policy="per-address"} 0`,
		`quid_http_requests_total{method="PUT",route="/v1/me",status="429"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// The address limit counts every write from one address, whoever's token it
// carries (and before the token is verified), so many principals from one
// address are caught by it; reads from that address still pass.
func TestTheAddressLimitCatchesManyPrincipalsFromOneAddress(t *testing.T) {
	t.Parallel()
	q := config.Quota{Requests: 4, Window: time.Minute}
	a := newAPI(t, limited(config.Quota{Requests: 100, Window: time.Minute}, q))
	profile := map[string]any{"attributes": joinableProfile()}
	expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: "not-a-token", Body: profile}), 401)
	for i := 1; i <= 3; i++ {
		expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: token(t, app.RoleMember, fmt.Sprintf("m%d", i)), Body: profile}), 201)
	}
	last := token(t, app.RoleMember, "m4")
	a.unchangedBy("the fifth write from one address", func() {
		expectRateLimited(t, "fifth write", a.do(req{Method: "PUT", Path: "/v1/me", Token: last, Body: profile}), "per-address", q)
	})
	expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: token(t, app.RoleMember, "m1")}), 200)
	// A write to a path that is no route is a 404, not counted nor refused.
	expect(t, a.do(req{Method: "POST", Path: "/v1/nowhere", Token: last, Body: profile}), 404)
}

// A spent quota refills evenly over its window: with one write per 3 s,
// the write after a refusal is admitted once Retry-After has passed.
func TestASpentQuotaRefillsAfterRetryAfter(t *testing.T) {
	t.Parallel()
	q := config.Quota{Requests: 1, Window: 3 * time.Second}
	a := newAPI(t, limited(q, config.Quota{Requests: 1000, Window: time.Minute}))
	alice := token(t, app.RoleMember, "alice")
	profile := map[string]any{"attributes": joinableProfile()}
	expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: alice, Body: profile}), 201)
	refused := a.do(req{Method: "PUT", Path: "/v1/me", Token: alice, Body: profile})
	expectRateLimited(t, "second write", refused, "per-principal", q)
	retry, _ := strconv.Atoi(refused.Header.Get("Retry-After"))
	time.Sleep(time.Duration(retry) * time.Second)
	expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: alice, Body: profile}), 200)
	expectRateLimited(t, "write after the refill", a.do(req{Method: "PUT", Path: "/v1/me", Token: alice, Body: profile}), "per-principal", q)
}

// X-Forwarded-For counts only from a trusted proxy, and only its rightmost
// untrusted entry (what the proxy itself saw): from an untrusted peer, or
// prepended by the client, it cannot give a client a fresh quota. IPv6
// clients count by their /64.
func TestForwardedForFromAnUntrustedPeerDoesNotChangeTheAddressKey(t *testing.T) {
	t.Parallel()
	q := config.Quota{Requests: 2, Window: time.Minute}
	profile := map[string]any{"attributes": joinableProfile()}
	i := 0
	write := func(a *api, xff string) response {
		i++
		return a.do(req{Method: "PUT", Path: "/v1/me", Token: token(t, app.RoleMember, fmt.Sprintf("m%d", i)), Body: profile,
			Headers: map[string]string{"X-Forwarded-For": xff}})
	}
	// The in-process peer is 0.0.0.0; a proxy elsewhere is trusted.
	untrusted := newAPI(t, limited(config.Quota{}, q, "10.0.0.0/8"))
	expect(t, write(untrusted, "198.51.100.1"), 201)
	expect(t, write(untrusted, "198.51.100.2"), 201)
	expectRateLimited(t, "third write, new X-Forwarded-For", write(untrusted, "198.51.100.3"), "per-address", q)

	proxied := newAPI(t, limited(config.Quota{}, q, "0.0.0.0/32", "10.0.0.0/8"))
	for _, client := range []string{"198.51.100.1", "198.51.100.2"} {
		expect(t, write(proxied, client), 201)
		expect(t, write(proxied, "10.1.1.1, "+client+", 10.2.2.2"), 201) // a chain of trusted proxies
		expectRateLimited(t, "third write from "+client, write(proxied, client), "per-address", q)
	}
	// Entries the client wrote itself, left of what the proxy appended.
	expect(t, write(proxied, "203.0.113.1, 198.51.100.9"), 201)
	expect(t, write(proxied, "203.0.113.2, 198.51.100.9"), 201)
	expectRateLimited(t, "spoofed leftmost entry", write(proxied, "203.0.113.3, 198.51.100.9"), "per-address", q)
	// One IPv6 /64 is one client.
	expect(t, write(proxied, "2001:db8:1:2::1"), 201)
	expect(t, write(proxied, "[2001:db8:1:2::ffff]:4711"), 201)
	expectRateLimited(t, "third write from the same /64", write(proxied, "2001:db8:1:2:aaaa::1"), "per-address", q)
	expect(t, write(proxied, "2001:db8:1:3::1"), 201)
}

// Every write operation in openapi.yaml declares the 429 answer, so a new
// write route is documented with it (a.do also refuses an undeclared 429).
func TestSpecDeclaresTooManyRequestsOnEveryWrite(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromData(quid.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	ops := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if !isWriteMethod(method) {
				continue
			}
			ops++
			r := op.Responses.Status(429)
			if r == nil || r.Ref != "#/components/responses/TooManyRequests" {
				t.Errorf("%s %s does not declare 429 TooManyRequests", method, path)
			}
		}
	}
	if ops == 0 {
		t.Fatal("no write operations in openapi.yaml")
	}
}

// Over a real TCP connection the peer's address is the key: untrusted, its
// X-Forwarded-For changes nothing; once 127.0.0.1 is a trusted proxy, each
// forwarded client has a quota of its own.
func TestTheTCPPeerIsTheClientAddressUnlessItIsATrustedProxy(t *testing.T) {
	t.Parallel()
	q := config.Quota{Requests: 1, Window: time.Minute}
	i := 0
	write := func(addr, xff string) int {
		i++
		body := strings.NewReader(`{"attributes":{"location.city":"Oslo"}}`)
		hr, _ := http.NewRequest("PUT", "http://"+addr+"/v1/me", body)
		hr.Header.Set("Content-Type", "application/json")
		hr.Header.Set("Authorization", "Bearer "+token(t, app.RoleMember, fmt.Sprintf("m%d", i)))
		hr.Header.Set("X-Forwarded-For", xff)
		res, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == 429 && res.Header.Get("RateLimit-Policy") != `"per-address";q=1;w=60` {
			t.Errorf("429 with RateLimit-Policy %q", res.Header.Get("RateLimit-Policy"))
		}
		return res.StatusCode
	}
	direct := newAPI(t, limited(config.Quota{}, q)).listen(t)
	if got := []int{write(direct, "198.51.100.1"), write(direct, "198.51.100.2")}; got[0] != 201 || got[1] != 429 {
		t.Errorf("two clients claimed by an untrusted peer: %v, want [201 429]", got)
	}
	proxied := newAPI(t, limited(config.Quota{}, q, "127.0.0.1/32")).listen(t)
	if got := []int{write(proxied, "198.51.100.1"), write(proxied, "198.51.100.2"), write(proxied, "198.51.100.1")}; got[0] != 201 || got[1] != 201 || got[2] != 429 {
		t.Errorf("clients forwarded by a trusted proxy: %v, want [201 201 429]", got)
	}
}

// formOf is the form a web tour call posts, without its CSRF token.
func formOf(t *testing.T, r req) url.Values {
	t.Helper()
	s, _ := r.Body.(string)
	f, err := url.ParseQuery(s)
	if err != nil {
		t.Fatalf("%s %s: form %q: %v", r.Method, r.Path, s, err)
	}
	f.Del("csrf")
	return f
}
