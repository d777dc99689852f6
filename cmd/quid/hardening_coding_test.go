package main

import (
	"strings"
	"testing"
)

// A compressed body is exactly one stream: bytes after it would be content
// a proxy inspecting the raw body sees and Quid ignores, so they are
// refused (400) and nothing is written. A coding Quid does not support is
// 415 even on an empty body, so no request is served under an encoding the
// edge would refuse with content.
func TestCompressedBodiesCarryNothingAfterTheirStream(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	w := a.world()
	valid := `{"attributes":{"location.city":"Bergen"}}`
	for _, coding := range []string{"gzip", "deflate"} {
		body := string(compress(t, coding, strings.NewReader(valid))) + `{"attributes":{"location.city":"EVIL"}}`
		a.unchangedBy(coding+" with data after the stream", func() {
			r := a.do(req{Method: "PUT", Path: "/v1/me", Token: w.f.member, Body: body, Headers: map[string]string{"Content-Encoding": coding}})
			if r.Status != 400 {
				t.Errorf("%s stream followed by more data: %d %s, want 400", coding, r.Status, r.Body)
			}
		})
		r := a.do(req{Method: "PUT", Path: "/v1/me", Token: w.f.member, Body: string(compress(t, coding, strings.NewReader(valid))),
			Headers: map[string]string{"Content-Encoding": coding}})
		if r.Status >= 300 {
			t.Errorf("%s stream alone: %d %s", coding, r.Status, r.Body)
		}
	}
	a.unchangedBy("br on an empty body", func() {
		r := a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + w.exchange, Token: w.f.member, Headers: map[string]string{"Content-Encoding": "br"}})
		if r.Status != 415 {
			t.Errorf("an unsupported coding on an empty body: %d %s, want 415", r.Status, r.Body)
		}
	})
}
