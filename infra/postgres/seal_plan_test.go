package postgres_test

import (
	"context"
	"database/sql"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/quidpro/quid/infra/postgres/pgtest"
)

// The seal triggers' lookup of the member's previous row reads the chain
// index, also on a connection whose plans were made while the tables were
// empty and analyzed as such (a new database): a plan kept from then would
// scan the whole table on every insert as it grows (migration 00015). The
// transaction's own scan counters tell which plan ran.
func TestSealLookupsUseTheChainIndexWhateverTheStatistics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sql.Open("pgx", pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx) // plans are kept per connection: one for all
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ANALYZE consent_events, ledger_entries`); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	// More inserts than PL/pgSQL makes custom plans for (five), so the
	// plan it keeps runs too; two members, so every chain has a previous row.
	for i := range 12 {
		member := []string{"seal-plan-a", "seal-plan-b"}[i%2]
		if _, err := tx.ExecContext(ctx, `INSERT INTO consent_events (exchange_id, member_id, contract_id, terms_hash, kind, actor, at)
			VALUES (gen_random_uuid(), $1, gen_random_uuid(), 'h', 'joined', 'member', clock_timestamp())`, member); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_entries (member_id, kind, points, created_at)
			VALUES ($1, 'reversal', 1, clock_timestamp())`, member); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT relname, seq_scan, coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables
		WHERE relname IN ('consent_events', 'ledger_entries') ORDER BY relname`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var table string
		var seqScans, indexScans int64
		if err := rows.Scan(&table, &seqScans, &indexScans); err != nil {
			t.Fatal(err)
		}
		seen++
		if seqScans != 0 || indexScans < 12 {
			t.Errorf("%s: 12 sealed inserts ran %d sequential scans and %d index scans; the previous row must be found by the chain index",
				table, seqScans, indexScans)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != 2 {
		t.Fatalf("scan counters for %d of the 2 sealed tables", seen)
	}
}
