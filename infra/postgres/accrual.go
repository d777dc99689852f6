package postgres

import (
	"context"
	"database/sql"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
)

// AccrueBatch locks up to limit members with something due, with SKIP
// LOCKED in id order (so workers never wait on each other), and accrues for
// them as AccrueMembers does. It finds them with a scan of everything due,
// so a pass over many members uses DueMembers and AccrueMembers instead.
func (s *Store) AccrueBatch(ctx context.Context, limit int) (app.AccrualResult, error) {
	var res app.AccrualResult
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var members []string
		if err := tx.Raw(`
SELECT id FROM members WHERE id IN (`+dueMembersSQL+`)
ORDER BY id LIMIT @limit FOR UPDATE SKIP LOCKED`, map[string]any{"limit": limit, "after": ""}).Scan(&members).Error; err != nil {
			return err
		}
		var err error
		res, err = s.accrueLocked(tx, members)
		return err
	})
	return res, err
}

// dueMembersSQL selects the members with a period to credit, a bonus to
// vest, consent to expire or points to expire now, whose id sorts after
// @after. Each branch has its partial index for when few are due.
var dueMembersSQL = `
    SELECT member_id FROM exchanges WHERE next_period_end <= now() AND member_id > @after
    UNION SELECT member_id FROM exchanges WHERE bonus_state = 'pending' AND bonus_vests_at <= now() AND member_id > @after
    UNION SELECT member_id FROM exchanges e WHERE e.status = 'active' AND ` + lapsedAt("now()") + ` AND member_id > @after
    UNION SELECT c.member_id FROM points_lots l JOIN ledger_entries c ON c.id = l.entry_id
          WHERE l.remaining > 0 AND l.expires_at <= now() AND c.member_id > @after`

// DueMembers implements app.AccrualStore: the first limit members, in id
// order after after, with something due now. It locks nothing; one call
// lists what many batches then lock and accrue, where a batch that found
// its own members would scan everything due again.
func (s *Store) DueMembers(ctx context.Context, after string, limit int) ([]string, error) {
	var members []string
	err := s.db.WithContext(ctx).Raw(`SELECT member_id FROM (`+dueMembersSQL+`) d ORDER BY member_id LIMIT @limit`,
		map[string]any{"after": after, "limit": limit}).Scan(&members).Error
	return members, err
}

// AccrueMembers implements app.AccrualStore. It locks those of the members
// no other transaction holds, with SKIP LOCKED and in id order (so workers
// never wait on each other nor deadlock), and for them only expires, vests
// and credits what is due at the database's clock; members no longer due
// cost a lookup.
func (s *Store) AccrueMembers(ctx context.Context, members []string) (app.AccrualResult, error) {
	var res app.AccrualResult
	if len(members) == 0 {
		return res, nil
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var locked []string
		if err := tx.Raw(`SELECT id FROM members WHERE id = ANY(CAST(@members AS text[])) ORDER BY id FOR UPDATE SKIP LOCKED`,
			map[string]any{"members": textArray(members)}).Scan(&locked).Error; err != nil {
			return err
		}
		var err error
		res, err = s.accrueLocked(tx, locked)
		return err
	})
	return res, err
}

// accrueLocked reads the database clock once and then, in three set-based
// statements, expires, vests and credits for members, whose rows the
// transaction has locked. Because a cancellation locks the member first, a
// credit is computed either before the cancellation commits (and then ends
// before it) or after (and then sees its end time).
func (s *Store) accrueLocked(tx *gorm.DB, members []string) (app.AccrualResult, error) {
	res := app.AccrualResult{Members: len(members)}
	if len(members) == 0 {
		return res, nil
	}
	tx = tx.WithContext(tx.Statement.Context)
	tx.Statement.ConnPool = unnamedStatements{tx.Statement.ConnPool}
	// A batch's statements are estimated far above what they cost (the
	// period series), which made PostgreSQL JIT-compile each of them: over
	// a second a batch, more than the work itself.
	if err := tx.Exec(`SET LOCAL jit = off`).Error; err != nil {
		return res, err
	}
	now, err := dbNow(tx)
	if err != nil {
		return res, err
	}
	got, err := s.accrueMembers(tx, textArray(members), now)
	res.Expired, res.Vested, res.Credits, res.Points = got.Expired, got.Vested, got.Credits, got.Points
	res.PointsExpiries, res.ExpiredPoints = got.PointsExpiries, got.ExpiredPoints
	return res, err
}

// accrueMembers expires, vests and credits, as of now, for the members
// whose rows the caller has locked, in three set-based statements that
// follow domain.Exchange's AsOf, VestDue and CreditsDue.
func (s *Store) accrueMembers(tx *gorm.DB, ids any, now time.Time) (app.AccrualResult, error) {
	var res app.AccrualResult
	ended, err := endExchanges(tx, "e.member_id = ANY(CAST(@members AS text[])) AND "+lapsedAt("@now"),
		[]any{"members", ids, "now", now}, "expired", "e.expires_at", "system")
	if err != nil {
		return res, err
	}
	res.Expired = len(ended)
	if err := s.afterEnded(tx, ended, "exchange.expired"); err != nil {
		return res, err
	}
	var vested struct {
		N      int
		Points int64
	}
	if err := tx.Raw(vestBonusesSQL, map[string]any{"members": ids, "now": now}).Scan(&vested).Error; err != nil {
		return res, err
	}
	res.Vested = vested.N
	var credited struct {
		N      int
		Points int64
	}
	if err := tx.Raw(creditPeriodsSQL, map[string]any{"members": ids, "now": now, "max_per_run": 10000}).Scan(&credited).Error; err != nil {
		return res, err
	}
	res.Credits, res.Points = credited.N, credited.Points+vested.Points
	res.PointsExpiries, res.ExpiredPoints, err = expirePoints(tx, ids, now)
	return res, err
}

// expirePoints writes, for each of the members (whose rows the caller has
// locked) with lots whose time has come by now, one expiry entry of what
// those lots hold, and takes it from available; the lots trigger (migration
// 00024) empties exactly those lots and refuses an entry that does not
// match them. Set-based: one statement however many members. Lots are
// found by their time, not by when the job last ran, so a run however late
// expires every lot due, and an emptied lot is never due again: exactly once.
func expirePoints(tx *gorm.DB, ids any, now time.Time) (int, int64, error) {
	var out struct {
		N      int
		Points int64
	}
	err := tx.Raw(expirePointsSQL, map[string]any{"members": ids, "now": now}).Scan(&out).Error
	return out.N, out.Points, err
}

const expirePointsSQL = `
WITH due AS (
    SELECT c.member_id, sum(l.remaining) AS points
    FROM ledger_entries c JOIN points_lots l ON l.entry_id = c.id
    WHERE c.member_id = ANY(CAST(@members AS text[])) AND l.remaining > 0 AND l.expires_at <= @now
    GROUP BY c.member_id
), entries AS (
    INSERT INTO ledger_entries (member_id, kind, points, created_at)
    SELECT member_id, 'expiry', -points, @now FROM due
    RETURNING member_id, points
), balances AS (
    UPDATE members m SET available = m.available + e.points FROM entries e WHERE m.id = e.member_id
)
SELECT count(*) AS n, coalesce(-sum(points), 0) AS points FROM entries`

// vestBonusesSQL vests every pending bonus whose time has come
// (domain.Exchange.VestDue): consent that ended before it voided it, so an
// ended exchange still pending vests only if it ended on or after the time.
const vestBonusesSQL = `
WITH v AS (
    UPDATE exchanges e SET bonus_state = 'vested'
    WHERE e.member_id = ANY(CAST(@members AS text[])) AND e.bonus_state = 'pending' AND e.bonus_vests_at <= @now
      AND (e.status = 'active' OR e.ended_at >= e.bonus_vests_at)
    RETURNING e.id, e.member_id, e.contract_id, e.family_id, e.terms_hash, e.bonus_points
), entries AS (
    INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, created_at)
    SELECT member_id, 'bonus_vested', bonus_points, id, contract_id, family_id, terms_hash, @now FROM v
), balances AS (
    UPDATE members m SET pending = m.pending - s.points, available = m.available + s.points
    FROM (SELECT member_id, sum(bonus_points) AS points FROM v GROUP BY member_id) s
    WHERE m.id = s.member_id
)
SELECT count(*) AS n, coalesce(sum(bonus_points), 0) AS points FROM v`

// creditPeriodsSQL (domain.Exchange.CreditsDue, set-based) settles every
// period [joined + k·period, joined + (k+1)·period) that ends no later than
// the consent's end, the cap and now: it pays the period unless it overlaps
// one of the member's restrictions (GDPR Art. 18), in which case it is
// skipped, never shifted. Both outcomes are final, since a restriction
// starts at the database clock under the member's lock, the lock this batch
// holds: no restriction can later start before a period that has already
// ended. The next period to settle is credited_periods + skipped_periods;
// credited_periods counts credits only, and max_periods bounds the grid
// (k < max_periods), so a skipped period is not made up at the end. The
// unique index on (exchange_id, period_start) makes a second payment
// impossible even if the counters were wrong.
const creditPeriodsSQL = `
WITH due AS (
    SELECT e.id, e.member_id, e.contract_id, e.family_id, e.terms_hash, e.joined_at,
           e.credited_periods + e.skipped_periods AS settled,
           LEAST(CAST(@now AS timestamptz), COALESCE(e.ended_at, 'infinity'), COALESCE(e.expires_at, 'infinity')) AS until,
           c.reward_period, c.reward_period_min_seconds, c.points_per_period, c.max_periods
    FROM exchanges e JOIN contracts c ON c.id = e.contract_id
    WHERE e.member_id = ANY(CAST(@members AS text[])) AND e.next_period_end <= @now
    FOR UPDATE OF e
), periods AS (
    SELECT d.id, d.member_id, d.contract_id, d.family_id, d.terms_hash, d.points_per_period,
           d.joined_at + k * d.reward_period AS period_start, d.joined_at + (k + 1) * d.reward_period AS period_end,
           EXISTS (SELECT 1 FROM member_restrictions r
                   WHERE r.member_id = d.member_id AND r.started_at < d.joined_at + (k + 1) * d.reward_period
                     AND (r.ended_at IS NULL OR r.ended_at > d.joined_at + k * d.reward_period)) AS restricted
    FROM due d
    CROSS JOIN LATERAL generate_series(d.settled, LEAST(
        d.settled + @max_per_run - 1,
        COALESCE(d.max_periods, 2147483647) - 1,
        -- no more periods fit in the window than its length over the shortest period
        floor(extract(epoch FROM (d.until - d.joined_at)) / d.reward_period_min_seconds)::bigint - 1)) AS k
    WHERE d.joined_at + (k + 1) * d.reward_period <= d.until
), counts AS (
    SELECT id, count(*) FILTER (WHERE NOT restricted) AS paid, count(*) FILTER (WHERE restricted) AS skipped
    FROM periods GROUP BY id
), ins AS (
    INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, period_start, period_end, created_at)
    SELECT member_id, 'period_credit', points_per_period, id, contract_id, family_id, terms_hash, period_start, period_end, @now
    FROM periods WHERE NOT restricted
    ON CONFLICT DO NOTHING
    RETURNING member_id, points
), progress AS (
    UPDATE exchanges e SET
        credited_periods = e.credited_periods + COALESCE(cn.paid, 0),
        skipped_periods = e.skipped_periods + COALESCE(cn.skipped, 0),
        next_period_end = CASE
            WHEN d.max_periods IS NOT NULL AND d.settled + COALESCE(cn.paid + cn.skipped, 0) >= d.max_periods THEN NULL
            WHEN e.joined_at + (d.settled + COALESCE(cn.paid + cn.skipped, 0) + 1) * d.reward_period
                 > LEAST(COALESCE(e.ended_at, 'infinity'), COALESCE(e.expires_at, 'infinity')) THEN NULL
            ELSE e.joined_at + (d.settled + COALESCE(cn.paid + cn.skipped, 0) + 1) * d.reward_period
        END
    FROM due d LEFT JOIN counts cn ON cn.id = d.id
    -- The batch's own rows, so that the exchanges are read through the
    -- member index, not scanned whole to join by id.
    WHERE e.id = d.id AND e.member_id = ANY(CAST(@members AS text[]))
), balances AS (
    UPDATE members m SET available = m.available + s.points
    FROM (SELECT member_id, sum(points) AS points FROM ins GROUP BY member_id) s
    WHERE m.id = s.member_id
)
SELECT count(*) AS n, coalesce(sum(points), 0) AS points FROM ins`

// unnamedStatements sends every statement as an unnamed one (pgx
// QueryExecModeCacheDescribe), which PostgreSQL plans for the values bound
// each time. A batch's statements are otherwise prepared once per
// connection, and after five runs PostgreSQL switches a prepared statement
// to a generic plan, estimated without the members: for the credit
// statement that plan joined by nested loops over whole CTEs, quadratic in
// the batch (minutes for 50,000 exchanges). Planning costs a millisecond a
// batch. The seal trigger's own lookups keep their cached plans.
type unnamedStatements struct{ gorm.ConnPool }

func (p unnamedStatements) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return p.ConnPool.ExecContext(ctx, query, append([]any{pgx.QueryExecModeCacheDescribe}, args...)...)
}

func (p unnamedStatements) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return p.ConnPool.QueryContext(ctx, query, append([]any{pgx.QueryExecModeCacheDescribe}, args...)...)
}

func (p unnamedStatements) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return p.ConnPool.QueryRowContext(ctx, query, append([]any{pgx.QueryExecModeCacheDescribe}, args...)...)
}
