package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/postgres"
	"github.com/quidpro/quid/infra/postgres/pgtest"
)

// TestPointsExpirySpeedWithinTwiceTheRawSetBasedSQL measures the expiry of
// N points lots, all past their time, ten per member (issue 14's bar:
// 1,000,000): through the application's runner (app.Accrual, as `quid
// accrue --once` and the server's worker run it) against the same expiry
// entries and balances written by raw set-based SQL (one statement, in one
// transaction) on an identical copy, in the same run. Both fire the same
// lots trigger, which empties the lots. A measurement, not a unit test: it
// runs only when QUID_EXPIRY_BENCH gives N, e.g.
//
//	QUID_EXPIRY_BENCH=1000000 go test ./infra/postgres -run TestPointsExpirySpeed -count=1 -v -timeout 60m
//
// It fails when the application takes more than twice the raw SQL's time.
func TestPointsExpirySpeedWithinTwiceTheRawSetBasedSQL(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("QUID_EXPIRY_BENCH"))
	if n <= 0 {
		t.Skip("set QUID_EXPIRY_BENCH=N (lots past their time) to measure expiry against raw SQL")
	}
	ctx := context.Background()
	rawURL := pgtest.NewDatabase(t)
	seedStart := time.Now()
	if err := seedExpiryBench(ctx, rawURL, n); err != nil {
		t.Fatal(err)
	}
	appURL := copyDatabase(t, rawURL)
	members := (n + 9) / 10
	t.Logf("seeded %d lots past their time on %d members, two copies, in %s", n, members, time.Since(seedStart).Round(time.Millisecond))

	runRaw := func() time.Duration {
		db := openSQL(t, rawURL)
		checkpoint(t, db)
		start := time.Now()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback() //nolint:errcheck // committed below
		if _, err := tx.ExecContext(ctx, `
WITH due AS (
    SELECT c.member_id, sum(l.remaining) AS points FROM points_lots l JOIN ledger_entries c ON c.id = l.entry_id
    WHERE l.remaining > 0 AND l.expires_at <= now() GROUP BY c.member_id
), e AS (
    INSERT INTO ledger_entries (member_id, kind, points, created_at) SELECT member_id, 'expiry', -points, now() FROM due
    RETURNING member_id, points
)
UPDATE members m SET available = m.available + e.points FROM e WHERE m.id = e.member_id`); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
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
		runner := app.NewAccrual(postgres.NewStore(db), nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		runner.Workers = app.DefaultAccrualWorkers
		start := time.Now()
		r, err := runner.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		if r.ExpiredPoints != int64(10*n) || r.PointsExpiries != members {
			t.Errorf("application expired %d points in %d entries, want %d in %d", r.ExpiredPoints, r.PointsExpiries, 10*n, members)
		}
		return elapsed
	}
	raw, application := runRaw(), runApp()
	ratio := application.Seconds() / raw.Seconds()
	t.Logf("expiry of %d lots: raw set-based SQL %.2f s, application %.2f s, ratio %.2f×", n, raw.Seconds(), application.Seconds(), ratio)

	for name, u := range map[string]string{"raw": rawURL, "application": appURL} {
		db := openSQL(t, u)
		var entries, points, left, held int64
		if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM ledger_entries WHERE kind = 'expiry'),
			(SELECT coalesce(-sum(points), 0) FROM ledger_entries WHERE kind = 'expiry'),
			(SELECT coalesce(sum(remaining), 0) FROM points_lots), (SELECT coalesce(sum(available), 0) FROM members)`).Scan(&entries, &points, &left, &held); err != nil {
			t.Fatal(err)
		}
		if entries != int64(members) || points != int64(10*n) || left != 0 || held != 0 {
			t.Errorf("%s: %d expiry entries of %d points, %d left in lots, %d held; want %d of %d, nothing left", name, entries, points, left, held, members, 10*n)
		}
	}
	if ratio > 2 {
		t.Errorf("the application took %.2f× the raw SQL's time, the bar is 2×", ratio)
	}
}

// seedExpiryBench creates n/10 members with ten vested bonuses of 10 points
// each, written 31 days ago under QUID_POINTS_EXPIRE_AFTER=P30D, so every
// one of their n lots is past its time.
func seedExpiryBench(ctx context.Context, u string, n int) error {
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
	for _, q := range []string{
		`SET quid.points_expire_after = 'P30D'`,
		`SET plan_cache_mode = force_custom_plan`, // the seal's lookup, as in seedAccrualBench
		`INSERT INTO members (id, available, created_at, updated_at)
		 SELECT 'x' || g, 0, now(), now() FROM generate_series(1, ceil($1 / 10.0)::int) g`,
		`INSERT INTO ledger_entries (member_id, kind, points, created_at)
		 SELECT 'x' || (g / 10 + 1), 'bonus_vested', 10, now() - interval '31 days' + g * interval '1 microsecond'
		 FROM generate_series(0, $1 - 1) g`,
		`UPDATE members m SET available = s.points FROM (SELECT member_id, sum(points) AS points FROM ledger_entries GROUP BY member_id) s
		 WHERE m.id = s.member_id`,
		`RESET plan_cache_mode`, `VACUUM ANALYZE`,
	} {
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
