package main

import (
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/config"
)

// demoSignIn signs a browser in through the --demo sign-in, in process, at
// base (scheme and host the browser uses), and returns the session's
// Set-Cookie.
func demoSignIn(t *testing.T, a *api, base, subject string, prior ...*http.Cookie) *http.Cookie {
	t.Helper()
	res, err := a.svc.app.Test(httptest.NewRequest("GET", base+"/account/signin", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	var anon *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "quid-csrf" {
			anon = c
		}
	}
	if anon == nil || csrfIn(body) != anon.Value {
		t.Fatalf("sign-in page: no double-submit token (%d)", res.StatusCode)
	}
	form := url.Values{"csrf": {anon.Value}, "subject": {subject}, "role": {"member"}, "return_to": {"/account"}}
	hr := httptest.NewRequest("POST", base+"/account/signin/demo", strings.NewReader(form.Encode()))
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hr.AddCookie(&http.Cookie{Name: "quid-csrf", Value: anon.Value})
	for _, c := range prior {
		hr.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	res, err = a.svc.app.Test(hr, -1)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 303 || res.Header.Get("Location") != "/account" {
		t.Fatalf("demo sign-in: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	for _, c := range res.Cookies() {
		if strings.HasSuffix(c.Name, "quid-session") {
			return c
		}
	}
	t.Fatal("demo sign-in set no session cookie")
	return nil
}

func TestSessionCookieIsHttpOnlyLaxAndSecureExceptPlainLoopback(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, public, base string
		wantName           string
		wantSecure         bool
	}{
		{"HTTPS", "", "https://loyalty.example", "__Host-quid-session", true},
		{"plain HTTP on loopback", "", "http://127.0.0.1:8080", "quid-session", false},
		// Behind a TLS-terminating proxy that forwards to http://localhost:
		// the browser is on HTTPS, so the cookie must be Secure.
		{"behind a proxy to loopback", "https://loyalty.example", "http://127.0.0.1:8080", "__Host-quid-session", true},
		{"public URL on plain loopback", "http://localhost:8080", "http://localhost:8080", "quid-session", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a := newAPI(t, func(cfg *config.Config) {
				cfg.Web.DemoSignIn = true
				if c.public != "" {
					cfg.Web.PublicURL, _ = url.Parse(c.public)
				}
			})
			ck := demoSignIn(t, a, c.base, "alice")
			if ck.Name != c.wantName || ck.Secure != c.wantSecure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" {
				t.Errorf("session cookie %s (Secure %v, HttpOnly %v, SameSite %v, Path %q, Domain %q), want %s Secure=%v HttpOnly Lax Path=/",
					ck.Name, ck.Secure, ck.HttpOnly, ck.SameSite, ck.Path, ck.Domain, c.wantName, c.wantSecure)
			}
		})
	}
}

// Signing in again in a browser ends its old session (no fixation: a
// cookie planted before sign-in is not the signed-in one).
func TestSignInReplacesTheBrowsersSession(t *testing.T) {
	t.Parallel()
	a := newAPI(t, func(c *config.Config) { c.Web.DemoSignIn = true })
	first := demoSignIn(t, a, "https://q.example", "alice")
	second := demoSignIn(t, a, "https://q.example", "bob", first)
	if first.Value == second.Value {
		t.Fatal("a sign-in reused a session token")
	}
	if r := a.page(webCookie(first.Value), "/account"); r.Status != 303 {
		t.Errorf("the browser's earlier session still opens /account after signing in again: %d", r.Status)
	}
	expect(t, a.page(webCookie(second.Value), "/account"), 200)
}

func TestSignOutErasureAndExpiryEndSessionsOnTheServer(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	signedOut := func(name, cookie string) {
		t.Helper()
		r := a.page(cookie, "/account")
		if r.Status != 303 || !strings.HasPrefix(r.Header.Get("Location"), "/account/signin?return_to=") {
			t.Errorf("%s: the old cookie still opens /account: %d %q", name, r.Status, r.Header.Get("Location"))
		}
	}

	cookie := a.webSession(app.RoleMember, "alice")
	expect(t, a.page(cookie, "/account"), 200)
	r := a.submit(cookie, "/account/signout", nil)
	if r.Status != 303 || r.Header.Get("Location") != "/account/signed-out" || !strings.Contains(r.Header.Get("Set-Cookie"), "Max-Age=0") && !strings.Contains(r.Header.Get("Set-Cookie"), "expires=Thu, 01 Jan 1970") {
		t.Errorf("sign out: %d to %q, Set-Cookie %q", r.Status, r.Header.Get("Location"), r.Header.Get("Set-Cookie"))
	}
	signedOut("after signing out", cookie)

	a.enrol(f.member)
	cookie = a.webSession(app.RoleMember, "alice")
	expect(t, a.page(cookie, "/account"), 200)
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: f.member}), 200)
	signedOut("after erasure", cookie)

	tok := "expired-" + strings.Repeat("e", 40)
	sum := sha256.Sum256([]byte(tok))
	now := time.Now().UTC()
	if err := a.svc.store.CreateSession(context.Background(), sum[:], app.WebSession{
		Principal: app.Principal{Subject: "bob", Role: app.RoleMember}, CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if r := a.page(webCookie(tok), "/account"); r.Status != 303 {
		t.Errorf("an expired session opens /account: %d", r.Status)
	}
}

// Every form under /account, those of pages added later too (the routes
// come from the router), refuses a post without the session's CSRF token,
// with another session's, or from another site, and writes nothing.
func TestEveryFormRefusesAMissingOrWrongCSRFTokenAndCrossSitePosts(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	a.enrol(f.member)
	cookie := a.webSession(app.RoleMember, "alice")
	other := a.webSession(app.RoleMember, "bob")
	posts := 0
	for _, route := range servedRoutes(a) {
		method, p, _ := strings.Cut(route, " ")
		if method != "POST" || !isWebPath(p) || p == "/account/signin/demo" {
			continue
		}
		posts++
		p = regexp.MustCompile(`:[a-z_]+`).ReplaceAllString(p, zeroUUID)
		for name, r := range map[string]req{
			"no token":                   webPost(cookie, p, url.Values{"csrf": {""}}),
			"another session's token":    webPost(cookie, p, url.Values{"csrf": {webCSRF(other)}}),
			"the token in the query":     withQueryString(webPost(cookie, p, url.Values{"csrf": {""}}), "csrf="+url.QueryEscape(webCSRF(cookie))),
			"Sec-Fetch-Site: cross-site": withHeader(webPost(cookie, p, nil), "Sec-Fetch-Site", "cross-site"),
			"Sec-Fetch-Site: same-site":  withHeader(webPost(cookie, p, nil), "Sec-Fetch-Site", "same-site"),
			"a foreign Origin":           withHeader(webPost(cookie, p, nil), "Origin", "https://evil.example"),
			"an opaque Origin":           withHeader(webPost(cookie, p, nil), "Origin", "null"),
		} {
			var res response
			a.unchangedBy(route+" with "+name, func() { res = a.do(r) })
			checkWebPage(t, route+" with "+name, res, 403)
		}
	}
	if posts == 0 {
		t.Fatal("no form routes under /account")
	}
	// The same form from the page's own origin goes through.
	r := withHeader(webPost(cookie, "/account/signout", nil), "Origin", "http://quid.test")
	if res := a.do(withHeader(r, "Sec-Fetch-Site", "same-origin")); res.Status != 303 {
		t.Errorf("a same-origin sign-out: %d %s", res.Status, res.Body)
	}
}

// Behind a reverse proxy the Host header may be the upstream's name: a
// form from QUID_PUBLIC_URL's origin is the site's own.
func TestFormsFromThePublicURLsOriginAreSameSiteBehindAProxy(t *testing.T) {
	t.Parallel()
	a := newAPI(t, func(c *config.Config) { c.Web.PublicURL, _ = url.Parse("https://loyalty.example") })
	cookie := a.webSession(app.RoleMember, "alice")
	r := withHeader(webPost(cookie, "/account/signout", nil), "Origin", "https://loyalty.example")
	if res := a.do(r); res.Status != 303 {
		t.Errorf("a form from the public origin, Host quid.test: %d %s", res.Status, res.Body)
	}
	r = withHeader(webPost(cookie, "/account/signout", nil), "Origin", "http://loyalty.example")
	if res := a.do(r); res.Status != 403 {
		t.Errorf("a form from the public host over plain HTTP: %d, want 403", res.Status)
	}
}

func TestDemoSignInExistsOnlyWithDemoAndIsAnnouncedOnEveryPage(t *testing.T) {
	t.Parallel()
	plain := newAPI(t)
	if r := plain.do(webPost("", "/account/signin/demo", url.Values{"subject": {"alice"}})); r.Status != 404 {
		t.Errorf("demo sign-in without --demo: %d, want 404", r.Status)
	}
	if r := plain.page("", "/account/signin"); strings.Contains(string(r.Body), "/account/signin/demo") || strings.Contains(string(r.Body), "Development sign-in") {
		t.Error("the sign-in page offers the development sign-in without --demo")
	}
	demo := newAPI(t, func(c *config.Config) { c.Web.DemoSignIn = true })
	cookie := demo.webSession(app.RoleMember, "alice")
	for _, r := range []response{demo.page("", "/account/signin"), demo.page("", "/account/signed-out"), demo.page(cookie, "/account"),
		demo.page(cookie, "/account/no-such-page"), demo.submit(cookie, "/account", nil)} {
		if !strings.Contains(string(r.Body), "Development sign-in is on") {
			t.Errorf("a %d page without the demo banner", r.Status)
		}
	}
}

func withHeader(r req, k, v string) req {
	h := map[string]string{}
	for hk, hv := range r.Headers {
		h[hk] = hv
	}
	h[k] = v
	r.Headers = h
	return r
}

func withQueryString(r req, q string) req {
	r.Path += "?" + q
	return r
}
