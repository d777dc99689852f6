package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/quidpro/quid/app"
)

// bodyRoute is a route that decodes a JSON body, with the role that reaches
// its decoder and a valid body to mutate.
type bodyRoute struct {
	method, path string
	token        string
	sample       map[string]any
}

const zeroUUID = "00000000-0000-0000-0000-000000000000"

// sampleBodies holds one valid body per route that decodes JSON; the test
// below fails when a route decodes a body and has no sample here.
func sampleBodies() map[string]map[string]any {
	contract := map[string]any{
		"title": "Coffee club", "summary": "City for coffee.", "retention": "P30D", "duration": "P1Y",
		"items":  []any{map[string]any{"category": "location.city", "purpose": "loyalty.personalised_offers", "recipients": []any{zeroUUID}}},
		"reward": map[string]any{"join_bonus": 10, "vesting": "P1D", "points_per_period": 1, "period": "P1D", "max_periods": 12},
	}
	return map[string]map[string]any{
		"POST /v1/recipients":           {"name": "Acme", "kind": "third_party", "country": "NO", "privacy_policy_url": "https://acme.example/privacy"},
		"POST /v1/contracts":            contract,
		"PATCH /v1/contracts/:id":       contract,
		"POST /v1/contracts/:id/retire": {"terminate_active": true},
		"PUT /v1/me":                    {"attributes": map[string]any{"contact.email": "m@example.com", "location.city": "Oslo"}},
		"POST /v1/me/exchanges":         {"contract_id": zeroUUID},
		"POST /v1/me/redemptions":       {"points": 1, "reference": "gift card"},
		"PUT /v1/partner/webhook":       {"url": "https://hooks.example/quid", "secret": ""},
		"POST /v1/partner/deletions":    {"exchange_id": zeroUUID},
	}
}

// nullablePointers are the body fields where null is meaningful.
func nullable(pointer string) bool {
	switch pointer {
	case "/duration", "/reward/vesting", "/reward/period", "/reward/max_periods":
		return true
	}
	return strings.HasPrefix(pointer, "/attributes/")
}

// bodyRoutes finds, from the router's own route list, every route that
// decodes a JSON body: the one that answers a truncated body with 400
// malformed-json for some role.
func bodyRoutes(t testing.TB, a *api) []bodyRoute {
	t.Helper()
	tokens := []string{
		token(t, app.RoleAdmin, "root"), token(t, app.RoleMarketer, "mark"),
		token(t, app.RoleMember, "body-member"), token(t, app.RolePartner, zeroUUID),
	}
	samples := sampleBodies()
	seen := map[string]bool{}
	var out []bodyRoute
	for _, r := range a.svc.app.GetRoutes(true) {
		if r.Method != "POST" && r.Method != "PUT" && r.Method != "PATCH" || seen[r.Method+" "+r.Path] {
			continue
		}
		seen[r.Method+" "+r.Path] = true
		path := r.Path
		for _, p := range r.Params {
			path = strings.Replace(path, ":"+p, zeroUUID, 1)
		}
		for _, tok := range tokens {
			res := a.do(req{Method: r.Method, Path: path, Token: tok, Body: "{"})
			if res.Status != 400 || !bytes.Contains(res.Body, []byte("malformed-json")) {
				continue
			}
			key := r.Method + " " + r.Path
			sample, ok := samples[key]
			if !ok {
				t.Fatalf("%s decodes a JSON body but has no sample in sampleBodies", key)
			}
			out = append(out, bodyRoute{method: r.Method, path: path, token: tok, sample: sample})
			delete(samples, key)
			break
		}
	}
	for key := range samples {
		t.Errorf("sample for %s, which no longer decodes a body", key)
	}
	if len(out) < 8 {
		t.Fatalf("only %d body routes found", len(out))
	}
	return out
}

// encodeWith writes v as JSON with object keys sorted; mutate may rewrite
// any value (by pointer) or duplicate/rename a key.
type mutation struct {
	at    string                  // JSON pointer the mutation targets
	value func(v any) string      // replacement JSON text for the value at `at`
	key   func(k string) []string // replacement keys for the key at `at` (each written with the same value)
	extra int                     // extra members added to the object at `at`
}

func encodeWith(v any, ptr string, m mutation, b *bytes.Buffer) {
	if ptr == m.at && m.value != nil {
		b.WriteString(m.value(v))
		return
	}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		first := true
		write := func(k string, val any, childPtr string) {
			if !first {
				b.WriteByte(',')
			}
			first = false
			kb, _ := json.Marshal(k)
			b.Write(kb)
			b.WriteByte(':')
			encodeWith(val, childPtr, m, b)
		}
		for _, k := range keys {
			child := ptr + "/" + k
			names := []string{k}
			if child == m.at && m.key != nil {
				names = m.key(k)
			}
			for _, n := range names {
				write(n, x[k], child)
			}
		}
		if ptr == m.at {
			for i := 0; i < m.extra; i++ {
				write("k"+strconv.Itoa(i), i, ptr+"/k"+strconv.Itoa(i))
			}
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			encodeWith(e, ptr+"/"+strconv.Itoa(i), m, b)
		}
		b.WriteByte(']')
	default:
		raw, _ := json.Marshal(x)
		b.Write(raw)
	}
}

// pointers lists every value's pointer in v, by kind.
func pointers(v any, ptr string, visit func(ptr string, v any)) {
	if ptr != "" {
		visit(ptr, v)
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			pointers(e, ptr+"/"+k, visit)
		}
	case []any:
		for i, e := range x {
			pointers(e, ptr+"/"+strconv.Itoa(i), visit)
		}
	}
}

// normalise turns typed samples ([]string, ints) into what encoding/json
// would give back, so pointers walks them uniformly.
func normalise(t testing.TB, v map[string]any) map[string]any {
	raw, _ := json.Marshal(v)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// Every route that decodes a JSON body refuses, with a 422 naming the
// field, what encoding/json alone would accept or read differently from
// other parsers: NUL, invalid UTF-8 and lone surrogates in any string,
// strings beyond their cap, a key given twice at any depth (also in another
// case), null where the field cannot be null, too many items, members or
// levels. None of it may reach the database or answer 5xx.
func TestEveryJSONBodyRefusesHostileValuesNamingTheField(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	for _, r := range bodyRoutes(t, a) {
		sample := normalise(t, r.sample)
		send := func(name string, m mutation, wantPointer string) {
			t.Helper()
			var b bytes.Buffer
			encodeWith(sample, "", m, &b)
			res := a.do(req{Method: r.method, Path: r.path, Token: r.token, Body: b.String()})
			if res.Status >= 500 {
				t.Fatalf("%s %s, %s: %d %s", r.method, r.path, name, res.Status, res.Body)
			}
			if res.Status != http.StatusUnprocessableEntity {
				t.Errorf("%s %s, %s: %d, want 422: %s\nbody: %.300s", r.method, r.path, name, res.Status, res.Body, b.String())
				return
			}
			if wantPointer != "" && !bytes.Contains(res.Body, []byte(`"pointer":"`+wantPointer+`"`)) {
				t.Errorf("%s %s, %s: problem does not name %s: %s", r.method, r.path, name, wantPointer, res.Body)
			}
		}
		pointers(sample, "", func(ptr string, v any) {
			if _, isString := v.(string); isString {
				send("NUL at "+ptr, mutation{at: ptr, value: func(any) string { return `"a\u0000b"` }}, ptr)
				send("invalid UTF-8 at "+ptr, mutation{at: ptr, value: func(any) string { return "\"a\xff\xfeb\"" }}, ptr)
				send("lone surrogate at "+ptr, mutation{at: ptr, value: func(any) string { return `"a\ud800b"` }}, ptr)
				send("long string at "+ptr, mutation{at: ptr, value: func(any) string { return `"` + strings.Repeat("é", 3000) + `"` }}, ptr)
				send("deep nesting at "+ptr, mutation{at: ptr, value: func(any) string { return strings.Repeat("[", 200) + strings.Repeat("]", 200) }}, "")
			}
			if !nullable(ptr) {
				send("null at "+ptr, mutation{at: ptr, value: func(any) string { return "null" }}, ptr)
			}
			if !isIndex(ptr) {
				send("duplicate key at "+ptr, mutation{at: ptr, key: func(k string) []string { return []string{k, k} }}, ptr)
			}
			if !strings.HasPrefix(ptr, "/attributes/") && strings.ToUpper(ptr) != ptr && !isIndex(ptr) {
				upper := ptr[:strings.LastIndex(ptr, "/")+1] + strings.ToUpper(ptr[strings.LastIndex(ptr, "/")+1:])
				send("key in another case at "+ptr, mutation{at: ptr, key: func(k string) []string { return []string{strings.ToUpper(k)} }}, upper)
				send("key twice in two cases at "+ptr, mutation{at: ptr, key: func(k string) []string { return []string{k, strings.ToUpper(k)} }}, upper)
			}
			if arr, ok := v.([]any); ok && len(arr) > 0 {
				send("1000 items at "+ptr, mutation{at: ptr, value: func(any) string {
					one, _ := json.Marshal(arr[0])
					return "[" + strings.TrimSuffix(strings.Repeat(string(one)+",", 1000), ",") + "]"
				}}, ptr)
			}
			if _, ok := v.(map[string]any); ok {
				send("150 extra members at "+ptr, mutation{at: ptr, extra: 150}, "")
			}
		})
		send("150 extra members at the root", mutation{at: "", extra: 150}, "")
		send("deep nesting at the root", mutation{at: "", value: func(any) string {
			return strings.Repeat(`{"a":`, 200) + "1" + strings.Repeat("}", 200)
		}}, "")
	}
}

func isIndex(ptr string) bool {
	_, err := strconv.Atoi(ptr[strings.LastIndex(ptr, "/")+1:])
	return err == nil
}

// The issue's own examples, spelled out.
func TestNullRewardsAndDuplicateKeysAreRefused(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	for _, tt := range []struct{ body, pointer string }{
		{`{"title":"T","items":[],"retention":"P30D","reward":{"points_per_period":null}}`, "/reward/points_per_period"},
		{`{"title":"T","items":[],"retention":"P30D","reward":{"join_bonus":null}}`, "/reward/join_bonus"},
		{`{"title":"T","title":"U","items":[],"retention":"P30D","reward":{"join_bonus":1}}`, "/title"},
		{`{"title":"T","items":[],"retention":"P30D","reward":{"join_bonus":1,"join_bonus":1000000}}`, "/reward/join_bonus"},
		{`{"title":"a\u0000b","items":[],"retention":"P30D","reward":{"join_bonus":1}}`, "/title"},
	} {
		problemAt(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: tt.body}), 422, tt.pointer)
	}
	// A body that is not an object is wrong as a whole: RFC 6901's pointer
	// to the whole document is "", not "/" (which names a key "").
	for _, body := range []string{`[{"title":"T"}]`, `"T"`, `42`} {
		problemAt(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: body}), 422, "")
	}
}
