-- +goose Up
-- Restriction and objection (00013) bite in the database itself, so that a
-- release that knows nothing of them — the previous one, still running
-- during a rolling deploy — fails closed instead of paying, disclosing or
-- joining against them (DESIGN rule 11). The current release never trips
-- these guards: it skips restricted periods, refuses restricted reads (and
-- logs them as refused) and refuses objected joins before writing.

-- A period credit needs the whole period outside every restriction.
-- +goose StatementBegin
CREATE FUNCTION credit_outside_restriction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM member_restrictions r
               WHERE r.member_id = NEW.member_id AND r.started_at < NEW.period_end
                 AND (r.ended_at IS NULL OR r.ended_at > NEW.period_start)) THEN
        RAISE EXCEPTION 'a period credit may not overlap a restriction of processing'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER ledger_credit_outside_restriction BEFORE INSERT ON ledger_entries
    FOR EACH ROW WHEN (NEW.kind = 'period_credit') EXECUTE FUNCTION credit_outside_restriction();

-- A read served to a partner while the member's processing is restricted.
-- +goose StatementBegin
CREATE FUNCTION read_outside_restriction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM member_restrictions r WHERE r.member_id = NEW.member_id AND r.ended_at IS NULL) THEN
        RAISE EXCEPTION 'processing of this member is restricted' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER access_log_read_outside_restriction BEFORE INSERT ON access_log
    FOR EACH ROW WHEN (NEW.refused IS NULL AND NEW.accessor_role = 'partner') EXECUTE FUNCTION read_outside_restriction();

-- A new exchange on a contract that uses a purpose the member objected to.
-- +goose StatementBegin
CREATE FUNCTION join_outside_objection() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM member_objections o WHERE o.member_id = NEW.member_id)
       AND EXISTS (SELECT 1 FROM member_objections o
                   JOIN contracts c ON c.id = NEW.contract_id
                   CROSS JOIN LATERAL jsonb_array_elements(c.terms->'items') i
                   WHERE o.member_id = NEW.member_id AND i->>'purpose' = o.purpose) THEN
        RAISE EXCEPTION 'the member objected to a purpose of this contract' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER exchanges_join_outside_objection BEFORE INSERT ON exchanges
    FOR EACH ROW EXECUTE FUNCTION join_outside_objection();

-- Restriction periods are history: a period is opened, closed once, and
-- renamed to the pseudonym on erasure; it is never moved, reopened or
-- deleted, so `quid verify` can trust it.
-- +goose StatementBegin
CREATE FUNCTION restriction_history_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.started_at = OLD.started_at
       AND (OLD.ended_at IS NULL OR NEW.ended_at = OLD.ended_at)
       AND (NEW.member_id = OLD.member_id OR current_setting('quid.erasure', true) = 'on') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'restriction periods are history: only an open one may be closed' USING ERRCODE = 'check_violation';
END $$;
-- +goose StatementEnd
CREATE TRIGGER member_restrictions_kept BEFORE UPDATE OR DELETE ON member_restrictions
    FOR EACH ROW EXECUTE FUNCTION restriction_history_kept();

-- +goose Down
DROP TRIGGER member_restrictions_kept ON member_restrictions;
DROP FUNCTION restriction_history_kept;
DROP TRIGGER exchanges_join_outside_objection ON exchanges;
DROP FUNCTION join_outside_objection;
DROP TRIGGER access_log_read_outside_restriction ON access_log;
DROP FUNCTION read_outside_restriction;
DROP TRIGGER ledger_credit_outside_restriction ON ledger_entries;
DROP FUNCTION credit_outside_restriction;
