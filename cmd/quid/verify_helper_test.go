package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// mustVerify checks ledger invariants on the database at databaseURL and
// fails the test on any violation; it returns the report. (A stand-in for
// the checks of `quid verify`, replaced when that command lands.)
func mustVerify(t testing.TB, databaseURL string) string {
	t.Helper()
	db, err := sql.Open("pgx", databaseURL)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	defer db.Close()
	checks := []struct{ rule, sql string }{
		{"available balance equals its entries", `
SELECT m.id FROM members m LEFT JOIN (
    SELECT member_id, sum(points) AS s FROM ledger_entries
    WHERE kind IN ('bonus_vested', 'period_credit', 'redemption', 'reversal') GROUP BY member_id) l ON l.member_id = m.id
WHERE m.available <> coalesce(l.s, 0)`},
		{"pending balance equals its entries", `
SELECT m.id FROM members m LEFT JOIN (
    SELECT member_id, sum(CASE WHEN kind = 'bonus_vested' THEN -points ELSE points END) AS s FROM ledger_entries
    WHERE kind IN ('bonus_pending', 'bonus_vested', 'bonus_voided') GROUP BY member_id) l ON l.member_id = m.id
WHERE m.pending <> coalesce(l.s, 0)`},
		{"no balance is negative", `SELECT id FROM members WHERE available < 0 OR pending < 0`},
		{"at most one credit per exchange and period", `
SELECT exchange_id::text || ' ' || period_start::text FROM ledger_entries WHERE kind = 'period_credit'
GROUP BY exchange_id, period_start HAVING count(*) > 1`},
		{"credited_periods equals the exchange's period credits", `
SELECT e.id::text FROM exchanges e LEFT JOIN (
    SELECT exchange_id, count(*) AS n FROM ledger_entries WHERE kind = 'period_credit' GROUP BY exchange_id) l ON l.exchange_id = e.id
WHERE e.credited_periods <> coalesce(l.n, 0)`},
		{"every exchange has its join event", `
SELECT e.id::text FROM exchanges e WHERE NOT EXISTS (
    SELECT 1 FROM consent_events c WHERE c.exchange_id = e.id AND c.kind = 'joined')`},
	}
	var report strings.Builder
	failed := false
	for _, c := range checks {
		rows, err := db.QueryContext(context.Background(), c.sql)
		if err != nil {
			t.Fatalf("verify %s: %v", c.rule, err)
		}
		var bad []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatalf("verify %s: %v", c.rule, err)
			}
			bad = append(bad, s)
		}
		rows.Close()
		if len(bad) == 0 {
			fmt.Fprintf(&report, "ok   %s\n", c.rule)
			continue
		}
		failed = true
		fmt.Fprintf(&report, "FAIL %s: %d rows, first %q\n", c.rule, len(bad), bad[0])
	}
	if failed {
		t.Fatalf("verify found violations:\n%s", report.String())
	}
	return report.String()
}
