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

// accrualResult compares `quid accrue --once` with the raw set-based SQL
// of the same credits, each on its own copy of one seeded database.
type accrualResult struct {
	n                  int
	service, raw       time.Duration
	serviceOut         string
	serviceSum, rawSum string // credits, points, balances: must be equal
	serviceCPU, rawCPU cpuTimes
}

// measureAccrual seeds n active exchanges, each one period past due, in a
// fresh database (migrated by `quid migrate up`), copies it, and times the
// service's accrual on one copy and the raw SQL on the other.
func (b *bench) measureAccrual(ctx context.Context, n int, env []string, from *rawContract) (accrualResult, error) {
	res := accrualResult{n: n}
	serviceURL, dropA, err := b.createDatabase(ctx, "")
	if err != nil {
		return res, err
	}
	defer dropA()
	migrate := exec.Command(filepath.Join("bin", "quid"), "migrate", "up")
	migrate.Env = append(env, "DATABASE_URL="+serviceURL)
	if out, err := migrate.CombinedOutput(); err != nil {
		return res, fmt.Errorf("quid migrate up: %v: %s", err, out)
	}
	fmt.Fprintf(os.Stderr, "accrual: seeding %d due exchanges…\n", n)
	if err := seedDueExchanges(ctx, serviceURL, n, from); err != nil {
		return res, err
	}
	rawURL, dropB, err := b.createDatabase(ctx, serviceURL)
	if err != nil {
		return res, err
	}
	defer dropB()

	fmt.Fprintln(os.Stderr, "accrual: quid accrue --once…")
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

	fmt.Fprintln(os.Stderr, "accrual: the raw set-based SQL on the copy…")
	rawPool, err := pgxpool.New(ctx, rawURL)
	if err != nil {
		return res, err
	}
	defer rawPool.Close()
	b.checkpoint(ctx)
	before = b.cpuNow()
	start = time.Now()
	if _, err := rawAccrual(ctx, rawPool); err != nil {
		return res, fmt.Errorf("raw accrual: %w", err)
	}
	res.raw = time.Since(start)
	res.rawCPU = b.cpuNow().sub(before)

	if res.rawSum, err = accrualSummary(ctx, rawPool); err != nil {
		return res, err
	}
	servicePool, err := pgxpool.New(ctx, serviceURL)
	if err != nil {
		return res, err
	}
	defer servicePool.Close()
	res.serviceSum, err = accrualSummary(ctx, servicePool)
	return res, err
}

// accrualSummary is what both runs must agree on.
func accrualSummary(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var credits, points, available, periods, ahead int64
	err := pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM ledger_entries WHERE kind = 'period_credit'),
		(SELECT coalesce(sum(points), 0) FROM ledger_entries WHERE kind = 'period_credit'),
		(SELECT coalesce(sum(available), 0) FROM members),
		(SELECT coalesce(sum(credited_periods), 0) FROM exchanges),
		(SELECT count(*) FROM exchanges WHERE next_period_end > now())`).Scan(&credits, &points, &available, &periods, &ahead)
	return fmt.Sprintf("credits=%d points=%d available=%d periods=%d not-yet-due=%d", credits, points, available, periods, ahead), err
}

// checkpoint writes out dirty buffers so neither timed run pays for the
// other's (or the seeding's) writes. Needs superuser; skipped otherwise.
func (b *bench) checkpoint(ctx context.Context) {
	_, _ = b.admin.Exec(ctx, "CHECKPOINT") // cluster-wide; the admin pool exists in every mode
}

// seedDueExchanges inserts n active exchanges on ten published versions
// copied from the benchmark's contract, ten exchanges per member (one per
// family), as a database in service holds them: each joined 150 minutes ago
// with its first hourly period credited (in the ledger and the balance) and
// its second one due 30 minutes ago. The history matters: with an empty
// ledger at the last ANALYZE, the seal trigger's lookup of a member's
// previous entry is planned as a scan of the whole table and both sides
// turn quadratic (a first deployment's problem, not what this measures).
// The history is inserted with the seal trigger off, each row given a
// sequence number and a stand-in digest, then everything is analysed.
func seedDueExchanges(ctx context.Context, dbURL string, n int, from *rawContract) error {
	const families = 10
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	steps := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO members (id, created_at, updated_at) SELECT 'a' || g, now(), now() FROM generate_series(1, $1) g`,
			[]any{(n + families - 1) / families}},
		{`INSERT INTO contracts (id, family_id, version, status, terms, canonical_terms, terms_hash, join_bonus,
			points_per_period, reward_period, reward_period_min_seconds, retention, created_at, published_at)
		  SELECT gen_random_uuid(), gen_random_uuid(), 1, 'published', $2::jsonb, $3::text, $4::text, 0,
			10, interval '1 hour', 3600, $5::interval, now(), now()
		  FROM generate_series(1, $1)`, []any{families, from.terms, from.canonical, from.hash, from.retention}},
		{`WITH fams AS (SELECT id, family_id, terms_hash, row_number() OVER (ORDER BY id) - 1 AS k FROM contracts)
		  INSERT INTO exchanges (id, member_id, contract_id, family_id, terms_hash, status, joined_at, bonus_state,
			credited_periods, next_period_end, receipt_id, receipt)
		  SELECT gen_random_uuid(), 'a' || (g / $2 + 1), f.id, f.family_id, f.terms_hash, 'active',
		         now() - interval '150 minutes', 'none', 1, now() - interval '30 minutes', gen_random_uuid(), 'bench'
		  FROM generate_series(0, $1 - 1) g JOIN fams f ON f.k = g % $2`, []any{n, families}},
		{`ALTER TABLE ledger_entries DISABLE TRIGGER ledger_seal`, nil},
		{`INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash,
			period_start, period_end, created_at, seq, digest)
		  SELECT member_id, 'period_credit', 10, id, contract_id, family_id, terms_hash,
		         joined_at, joined_at + interval '1 hour', joined_at + interval '1 hour',
		         nextval('ledger_entries_seq'), sha256(convert_to(id::text, 'UTF8'))
		  FROM exchanges ORDER BY member_id`, nil},
		{`ALTER TABLE ledger_entries ENABLE TRIGGER ledger_seal`, nil},
		{`UPDATE members m SET available = s.points
		  FROM (SELECT member_id, sum(points) AS points FROM ledger_entries GROUP BY member_id) s WHERE m.id = s.member_id`, nil},
		{`VACUUM ANALYZE`, nil},
	}
	for _, q := range steps {
		if _, err := pool.Exec(ctx, q.sql, q.args...); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return nil
}
