package postgres

import "gorm.io/gorm"

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
// ended exchanges is owed: a webhook event in the outbox and, except when
// the member simply moved to a newer version, a deletion acknowledgement
// due by the end plus retention.
func (s *Store) afterEnded(tx *gorm.DB, ended []endedExchange, event string) error {
	if len(ended) == 0 {
		return nil
	}
	ids := make([]string, len(ended))
	for i, e := range ended {
		ids[i] = e.ID
	}
	named := map[string]any{"ids": textArray(ids), "type": event}
	if event != "exchange.superseded" {
		if err := tx.Exec(`
INSERT INTO deletion_acks (exchange_id, recipient_id, member_id, due_at)
SELECT e.id, g.recipient_id, e.member_id, e.ended_at + c.retention
FROM exchanges e JOIN contracts c ON c.id = e.contract_id `+grantsByRecipient+`
WHERE e.id = ANY(CAST(@ids AS uuid[]))
ON CONFLICT DO NOTHING`, named).Error; err != nil {
			return err
		}
	}
	return tx.Exec(`
INSERT INTO webhook_outbox (id, recipient_id, event_type, payload, created_at, next_attempt_at)
SELECT gen_random_uuid(), g.recipient_id, @type, jsonb_build_object(
    'type', CAST(@type AS text),
    'timestamp', `+utc("clock_timestamp()")+`,
    'data', jsonb_build_object(
        'member_id', e.member_id, 'exchange_id', e.id, 'contract_id', e.contract_id,
        'version', c.version, 'terms_hash', e.terms_hash, 'status', e.status,
        'categories', g.categories, 'purposes', g.purposes,
        'ended_at', `+utc("e.ended_at")+`,
        'retention', c.terms->>'retention',
        'delete_by', CASE WHEN @type = 'exchange.superseded' THEN NULL ELSE `+utc("e.ended_at + c.retention")+` END)),
    clock_timestamp(), clock_timestamp()
FROM exchanges e JOIN contracts c ON c.id = e.contract_id `+grantsByRecipient+`
WHERE e.id = ANY(CAST(@ids AS uuid[]))`, named).Error
}
