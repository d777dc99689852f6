package postgres

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
)

// AccrueBatch implements app.AccrualStore. It locks a batch of members with
// SKIP LOCKED (in id order, so workers never wait on each other), reads the
// database clock once, and then in three set-based statements expires,
// vests and credits for those members only. Because a cancellation locks the
// member first, a credit is computed either before the cancellation commits
// (and then ends before it) or after (and then sees its end time).
func (s *Store) AccrueBatch(ctx context.Context, limit int) (app.AccrualResult, error) {
	var res app.AccrualResult
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var members []string
		if err := tx.Raw(`
SELECT id FROM members WHERE id IN (
    SELECT member_id FROM exchanges WHERE next_period_end <= now()
    UNION SELECT member_id FROM exchanges WHERE bonus_state = 'pending' AND bonus_vests_at <= now()
    UNION SELECT member_id FROM exchanges e WHERE e.status = 'active' AND `+lapsedAt("now()")+`
)
ORDER BY id LIMIT @limit FOR UPDATE SKIP LOCKED`, map[string]any{"limit": limit}).Scan(&members).Error; err != nil {
			return err
		}
		res.Members = len(members)
		if len(members) == 0 {
			return nil
		}
		now, err := dbNow(tx)
		if err != nil {
			return err
		}
		got, err := s.accrueMembers(tx, textArray(members), now)
		res.Expired, res.Vested, res.Credits, res.Points = got.Expired, got.Vested, got.Credits, got.Points
		return err
	})
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
	return res, nil
}

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

// creditPeriodsSQL (domain.Exchange.CreditsDue, set-based) pays every
// period [joined + k·period, joined + (k+1)·period) that ends no later than
// the consent's end, the cap and now. The unique
// index on (exchange_id, period_start) makes a second payment impossible even
// if the counters were wrong.
const creditPeriodsSQL = `
WITH due AS (
    SELECT e.id, e.member_id, e.contract_id, e.family_id, e.terms_hash, e.joined_at, e.credited_periods,
           LEAST(CAST(@now AS timestamptz), COALESCE(e.ended_at, 'infinity'), COALESCE(e.expires_at, 'infinity')) AS until,
           c.reward_period, c.reward_period_min_seconds, c.points_per_period, c.max_periods
    FROM exchanges e JOIN contracts c ON c.id = e.contract_id
    WHERE e.member_id = ANY(CAST(@members AS text[])) AND e.next_period_end <= @now
    FOR UPDATE OF e
), periods AS (
    SELECT d.id, d.member_id, d.contract_id, d.family_id, d.terms_hash, d.points_per_period,
           d.joined_at + k * d.reward_period AS period_start, d.joined_at + (k + 1) * d.reward_period AS period_end
    FROM due d
    CROSS JOIN LATERAL generate_series(d.credited_periods, LEAST(
        d.credited_periods + @max_per_run - 1,
        COALESCE(d.max_periods, 2147483647) - 1,
        -- no more periods fit in the window than its length over the shortest period
        floor(extract(epoch FROM (d.until - d.joined_at)) / d.reward_period_min_seconds)::bigint - 1)) AS k
    WHERE d.joined_at + (k + 1) * d.reward_period <= d.until
), counts AS (
    SELECT id, count(*) AS n FROM periods GROUP BY id
), ins AS (
    INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, period_start, period_end, created_at)
    SELECT member_id, 'period_credit', points_per_period, id, contract_id, family_id, terms_hash, period_start, period_end, @now
    FROM periods
    ON CONFLICT DO NOTHING
    RETURNING member_id, points
), progress AS (
    UPDATE exchanges e SET
        credited_periods = e.credited_periods + COALESCE(cn.n, 0),
        next_period_end = CASE
            WHEN d.max_periods IS NOT NULL AND e.credited_periods + COALESCE(cn.n, 0) >= d.max_periods THEN NULL
            WHEN e.joined_at + (e.credited_periods + COALESCE(cn.n, 0) + 1) * d.reward_period
                 > LEAST(COALESCE(e.ended_at, 'infinity'), COALESCE(e.expires_at, 'infinity')) THEN NULL
            ELSE e.joined_at + (e.credited_periods + COALESCE(cn.n, 0) + 1) * d.reward_period
        END
    FROM due d LEFT JOIN counts cn ON cn.id = d.id
    WHERE e.id = d.id
), balances AS (
    UPDATE members m SET available = m.available + s.points
    FROM (SELECT member_id, sum(points) AS points FROM ins GROUP BY member_id) s
    WHERE m.id = s.member_id
)
SELECT count(*) AS n, coalesce(sum(points), 0) AS points FROM ins`
