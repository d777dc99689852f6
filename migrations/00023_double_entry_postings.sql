-- +goose Up
-- The ledger is double entry (DESIGN.md rule 12). Each ledger entry is one
-- transaction; its postings, one per account it moves, sum to zero:
--
--   account    holder     balance
--   available  member     members.available (cached, CHECK >= 0)
--   pending    member     members.pending   (cached, CHECK >= 0)
--   issued     programme  minus every point ever issued (the liability's
--                         counterpart); never cached (it would be one row
--                         every join and credit locks), summed when asked
--   redeemed   programme  points spent (less reversals)
--   expired    programme  points expired (no entry writes it yet)
--   voided     programme  pending bonuses voided
--
-- A posting's amount is signed: positive is points into the account,
-- negative points out of it. A member's account belongs to the entry's
-- member, so postings carry no member id and erasure, which rewrites
-- ledger_entries.member_id only, leaves them as they are.
CREATE TABLE ledger_postings (
    entry_id uuid NOT NULL,
    account  text NOT NULL CHECK (account IN ('available', 'pending', 'issued', 'redeemed', 'expired', 'voided')),
    amount   bigint NOT NULL,
    PRIMARY KEY (entry_id, account)
);

-- The chart of movements: an entry's postings from its kind and signed
-- points, as domain.PostingsOf computes them (parity tests compare). A
-- plain SQL function without SET clauses, so PostgreSQL inlines it.
-- +goose StatementBegin
CREATE FUNCTION ledger_entry_postings(kind text, points bigint) RETURNS TABLE (account text, amount bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT c.account, c.sign * points FROM (VALUES
        ('bonus_pending', 'issued', -1), ('bonus_pending', 'pending', 1),
        ('bonus_vested', 'pending', -1), ('bonus_vested', 'available', 1),
        ('bonus_voided', 'voided', -1), ('bonus_voided', 'pending', 1),
        ('period_credit', 'issued', -1), ('period_credit', 'available', 1),
        ('redemption', 'redeemed', -1), ('redemption', 'available', 1),
        ('reversal', 'redeemed', -1), ('reversal', 'available', 1)
    ) AS c (kind, account, sign)
    WHERE c.kind = ledger_entry_postings.kind
$$;
-- +goose StatementEnd

-- Postings are written by the database, in the statement that writes the
-- entries: one statement-level trigger per INSERT, reading the inserted
-- rows from its transition table, so a batch of 10,000 credits costs one
-- more INSERT ... SELECT, not 10,000 trigger calls, and no writer (this
-- release's, the raw benchmarks', an older release's during a rolling
-- deploy) can write an entry without its postings. An entry of a kind the
-- chart does not know is refused.
-- +goose StatementBegin
CREATE FUNCTION ledger_post() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    posted bigint;
BEGIN
    INSERT INTO ledger_postings (entry_id, account, amount)
    SELECT e.id, p.account, p.amount FROM new_entries e CROSS JOIN LATERAL ledger_entry_postings(e.kind, e.points) p;
    -- Every kind the chart knows has two postings (a kind with more
    -- changes this count with the chart).
    GET DIAGNOSTICS posted = ROW_COUNT;
    IF posted <> 2 * (SELECT count(*) FROM new_entries) THEN
        RAISE EXCEPTION 'ledger entry of a kind the chart of movements does not know' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
-- Every INSERT into ledger_postings carries whole transactions: the
-- postings of each entry it names sum to zero. Checked once per statement
-- (a constraint trigger would run once per row).
CREATE FUNCTION ledger_postings_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unbalanced uuid;
BEGIN
    SELECT entry_id INTO unbalanced FROM new_postings GROUP BY entry_id HAVING sum(amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'the postings of ledger entry % do not sum to zero', unbalanced USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER ledger_postings_balanced AFTER INSERT ON ledger_postings
    REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT EXECUTE FUNCTION ledger_postings_balanced();
CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- The trigger comes before the backfill: creating it locks out every
-- writer of ledger_entries until this migration commits, so no entry is
-- written between the backfill's snapshot and the trigger (none missed,
-- none posted twice).
CREATE TRIGGER ledger_post AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION ledger_post();

-- Every entry written before this migration gets its postings; quid
-- verify checks that they balance and that the cached balances equal them.
INSERT INTO ledger_postings (entry_id, account, amount)
SELECT l.id, p.account, p.amount FROM ledger_entries l CROSS JOIN LATERAL ledger_entry_postings(l.kind, l.points) p;

-- +goose Down
DROP TRIGGER ledger_post ON ledger_entries;
DROP TABLE ledger_postings;
DROP FUNCTION ledger_postings_balanced;
DROP FUNCTION ledger_post;
DROP FUNCTION ledger_entry_postings;
