package main

import (
	"strings"
	"testing"
)

// Every answer to an authenticated call is one principal's (a member's
// balance, a marketer's drafts, a partner's reads): no shared cache may keep
// it, so it says no-store or private. Touring every route keeps a new one
// covered; the web pages answer a signed-in browser the same way.
func TestAuthenticatedAnswersAreNeverStoredBySharedCaches(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	w := a.world()
	toured := map[string]bool{}
	tour(w, "alice", func(c routeCall) response {
		toured[c.route] = true
		r := a.do(c.r)
		if c.r.Token == "" && c.web == "" || r.Status >= 300 {
			return r
		}
		cc := strings.ToLower(r.Header.Get("Cache-Control"))
		if !strings.Contains(cc, "no-store") && !strings.Contains(cc, "private") {
			t.Errorf("%s as %s: %d with Cache-Control %q, want no-store or private", c.route, c.r.Method, r.Status, cc)
		}
		return r
	})
	checkTourCoversEveryRoute(t, a, toured)
}
