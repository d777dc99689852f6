-- +goose Up
-- The event stream (issue 15): with QUID_NATS_URL set, every outbox event is
-- also published to NATS JetStream, at least once. Its publishing state is
-- kept apart from webhook delivery state (delivered_at, attempts, failed_at
-- of webhook_outbox), so a NATS outage neither holds back nor repeats a
-- webhook delivery, and a dead webhook endpoint never holds back the stream.
--
-- Recording is switched on by the first replica that starts with
-- QUID_NATS_URL and stays on until `quid stream off`: an event written while
-- NATS or every publishing replica is down waits here instead of being lost,
-- and a deployment that never uses NATS records nothing.
CREATE TABLE event_stream_settings (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    recording  boolean NOT NULL,
    changed_at timestamptz NOT NULL
);

-- One row per outbox event recorded for the stream. The payload is read
-- from webhook_outbox when it is published, so erasure's pseudonymisation of
-- unsent events reaches unpublished ones too.
CREATE TABLE event_stream_outbox (
    event_id        uuid PRIMARY KEY REFERENCES webhook_outbox (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    published_at    timestamptz,
    stream_seq      bigint,
    -- an event that can never be published (its type is no subject); the
    -- constraint on webhook_outbox.event_type below keeps this empty.
    given_up_at     timestamptz,
    last_error      text,
    CHECK (published_at IS NULL OR given_up_at IS NULL)
);
-- The relay's claim and its lag gauge read only unpublished events.
CREATE INDEX event_stream_outbox_due ON event_stream_outbox (next_attempt_at) WHERE published_at IS NULL AND given_up_at IS NULL;
CREATE INDEX event_stream_outbox_oldest ON event_stream_outbox (created_at) WHERE published_at IS NULL AND given_up_at IS NULL;

-- Every insert into the outbox, from whichever statement and for whichever
-- event type (present or future), is recorded while recording is on: one
-- statement-level trigger, so a join pays one extra INSERT whatever number
-- of recipients it notifies, and nothing when recording is off.
-- +goose StatementBegin
CREATE FUNCTION record_for_event_stream() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_stream_outbox (event_id, created_at, next_attempt_at)
    SELECT n.id, n.created_at, clock_timestamp() FROM new_events n
    WHERE EXISTS (SELECT 1 FROM event_stream_settings s WHERE s.recording);
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER webhook_outbox_event_stream AFTER INSERT ON webhook_outbox
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION record_for_event_stream();

-- An event type becomes the NATS subject quid.events.<type>: dot-separated
-- tokens of letters, digits, '_' and '-', so no type can make an empty
-- token or a wildcard ('*', '>'), or hold white space. Every type so far
-- (exchange.joined, points.expiring, member.erasure_requested, ...) fits.
ALTER TABLE webhook_outbox ADD CONSTRAINT webhook_outbox_event_type_is_subject
    CHECK (event_type ~ '^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$' AND length(event_type) <= 200);

-- +goose Down
ALTER TABLE webhook_outbox DROP CONSTRAINT webhook_outbox_event_type_is_subject;
DROP TRIGGER webhook_outbox_event_stream ON webhook_outbox;
DROP FUNCTION record_for_event_stream;
DROP TABLE event_stream_outbox;
DROP TABLE event_stream_settings;
