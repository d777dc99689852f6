-- +goose Up
-- Every read of a member's data by a partner or staff member. Append-only
-- and shown to the member.
CREATE TABLE access_log (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    member_id     text NOT NULL,
    accessor_role text NOT NULL CHECK (accessor_role IN ('partner', 'admin')),
    accessor_id   text NOT NULL,
    accessor_name text NOT NULL,
    purpose       text,
    categories    text[] NOT NULL,
    exchange_ids  uuid[] NOT NULL DEFAULT '{}',
    request_id    text NOT NULL,
    at            timestamptz NOT NULL
);
CREATE INDEX access_log_member ON access_log (member_id, at DESC, id DESC);
CREATE INDEX access_log_accessor ON access_log (accessor_id, at DESC, id DESC);
CREATE INDEX access_log_at ON access_log (at DESC, id DESC);
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TABLE webhook_endpoints (
    recipient_id uuid PRIMARY KEY REFERENCES recipients (id),
    url          text NOT NULL,
    secret       text NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- Transactional outbox: an event is written in the transaction that caused
-- it and delivered at least once by a worker, with back-off.
CREATE TABLE webhook_outbox (
    id              uuid PRIMARY KEY,
    recipient_id    uuid NOT NULL REFERENCES recipients (id),
    event_type      text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    delivered_at    timestamptz,
    failed_at       timestamptz,
    last_status     integer,
    last_error      text
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_outbox_recipient ON webhook_outbox (recipient_id, created_at DESC, id DESC);

-- Each recipient of an ended exchange owes a confirmation that it deleted
-- the data, due by the end plus the retention period.
CREATE TABLE deletion_acks (
    exchange_id  uuid NOT NULL REFERENCES exchanges (id),
    recipient_id uuid NOT NULL REFERENCES recipients (id),
    member_id    text NOT NULL,
    due_at       timestamptz NOT NULL,
    confirmed_at timestamptz,
    PRIMARY KEY (exchange_id, recipient_id)
);
CREATE INDEX deletion_acks_overdue ON deletion_acks (due_at) WHERE confirmed_at IS NULL;
CREATE INDEX deletion_acks_member ON deletion_acks (member_id);

-- +goose Down
DROP TABLE deletion_acks;
DROP TABLE webhook_outbox;
DROP TABLE webhook_endpoints;
DROP TABLE access_log;
