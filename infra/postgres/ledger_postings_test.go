package postgres_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
	"github.com/quidpro/quid/infra/postgres"
	"github.com/quidpro/quid/infra/postgres/pgtest"
	"github.com/quidpro/quid/migrations"
)

// The database posts each entry with the chart of movements domain
// applies to balances (domain.PostingsOf): same accounts, same amounts, for
// every kind, whatever the sign of the points.
func TestChartOfMovementsAgreesWithPostgres(t *testing.T) {
	t.Parallel()
	r := paritySeed(t)
	db := openSQL(t, pgtest.NewDatabase(t))
	for _, kind := range domain.EntryKinds {
		for range 20 {
			points := r.Int63n(1_000_000) - 500_000
			want, err := domain.PostingsOf(kind, points)
			if err != nil {
				t.Fatal(err)
			}
			var sum int64
			got := map[domain.Account]int64{}
			rows, err := db.Query(`SELECT account, amount FROM ledger_entry_postings($1, $2)`, string(kind), points)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var a string
				var n int64
				if err := rows.Scan(&a, &n); err != nil {
					t.Fatal(err)
				}
				got[domain.Account(a)] = n
			}
			rows.Close()
			if len(got) != len(want) {
				t.Fatalf("%s of %d: SQL posts %v, domain %v", kind, points, got, want)
			}
			for _, p := range want {
				sum += p.Amount
				if n, ok := got[p.Account]; !ok || n != p.Amount {
					t.Fatalf("%s of %d: SQL posts %v, domain %v", kind, points, got, want)
				}
			}
			if sum != 0 {
				t.Fatalf("%s of %d: the chart's postings sum to %d", kind, points, sum)
			}
		}
	}
}

// The database writes an entry's postings with the entry, in the same
// statement, and refuses postings that do not balance and any change to a
// posting (rule 12 holds in the database, not only in the code).
func TestDatabasePostsEveryEntryAndRefusesUnbalancedOrChangedPostings(t *testing.T) {
	t.Parallel()
	db := openSQL(t, pgtest.NewDatabase(t))
	var id string
	if err := db.QueryRow(`WITH m AS (INSERT INTO members (id, available, pending, created_at, updated_at) VALUES ('pst1', 0, 100, now(), now()))
		INSERT INTO ledger_entries (member_id, kind, points, created_at) VALUES ('pst1', 'bonus_pending', 100, now()) RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	var n, sum int64
	if err := db.QueryRow(`SELECT count(*), coalesce(sum(amount), 0) FROM ledger_postings WHERE entry_id = $1`, id).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != 2 || sum != 0 {
		t.Fatalf("the entry has %d postings summing to %d, want 2 summing to 0", n, sum)
	}
	for what, stmt := range map[string]string{
		"an unbalanced posting":         fmt.Sprintf(`INSERT INTO ledger_postings (entry_id, account, amount) VALUES ('%s', 'available', 5)`, id),
		"an unbalanced transaction":     fmt.Sprintf(`INSERT INTO ledger_postings (entry_id, account, amount) VALUES ('%[1]s', 'available', 5), ('%[1]s', 'redeemed', -4)`, uuid.NewString()),
		"a changed posting":             fmt.Sprintf(`UPDATE ledger_postings SET amount = amount + 1 WHERE entry_id = '%s'`, id),
		"a deleted posting":             fmt.Sprintf(`DELETE FROM ledger_postings WHERE entry_id = '%s' AND account = 'issued'`, id),
		"a posting on no known account": fmt.Sprintf(`INSERT INTO ledger_postings (entry_id, account, amount) VALUES ('%[1]s', 'bank', 5), ('%[1]s', 'redeemed', -5)`, uuid.NewString()),
	} {
		if _, err := db.Exec(stmt); err == nil {
			t.Errorf("the database accepted %s", what)
		}
	}
	if err := db.QueryRow(`SELECT count(*), coalesce(sum(amount), 0) FROM ledger_postings`).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != 2 || sum != 0 {
		t.Fatalf("after the refused statements: %d postings summing to %d", n, sum)
	}
}

// Migration 00023 gives every entry written before it (by the release
// before, at 00018) its postings, and the balances cached then reconcile:
// quid verify's ledger rules hold right after it.
func TestMigrationPostsEveryEarlierEntryAndBalancesReconcile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	server := pgtest.ServerURL(t)
	admin := openSQL(t, server)
	name := "quid_mig_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, _ := url.Parse(server)
	u.Path = "/" + name
	db := openSQL(t, u.String())
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 18); err != nil {
		t.Fatal(err)
	}
	ex, family := uuid.NewString(), uuid.NewString()
	// Written as the release at 00018 writes them: entries and the cached
	// balances they explain, in one transaction per movement.
	for _, stmt := range []string{
		`INSERT INTO members (id, available, pending, created_at, updated_at) VALUES ('mig30a', 0, 0, now(), now()), ('mig30b', 0, 0, now(), now())`,
		// mig30a: a bonus that vests, three credits, a redemption, a reversal.
		fmt.Sprintf(`INSERT INTO ledger_entries (member_id, kind, points, exchange_id, family_id, created_at) VALUES
			('mig30a', 'bonus_pending', 100, '%[1]s', '%[2]s', now() - interval '5 hours'),
			('mig30a', 'bonus_vested', 100, '%[1]s', '%[2]s', now() - interval '4 hours')`, ex, family),
		fmt.Sprintf(`INSERT INTO ledger_entries (member_id, kind, points, exchange_id, period_start, period_end, created_at)
			SELECT 'mig30a', 'period_credit', 10, '%s', now() - k * interval '1 hour', now() - (k - 1) * interval '1 hour', now()
			FROM generate_series(3, 1, -1) k`, ex),
		`INSERT INTO ledger_entries (member_id, kind, points, reference, created_at) VALUES ('mig30a', 'redemption', -50, 'old gift card', now())`,
		`INSERT INTO ledger_entries (member_id, kind, points, created_at) VALUES ('mig30a', 'reversal', 20, now())`,
		`UPDATE members SET available = 100 + 30 - 50 + 20 WHERE id = 'mig30a'`,
		// mig30b: one bonus voided, one still pending.
		fmt.Sprintf(`INSERT INTO ledger_entries (member_id, kind, points, family_id, created_at) VALUES
			('mig30b', 'bonus_pending', 40, '%s', now() - interval '1 hour'), ('mig30b', 'bonus_voided', -40, '%[1]s', now()),
			('mig30b', 'bonus_pending', 70, '%s', now())`, family, uuid.NewString()),
		`UPDATE members SET pending = 70 WHERE id = 'mig30b'`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	var entries, unposted, unbalanced int
	if err := db.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE s.n IS NULL), count(*) FILTER (WHERE s.total <> 0)
		FROM ledger_entries l LEFT JOIN (SELECT entry_id, count(*) AS n, sum(amount) AS total FROM ledger_postings GROUP BY entry_id) s ON s.entry_id = l.id`).
		Scan(&entries, &unposted, &unbalanced); err != nil {
		t.Fatal(err)
	}
	if entries != 10 || unposted != 0 || unbalanced != 0 {
		t.Fatalf("%d entries, %d without postings, %d unbalanced", entries, unposted, unbalanced)
	}
	gdb, err := postgres.Open(ctx, u.String(), slog.New(slog.NewTextHandler(io.Discard, nil)), postgres.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if sqlDB, err := gdb.DB(); err == nil {
		t.Cleanup(func() { sqlDB.Close() })
	}
	inv, err := postgres.NewInvariants(gdb)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := app.NewVerifier(inv).Verify(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	// Only the ledger's rules: the hand-written exchanges, consent log and
	// contracts the other rules look at are not part of this fixture.
	ledgerRules := map[string]bool{app.RuleBalanceEqualsEntries.ID: true, app.RuleBalanceNotNegative.ID: true, app.RuleTransactionsBalanced.ID: true,
		app.RuleBalanceEqualsPostings.ID: true, app.RuleHistoryUnchanged.ID: true, app.RuleGuardsInPlace.ID: true,
		// Migration 00024 holds each member's available balance in one lot.
		app.RuleLotsEqualAvailable.ID: true}
	for _, r := range rep.Rules {
		if ledgerRules[r.Rule.ID] && !r.Passed() {
			t.Errorf("%s after the migration: %+v", r.Rule.ID, r.Shown)
		}
	}
	// The programme's accounts hold what was issued, redeemed and voided.
	want := map[string]int64{"issued": -(100 + 30 + 40 + 70), "redeemed": 50 - 20, "voided": 40, "available": 100, "pending": 70}
	rows, err := db.QueryContext(ctx, `SELECT account, sum(amount) FROM ledger_postings GROUP BY account`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]int64{}
	for rows.Next() {
		var a string
		var n int64
		if err := rows.Scan(&a, &n); err != nil {
			t.Fatal(err)
		}
		got[a] = n
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("account balances after the migration: %v, want %v", got, want)
	}
	// Going down and up again posts them once more, no more.
	if _, err := p.DownTo(ctx, 18); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	var postings int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM ledger_postings`).Scan(&postings); err != nil {
		t.Fatal(err)
	}
	if postings != 2*entries {
		t.Errorf("%d postings after down and up, want %d", postings, 2*entries)
	}
}
