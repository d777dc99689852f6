package postgres

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// endedExchange is one exchange a set-based ending statement closed.
type endedExchange struct {
	ID         string
	MemberID   string
	ContractID string
	FamilyID   string
	TermsHash  string
	EndedAt    time.Time
}

// activeAt is the condition, on exchange e, that consent holds at the time
// expression at: domain.Exchange.AsOf(at).IsActive() in SQL. Partner reads
// and the grant check disclose only through exchanges it holds for; a parity
// test pins it to domain.
func activeAt(at string) string {
	return "e.status = 'active' AND (e.expires_at IS NULL OR e.expires_at > " + at + ")"
}

// lapsedAt is the condition, on an active exchange e, that its duration has
// run out by the time expression at (AsOf would read it as expired): the
// complement of activeAt among active exchanges.
func lapsedAt(at string) string { return "e.expires_at <= " + at }

// endExchanges ends, in one statement, every active exchange matching cond:
// it sets the status and end time (endExpr, evaluated per row), stops
// credits for periods ending later, voids bonuses that had not vested, logs
// consent events, writes bonus_voided entries and moves pending balances.
// Callers must hold the members' row locks (taken in id order) first.
// It follows the same rules as domain.Exchange's end.
func endExchanges(tx *gorm.DB, cond string, args []any, status, endExpr, actor string) ([]endedExchange, error) {
	sql := `
WITH target AS (
    SELECT e.id, e.bonus_state AS old_bonus, ` + endExpr + ` AS end_at
    FROM exchanges e
    WHERE e.status = 'active' AND ` + cond + `
    FOR UPDATE OF e
), upd AS (
    UPDATE exchanges e SET
        status = @status,
        ended_at = t.end_at,
        next_period_end = CASE WHEN e.next_period_end > t.end_at THEN NULL ELSE e.next_period_end END,
        bonus_state = CASE WHEN e.bonus_state = 'pending' AND e.bonus_vests_at > t.end_at THEN 'voided' ELSE e.bonus_state END
    FROM target t
    WHERE e.id = t.id
    RETURNING e.id, e.member_id, e.contract_id, e.family_id, e.terms_hash, e.ended_at, e.bonus_points,
              (t.old_bonus = 'pending' AND e.bonus_state = 'voided') AS voided
), events AS (
    INSERT INTO consent_events (exchange_id, member_id, contract_id, terms_hash, kind, actor, at)
    SELECT id, member_id, contract_id, terms_hash, @kind, @actor, ended_at FROM upd
), voids AS (
    INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, created_at)
    SELECT member_id, 'bonus_voided', -bonus_points, id, contract_id, family_id, terms_hash, ended_at
    FROM upd WHERE voided
), balances AS (
    UPDATE members m SET pending = m.pending - v.points
    FROM (SELECT member_id, sum(bonus_points) AS points FROM upd WHERE voided GROUP BY member_id) v
    WHERE m.id = v.member_id
)
SELECT id, member_id, contract_id, family_id, terms_hash, ended_at FROM upd`
	named := map[string]any{"status": status, "kind": status, "actor": actor}
	for i := 0; i+1 < len(args); i += 2 {
		named[args[i].(string)] = args[i+1]
	}
	var out []endedExchange
	err := tx.Raw(sql, named).Scan(&out).Error
	return out, err
}

// expireLapsed closes the member's exchanges whose duration has run out but
// that no accrual run has closed yet, exactly as the worker would: ended at
// expires_at, bonuses that had not vested by then voided, events, webhooks and
// deletion duties. Cancels, re-consents, erasure and deletion confirmations
// call it first, under the member's row lock, so none of them starts from
// consent that has already lapsed; a join calls it when its read found any.
func (s *Store) expireLapsed(tx *gorm.DB, memberID string) error {
	ended, err := endExchanges(tx, "e.member_id = @member AND "+lapsedAt("clock_timestamp()"),
		[]any{"member", memberID}, "expired", "e.expires_at", "system")
	if err != nil || len(ended) == 0 {
		return err
	}
	return s.afterEnded(tx, ended, "exchange.expired")
}

// lockMembers takes the row locks of members in id order, the one lock
// order every transaction that touches exchanges follows.
func lockMembers(tx *gorm.DB, cond string, named map[string]any) error {
	return tx.Exec(`SELECT 1 FROM members WHERE id IN (`+cond+`) ORDER BY id FOR UPDATE`, named).Error
}

func (s *Store) RetireContract(ctx context.Context, id string, terminate bool, fn func(*domain.Contract) error) (domain.Contract, int, error) {
	var out domain.Contract
	var n int
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := lockVersionsExclusive(tx, id); err != nil {
			return err
		}
		c, err := lockContract(tx, id)
		if err != nil {
			return err
		}
		if err := fn(&c); err != nil {
			return err
		}
		if err := saveContract(tx, c); err != nil {
			return err
		}
		out = c
		if !terminate {
			return nil
		}
		named := map[string]any{"contract": c.ID()}
		if err := lockMembers(tx, `SELECT member_id FROM exchanges WHERE contract_id = @contract AND status = 'active'`, named); err != nil {
			return err
		}
		// Consent that has already lapsed expired; it is not terminated.
		lapsed, err := endExchanges(tx, "e.contract_id = @contract AND "+lapsedAt("clock_timestamp()"),
			[]any{"contract", c.ID()}, "expired", "e.expires_at", "system")
		if err != nil {
			return err
		}
		if err := s.afterEnded(tx, lapsed, "exchange.expired"); err != nil {
			return err
		}
		ended, err := endExchanges(tx, "e.contract_id = @contract", []any{"contract", c.ID()}, "terminated", "clock_timestamp()", "marketer")
		if err != nil {
			return err
		}
		n = len(ended)
		return s.afterEnded(tx, ended, "exchange.terminated")
	})
	return out, n, err
}

// ContractStats counts exchanges by status and the points they earned. The
// points come from the exchanges' own counters (credited periods, vested
// bonus), which move in the same transactions as the ledger entries, so the
// statistic needs no scan of the ledger.
func (s *Store) ContractStats(ctx context.Context, id string) (app.ContractStats, error) {
	var st app.ContractStats
	err := s.db.WithContext(ctx).Raw(`
SELECT count(*) AS joins,
       count(*) FILTER (WHERE e.status = 'active') AS active,
       count(*) FILTER (WHERE e.status = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE e.status = 'expired') AS expired,
       count(*) FILTER (WHERE e.status = 'terminated') AS terminated,
       count(*) FILTER (WHERE e.status = 'superseded') AS superseded,
       count(*) FILTER (WHERE e.status = 'erased') AS erased,
       coalesce(sum(e.credited_periods * c.points_per_period), 0)
         + coalesce(sum(e.bonus_points) FILTER (WHERE e.bonus_state = 'vested'), 0) AS points_issued
FROM exchanges e JOIN contracts c ON c.id = e.contract_id
WHERE e.contract_id = @id`, map[string]any{"id": id}).Scan(&st).Error
	return st, err
}

// lockVersionsExclusive waits for joins in progress on the versions to end
// and keeps new ones out until the transaction ends (joins take the same
// advisory lock in shared mode).
func lockVersionsExclusive(tx *gorm.DB, ids ...string) error {
	for _, id := range ids {
		if !isUUID(id) {
			continue
		}
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtextextended(CAST(? AS text), 0))`, id).Error; err != nil {
			return err
		}
	}
	return nil
}
