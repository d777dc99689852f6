package main

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// The Accept headers a tour is sent with: none (JSON) and a page.
var tourAccepts = []string{"", "text/html"}

func TestEveryResponseForbidsSniffingAndEveryPageLocksItselfDown(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	w := a.world()
	toured := map[string]bool{}
	pages := 0
	for i, accept := range tourAccepts {
		tour(w, fmt.Sprintf("sechdr%d", i), func(c routeCall) response {
			toured[c.route] = true
			if accept != "" {
				h := map[string]string{}
				for k, v := range c.r.Headers {
					h[k] = v // the web pages' cookie and form type
				}
				h["Accept"] = accept
				c.r.Headers = h
			}
			r := a.do(c.r)
			name := fmt.Sprintf("%s (Accept %q) → %d", c.route, accept, r.Status)
			if isWebPath(c.r.Path) {
				if checkWebSecurityHeaders(t, name, r) {
					pages++
				}
				return r
			}
			if checkSecurityHeaders(t, name, r.Header, r.Body) {
				pages++
			}
			return r
		})
	}
	checkTourCoversEveryRoute(t, a, toured)
	// What a browser sends for a navigation prefers the page too.
	browser := req{Method: "GET", Path: "/v1/contracts/" + w.contract + "/transparency",
		Headers: map[string]string{"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}}
	if r := expect(t, a.do(browser), 200); !checkSecurityHeaders(t, "a browser's navigation to a statement", r.Header, r.Body) {
		t.Errorf("a browser's Accept got %s, not a page", r.Header.Get("Content-Type"))
	}
	if pages == 0 {
		t.Fatal("no route answered text/html: the page checks checked nothing")
	}

	// Answers written before routing, by the framing check and by the
	// handler of requests fasthttp cannot parse, carry nosniff too.
	addr := a.listen(t)
	for name, raw := range map[string]string{
		"unknown method":         "BREW /v1/offers HTTP/1.1\r\nHost: q\r\n\r\n",
		"two Content-Length":     "GET /v1/offers HTTP/1.1\r\nHost: q\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
		"unparsable":             "GET /v1/offers HTTP/1.1\r\nHost: q\r\nContent-Length: -1\r\n\r\n",
		"headers over the limit": "GET /v1/offers HTTP/1.1\r\nHost: q\r\nX-Big: " + strings.Repeat("b", 20<<10) + "\r\n\r\n",
		"unknown route":          "GET /v1/nothing-here HTTP/1.1\r\nHost: q\r\nAccept: text/html\r\n\r\n",
	} {
		r := dialWire(t, addr).raw("GET", raw)
		if r.StatusCode < 400 {
			t.Errorf("%s: %d, want a refusal", name, r.StatusCode)
		}
		checkSecurityHeaders(t, name, r.Header, r.Body)
	}
}

var (
	styleElement   = regexp.MustCompile(`(?is)<style[^>]*>(.*?)</style>`)
	scriptOrInline = regexp.MustCompile(`(?i)<script|\sstyle\s*=|\son[a-z]+\s*=|javascript:`)
)

// checkSecurityHeaders fails unless the response says nosniff and, when it
// is a page, carries a policy under which nothing but its own inline
// stylesheets applies (each allowed by its hash, so the page still renders),
// no framing, and no Referer. It reports whether the response was a page.
func checkSecurityHeaders(t *testing.T, name string, h http.Header, body []byte) bool {
	t.Helper()
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options %q, want nosniff", name, got)
	}
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if mt != "text/html" && mt != "application/xhtml+xml" && mt != "image/svg+xml" {
		return false
	}
	csp := h.Get("Content-Security-Policy")
	directives := map[string][]string{}
	for _, d := range strings.Split(csp, ";") {
		if f := strings.Fields(d); len(f) > 0 {
			directives[strings.ToLower(f[0])] = f[1:]
		}
	}
	for _, want := range []string{"default-src", "frame-ancestors", "base-uri", "form-action"} {
		if got := strings.Join(directives[want], " "); got != "'none'" {
			t.Errorf("%s: CSP %s is %q, want 'none' (policy %q)", name, want, got, csp)
		}
	}
	for d, sources := range directives {
		for _, s := range sources {
			if s == "'unsafe-inline'" || s == "'unsafe-eval'" || s == "*" || strings.HasSuffix(s, ":") {
				t.Errorf("%s: CSP %s allows %s", name, d, s)
			}
		}
	}
	if got := h.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("%s: X-Frame-Options %q, want DENY", name, got)
	}
	if got := h.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("%s: Referrer-Policy %q, want no-referrer", name, got)
	}
	if m := scriptOrInline.Find(body); m != nil {
		t.Errorf("%s: the page holds %q, which its policy blocks", name, m)
	}
	allowed := map[string]bool{}
	for _, s := range directives["style-src"] {
		allowed[s] = true
	}
	for _, m := range styleElement.FindAllSubmatch(body, -1) {
		sum := sha256.Sum256(m[1])
		if hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !allowed[hash] {
			t.Errorf("%s: an inline stylesheet's hash %s is not in style-src %v: the page would render unstyled", name, hash, directives["style-src"])
		}
	}
	return true
}

// checkWebSecurityHeaders is checkSecurityHeaders for the web pages under
// /account: their policy is webPolicy, which allows Quid's own stylesheet
// and forms posting to Quid ('self') but still no script, no inline style,
// no framing; every answer there, a redirect or the stylesheet too, is
// nosniff. It reports whether the response was a page.
func checkWebSecurityHeaders(t *testing.T, name string, r response) bool {
	t.Helper()
	if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options %q, want nosniff", name, got)
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "text/html" {
		return false
	}
	if got := r.Header.Get("Content-Security-Policy"); got != webPolicy {
		t.Errorf("%s: CSP %q, want the web pages' %q", name, got, webPolicy)
	}
	if got := r.Header.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("%s: X-Frame-Options %q, want DENY", name, got)
	}
	// same-origin, not no-referrer: under no-referrer a browser posts the
	// pages' forms with Origin: null, which the origin check refuses
	// (TestMemberJourneyInARealBrowser found it).
	if got := r.Header.Get("Referrer-Policy"); got != "same-origin" {
		t.Errorf("%s: Referrer-Policy %q, want same-origin", name, got)
	}
	if m := scriptOrInline.Find(r.Body); m != nil {
		t.Errorf("%s: the page holds %q, which its policy blocks", name, m)
	}
	if styleElement.Match(r.Body) {
		t.Errorf("%s: the page has a <style> element, which webPolicy blocks (style-src 'self' only)", name)
	}
	return true
}
