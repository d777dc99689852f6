package catalog_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/quidpro/quid/domain"
	"github.com/quidpro/quid/infra/catalog"
)

// storedKinds is one stored and one derived category of every value type
// the shipped catalogue uses, stored ones first, each sorted by type, so a fuzz input's first byte
// picks one and a new type in catalog.json is fuzzed without a change here.
func storedKinds(t testing.TB) (domain.Catalog, []domain.Category) {
	t.Helper()
	cat, err := catalog.Load()
	if err != nil {
		t.Fatal(err)
	}
	type kind struct {
		t       domain.ValueType
		derived bool
	}
	byType := map[kind]domain.Category{}
	for _, c := range cat.Categories() {
		if k := (kind{c.Type, c.Derived != nil}); byType[k].Key == "" {
			byType[k] = c
		}
	}
	kinds := make([]domain.Category, 0, len(byType))
	for _, c := range byType {
		kinds = append(kinds, c)
	}
	sort.Slice(kinds, func(i, j int) bool { // stored types first, so the seeds keep their meaning
		if di, dj := kinds[i].Derived != nil, kinds[j].Derived != nil; di != dj {
			return dj
		}
		return kinds[i].Type < kinds[j].Type
	})
	return cat, kinds
}

// maxAttributeText is the longest string any type accepts (a string's 500
// characters; an e-mail address is at most 254 by RFC 5321).
const maxAttributeText = 500

// maxStoredAttributeBytes bounds one accepted value's JSON: the largest a
// type allows is a list of 200 strings of 200 characters (4 bytes each).
const maxStoredAttributeBytes = 200 * (200*4*6 + 3)

// FuzzAttributeValues feeds arbitrary JSON, decoded as the request decoder
// decodes it, to the validator of each catalogue type. A derived category
// accepts nothing (members cannot set it). Whatever a stored one accepts
// must be storable as PostgreSQL jsonb and read back unchanged: valid UTF-8
// with no NUL (jsonb refuses \u0000), with no string over 500 characters
// and of bounded size, the same value after
// a JSON round trip, and still accepted then. It must never panic.
func FuzzAttributeValues(f *testing.F) {
	cat, kinds := storedKinds(f)
	if len(kinds) < 9 {
		f.Fatalf("only %d value types in the catalogue", len(kinds))
	}
	f.Fuzz(func(t *testing.T, kind uint8, raw []byte) {
		c := kinds[int(kind)%len(kinds)]
		var value any
		if err := json.Unmarshal(raw, &value); err != nil || value == nil {
			return // not JSON: the request decoder refuses it before the validator
		}
		if cat.ValidateAttribute(c.Key, value) != nil {
			return
		}
		if c.Derived != nil {
			t.Fatalf("%s is derived, yet %q was accepted as its value", c.Key, raw)
		}
		var bad string
		walkStrings(value, func(s string) {
			switch {
			case !utf8.ValidString(s):
				bad = "invalid UTF-8"
			case strings.ContainsRune(s, 0):
				bad = "NUL"
			case utf8.RuneCountInString(s) > maxAttributeText:
				bad = "a string over 500 characters"
			}
		})
		if bad != "" {
			t.Fatalf("%s (%s) accepted %q holding %s", c.Key, c.Type, raw, bad)
		}
		stored, err := json.Marshal(value)
		if err != nil {
			t.Fatalf("%s accepted %q, which does not encode: %v", c.Key, raw, err)
		}
		if len(stored) > maxStoredAttributeBytes {
			t.Fatalf("%s (%s) accepted a value of %d bytes", c.Key, c.Type, len(stored))
		}
		var back any
		dec := json.NewDecoder(bytes.NewReader(stored))
		if err := dec.Decode(&back); err != nil || !reflect.DeepEqual(back, value) {
			t.Fatalf("%s accepted %q, which reads back as %#v", c.Key, raw, back)
		}
		if err := cat.ValidateAttribute(c.Key, back); err != nil {
			t.Fatalf("%s accepted %q but refuses it read back: %v", c.Key, raw, err)
		}
	})
}

func walkStrings(v any, visit func(string)) {
	switch x := v.(type) {
	case string:
		visit(x)
	case []any:
		for _, e := range x {
			walkStrings(e, visit)
		}
	case map[string]any:
		for k, e := range x {
			visit(k)
			walkStrings(e, visit)
		}
	}
}
