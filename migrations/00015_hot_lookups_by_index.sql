-- +goose Up
-- Two lookups that read whole tables when they should read a few index
-- entries.
--
-- The seal triggers (00010) look up the member's previous row on every
-- insert. PL/pgSQL plans that lookup once per connection and keeps the plan
-- (a generic plan after five calls) until the table's statistics change. A
-- connection that first inserted while the table was empty, or while its
-- statistics said so (a new database, freshly analyzed), keeps a sequential
-- scan and a sort: every later insert then reads the whole table until
-- autovacuum next analyzes it (measured: 72 ms a lookup at 200,000 rows,
-- against 0.02 ms by the index). The lookups now cannot be planned without
-- their index: sequential scans and sorts are off inside the trigger
-- functions only, so the one plan left reads the chain index backwards
-- (ledger_chain, consent_events_member) and stops at the first row, whatever
-- the statistics. The bodies, and so the seals, are unchanged; CREATE OR
-- REPLACE takes effect in running sessions at their next insert, so a
-- release running either migration level keeps sealing the same bytes.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ledger_seal() RETURNS trigger LANGUAGE plpgsql
SET enable_seqscan = off SET enable_sort = off AS $$
DECLARE
    prev bytea;
BEGIN
    NEW.seq := nextval('ledger_entries_seq');
    SELECT l.digest INTO prev FROM ledger_entries l WHERE l.member_id = NEW.member_id ORDER BY l.seq DESC LIMIT 1;
    NEW.digest := ledger_entry_seal(prev, NEW);
    RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION consent_events_seal() RETURNS trigger LANGUAGE plpgsql
SET enable_seqscan = off SET enable_sort = off AS $$
DECLARE
    prev bytea;
BEGIN
    SELECT c.digest INTO prev FROM consent_events c WHERE c.member_id = NEW.member_id AND c.id < NEW.id ORDER BY c.id DESC LIMIT 1;
    NEW.digest := consent_event_seal(prev, NEW);
    RETURN NEW;
END $$;
-- +goose StatementEnd

-- The webhook worker's claim (ClaimDue) starts from the registered
-- endpoints and takes each one's oldest due events by webhook_outbox_pending.
-- It used to walk webhook_outbox_due, every pending event in time order,
-- skipping those of recipients without an endpoint: they wait, and pile up,
-- until one is registered, and each poll (once a second) read them all
-- (1.1 s a poll at 74,000 such events). webhook_outbox_due goes: nothing
-- else reads it, and every outbox insert (two to four a join) paid for it.
-- The release before this one still claims correctly without it, reading
-- the pending events by a scan, as many as it read by the index.
CREATE INDEX webhook_outbox_pending ON webhook_outbox (recipient_id, next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
DROP INDEX webhook_outbox_due;

-- +goose Down
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
DROP INDEX webhook_outbox_pending;
-- RESET ALL drops the SET clauses: the functions of 00010 again.
ALTER FUNCTION ledger_seal() RESET ALL;
ALTER FUNCTION consent_events_seal() RESET ALL;
