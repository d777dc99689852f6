package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"

	"github.com/quidpro/quid/infra/postgres/pgtest"
	"github.com/quidpro/quid/migrations"
)

// Migration 00008 moves existing data: redemption references leave the
// ledger, and members erased before it are pseudonymised as erasure now does.
func TestMigrationMovesReferencesOutAndPseudonymisesEarlierErasures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	server := pgtest.ServerURL(t)
	admin, err := sql.Open("pgx", server)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := "quid_mig_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, _ := url.Parse(server)
	u.Path = "/" + name
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 7); err != nil {
		t.Fatal(err)
	}
	family := uuid.NewString()
	for _, stmt := range []string{
		`INSERT INTO members (id, attributes, available, created_at, updated_at, erased_at) VALUES
			('prb8gone@example.com', '{}', 90, now(), now(), now()), ('prb8kept', '{"location.city": "Oslo"}', 40, now(), now(), NULL)`,
		`INSERT INTO member_events (member_id, kind, at) VALUES ('prb8gone@example.com', 'erased', now())`,
		fmt.Sprintf(`INSERT INTO ledger_entries (member_id, kind, points, family_id, created_at) VALUES
			('prb8gone@example.com', 'bonus_pending', 100, '%s', now())`, family),
		`INSERT INTO ledger_entries (member_id, kind, points, reference, created_at) VALUES
			('prb8gone@example.com', 'redemption', -10, 'Gift card to prb8name', now()),
			('prb8kept', 'redemption', -10, 'prb8keptref', now())`,
		`INSERT INTO idempotency_keys (member_id, scope, key, request_hash, response) VALUES ('prb8gone@example.com', 'redeem', 'prb8key', 'h', '{"reference": "prb8name"}')`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	check := func(what, query string, want int) {
		t.Helper()
		if err := db.QueryRowContext(ctx, query).Scan(&n); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if n != want {
			t.Fatalf("%s: %d, want %d", what, n, want)
		}
	}
	check("references left in the ledger", `SELECT count(*) FROM ledger_entries WHERE reference IS NOT NULL`, 0)
	check("the kept member's reference moved", `SELECT count(*) FROM ledger_references r JOIN ledger_entries l ON l.id = r.entry_id
		WHERE l.member_id = 'prb8kept' AND r.reference = 'prb8keptref'`, 1)
	check("the erased member's text", `SELECT count(*) FROM ledger_references WHERE reference LIKE '%prb8name%'`, 0)
	check("the erased member's idempotent responses", `SELECT count(*) FROM idempotency_keys`, 0)
	for _, table := range []string{"members", "member_events", "ledger_entries"} {
		col := "member_id"
		if table == "members" {
			col = "id"
		}
		check("erased id in "+table, fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s = 'prb8gone@example.com'`, table, col), 0)
	}
	// Its two entries, and the expiry by which migration 00031 forfeits what they left available.
	check("pseudonymised ledger", `SELECT count(*) FROM ledger_entries WHERE member_id LIKE 'erased:%'`, 3)
	check("the erased member's points forfeited", `SELECT count(*) FROM members WHERE id LIKE 'erased:%' AND (available <> 0 OR pending <> 0)`, 0)
	check("bonus claims kept as a keyed hash", fmt.Sprintf(`SELECT count(*) FROM erased_bonus_claims WHERE digest = bonus_claim_digest('prb8gone@example.com', '%s')`, family), 1)
	// The history stays append-only outside an erasure.
	if _, err := db.ExecContext(ctx, `UPDATE ledger_entries SET member_id = 'someone' WHERE member_id = 'prb8kept'`); err == nil {
		t.Fatal("a ledger member id was rewritten outside an erasure")
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO ledger_entries (member_id, kind, points, reference, created_at) VALUES ('prb8kept', 'redemption', -1, 'prb8late', now())`); err != nil {
		t.Fatal(err)
	}
	check("a reference written by an older release", `SELECT count(*) FROM ledger_entries WHERE reference IS NOT NULL`, 0)
	check("lands apart", `SELECT count(*) FROM ledger_references WHERE reference = 'prb8late'`, 1)
}
