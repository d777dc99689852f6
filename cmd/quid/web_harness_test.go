package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
	httpapi "github.com/quidpro/quid/infra/http"
	"github.com/quidpro/quid/infra/postgres"
)

// Helpers for tests of the web pages under /account (issue 13): a
// signed-in browser without an identity provider, and forms.
//
//	cookie := a.webSession(app.RoleMember, "alice")
//	r := a.page(cookie, "/account")                       // GET as that browser
//	r = a.submit(cookie, "/account/signout", url.Values{}) // POST with the CSRF token

// webSession signs a browser in as sub with role, server side, the way a
// sign-in does, and returns the Cookie header value that carries it.
func (a *api) webSession(role app.Role, sub string) string {
	a.t.Helper()
	cookie, err := newWebSession(a.svc.store, role, sub, time.Hour)
	if err != nil {
		a.t.Fatal(err)
	}
	return cookie
}

// newWebSession is webSession without a testing.TB (for tours run from
// several goroutines): a random token whose SHA-256 is stored, sent under
// both cookie names (__Host-quid-session over HTTPS, quid-session over
// plain HTTP on loopback), so it works whichever the server reads.
func newWebSession(store *postgres.Store, role app.Role, sub string, ttl time.Duration) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(tok))
	now := time.Now().UTC()
	err := store.CreateSession(context.Background(), sum[:], app.WebSession{
		Principal: app.Principal{Subject: sub, Role: role}, CreatedAt: now.Add(-time.Second), ExpiresAt: now.Add(ttl)})
	return webCookie(tok), err
}

// webCookie is the Cookie header value carrying a session token.
func webCookie(token string) string {
	return "__Host-quid-session=" + token + "; quid-session=" + token
}

// webCSRF is the CSRF token of the session a webCookie value carries, as
// its pages put it in every form.
func webCSRF(cookie string) string {
	tok := strings.TrimPrefix(strings.SplitN(cookie, ";", 2)[0], "__Host-quid-session=")
	return httpapi.SessionCSRF(tok)
}

// webGet is a page request as the browser with cookie ("" signed out).
func webGet(cookie, path string) req {
	r := req{Method: "GET", Path: path, Headers: map[string]string{"Accept": "text/html"}}
	if cookie != "" {
		r.Headers["Cookie"] = cookie
	}
	return r
}

// webPost is a form post as the browser with cookie, carrying its
// session's CSRF token unless fields set csrf themselves.
func webPost(cookie, path string, fields url.Values) req {
	f := url.Values{}
	for k, v := range fields {
		f[k] = v
	}
	if cookie != "" && !f.Has("csrf") {
		f.Set("csrf", webCSRF(cookie))
	}
	r := req{Method: "POST", Path: path, Body: f.Encode(), Headers: map[string]string{
		"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}}
	if cookie != "" {
		r.Headers["Cookie"] = cookie
	}
	return r
}

// withSession is r (from webGet or webPost) sent as the browser with
// cookie: its Cookie header and, in a form, its session's CSRF token.
func withSession(r req, cookie string) req {
	h := map[string]string{}
	for k, v := range r.Headers {
		h[k] = v
	}
	r.Headers = h
	if cookie == "" {
		return r
	}
	h["Cookie"] = cookie
	if body, ok := r.Body.(string); ok && r.Method == "POST" {
		f, _ := url.ParseQuery(body)
		if !f.Has("csrf") {
			f.Set("csrf", webCSRF(cookie))
		}
		r.Body = f.Encode()
	}
	return r
}

// page GETs a page as the browser with cookie.
func (a *api) page(cookie, path string) response {
	a.t.Helper()
	return a.do(webGet(cookie, path))
}

// submit posts a form as the browser with cookie, with its CSRF token.
func (a *api) submit(cookie, path string, fields url.Values) response {
	a.t.Helper()
	return a.do(webPost(cookie, path, fields))
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

// csrfIn is the CSRF token of the first form on a page ("" without one).
func csrfIn(body []byte) string {
	if m := csrfInput.FindSubmatch(body); m != nil {
		return string(m[1])
	}
	return ""
}

// isWebPath is true for the web pages, whose refusals are pages (text/html)
// rather than problem+json once past the edge.
func isWebPath(path string) bool {
	return path == "/account" || strings.HasPrefix(path, "/account/") || strings.HasPrefix(path, "/account?")
}

// checkWebPage fails unless r is a page of the web pages (HTML with their
// own Content-Security-Policy) with the status want.
func checkWebPage(t testing.TB, name string, r response, want int) {
	t.Helper()
	if r.Status != want || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Errorf("%s: %d %s, want a %d page\n%s", name, r.Status, r.Header.Get("Content-Type"), want, r.Body)
		return
	}
	if csp := r.Header.Get("Content-Security-Policy"); csp != webPolicy {
		t.Errorf("%s: CSP %q, want the web pages' %q", name, csp, webPolicy)
	}
}

// webPolicy is the web pages' Content-Security-Policy (infra/http/web.go).
const webPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
