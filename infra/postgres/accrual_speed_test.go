package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/postgres"
	"github.com/quidpro/quid/infra/postgres/pgtest"
)

// TestAccrualSpeedWithinTwiceTheRawSetBasedSQL measures the accrual bar of
// issue 10: crediting one due period for each of N exchanges through the
// application's runner (app.Accrual over Store.AccrueBatch, as `quid accrue
// --once` does) against the same credits written by raw set-based SQL (one
// INSERT ... SELECT, one UPDATE of the balances, one of the exchanges'
// counters, in one transaction) on an identical copy of the data, in the same
// run. It is a measurement, not a unit test: it runs only when
// QUID_ACCRUAL_BENCH gives N, e.g.
//
//	QUID_ACCRUAL_BENCH=100000 go test ./infra/postgres -run TestAccrualSpeed -count=1 -v -timeout 30m
//
// QUID_ACCRUAL_BENCH_ORDER=app-first runs the application before the raw SQL;
// QUID_ACCRUAL_BENCH_KEEP=name leaves a copy of the seeded data as database
// name on the test server, for EXPLAIN and profiles by hand.
// It fails when the application takes more than twice the raw SQL's time.
func TestAccrualSpeedWithinTwiceTheRawSetBasedSQL(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("QUID_ACCRUAL_BENCH"))
	if n <= 0 {
		t.Skip("set QUID_ACCRUAL_BENCH=N (due exchanges) to measure accrual against raw SQL")
	}
	ctx := context.Background()
	rawURL := pgtest.NewDatabase(t)
	seedStart := time.Now()
	if err := seedAccrualBench(ctx, rawURL, n); err != nil {
		t.Fatal(err)
	}
	appURL := copyDatabase(t, rawURL)
	if keep := os.Getenv("QUID_ACCRUAL_BENCH_KEEP"); keep != "" {
		// A third copy, left in place, for EXPLAIN and profiles by hand.
		admin := openSQL(t, pgtest.ServerURL(t))
		src, _ := url.Parse(rawURL)
		if _, err := admin.Exec(fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", keep)); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec(fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", keep, strings.TrimPrefix(src.Path, "/"))); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seeded %d due exchanges on %d members, two copies, in %s", n, (n+9)/10, time.Since(seedStart).Round(time.Millisecond))

	runRaw := func() time.Duration {
		db := openSQL(t, rawURL)
		checkpoint(t, db)
		start := time.Now()
		if err := rawAccrual(ctx, db); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	runApp := func() time.Duration {
		db, err := postgres.Open(ctx, appURL, slog.New(slog.NewTextHandler(io.Discard, nil)), postgres.Settings{})
		if err != nil {
			t.Fatal(err)
		}
		sqlDB, _ := db.DB()
		t.Cleanup(func() { sqlDB.Close() })
		checkpoint(t, sqlDB)
		// The runner as `quid accrue --once` builds it (cmd/quid/serve.go).
		runner := app.NewAccrual(postgres.NewStore(db), nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		runner.Workers = app.DefaultAccrualWorkers
		start := time.Now()
		r, err := runner.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		if r.Credits != n {
			t.Errorf("application credited %d periods, want %d", r.Credits, n)
		}
		return elapsed
	}
	var raw, application time.Duration
	if os.Getenv("QUID_ACCRUAL_BENCH_ORDER") == "app-first" {
		application, raw = runApp(), runRaw()
	} else {
		raw, application = runRaw(), runApp()
	}
	ratio := application.Seconds() / raw.Seconds()
	t.Logf("accrual of %d periods: raw set-based SQL %.2f s, application %.2f s, ratio %.2f×", n, raw.Seconds(), application.Seconds(), ratio)

	// Both copies must hold the same credits and balances afterwards.
	for name, u := range map[string]string{"raw": rawURL, "application": appURL} {
		db := openSQL(t, u)
		var credits, points, bad int64
		if err := db.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(points), 0) FROM ledger_entries WHERE kind = 'period_credit'`).Scan(&credits, &points); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, `
SELECT count(*) FROM members m
LEFT JOIN (SELECT member_id, sum(points) AS p FROM ledger_entries GROUP BY member_id) s ON s.member_id = m.id
WHERE m.available <> coalesce(s.p, 0)`).Scan(&bad); err != nil {
			t.Fatal(err)
		}
		want := int64(n + (n+9)/10) // the history and one period per exchange
		if credits != want || points != 10*want || bad != 0 {
			t.Errorf("%s: %d credits of %d points in all, %d balances off their entries; want %d credits of %d", name, credits, points, bad, want, 10*want)
		}
	}
	if ratio > 2 {
		t.Errorf("the application took %.2f× the raw SQL's time, the bar is 2×", ratio)
	}
}

// seedAccrualBench creates ten one-hour contracts of ten points a period and
// n active exchanges on them, ten per member (one per contract family), each
// with exactly one period due, as cmd/quidbench seeds its accrual run. Each
// member also has history, as members do: its first exchange joined an hour
// earlier and its first period is paid, so the ledger holds n/10 sealed
// entries and the seal's lookup of a member's previous entry finds one.
func seedAccrualBench(ctx context.Context, u string, n int) error {
	db, err := sql.Open("pgx", u)
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, q := range []string{`
INSERT INTO contracts (id, family_id, version, status, terms, canonical_terms, terms_hash, join_bonus, points_per_period,
                       reward_period, reward_period_min_seconds, retention, created_at, published_at)
SELECT gen_random_uuid(), gen_random_uuid(), 1, 'published', '{}', '{}', 'bench-' || g, 0, 10, interval '1 hour', 3600,
       interval '30 days', now(), now()
FROM generate_series(1, 10) g`, `
INSERT INTO members (id, available, created_at, updated_at)
SELECT 'a' || g, 10, now(), now() FROM generate_series(1, ceil($1 / 10.0)::int) g`, `
WITH fams AS (SELECT id, family_id, terms_hash, row_number() OVER (ORDER BY id) - 1 AS k FROM contracts)
INSERT INTO exchanges (id, member_id, contract_id, family_id, terms_hash, status, joined_at, bonus_state, credited_periods,
                       next_period_end, receipt_id, receipt)
SELECT gen_random_uuid(), 'a' || (g / 10 + 1), f.id, f.family_id, f.terms_hash, 'active',
       now() - CASE WHEN f.k = 0 THEN interval '150 minutes' ELSE interval '90 minutes' END, 'none',
       CASE WHEN f.k = 0 THEN 1 ELSE 0 END, now() - interval '30 minutes', gen_random_uuid(), 'bench'
FROM generate_series(0, $1 - 1) g JOIN fams f ON f.k = g % 10`,
		// The seal trigger plans its lookup per row here: a plan cached
		// while the ledger is empty would scan all of it for every row.
		`SET plan_cache_mode = force_custom_plan`, `
INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, period_start, period_end, created_at)
SELECT e.member_id, 'period_credit', 10, e.id, e.contract_id, e.family_id, e.terms_hash, e.joined_at, e.joined_at + interval '1 hour',
       e.joined_at + interval '1 hour'
FROM exchanges e WHERE e.credited_periods = 1`, `RESET plan_cache_mode`, `VACUUM ANALYZE`} {
		var args []any
		if strings.Contains(q, "$1") {
			args = append(args, n)
		}
		if _, err := conn.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return nil
}

// rawAccrual is the baseline: the same credits, balances and counters as the
// application writes, set-based, in one transaction of three statements. Its
// INSERT fires the same triggers (the seal) and maintains the same indexes.
func rawAccrual(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{`
INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, period_start, period_end, created_at)
SELECT e.member_id, 'period_credit', c.points_per_period, e.id, e.contract_id, e.family_id, e.terms_hash,
       e.joined_at + e.credited_periods * c.reward_period, e.next_period_end, now()
FROM exchanges e JOIN contracts c ON c.id = e.contract_id
WHERE e.next_period_end <= now()`, `
UPDATE members m SET available = m.available + s.points
FROM (SELECT e.member_id, sum(c.points_per_period) AS points
      FROM exchanges e JOIN contracts c ON c.id = e.contract_id
      WHERE e.next_period_end <= now() GROUP BY e.member_id) s
WHERE m.id = s.member_id`, `
UPDATE exchanges e SET credited_periods = e.credited_periods + 1, next_period_end = e.next_period_end + c.reward_period
FROM contracts c WHERE c.id = e.contract_id AND e.next_period_end <= now()`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("raw accrual: %w", err)
		}
	}
	return tx.Commit()
}

func openSQL(t *testing.T, u string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// checkpoint writes out what earlier work left dirty, so that neither timed
// run pays for the other's (or the seed's) writes.
func checkpoint(t *testing.T, db *sql.DB) {
	t.Helper()
	if _, err := db.Exec(`CHECKPOINT`); err != nil {
		t.Fatal(err)
	}
}

// copyDatabase clones the database at u (no session may be connected to it)
// and drops the clone when the test ends.
func copyDatabase(t *testing.T, u string) string {
	t.Helper()
	src, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	server := pgtest.ServerURL(t)
	admin := openSQL(t, server)
	name := "quid_bench_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
	if _, err := admin.Exec(fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, strings.TrimPrefix(src.Path, "/"))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if admin, err := sql.Open("pgx", server); err == nil {
			_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			admin.Close()
		}
	})
	dst := *src
	dst.Path = "/" + name
	return dst.String()
}

// A prepared statement that PostgreSQL has run five times may switch to a
// generic plan, estimated without the batch's members; for the credit
// statement such a plan took minutes for 50,000 exchanges. Accrual's
// statements are therefore sent unnamed, planned for each batch: none of
// them stays prepared on the connection.
func TestAccrualStatementsArePlannedForEachBatchNotPrepared(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	sqlDB, err := w.db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1) // the checks below run on the accruing connection
	c := w.publish(offer{perPeriod: 10, period: "PT1H"})
	e := w.join(w.enrol("alice"), c)
	w.backdate(e.ID(), 90*time.Minute)
	for range 7 {
		if _, err := w.store.AccrueMembers(context.Background(), []string{"alice"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := w.credits(e.ID()); len(got) != 1 {
		t.Fatalf("%d credits, want 1", len(got))
	}
	var prepared []string
	if err := w.db.Raw(`
SELECT statement FROM pg_prepared_statements
WHERE (statement LIKE '%generate_series(d.credited_periods%' OR statement LIKE '%SET bonus_state = ''vested''%')
  AND statement NOT LIKE '%pg_prepared_statements%'`).Scan(&prepared).Error; err != nil {
		t.Fatal(err)
	}
	if len(prepared) > 0 {
		t.Fatalf("%d accrual statements stay prepared on the connection (generic plans after five runs): %.120q", len(prepared), prepared[0])
	}
}
