package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// expiryResult compares the expiry of points lots by `quid accrue --once`
// with the raw set-based SQL of the same expiry entries, each on its own
// copy of one seeded database (issue 14: the expiry of 1,000,000 lots).
type expiryResult struct {
	n                  int
	service, raw       time.Duration
	serviceOut         string
	serviceSum, rawSum string // expiry entries, points, what lots and balances hold: must be equal
	serviceCPU, rawCPU cpuTimes
}

// measureExpiry seeds n points lots past their time, ten per member, in a
// fresh database (migrated by `quid migrate up`), copies it, and times the
// service's expiry on one copy and the raw SQL on the other. Both fire the
// database's lots trigger (migration 00024), which empties the lots.
func (b *bench) measureExpiry(ctx context.Context, n int, env []string) (expiryResult, error) {
	res := expiryResult{n: n}
	serviceURL, dropA, err := b.createDatabase(ctx, "")
	if err != nil {
		return res, err
	}
	defer dropA()
	env = append(env, "QUID_POINTS_EXPIRE_AFTER=P30D")
	migrate := exec.Command(filepath.Join("bin", "quid"), "migrate", "up")
	migrate.Env = append(env, "DATABASE_URL="+serviceURL)
	if out, err := migrate.CombinedOutput(); err != nil {
		return res, fmt.Errorf("quid migrate up: %v: %s", err, out)
	}
	fmt.Fprintf(os.Stderr, "expiry: seeding %d lots past their time…\n", n)
	if err := seedDueLots(ctx, serviceURL, n); err != nil {
		return res, err
	}
	rawURL, dropB, err := b.createDatabase(ctx, serviceURL)
	if err != nil {
		return res, err
	}
	defer dropB()

	fmt.Fprintln(os.Stderr, "expiry: quid accrue --once…")
	b.checkpoint(ctx)
	before := b.cpuNow()
	start := time.Now()
	cmd := exec.Command(filepath.Join("bin", "quid"), "accrue", "--once")
	cmd.Env = append(env, "DATABASE_URL="+serviceURL)
	out, err := cmd.CombinedOutput()
	res.service = time.Since(start)
	res.serviceCPU = b.cpuNow().sub(before)
	if err != nil {
		return res, fmt.Errorf("quid accrue --once: %v: %s", err, out)
	}
	res.serviceOut = strings.TrimSpace(string(out))

	fmt.Fprintln(os.Stderr, "expiry: the raw set-based SQL on the copy…")
	rawPool, err := pgxpool.New(ctx, rawURL)
	if err != nil {
		return res, err
	}
	defer rawPool.Close()
	b.checkpoint(ctx)
	before = b.cpuNow()
	start = time.Now()
	if err := rawExpiry(ctx, rawPool); err != nil {
		return res, fmt.Errorf("raw expiry: %w", err)
	}
	res.raw = time.Since(start)
	res.rawCPU = b.cpuNow().sub(before)

	if res.rawSum, err = expirySummary(ctx, rawPool); err != nil {
		return res, err
	}
	servicePool, err := pgxpool.New(ctx, serviceURL)
	if err != nil {
		return res, err
	}
	defer servicePool.Close()
	res.serviceSum, err = expirySummary(ctx, servicePool)
	return res, err
}

// rawExpiry is the least any expiry can do, in one statement and one
// transaction: one expiry entry per member of what their lots past their
// time hold, and the balance. The ledger's triggers (seal, postings, lots)
// run as for the service.
func rawExpiry(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `
WITH due AS (
    SELECT c.member_id, sum(l.remaining) AS points FROM points_lots l JOIN ledger_entries c ON c.id = l.entry_id
    WHERE l.remaining > 0 AND l.expires_at <= now() GROUP BY c.member_id
), e AS (
    INSERT INTO ledger_entries (member_id, kind, points, created_at) SELECT member_id, 'expiry', -points, now() FROM due
    RETURNING member_id, points
)
UPDATE members m SET available = m.available + e.points FROM e WHERE m.id = e.member_id`)
	return err
}

// expirySummary is what both runs must agree on.
func expirySummary(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var entries, points, left, held int64
	err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM ledger_entries WHERE kind = 'expiry'),
		(SELECT coalesce(-sum(points), 0) FROM ledger_entries WHERE kind = 'expiry'),
		(SELECT coalesce(sum(remaining), 0) FROM points_lots), (SELECT coalesce(sum(available), 0) FROM members)`).Scan(&entries, &points, &left, &held)
	return fmt.Sprintf("expiry entries=%d points=%d left in lots=%d available=%d", entries, points, left, held), err
}

// seedDueLots creates n/10 members with ten vested bonuses of 10 points
// each, written 31 days ago under an expiry of P30D (the session setting
// the service's connections carry), so every one of their n lots is past
// its time; as the QUID_EXPIRY_BENCH test seeds it.
func seedDueLots(ctx context.Context, dbURL string, n int) error {
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	for _, q := range []string{
		`SET quid.points_expire_after = 'P30D'`,
		`SET plan_cache_mode = force_custom_plan`, // the seal's lookup of a member's previous entry
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
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return nil
}

// report adds the expiry row to the table.
func (r expiryResult) report(t *table) {
	same := r.serviceSum == r.rawSum
	sameText := "same expiries"
	if !same {
		sameText = "DIFFERENT expiries: " + r.serviceSum + " vs " + r.rawSum
	}
	t.add("6", fmt.Sprintf("expiry of %d points lots (quid accrue --once)", r.n),
		fmt.Sprintf("%.1f s (%s)", r.service.Seconds(), sameText),
		fmt.Sprintf("raw set-based SQL %.1f s", r.raw.Seconds()),
		ratio(r.service.Seconds(), r.raw.Seconds()), "≤ 2× raw", same && r.service <= 2*r.raw)
}

// notes prints what both sides did.
func (r expiryResult) notes() {
	fmt.Printf("\nexpiry: accrue said: %s\nboth sides after expiry: %s\n", r.serviceOut, r.serviceSum)
	fmt.Printf("expiry CPU: quid accrue %.1f s + PostgreSQL %.1f s; raw SQL: PostgreSQL %.1f s\n",
		r.serviceCPU.loadgen.Seconds(), r.serviceCPU.postgres.Seconds(), r.rawCPU.postgres.Seconds())
}
