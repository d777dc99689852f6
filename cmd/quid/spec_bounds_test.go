package main

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// specBounds walks a request schema (properties, array items, $refs,
// allOf/anyOf/oneOf) and lists every maxLength (of a string) and maxItems
// (of an array) it declares, by JSON pointer (array elements as /0).
func specBounds(s *openapi3.Schema, pointer string, out map[string]int) {
	if s == nil {
		return
	}
	if s.MaxLength != nil {
		out[pointer] = int(*s.MaxLength)
	}
	if s.MaxItems != nil {
		out[pointer] = int(*s.MaxItems)
	}
	for name, p := range s.Properties {
		specBounds(p.Value, pointer+"/"+name, out)
	}
	if s.Items != nil {
		specBounds(s.Items.Value, pointer+"/0", out)
	}
	for _, group := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, r := range group {
			specBounds(r.Value, pointer, out)
		}
	}
}

// Every length bound openapi.yaml declares for the programme identity and
// the contract inputs is the server's: a value exactly at the bound is
// accepted, one past it is refused with a 422 at that pointer. Both the
// edge (the body scanner's defaults and validate tags) and the domain's
// checks are tried, so neither can drift from the spec (the jurisdictions
// once allowed 300 in the spec and 200 at the edge). A bound added to one
// of these schemas must be taught to this test (sized below).
func TestEveryLengthBoundOfTheSpecIsTheServers(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	cats, purs := catalogueKeys(t, a)
	var recipients []string
	for i := range 21 {
		r := expect(t, a.do(req{Method: "POST", Path: "/v1/recipients", Token: f.admin, Body: map[string]any{
			"name": fmt.Sprintf("Bound %d", i), "kind": "first_party", "country": "NO", "privacy_policy_url": "https://bound.example/privacy"}}), 201)
		recipients = append(recipients, r.json(t)["id"].(string))
	}
	text := func(n int) any { return strings.Repeat("a", n) }
	// sized are the values each bounded field takes at n: valid in every
	// other way, so only the size can be refused.
	sized := map[string]func(n int) any{
		"/legal_name": text, "/address": text, "/dpo_contact": text, "/supervisory_authority/name": text,
		"/title": text, "/summary": text, "/value_explanation": text,
		"/contact_email": func(n int) any { return strings.Repeat("a", n-len("@acme.example")) + "@acme.example" },
		"/supervisory_authority/complaint_url": func(n int) any {
			return "https://authority.example/" + strings.Repeat("a", n-len("https://authority.example/"))
		},
		"/jurisdictions": func(n int) any {
			var out []string
			for i := range n {
				out = append(out, fmt.Sprintf("US-%03d", i))
			}
			return out
		},
		"/items": func(n int) any {
			var out []any
			for _, c := range cats {
				out = append(out, map[string]any{"category": c, "purpose": "loyalty.programme_operation", "recipients": []string{f.brand}})
			}
			for _, p := range purs {
				if p != "loyalty.programme_operation" {
					out = append(out, map[string]any{"category": "contact.email", "purpose": p, "recipients": []string{f.brand}})
				}
			}
			if len(out) < n {
				t.Fatalf("the catalogue makes only %d distinct items, the bound is %d", len(out), n)
			}
			return out[:n]
		},
		"/items/0/recipients": func(n int) any {
			return []any{map[string]any{"category": "location.city", "purpose": "loyalty.programme_operation", "recipients": recipients[:n]}}
		},
	}
	// parent is the field a sized value replaces: an item's recipients
	// come in a whole items list.
	parent := map[string]string{"/items/0/recipients": "/items"}

	draft := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: contractBody(f)}), 201).json(t)["id"].(string)
	routes := []struct {
		schema, method, path string
		body                 func() map[string]any
		ok                   int
	}{
		{"ProgrammeInput", "PUT", "/v1/programme", func() map[string]any { return programmeBody("EUR", "0.01") }, 200},
		{"ContractInput", "POST", "/v1/contracts", func() map[string]any { return contractBody(f) }, 201},
		{"ContractPatch", "PATCH", "/v1/contracts/" + draft, func() map[string]any { return map[string]any{} }, 200},
	}
	token := map[string]string{"PUT": f.admin, "POST": f.marketer, "PATCH": f.marketer}
	for _, r := range routes {
		schema := specDoc(t).Components.Schemas[r.schema]
		if schema == nil {
			t.Fatalf("openapi.yaml has no %s", r.schema)
		}
		bounds := map[string]int{}
		specBounds(schema.Value, "", bounds)
		var pointers []string
		for p := range bounds {
			pointers = append(pointers, p)
		}
		sort.Strings(pointers)
		for _, p := range pointers {
			size, ok := sized[p]
			if !ok {
				t.Errorf("%s %s: openapi.yaml bounds it to %d; teach this test a value of that size", r.schema, p, bounds[p])
				continue
			}
			at := func(n int) response {
				b := r.body()
				field := p
				if up, ok := parent[p]; ok {
					field = up
				}
				// Set the value at the field's pointer, making the objects on the way.
				parts := strings.Split(strings.TrimPrefix(field, "/"), "/")
				obj := b
				for _, k := range parts[:len(parts)-1] {
					next, ok := obj[k].(map[string]any)
					if !ok {
						next = map[string]any{}
						if k == "supervisory_authority" {
							next = map[string]any{"name": "Datatilsynet", "complaint_url": "https://www.datatilsynet.no/en/"}
						}
						obj[k] = next
					}
					obj = next
				}
				obj[parts[len(parts)-1]] = size(n)
				return a.do(req{Method: r.method, Path: r.path, Token: token[r.method], Body: b})
			}
			max := bounds[p]
			if res := at(max); res.Status != r.ok {
				t.Errorf("%s %s at its bound %d: %d, want %d: %.300s", r.schema, p, max, res.Status, r.ok, res.Body)
			}
			res := at(max + 1)
			if res.Status != 422 || !strings.Contains(string(res.Body), `"pointer":"`+p+`"`) {
				t.Errorf("%s %s past its bound %d: %d, want 422 at %s: %.300s", r.schema, p, max, res.Status, p, res.Body)
			}
		}
	}
}
