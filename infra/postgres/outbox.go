package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
)

// grantsByRecipient expands a contract's items into one row per recipient
// with the categories and purposes it receives.
const grantsByRecipient = `
CROSS JOIN LATERAL (
    SELECT rid::uuid AS recipient_id,
           jsonb_agg(DISTINCT i->>'category') AS categories,
           jsonb_agg(DISTINCT i->>'purpose') AS purposes
    FROM jsonb_array_elements(c.terms->'items') i, jsonb_array_elements_text(i->'recipients') rid
    GROUP BY rid
) g`

const utcSQL = `to_char((%s) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`

func utc(col string) string { return fmtSQL(utcSQL, col) }

// afterEnded writes, in the ending transaction, what every recipient of the
// ended exchanges is owed: a webhook event in the outbox and a deletion
// acknowledgement due by the end plus retention.
func (s *Store) afterEnded(tx *gorm.DB, ended []endedExchange, event string) error {
	ids := make([]string, len(ended))
	for i, e := range ended {
		ids[i] = e.ID
	}
	return notifyEnded(tx, ids, event, nil)
}

// withdrawnCategories is, per row of grantsByRecipient, the categories the
// recipient stops receiving: those the successor version (@successor, NULL
// when consent simply ended) does not give it. A member who moved to a newer
// version still consents, so a recipient owes deletion only of the
// categories the new version no longer gives it (all of them when it is no
// longer named).
const withdrawnCategories = `
CROSS JOIN LATERAL (
    SELECT coalesce(jsonb_agg(cat ORDER BY cat), '[]'::jsonb) AS categories
    FROM jsonb_array_elements_text(g.categories) cat
    WHERE NOT EXISTS (
        SELECT 1 FROM contracts n CROSS JOIN LATERAL jsonb_array_elements(n.terms->'items') ni
        WHERE n.id = CAST(@successor AS uuid) AND ni->>'category' = cat
          AND ni->'recipients' @> to_jsonb(g.recipient_id::text))
) w`

// notifyDeletionsSQL and notifyEventsSQL are what notifyEnded sends, for
// the ended exchanges @ids (uuid[]), event @type and, for a supersession,
// the @successor version.
var (
	notifyDeletionsSQL = `
INSERT INTO deletion_acks (exchange_id, recipient_id, member_id, due_at)
SELECT e.id, g.recipient_id, e.member_id, e.ended_at + c.retention
FROM exchanges e JOIN contracts c ON c.id = e.contract_id ` + grantsByRecipient + withdrawnCategories + `
WHERE e.id = ANY(CAST(@ids AS uuid[])) AND jsonb_array_length(w.categories) > 0
ON CONFLICT DO NOTHING`
	notifyEventsSQL = `
INSERT INTO webhook_outbox (id, recipient_id, event_type, payload, created_at, next_attempt_at)
SELECT gen_random_uuid(), g.recipient_id, @type, jsonb_build_object(
    'type', CAST(@type AS text),
    'timestamp', ` + utc("clock_timestamp()") + `,
    'data', jsonb_build_object(
        'member_id', e.member_id, 'exchange_id', e.id, 'contract_id', e.contract_id,
        'version', c.version, 'terms_hash', e.terms_hash, 'status', e.status,
        'categories', g.categories, 'purposes', g.purposes,
        'withdrawn_categories', w.categories,
        'ended_at', ` + utc("e.ended_at") + `,
        'retention', c.terms->>'retention',
        'delete_by', CASE WHEN jsonb_array_length(w.categories) = 0 THEN NULL ELSE ` + utc("e.ended_at + c.retention") + ` END)),
    clock_timestamp(), clock_timestamp()
FROM exchanges e JOIN contracts c ON c.id = e.contract_id ` + grantsByRecipient + withdrawnCategories + `
WHERE e.id = ANY(CAST(@ids AS uuid[]))`
)

func notifyArgs(ids []string, event string, successorID *string) map[string]any {
	return map[string]any{"ids": textArray(ids), "type": event, "successor": successorID}
}

func notifyEnded(tx *gorm.DB, ids []string, event string, successorID *string) error {
	if len(ids) == 0 {
		return nil
	}
	named := notifyArgs(ids, event, successorID)
	if err := tx.Exec(notifyDeletionsSQL, named).Error; err != nil {
		return fmt.Errorf("record deletion duties: %w", err)
	}
	if err := tx.Exec(notifyEventsSQL, named).Error; err != nil {
		return fmt.Errorf("queue %s events: %w", event, err)
	}
	return nil
}

// claimDueSQL leases the oldest due events (@limit, for @lease) of
// recipients that registered an endpoint. It starts from the endpoints and
// takes each one's oldest due events by webhook_outbox_pending (00015):
// events of recipients without an endpoint, which wait until one is
// registered and can pile up by the hundred thousand, are never read. (It
// started from the due events and skipped those: every poll, once a
// second, read them all.) The oldest @limit of every endpoint's oldest
// @limit are the oldest @limit overall.
const claimDueSQL = `
WITH due AS (
    SELECT d.id FROM webhook_endpoints w
    CROSS JOIN LATERAL (
        SELECT o.id, o.next_attempt_at FROM webhook_outbox o
        WHERE o.recipient_id = w.recipient_id AND o.delivered_at IS NULL AND o.failed_at IS NULL
          AND o.next_attempt_at <= clock_timestamp()
        ORDER BY o.next_attempt_at LIMIT @limit FOR UPDATE OF o SKIP LOCKED
    ) d
    ORDER BY d.next_attempt_at LIMIT @limit
)
UPDATE webhook_outbox o SET next_attempt_at = clock_timestamp() + CAST(@lease AS interval)
FROM due, webhook_endpoints w
WHERE o.id = due.id AND w.recipient_id = o.recipient_id
RETURNING o.id, o.recipient_id, o.event_type, o.payload, w.url, w.secret, o.attempts, o.created_at`

// ClaimDue leases due events of recipients that registered an endpoint.
func (s *Store) ClaimDue(ctx context.Context, limit int, lease time.Duration) ([]app.OutboxMessage, error) {
	var out []app.OutboxMessage
	err := s.db.WithContext(ctx).Raw(claimDueSQL, map[string]any{"limit": limit, "lease": lease}).Scan(&out).Error
	for i := range out {
		out[i].Payload, out[i].CreatedAt = compactJSON(out[i].Payload), out[i].CreatedAt.UTC()
	}
	return out, err
}

func compactJSON(b []byte) []byte {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return b
	}
	out, err := json.Marshal(v)
	if err != nil {
		return b
	}
	return out
}

func (s *Store) MarkDelivered(ctx context.Context, id string, status int) error {
	return s.db.WithContext(ctx).Exec(`UPDATE webhook_outbox SET delivered_at = clock_timestamp(), attempts = attempts + 1, last_status = ?, last_error = NULL, `+
		erasureRequestDelivered+` WHERE id = ?`, status, id).Error
}

func (s *Store) MarkAttemptFailed(ctx context.Context, id string, status int, reason string, next time.Time, giveUp bool) error {
	var failedAt any
	if giveUp {
		failedAt = gorm.Expr("clock_timestamp()")
	}
	if len(reason) > 500 {
		reason = reason[:500]
	}
	// Giving up and forgetting an erasure request's member id commit
	// together: a given-up event never keeps the id.
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`UPDATE webhook_outbox SET attempts = attempts + 1, last_status = NULLIF(?, 0), last_error = NULLIF(?, ''),
		next_attempt_at = ?, failed_at = ? WHERE id = ?`, status, reason, next, failedAt, id).Error; err != nil {
			return fmt.Errorf("record failed attempt: %w", err)
		}
		if !giveUp {
			return nil
		}
		if err := tx.Exec(`UPDATE webhook_outbox SET `+erasureRequestDelivered+` WHERE id = ?`, id).Error; err != nil {
			return fmt.Errorf("forget the erased member: %w", err)
		}
		return nil
	})
}
