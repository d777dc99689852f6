package http

import (
	"net/url"
	"testing"
)

// A mailto: link writes to the address and to no one else: whatever the
// stored address holds, the link has no header fields (?), no fragment
// (#), and parses back to the same address.
func TestMailtoLinksEscapeWhatWouldStartHeaderFields(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"privacy@acme.example", "privacy@acme.example?bcc=harvest", "a&b=c@acme.example", "a#b@acme.example",
		"a%3Fb@acme.example", "first.last+tag@acme.example", "privacy@bücher.example"} {
		link := mailtoURL(addr)
		u, err := url.Parse(link)
		if err != nil || u.Scheme != "mailto" || u.RawQuery != "" || u.Fragment != "" {
			t.Errorf("%q: %q parses to %+v (%v), want a mailto: without query or fragment", addr, link, u, err)
			continue
		}
		if to, err := url.PathUnescape(u.Opaque); err != nil || to != addr {
			t.Errorf("%q: %q writes to %q (%v)", addr, link, to, err)
		}
	}
}
