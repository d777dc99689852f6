package postgres

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// brandOfContractSQL joins, as r, the brand of contract c: the first-party
// recipients its terms name, the ones reminded before consent or points
// lapse.
const brandOfContractSQL = `r.kind = 'first_party' AND r.id IN (
        SELECT CAST(rid AS uuid) FROM jsonb_array_elements(c.terms->'items') i, jsonb_array_elements_text(i->'recipients') rid)`

// RenewExchange implements app.ExchangeRepository. Its version's advisory
// lock is taken in shared mode as a join takes it, before the member's row
// (memberLock.versionOf; see the lock order in tx.go): publishing a newer
// version or retiring this one waits for the renewal, or the renewal sees
// it. Under the member's lock lapsed consent is expired first and the
// exchange row is locked. The renewal writes the new expiry, the period
// grid's next end and the receipt, appends a renewed consent event with
// the same terms hash and the request's GPC signal, and queues exchange.renewed for every recipient of
// the terms, all in one transaction.
func (s *Store) RenewExchange(ctx context.Context, memberID, exchangeID string, gpc bool,
	plan func(app.RenewalContext) (domain.Exchange, error)) (domain.Exchange, error) {
	if !isUUID(exchangeID) {
		return domain.Exchange{}, errExchangeNotFound
	}
	var out domain.Exchange
	lock := memberLock{absent: errExchangeNotFound, versionOf: exchangeID}
	err := s.inMemberTx(ctx, memberID, lock, func(tx *gorm.DB, _ memberRecord) error {
		rec, err := s.lockOwnExchange(tx, memberID, exchangeID)
		if err != nil {
			return err
		}
		var crec contractRecord
		if err := tx.First(&crec, "id = ?", rec.ContractID).Error; err != nil {
			return err
		}
		c, err := crec.toDomain()
		if err != nil {
			return err
		}
		rc := app.RenewalContext{Exchange: rec.toDomain(), Contract: c}
		var newer []contractRecord
		if err := tx.Where("family_id = ? AND status = ? AND version > ?", c.FamilyID(), string(domain.ContractPublished), c.Version()).
			Order("version DESC").Limit(1).Find(&newer).Error; err != nil {
			return err
		}
		if len(newer) == 1 {
			n, err := newer[0].toDomain()
			if err != nil {
				return err
			}
			rc.Newer = &n
		}
		if err := tx.Raw(`SELECT count(*) FROM consent_events WHERE member_id = ? AND exchange_id = ? AND kind = 'renewed'`,
			memberID, exchangeID).Scan(&rc.Renewals).Error; err != nil {
			return err
		}
		if rc.Recipients, err = s.recipientsByID(tx, c.RecipientIDs()); err != nil {
			return err
		}
		if rc.Now, err = dbNow(tx); err != nil {
			return err
		}
		e, err := plan(rc)
		if err != nil {
			return err
		}
		st := e.State()
		if err := tx.Exec(`UPDATE exchanges SET expires_at = ?, next_period_end = ?, receipt_id = ?, receipt = ? WHERE id = ?`,
			st.ExpiresAt, st.NextPeriodEnd, st.ReceiptID, st.Receipt, st.ID).Error; err != nil {
			return err
		}
		// The renewed event records the request's GPC signal, as the
		// joined one does; the seal covers it (migration 00017).
		args := consentEventArgs(e, "renewed", "member", rc.Now)
		args["gpc"] = gpc
		if err := tx.Exec(consentEventGPCSQL, args).Error; err != nil {
			return err
		}
		if err := tx.Exec(notifyRenewedSQL, map[string]any{"exchange": st.ID, "now": rc.Now, "previous": rec.ExpiresAt}).Error; err != nil {
			return fmt.Errorf("queue exchange.renewed events: %w", err)
		}
		out = e
		return nil
	})
	return out, err
}

// notifyRenewedSQL queues, for the just renewed exchange @exchange, one
// exchange.renewed event per recipient its terms name (first and third
// party alike, each told only the categories and purposes it receives):
// consent that was to end at @previous now runs to the new expires_at, so
// a recipient that scheduled deletion for the old expiry keeps the data.
// It names the member, exchange and version as the other exchange events
// do, never a value.
var notifyRenewedSQL = `
INSERT INTO webhook_outbox (id, recipient_id, event_type, payload, created_at, next_attempt_at)
SELECT gen_random_uuid(), g.recipient_id, 'exchange.renewed', jsonb_build_object(
    'type', 'exchange.renewed',
    'timestamp', ` + utc("CAST(@now AS timestamptz)") + `,
    'data', jsonb_build_object(
        'member_id', e.member_id, 'exchange_id', e.id, 'contract_id', e.contract_id,
        'version', c.version, 'terms_hash', e.terms_hash, 'status', e.status,
        'categories', g.categories, 'purposes', g.purposes,
        'renewed_at', ` + utc("CAST(@now AS timestamptz)") + `,
        'previous_expires_at', ` + utc("CAST(@previous AS timestamptz)") + `,
        'expires_at', ` + utc("e.expires_at") + `)),
    CAST(@now AS timestamptz), CAST(@now AS timestamptz)
FROM exchanges e JOIN contracts c ON c.id = e.contract_id ` + grantsByRecipient + `
WHERE e.id = @exchange`

// renewalNoticeSQL is a published contract's renewal notice as an
// interval: the one its terms hold (ISO 8601, which PostgreSQL reads; a
// version published now always holds one, see domain.Contract.Publish), or
// P14D, the default a version published before that was published under
// (contractRecord.toDomain reads it back the same way). Drafts never reach it.
const renewalNoticeSQL = `COALESCE(CAST(c.terms->>'renewal_notice' AS interval), interval '14 days')`

// remindExpiringSQL queues, for at most @batch exchanges in force whose
// renewal window has opened (expires_at - notice <= now < expires_at) and
// whose reminder for this expiry is still owed, one exchange.expiring event
// per first-party recipient of the contract, and marks each exchange with
// the expiry it was reminded of, in the same statement: exactly once per
// expiry, however late the worker runs (it looks at timestamps, not at
// when it last ran) and however many replicas run it (rows another one
// holds are skipped, and a row changed meanwhile is checked again). The
// scan is bounded by the longest notice of any contract, on the partial
// index exchanges_expiring.
var remindExpiringSQL = `
WITH longest AS (
    SELECT COALESCE(max(` + renewalNoticeSQL + `), interval '14 days') AS notice
    FROM contracts c WHERE c.consent_duration IS NOT NULL AND c.status <> 'draft'
), due AS (
    SELECT e.id, e.expires_at FROM exchanges e JOIN contracts c ON c.id = e.contract_id, longest
    WHERE e.status = 'active' AND e.expires_at IS NOT NULL AND e.expiring_sent_for IS DISTINCT FROM e.expires_at
      AND e.expires_at > clock_timestamp() AND e.expires_at <= clock_timestamp() + longest.notice
      AND e.expires_at - ` + renewalNoticeSQL + ` <= clock_timestamp()
    ORDER BY e.expires_at LIMIT @batch
    FOR UPDATE OF e SKIP LOCKED
), marked AS (
    UPDATE exchanges x SET expiring_sent_for = due.expires_at FROM due WHERE x.id = due.id
    RETURNING x.id
), ins AS (
    INSERT INTO webhook_outbox (id, recipient_id, event_type, payload, created_at, next_attempt_at)
    SELECT gen_random_uuid(), r.id, 'exchange.expiring', jsonb_build_object(
        'type', 'exchange.expiring',
        'timestamp', ` + utc("clock_timestamp()") + `,
        'data', jsonb_build_object(
            'member_id', e.member_id, 'exchange_id', e.id, 'contract_id', e.contract_id,
            'version', c.version, 'terms_hash', e.terms_hash,
            'expires_at', ` + utc("due.expires_at") + `,
            'renewal_notice', COALESCE(c.terms->>'renewal_notice', 'P14D'),
            'newer_version', (SELECT jsonb_build_object('contract_id', n.id, 'version', n.version) FROM contracts n
                WHERE n.family_id = c.family_id AND n.status = 'published' AND n.version > c.version ORDER BY n.version DESC LIMIT 1),
            'renewable', c.status = 'published' AND NOT EXISTS (SELECT 1 FROM contracts n
                WHERE n.family_id = c.family_id AND n.status = 'published' AND n.version > c.version))),
        clock_timestamp(), clock_timestamp()
    FROM due JOIN exchanges e ON e.id = due.id JOIN contracts c ON c.id = e.contract_id
    JOIN recipients r ON ` + brandOfContractSQL + `
    RETURNING 1
)
SELECT (SELECT count(*) FROM marked) AS exchanges, (SELECT count(*) FROM ins) AS events`

// RemindExpiring implements app.ExpiryReminders, a batch at a time until
// nothing more is due.
func (s *Store) RemindExpiring(ctx context.Context) (int64, error) {
	const batch = 1000
	var total int64
	for {
		var n struct{ Exchanges, Events int64 }
		if err := s.db.WithContext(ctx).Raw(remindExpiringSQL, map[string]any{"batch": batch}).Scan(&n).Error; err != nil {
			return total, markUnreachable(err)
		}
		total += n.Exchanges
		if n.Exchanges < batch {
			return total, nil
		}
	}
}

// RemindPointsExpiring implements app.PointsExpiryReminders, a batch at a
// time until nothing more is due.
func (s *Store) RemindPointsExpiring(ctx context.Context, notice domain.Duration) (int64, error) {
	const batch = 1000
	var total int64
	for {
		var n struct{ Lots, Events int64 }
		if err := s.db.WithContext(ctx).Raw(remindPointsExpiringSQL, map[string]any{"batch": batch, "notice": notice.String()}).Scan(&n).Error; err != nil {
			return total, markUnreachable(err)
		}
		total += n.Lots
		if n.Lots < batch {
			return total, nil
		}
	}
}

// remindPointsExpiringSQL queues, for at most @batch lots with points left
// that expire within @notice and whose reminder is still owed, one
// points.expiring event per member, contract and expiry time and
// first-party recipient of the contract, and marks the lots, in the same
// statement: exactly once per lot, however late the worker runs (it looks
// at the lots' times, never after they expired) and however many replicas
// run it (lots another one holds are skipped). A lot no contract earned (a
// reversal's) is marked with no event.
var remindPointsExpiringSQL = `
WITH due AS (
    SELECT l.entry_id, l.expires_at, l.remaining, c.member_id, c.contract_id
    FROM points_lots l JOIN ledger_entries c ON c.id = l.entry_id
    WHERE l.remaining > 0 AND l.expires_at IS NOT NULL AND NOT l.expiring_sent
      AND l.expires_at > clock_timestamp() AND l.expires_at <= clock_timestamp() + CAST(@notice AS interval)
    ORDER BY l.expires_at LIMIT @batch
    FOR UPDATE OF l SKIP LOCKED
), marked AS (
    UPDATE points_lots x SET expiring_sent = true FROM due WHERE x.entry_id = due.entry_id
    RETURNING x.entry_id
), grouped AS (
    SELECT member_id, contract_id, expires_at, sum(remaining) AS points FROM due WHERE contract_id IS NOT NULL
    GROUP BY member_id, contract_id, expires_at
), ins AS (
    INSERT INTO webhook_outbox (id, recipient_id, event_type, payload, created_at, next_attempt_at)
    SELECT gen_random_uuid(), r.id, 'points.expiring', jsonb_build_object(
        'type', 'points.expiring',
        'timestamp', ` + utc("clock_timestamp()") + `,
        'data', jsonb_build_object(
            'member_id', g.member_id, 'contract_id', g.contract_id, 'points', g.points,
            'expires_at', ` + utc("g.expires_at") + `)),
        clock_timestamp(), clock_timestamp()
    FROM grouped g JOIN contracts c ON c.id = g.contract_id
    JOIN recipients r ON ` + brandOfContractSQL + `
    RETURNING 1
)
SELECT (SELECT count(*) FROM marked) AS lots, (SELECT count(*) FROM ins) AS events`
