-- +goose Up
-- Consent renewal instead of silent lapse.
--
-- 1. exchange.expiring reminders: expiring_sent_for is the expires_at the
--    reminder was sent for, written in the statement that queues it, so a
--    reminder is sent once per expiry; a renewal moves expires_at and
--    makes the exchange due again at the new window. Nullable without a
--    default: adding it rewrites nothing, and a release that does not
--    know it never reads or writes it.
ALTER TABLE exchanges ADD COLUMN expiring_sent_for timestamptz;
-- The reminder job scans only exchanges in force whose reminder for the
-- current expiry is still owed, by expiry.
CREATE INDEX exchanges_expiring ON exchanges (expires_at)
    WHERE status = 'active' AND expires_at IS NOT NULL AND expiring_sent_for IS DISTINCT FROM expires_at;

-- 2. A renewal is a consent event. Widening the check refuses nothing an
--    older release writes.
ALTER TABLE consent_events DROP CONSTRAINT consent_events_kind_check;
ALTER TABLE consent_events ADD CONSTRAINT consent_events_kind_check
    CHECK (kind IN ('joined', 'cancelled', 'expired', 'terminated', 'superseded', 'erased', 'renewed')) NOT VALID;
ALTER TABLE consent_events VALIDATE CONSTRAINT consent_events_kind_check;

-- +goose Down
-- The consent_events check stays wide: renewed events already written are
-- history, and an older release never writes one.
DROP INDEX exchanges_expiring;
ALTER TABLE exchanges DROP COLUMN expiring_sent_for;
