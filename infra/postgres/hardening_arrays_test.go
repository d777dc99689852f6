package postgres_test

import (
	"context"
	"encoding/json"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quidpro/quid/app"
)

// awkward are strings a hand-built array literal or its parser gets wrong:
// quotes, backslashes, braces, commas, white space, NULL, the empty string,
// characters JSON escapes and non-ASCII.
var awkward = []string{`a&b`, `x"y`, `back\slash`, `{brace}`, `comma,id`, `with space`, `NULL`, ``, `josé`, `<tag>`, `o'brien`, `🦊`}

// TestArraysRoundTripEveryCharacter writes text[] and uuid[] parameters
// through the store (access log, changed attribute keys) and reads them back
// unchanged.
func TestArraysRoundTripEveryCharacter(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	const memberID = `a&b "o'brien" {x,y}`
	changes := map[string]any{}
	for _, k := range awkward {
		changes[k] = "v"
	}
	if _, err := w.store.SaveProfile(ctx, memberID, changes, nil, nil); err != nil {
		t.Fatal(err)
	}
	var keysJSON string
	if err := w.db.Raw(`SELECT array_to_json(changed_keys)::text FROM member_events WHERE member_id = ? AND kind = 'attributes_changed'`, memberID).
		Scan(&keysJSON).Error; err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := json.Unmarshal([]byte(keysJSON), &keys); err != nil {
		t.Fatalf("%v: %s", err, keysJSON)
	}
	want := append([]string(nil), awkward...)
	sort.Strings(want)
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("changed keys %q, want %q", keys, want)
	}

	exchanges := []string{uuid.NewString(), uuid.NewString()}
	entry := app.AccessEntry{MemberID: memberID, AccessorRole: "partner", AccessorID: w.brand.ID, AccessorName: "Brand",
		Purpose: "loyalty.personalised_offers", Categories: awkward, ExchangeIDs: exchanges, RequestID: "r1", At: time.Now()}
	if err := w.store.ReadMember(ctx, memberID, func(app.MemberSnapshot) (*app.AccessEntry, error) { return &entry, nil }); err != nil {
		t.Fatal(err)
	}
	got, _, err := w.store.ListAccess(ctx, app.AccessFilter{MemberID: memberID}, app.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0].Categories, awkward) || !reflect.DeepEqual(got[0].ExchangeIDs, exchanges) {
		t.Fatalf("read back %+v", got)
	}
}
