-- +goose Up
-- One key signs every list cursor (HMAC), kept here so that every replica
-- accepts the cursors of every other. Made once, by whichever process applies
-- this migration, from gen_random_uuid() (a cryptographic random source).
CREATE TABLE cursor_keys (
    id  smallint PRIMARY KEY CHECK (id = 1),
    key bytea NOT NULL CHECK (length(key) >= 16)
);
INSERT INTO cursor_keys (id, key)
VALUES (1, decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));

-- Incremental feeds (audit, access log, webhook deliveries) page in the
-- order rows commit, not by a time set before commit: each row records the
-- transaction that wrote it and an insertion sequence. Readers hand out only
-- rows of transactions older than every running one, so a consumer following
-- the cursor never skips a committed row.
ALTER TABLE access_log ADD COLUMN xact xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE access_log ADD COLUMN seq bigserial;
CREATE INDEX access_log_feed ON access_log (xact, seq);
ALTER TABLE webhook_outbox ADD COLUMN xact xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE webhook_outbox ADD COLUMN seq bigserial;
CREATE INDEX webhook_outbox_feed ON webhook_outbox (xact, seq);

-- Cached public responses (offers, statements, contract reads) change only
-- when contracts or recipients do. Every write to them, by any process or
-- path, tells every replica at commit, so each drops what it cached.
-- +goose StatementBegin
CREATE FUNCTION notify_public_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('quid_public_change', TG_TABLE_NAME);
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER contracts_public_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON contracts
    FOR EACH STATEMENT EXECUTE FUNCTION notify_public_change();
CREATE TRIGGER recipients_public_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON recipients
    FOR EACH STATEMENT EXECUTE FUNCTION notify_public_change();

-- +goose Down
DROP TRIGGER recipients_public_change ON recipients;
DROP TRIGGER contracts_public_change ON contracts;
DROP FUNCTION notify_public_change;
DROP INDEX webhook_outbox_feed;
ALTER TABLE webhook_outbox DROP COLUMN seq, DROP COLUMN xact;
DROP INDEX access_log_feed;
ALTER TABLE access_log DROP COLUMN seq, DROP COLUMN xact;
DROP TABLE cursor_keys;
