-- +goose Up
-- Erasure reaches everything a member typed or that identifies them.
--
-- 1. Redemption references are free text a member typed, so they leave the
--    append-only ledger for a table erasure can delete from. A trigger moves
--    any reference still written to ledger_entries (a release running during
--    a rolling deploy) before the row is stored; the CHECK makes sure none
--    lands there again.
CREATE TABLE ledger_references (
    entry_id  uuid PRIMARY KEY,
    reference text NOT NULL
);
INSERT INTO ledger_references (entry_id, reference)
SELECT id, reference FROM ledger_entries WHERE reference IS NOT NULL;
ALTER TABLE ledger_entries DISABLE TRIGGER ledger_append_only;
UPDATE ledger_entries SET reference = NULL WHERE reference IS NOT NULL;
ALTER TABLE ledger_entries ENABLE TRIGGER ledger_append_only;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_no_reference CHECK (reference IS NULL);

-- +goose StatementBegin
CREATE FUNCTION ledger_reference_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_references (entry_id, reference) VALUES (NEW.id, NEW.reference);
    NEW.reference := NULL;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER ledger_reference_out BEFORE INSERT ON ledger_entries
    FOR EACH ROW WHEN (NEW.reference IS NOT NULL) EXECUTE FUNCTION ledger_reference_out();

-- 2. The member id is pseudonymised on erasure, in the append-only tables
--    too: their rows stay (amounts, kinds, times: the accounting and consent
--    record), only member_id changes, and only inside an erasure transaction
--    (SET LOCAL quid.erasure = 'on'). Everything else is still refused.
-- +goose StatementBegin
CREATE FUNCTION append_only_but_pseudonymise() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('quid.erasure', true) = 'on'
        AND (to_jsonb(NEW) - 'member_id') = (to_jsonb(OLD) - 'member_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'check_violation';
END $$;
-- +goose StatementEnd
DROP TRIGGER ledger_append_only ON ledger_entries;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION append_only_but_pseudonymise();
DROP TRIGGER consent_events_append_only ON consent_events;
CREATE TRIGGER consent_events_append_only BEFORE UPDATE OR DELETE ON consent_events
    FOR EACH ROW EXECUTE FUNCTION append_only_but_pseudonymise();
DROP TRIGGER access_log_append_only ON access_log;
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION append_only_but_pseudonymise();

-- A member row is never deleted; erasure renames it to its pseudonym, and
-- member_events follow.
-- +goose StatementBegin
CREATE FUNCTION members_kept_or_pseudonymised() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('quid.erasure', true) = 'on' THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' OR NEW.id IS DISTINCT FROM OLD.id THEN
        RAISE EXCEPTION '% rows are never deleted or renumbered', TG_TABLE_NAME USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
DROP TRIGGER members_kept ON members;
CREATE TRIGGER members_kept BEFORE UPDATE OF id OR DELETE ON members
    FOR EACH ROW EXECUTE FUNCTION members_kept_or_pseudonymised();
ALTER TABLE member_events DROP CONSTRAINT member_events_member_id_fkey;
ALTER TABLE member_events ADD CONSTRAINT member_events_member_id_fkey
    FOREIGN KEY (member_id) REFERENCES members (id) ON UPDATE CASCADE;

-- 3. A join bonus is paid once per member and contract family, also to a
--    member who erased their data and enrolled again: erasure keeps, per
--    family the old identity was paid a bonus for, only an HMAC-SHA256 of
--    (family, subject) under a key generated here and kept in the database.
CREATE TABLE bonus_claim_key (
    id     boolean PRIMARY KEY DEFAULT true CHECK (id),
    k_ipad bytea NOT NULL,
    k_opad bytea NOT NULL
);
-- +goose StatementBegin
DO $$
DECLARE
    k  bytea := decode(replace(gen_random_uuid()::text || gen_random_uuid()::text || gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex');
    ki bytea := k;
    ko bytea := k;
BEGIN
    FOR i IN 0..63 LOOP
        ki := set_byte(ki, i, get_byte(k, i) # 54);
        ko := set_byte(ko, i, get_byte(k, i) # 92);
    END LOOP;
    INSERT INTO bonus_claim_key (k_ipad, k_opad) VALUES (ki, ko);
END $$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION bonus_claim_digest(member text, family uuid) RETURNS bytea LANGUAGE sql STABLE AS $$
    SELECT sha256(k.k_opad || sha256(k.k_ipad || convert_to(family::text || member, 'UTF8'))) FROM bonus_claim_key k
$$;
-- +goose StatementEnd
CREATE TABLE erased_bonus_claims (
    digest bytea PRIMARY KEY
);

-- Members erased before this migration are pseudonymised as erasure now
-- does it (infra/postgres/erasure.go).
-- +goose StatementBegin
DO $$
DECLARE
    m record;
    p text;
BEGIN
    PERFORM set_config('quid.erasure', 'on', true);
    FOR m IN SELECT id FROM members WHERE erased_at IS NOT NULL AND id NOT LIKE 'erased:%' LOOP
        p := 'erased:' || gen_random_uuid()::text;
        INSERT INTO erased_bonus_claims (digest)
        SELECT DISTINCT bonus_claim_digest(m.id, family_id) FROM ledger_entries
        WHERE member_id = m.id AND kind = 'bonus_pending' AND family_id IS NOT NULL
        ON CONFLICT DO NOTHING;
        DELETE FROM ledger_references r USING ledger_entries l WHERE l.id = r.entry_id AND l.member_id = m.id;
        DELETE FROM idempotency_keys WHERE member_id = m.id;
        UPDATE ledger_entries SET member_id = p WHERE member_id = m.id;
        UPDATE consent_events SET member_id = p WHERE member_id = m.id;
        UPDATE access_log SET member_id = p WHERE member_id = m.id;
        UPDATE exchanges SET member_id = p, receipt = '' WHERE member_id = m.id;
        UPDATE deletion_acks SET member_id = p WHERE member_id = m.id;
        UPDATE webhook_outbox SET payload = jsonb_set(payload, '{data,member_id}', to_jsonb(p))
        WHERE payload->'data'->>'member_id' = m.id
          AND NOT (event_type = 'member.erasure_requested' AND delivered_at IS NULL AND failed_at IS NULL);
        UPDATE members SET id = p, attributes = '{}' WHERE id = m.id;
    END LOOP;
    PERFORM set_config('quid.erasure', '', true);
END $$;
-- +goose StatementEnd

-- 4. Stored idempotent responses expire after 24 hours; the worker deletes
--    them by age.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- +goose Down
DROP INDEX idempotency_keys_created;
DROP TABLE erased_bonus_claims;
DROP FUNCTION bonus_claim_digest;
DROP TABLE bonus_claim_key;
ALTER TABLE member_events DROP CONSTRAINT member_events_member_id_fkey;
ALTER TABLE member_events ADD CONSTRAINT member_events_member_id_fkey FOREIGN KEY (member_id) REFERENCES members (id);
DROP TRIGGER members_kept ON members;
CREATE TRIGGER members_kept BEFORE UPDATE OF id OR DELETE ON members
    FOR EACH ROW EXECUTE FUNCTION refuse_delete_or_renumber();
DROP FUNCTION members_kept_or_pseudonymised;
DROP TRIGGER access_log_append_only ON access_log;
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log FOR EACH ROW EXECUTE FUNCTION refuse_change();
DROP TRIGGER consent_events_append_only ON consent_events;
CREATE TRIGGER consent_events_append_only BEFORE UPDATE OR DELETE ON consent_events FOR EACH ROW EXECUTE FUNCTION refuse_change();
DROP TRIGGER ledger_append_only ON ledger_entries;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger_entries FOR EACH ROW EXECUTE FUNCTION refuse_change();
DROP FUNCTION append_only_but_pseudonymise;
DROP TRIGGER ledger_reference_out ON ledger_entries;
DROP FUNCTION ledger_reference_out;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_no_reference;
ALTER TABLE ledger_entries DISABLE TRIGGER ledger_append_only;
UPDATE ledger_entries l SET reference = r.reference FROM ledger_references r WHERE r.entry_id = l.id;
ALTER TABLE ledger_entries ENABLE TRIGGER ledger_append_only;
DROP TABLE ledger_references;
