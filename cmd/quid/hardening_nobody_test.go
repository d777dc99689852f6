package main

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// A write to an operation that takes no body (no requestBody in
// openapi.yaml) with content of any kind is refused with 415 and writes
// nothing: publishing, versioning, cancelling and erasing must not happen
// on a request that was built for something else. Every served write route
// is checked against openapi.yaml, so a new bodyless route is covered.
func TestWritesThatTakeNoBodyRefuseOneAndWriteNothing(t *testing.T) {
	t.Parallel()
	router := spec(t)
	gzipOfNothing := string(compress(t, "gzip", strings.NewReader("")))
	deflateOfNothing := string(compress(t, "deflate", strings.NewReader("")))
	bodies := []struct {
		name, contentType, encoding, body string
	}{
		{"JSON with a duplicate key", "application/json", "", `{"a":1,"a":2}`},
		{"an empty JSON object", "application/json", "", `{}`},
		{"plain text", "text/plain", "", "erase me"},
		{"a gzip stream of nothing", "application/json", "gzip", gzipOfNothing},
		{"a deflate stream of nothing", "", "deflate", deflateOfNothing},
	}
	for _, b := range bodies {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			a := newAPI(t)
			w := a.world()
			bodyless := 0
			tour(w, "alice", func(c routeCall) response {
				m := c.r.Method
				if m != "POST" && m != "PUT" && m != "PATCH" && m != "DELETE" {
					return a.do(c.r)
				}
				route, _, err := router.FindRoute(httptest.NewRequest(m, "http://quid.test"+strings.SplitN(c.r.Path, "?", 2)[0], nil))
				if err != nil {
					t.Fatalf("%s: not in openapi.yaml: %v", c.route, err)
				}
				if route.Operation.RequestBody != nil {
					return a.do(c.r)
				}
				bodyless++
				c.r.Body = b.body
				c.r.Headers = map[string]string{"Content-Type": b.contentType}
				if b.encoding != "" {
					c.r.Headers["Content-Encoding"] = b.encoding
				}
				var r response
				a.unchangedBy(c.route+" with "+b.name, func() { r = a.do(c.r) })
				if r.Status != 415 {
					t.Errorf("%s with %s: %d, want 415: %s", c.route, b.name, r.Status, r.Body)
				}
				return r
			})
			if bodyless < 4 {
				t.Fatalf("only %d bodyless write routes toured", bodyless)
			}
		})
	}
}
