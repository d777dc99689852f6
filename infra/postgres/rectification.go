package postgres

import (
	"time"

	"gorm.io/gorm"
)

// notifyRectifiedSQL writes, for a member whose attributes @categories
// (the rectified categories, derived ones included) just changed, one
// member.attributes_changed event per recipient that an exchange in force
// grants any of them (GDPR Art. 16, 19): the categories it receives that
// changed and the exchanges that grant them, never a value.
var notifyRectifiedSQL = `
INSERT INTO webhook_outbox (id, recipient_id, event_type, payload, created_at, next_attempt_at)
SELECT gen_random_uuid(), g.recipient_id, 'member.attributes_changed', jsonb_build_object(
    'type', 'member.attributes_changed',
    'timestamp', ` + utc("clock_timestamp()") + `,
    'data', jsonb_build_object('member_id', CAST(@member AS text),
        'categories', jsonb_agg(DISTINCT cat ORDER BY cat),
        'exchanges', jsonb_agg(DISTINCT e.id),
        'changed_at', ` + utc("CAST(@now AS timestamptz)") + `)),
    clock_timestamp(), clock_timestamp()
FROM exchanges e JOIN contracts c ON c.id = e.contract_id ` + grantsByRecipient + `
CROSS JOIN LATERAL jsonb_array_elements_text(g.categories) cat
WHERE e.member_id = @member AND e.status = 'active' AND (e.expires_at IS NULL OR e.expires_at > CAST(@now AS timestamptz))
  AND cat = ANY(CAST(@categories AS text[]))
GROUP BY g.recipient_id`

// notifyRectified runs in the transaction that changed the attributes,
// under the member's lock.
func notifyRectified(tx *gorm.DB, memberID string, categories []string, now time.Time) error {
	if len(categories) == 0 {
		return nil
	}
	return tx.Exec(notifyRectifiedSQL, map[string]any{"member": memberID, "categories": textArray(categories), "now": now}).Error
}
