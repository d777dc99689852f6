package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// mustVerify is a temporary stand-in for the real one (which runs `quid
// verify`): it checks a few ledger and consent invariants in SQL, fails the
// test naming every violating row, and returns a one-line report.
func mustVerify(t testing.TB, databaseURL string) string {
	t.Helper()
	db, err := sql.Open("pgx", databaseURL)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	defer db.Close()
	checks := []struct{ rule, query string }{
		{"balance equals its entries and is not negative", `
SELECT m.id || ': available ' || m.available || ' pending ' || m.pending || ', entries ' || coalesce(s.a, 0) || ' and ' || coalesce(s.p, 0)
FROM members m LEFT JOIN (
    SELECT member_id,
        sum(points) FILTER (WHERE kind IN ('period_credit', 'bonus_vested', 'redemption', 'reversal')) AS a,
        coalesce(sum(points) FILTER (WHERE kind IN ('bonus_pending', 'bonus_voided')), 0)
          - coalesce(sum(points) FILTER (WHERE kind = 'bonus_vested'), 0) AS p
    FROM ledger_entries GROUP BY member_id) s ON s.member_id = m.id
WHERE m.available <> coalesce(s.a, 0) OR m.pending <> coalesce(s.p, 0) OR m.available < 0 OR m.pending < 0`},
		{"at most one credit per (exchange, period)", `
SELECT exchange_id || ' period ' || period_start || ': ' || count(*) || ' credits'
FROM ledger_entries WHERE kind = 'period_credit' GROUP BY exchange_id, period_start HAVING count(*) > 1`},
		{"period credit inside the exchange's active window", `
SELECT l.exchange_id || ' period [' || l.period_start || ', ' || l.period_end || ') outside [' || e.joined_at || ', ' || coalesce(e.ended_at::text, 'active') || ')'
FROM ledger_entries l JOIN exchanges e ON e.id = l.exchange_id
WHERE l.kind = 'period_credit' AND (l.period_start < e.joined_at OR l.period_end > coalesce(e.ended_at, e.expires_at, clock_timestamp()))`},
		{"join bonus at most once per member and contract family", `
SELECT member_id || ' family ' || family_id || ': ' || count(*) || ' bonuses'
FROM ledger_entries WHERE kind = 'bonus_pending' GROUP BY member_id, family_id HAVING count(*) > 1`},
	}
	var failed []string
	for _, c := range checks {
		rows, err := db.QueryContext(context.Background(), c.query)
		if err != nil {
			t.Fatalf("verify %s: %v", c.rule, err)
		}
		for rows.Next() {
			var row string
			if err := rows.Scan(&row); err != nil {
				t.Fatalf("verify %s: %v", c.rule, err)
			}
			failed = append(failed, c.rule+": "+row)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("verify %s: %v", c.rule, err)
		}
		rows.Close()
	}
	if len(failed) > 0 {
		t.Fatalf("verify found %d violations:\n%s", len(failed), strings.Join(failed, "\n"))
	}
	var members, entries, exchanges int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM members), (SELECT count(*) FROM ledger_entries), (SELECT count(*) FROM exchanges)`).
		Scan(&members, &entries, &exchanges); err != nil {
		t.Fatalf("verify: %v", err)
	}
	return fmt.Sprintf("verify: ok, %d checks clean over %d members, %d exchanges, %d ledger entries", len(checks), members, exchanges, entries)
}
