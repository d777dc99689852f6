package postgres_test

import (
	"strings"
	"testing"
)

// Two rows that differ in any sealed column get different seals, also when
// their columns print the same once run together: a NULL and an empty text,
// one text's end moved into the next, a value moved to the neighbouring
// column, times a microsecond apart (migration 00010's sealed text).
func TestHistorySealsTellApartRowsWhoseColumnsPrintTheSameRunTogether(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const u = `"00000000-0000-0000-0000-00000000000a"`
	ledger := []string{
		`"kind": "reversal", "points": 1, "seq": 1`,
		`"kind": "reversal", "points": 11`,
		`"kind": "reversal", "points": 1, "seq": 1, "terms_hash": ""`,
		`"kind": "reversal", "points": 1, "seq": 1, "terms_hash": "|"`,
		`"kind": "reversal|", "points": 1, "seq": 1`,
		`"kind": "reversal", "points": 1, "seq": 1, "exchange_id": ` + u,
		`"kind": "reversal", "points": 1, "seq": 1, "contract_id": ` + u,
		`"kind": "reversal", "points": 1, "seq": 1, "family_id": ` + u,
		`"kind": "reversal", "points": 1, "seq": 1, "period_start": "2026-01-01T00:00:00Z"`,
		`"kind": "reversal", "points": 1, "seq": 1, "period_end": "2026-01-01T00:00:00Z"`,
		`"kind": "reversal", "points": 1, "seq": 1, "created_at": "2026-01-01T00:00:00.000001Z"`,
	}
	consent := []string{
		`"kind": "joined", "actor": "member", "terms_hash": "h"`,
		`"kind": "joined", "actor": "member", "terms_hash": ""`,
		`"kind": "joined", "actor": "member"`,
		`"kind": "joine", "actor": "dmember", "terms_hash": "h"`,
		`"kind": "joined", "actor": "member", "terms_hash": "h|6:joined"`,
		`"kind": "", "actor": "member", "terms_hash": "h|6:joined"`,
		`"kind": "joined", "actor": "member", "terms_hash": "h", "exchange_id": ` + u,
		`"kind": "joined", "actor": "member", "terms_hash": "h", "contract_id": ` + u,
		`"kind": "joined", "actor": "member", "terms_hash": "h", "at": "2026-01-01T00:00:00.000001Z"`,
	}
	for _, tc := range []struct {
		seal, table, base string
		rows              []string
	}{
		{"ledger_entry_seal", "ledger_entries", `"id": "00000000-0000-0000-0000-000000000001", "created_at": "2026-01-01T00:00:00Z"`, ledger},
		{"consent_event_seal", "consent_events", `"id": 1, "at": "2026-01-01T00:00:00Z"`, consent},
	} {
		var docs []string
		for _, r := range tc.rows {
			docs = append(docs, "{"+tc.base+", "+r+"}")
		}
		var distinct, total int
		err := w.db.Raw(`SELECT count(DISTINCT s), count(s) FROM (
			SELECT `+tc.seal+`(NULL, jsonb_populate_record(NULL::`+tc.table+`, d)) AS s FROM unnest(CAST(? AS jsonb[])) d) x`,
			"{"+strings.Join(quoteAll(docs), ",")+"}").Row().Scan(&distinct, &total)
		if err != nil {
			t.Fatal(err)
		}
		if total != len(tc.rows) || distinct != total {
			t.Errorf("%s: %d distinct seals among %d rows that all differ", tc.seal, distinct, total)
		}
	}
}

// quoteAll quotes each element for a PostgreSQL array literal.
func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
	}
	return out
}
