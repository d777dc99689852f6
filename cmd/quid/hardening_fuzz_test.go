package main

import (
	"sort"
	"strings"
	"testing"
)

// FuzzJSONBodies sends arbitrary bytes as the body of every route that
// decodes JSON (found from the router) and asserts that no body gets a 5xx
// and every answer matches openapi.yaml. The seeds, one set per route (a
// valid body and hostile variants of it), run in every `go test`;
// `make fuzz` explores further.
func FuzzJSONBodies(f *testing.F) {
	a := newAPI(f)
	routes := bodyRoutes(f, a)
	sort.Slice(routes, func(i, j int) bool { return routes[i].method+routes[i].path < routes[j].method+routes[j].path })
	for i, r := range routes {
		valid, _ := jsonText(normalise(f, r.sample))
		for _, seed := range []string{
			valid,
			strings.Replace(valid, `":"`, `":"\u0000`, 1),
			strings.Replace(valid, `":"`, "\":\"\xff", 1),
			strings.Replace(valid, `":"`, `":"\udc00`, 1),
			strings.Replace(valid, "{", `{"a":1,"a":2,`, 1),
			strings.Replace(valid, `":`, `":null,"x":`, 1),
			strings.Repeat("[", 10000),
			`{"` + strings.Repeat("k", 100000) + `":1}`,
			"",
			"null",
		} {
			f.Add(uint8(i), []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := routes[int(route)%len(routes)]
		call := &api{t: t, svc: a.svc, cfg: a.cfg}
		res := call.do(req{Method: r.method, Path: r.path, Token: r.token, Body: string(body)})
		if res.Status >= 500 {
			t.Fatalf("%s %s with %q: %d %s", r.method, r.path, body, res.Status, res.Body)
		}
	})
}
