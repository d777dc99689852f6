package main

import (
	"strings"
	"testing"

	"github.com/quidpro/quid/infra/config"
)

// Every URL a recipient gives (its privacy policy, shown on statements; its
// webhook endpoint, dialled by the worker) is an RFC 3986 http(s) URI:
// invalid ports, fragments, white space, quotes, angle brackets, non-ASCII
// and credentials are refused naming the field, and write nothing. A host
// that does not resolve and one that resolves to an internal address get
// the same answer, naming no address.
func TestRecipientURLsAreRealURIsAndRevealNothingOfInternalDNS(t *testing.T) {
	t.Parallel()
	a := newAPI(t, func(c *config.Config) { c.WebhookAllowPrivate = false })
	f := a.fixtures()
	bad := []string{
		"https://93.184.215.14:99999/", "https://93.184.215.14:0/", "https://example.com:/x", "https://example.com:-1/",
		"https://example.com/#frag", "https://example.com/a b", "https://example.com/\t", "https://example.com/\"><script>alert(1)</script>",
		"https://example.com/<x>", "https://example.com/{x}", "https://example.com/é", "https://ex ample.com/",
		"https://user:pw@example.com/", "ftp://example.com/", "http://[2606:4700::1111%25eth0]/", "https://ex%61mple.com/", "https:///path", "https://example.com/" + strings.Repeat("a", 2000),
	}
	for _, u := range bad {
		recipient := map[string]any{"name": "R", "kind": "third_party", "country": "DE", "privacy_policy_url": u}
		a.unchangedBy("recipient with "+u, func() {
			problemAt(t, a.do(req{Method: "POST", Path: "/v1/recipients", Token: f.admin, Body: recipient}), 422, "/privacy_policy_url")
		})
		a.unchangedBy("webhook with "+u, func() {
			problemAt(t, a.do(req{Method: "PUT", Path: "/v1/partner/webhook", Token: f.partner, Body: map[string]any{"url": u}}), 422, "/url")
		})
	}
	expect(t, a.do(req{Method: "POST", Path: "/v1/recipients", Token: f.admin, Body: map[string]any{
		"name": "R", "kind": "third_party", "country": "DE", "privacy_policy_url": "https://r.example:8443/privacy?lang=en&x=%C3%A9"}}), 201)
	// As long as the webhook URL may be (2,000 characters), not the 500 of
	// plain strings.
	expect(t, a.do(req{Method: "POST", Path: "/v1/recipients", Token: f.admin, Body: map[string]any{
		"name": "R", "kind": "third_party", "country": "DE", "privacy_policy_url": "https://r.example/" + strings.Repeat("p", 1900)}}), 201)

	answers := map[string]string{}
	for _, u := range []string{"http://localhost/", "http://127.0.0.1:8080/", "http://no-such-host.invalid/"} {
		r := a.do(req{Method: "PUT", Path: "/v1/partner/webhook", Token: f.partner, Body: map[string]any{"url": u}})
		problemAt(t, r, 422, "/url")
		var p struct{ Errors []struct{ Detail string } }
		r.decode(t, &p)
		answers[u] = p.Errors[0].Detail
		if strings.Contains(p.Errors[0].Detail, "127.0.0.1") || strings.Contains(p.Errors[0].Detail, "::1") {
			t.Errorf("%s: the answer names an address: %s", u, p.Errors[0].Detail)
		}
	}
	if answers["http://localhost/"] != answers["http://no-such-host.invalid/"] {
		t.Errorf("an internal name and an unknown one are told apart: %q vs %q", answers["http://localhost/"], answers["http://no-such-host.invalid/"])
	}
}
