package main

import (
	"bytes"
	"encoding/json"
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
		"title": "Coffee club", "summary": "City for coffee.", "retention": "P30D", "duration": "P1Y", "renewal_notice": "P7D",
		"items":   []any{map[string]any{"category": "location.city", "purpose": "loyalty.personalised_offers", "recipients": []any{zeroUUID}}},
		"reward":  map[string]any{"join_bonus": 10, "vesting": "P1D", "points_per_period": 1, "period": "P1D", "max_periods": 12},
		"min_age": 18, "points_expire_after": "P6M",
		"value_estimate": map[string]any{"amount": "4.80", "currency": "EUR", "per": "P1Y"},
		"value_method":   "revenue_attributable", "value_explanation": "Revenue per member and year.",
	}
	reward := map[string]any{"name": "Cinema ticket", "description": "One seat.", "image_url": "https://img.example.com/t.png", "cost": 100,
		"stock": 10, "per_member_limit": 2, "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z"}
	return map[string]map[string]any{
		"POST /v1/recipients":             {"name": "Acme", "kind": "third_party", "country": "NO", "privacy_policy_url": "https://acme.example/privacy"},
		"PUT /v1/programme":               programmeBody("EUR", "0.01"),
		"PUT /v1/programme/tiers":         tiersBody(),
		"POST /v1/contracts":              contract,
		"PATCH /v1/contracts/:id":         contract,
		"POST /v1/contracts/:id/retire":   {"terminate_active": true},
		"PUT /v1/me":                      {"attributes": map[string]any{"contact.email": "m@example.com", "location.city": "Oslo"}},
		"POST /v1/me/exchanges":           {"contract_id": zeroUUID, "affirm_despite_gpc": true},
		"POST /v1/me/exchanges/:id/renew": {"affirm_despite_gpc": true},
		"POST /v1/me/redemptions":         {"points": 1, "reference": "gift card"},
		"PUT /v1/partner/webhook":         {"url": "https://hooks.example/quid", "secret": "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},
		"POST /v1/partner/deletions":      {"exchange_id": zeroUUID},
		"PUT /v1/me/restriction":          {"restricted": true},
		"POST /v1/me/objections":          {"purpose": "research.market"},
		"POST /v1/rewards":                reward,
		"PATCH /v1/rewards/:id":           reward,
	}
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
