package postgres

import (
	"fmt"
	"time"

	"gorm.io/gorm"
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
	if err != nil {
		return fmt.Errorf("end lapsed exchanges: %w", err)
	}
	if err := s.afterEnded(tx, ended, "exchange.expired"); err != nil {
		return fmt.Errorf("notify expiries: %w", err)
	}
	return nil
}

// lockMembers takes the row locks of members in id order, the one lock
// order every transaction that touches exchanges follows.
func lockMembers(tx *gorm.DB, cond string, named map[string]any) error {
	return tx.Exec(`SELECT 1 FROM members WHERE id IN (`+cond+`) ORDER BY id FOR UPDATE`, named).Error
}
