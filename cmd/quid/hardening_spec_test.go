package main

import (
	"net/http"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/quidpro/quid"
)

// TestSpecDeclaresHEADForEveryGET checks what openapi.yaml promises about
// HEAD (issue 8 item 18): every GET operation has a HEAD operation, and HEAD
// answers as GET does, without a body.
func TestSpecDeclaresHEADForEveryGET(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromData(quid.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		if item.Get != nil && item.Head == nil {
			t.Errorf("GET %s has no HEAD operation", path)
		}
	}
	a := newAPI(t)
	f := a.fixtures()
	for _, r := range []req{
		{Path: "/healthz"}, {Path: "/v1/offers"}, {Path: "/openapi.yaml"}, {Path: "/v1/me", Token: f.member},
		{Path: "/v1/contracts/not-a-uuid"}, {Path: "/v1/me/exchanges/00000000-0000-0000-0000-000000000000", Token: f.member},
	} {
		r.Method = http.MethodGet
		get := a.do(r)
		r.Method = http.MethodHead
		head := a.do(r)
		if head.Status != get.Status || len(head.Body) != 0 {
			t.Errorf("HEAD %s: %d with %d bytes, GET: %d", r.Path, head.Status, len(head.Body), get.Status)
		}
	}
}

// TestNonUUIDIdsAre404 pins what the spec's ID parameter says: an id that
// is not a UUID names nothing, so it is a 404 like an unknown UUID.
func TestNonUUIDIdsAre404(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	for _, r := range []req{
		{Method: "GET", Path: "/v1/contracts/not-a-uuid"},
		{Method: "GET", Path: "/v1/contracts/not-a-uuid/transparency"},
		{Method: "GET", Path: "/v1/me/exchanges/42", Token: f.member},
		{Method: "DELETE", Path: "/v1/me/exchanges/42", Token: f.member},
	} {
		expect(t, a.do(r), http.StatusNotFound)
	}
}
