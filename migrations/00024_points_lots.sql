-- +goose Up
-- Points lots (issue 14, stage 2): a sub-ledger of each member's available
-- account. Every entry that credits available (a period credit, a vested
-- bonus, a reversal) opens a lot of its points that expires the programme's
-- QUID_POINTS_EXPIRE_AFTER (the session setting quid.points_expire_after,
-- an ISO 8601 duration; unset: never) after it was earned: a period
-- credit's period_end (so a late accrual worker does not extend it),
-- otherwise the entry's created_at.
-- A redemption consumes the member's unexpired lots first-expiring first
-- (FEFO, then the lots that never expire, oldest first) and records what it
-- took from each, so that its reversal restores exactly those lots. The
-- accrual worker (expirePoints, infra/postgres/accrual.go) writes `expiry` entries for the lots whose
-- time has come and empties them. So, per member, the sum of the lots'
-- remaining points is members.available, which quid verify checks.
--
-- Lots carry no member id: a lot's member is its entry's, so erasure, which
-- rewrites ledger_entries.member_id only, leaves them as they are.
CREATE TABLE points_lots (
    entry_id   uuid PRIMARY KEY,
    points     bigint NOT NULL CHECK (points > 0),
    remaining  bigint NOT NULL CHECK (remaining >= 0 AND remaining <= points),
    expired    bigint NOT NULL DEFAULT 0 CHECK (expired >= 0),
    expires_at timestamptz,
    -- points.expiring was queued for this lot (once, QUID_POINTS_EXPIRING_NOTICE before).
    expiring_sent boolean NOT NULL DEFAULT false
);
-- What the expiry job looks for: lots past their time with points left.
CREATE INDEX points_lots_due ON points_lots (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;
-- What the points.expiring reminder looks for.
CREATE INDEX points_lots_expiring ON points_lots (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL AND NOT expiring_sent;

-- What each debit of available (a redemption, an expiry, a negative
-- reversal) took from which lot; restored counts what reversals gave back.
CREATE TABLE points_lot_consumptions (
    entry_id      uuid NOT NULL,
    lot_id        uuid NOT NULL,
    points        bigint NOT NULL CHECK (points > 0),
    restored      bigint NOT NULL DEFAULT 0 CHECK (restored >= 0 AND restored <= points),
    PRIMARY KEY (entry_id, lot_id)
);

-- A reversal names the redemption it reverses (NULL for a reversal written
-- without one: it opens a fresh lot instead). Not sealed: it adds nothing to
-- what the entry's kind and points already move.
ALTER TABLE ledger_entries ADD COLUMN reverses uuid;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check
    CHECK (kind IN ('bonus_pending', 'bonus_vested', 'bonus_voided', 'period_credit', 'redemption', 'reversal', 'expiry'));
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_expiry_negative CHECK (kind <> 'expiry' OR points < 0);

-- The chart of movements gains expiry: available -N, expired +N.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ledger_entry_postings(kind text, points bigint) RETURNS TABLE (account text, amount bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT c.account, c.sign * points FROM (VALUES
        ('bonus_pending', 'issued', -1), ('bonus_pending', 'pending', 1),
        ('bonus_vested', 'pending', -1), ('bonus_vested', 'available', 1),
        ('bonus_voided', 'voided', -1), ('bonus_voided', 'pending', 1),
        ('period_credit', 'issued', -1), ('period_credit', 'available', 1),
        ('redemption', 'redeemed', -1), ('redemption', 'available', 1),
        ('reversal', 'redeemed', -1), ('reversal', 'available', 1),
        ('expiry', 'expired', -1), ('expiry', 'available', 1)
    ) AS c (kind, account, sign)
    WHERE c.kind = ledger_entry_postings.kind
$$;
-- +goose StatementEnd

-- Lots are kept by the database in the statement that writes the entries,
-- as postings are, so no writer can move available without its lots:
--   - an entry that credits available opens a lot (one INSERT ... SELECT a
--     statement, however many credits it writes);
--   - expiry entries (-N) empty every lot of their member whose time has
--     come by the entry's time, and N must be what those lots held (one
--     set-based statement, however many members the expiry job writes for);
--   - a redemption (or a negative reversal) takes its points from its
--     member's lots unexpired at its time, first to expire first (FEFO),
--     then the lots that never expire, oldest first; there must be enough;
--   - a reversal that names its redemption restores what that redemption
--     took, in the order it took it.
-- Every take is recorded in points_lot_consumptions (entry, lot, points).
-- Redemptions and reversals are few and one a statement: each is handled
-- on its own. Every writer holds its members' row locks (the balance
-- UPDATE takes them at the latest); the lots are locked too.
-- +goose StatementBegin
CREATE FUNCTION ledger_lots() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    after interval := CAST(NULLIF(current_setting('quid.points_expire_after', true), '') AS interval);
    r record;
    took bigint;
    bad uuid;
BEGIN
    INSERT INTO points_lots (entry_id, points, remaining, expires_at)
    SELECT e.id, e.points, e.points, coalesce(e.period_end, e.created_at) + after FROM new_entries e
    WHERE e.points > 0 AND (e.kind IN ('period_credit', 'bonus_vested') OR (e.kind = 'reversal' AND e.reverses IS NULL));

    IF EXISTS (SELECT 1 FROM new_entries WHERE kind = 'expiry') THEN
        WITH due AS (
            SELECT x.id AS expiry_id, l.entry_id, l.remaining
            FROM new_entries x
            JOIN ledger_entries c ON c.member_id = x.member_id
            JOIN points_lots l ON l.entry_id = c.id
            WHERE x.kind = 'expiry' AND l.remaining > 0 AND l.expires_at <= x.created_at
            FOR UPDATE OF l
        ), took AS (
            INSERT INTO points_lot_consumptions (entry_id, lot_id, points)
            SELECT expiry_id, entry_id, remaining FROM due
        ), emptied AS (
            UPDATE points_lots l SET remaining = 0, expired = l.expired + d.remaining FROM due d WHERE l.entry_id = d.entry_id
        )
        -- One grouping, not a join (a transition table has no statistics:
        -- joined, it was planned as a nested loop, quadratic in members).
        SELECT id INTO bad FROM (
            SELECT x.id, -x.points AS owed, 0 AS emptied FROM new_entries x WHERE x.kind = 'expiry'
            UNION ALL SELECT expiry_id, 0, remaining FROM due
        ) s GROUP BY id HAVING sum(owed) <> sum(emptied) LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'expiry entry % does not expire exactly the points of its member''s lots due by its time', bad
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;

    FOR r IN SELECT e.id, e.member_id, e.kind, e.points, e.reverses, e.created_at FROM new_entries e
             WHERE e.kind = 'redemption' OR (e.kind = 'reversal' AND (e.points < 0 OR e.reverses IS NOT NULL)) ORDER BY e.seq LOOP
        IF r.points < 0 THEN
            PERFORM 1 FROM points_lots l JOIN ledger_entries c ON c.id = l.entry_id
            WHERE c.member_id = r.member_id AND l.remaining > 0 FOR UPDATE OF l;
            WITH fefo AS (
                SELECT l.entry_id, l.remaining,
                       sum(l.remaining) OVER (ORDER BY l.expires_at NULLS LAST, c.created_at, l.entry_id) - l.remaining AS before
                FROM points_lots l JOIN ledger_entries c ON c.id = l.entry_id
                WHERE c.member_id = r.member_id AND l.remaining > 0 AND (l.expires_at IS NULL OR l.expires_at > r.created_at)
            ), took AS (
                INSERT INTO points_lot_consumptions (entry_id, lot_id, points)
                SELECT r.id, f.entry_id, LEAST(f.remaining, -r.points - f.before) FROM fefo f WHERE f.before < -r.points
                RETURNING lot_id, points
            ), upd AS (
                UPDATE points_lots l SET remaining = l.remaining - t.points FROM took t WHERE l.entry_id = t.lot_id
            )
            SELECT coalesce(sum(points), 0) INTO took FROM took;
            IF took <> -r.points THEN
                RAISE EXCEPTION '% of % points exceeds the % unexpired points of its member', r.kind, -r.points, took
                    USING ERRCODE = 'check_violation';
            END IF;
        ELSE
            PERFORM 1 FROM ledger_entries x WHERE x.id = r.reverses AND x.kind = 'redemption' AND x.member_id = r.member_id;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'a reversal must reverse a redemption of its member' USING ERRCODE = 'check_violation';
            END IF;
            WITH taken AS (
                SELECT k.lot_id, k.points - k.restored AS open,
                       sum(k.points - k.restored) OVER (ORDER BY l.expires_at NULLS LAST, c.created_at, k.lot_id) - (k.points - k.restored) AS before
                FROM points_lot_consumptions k JOIN points_lots l ON l.entry_id = k.lot_id JOIN ledger_entries c ON c.id = k.lot_id
                WHERE k.entry_id = r.reverses AND k.points > k.restored
            ), back AS (
                SELECT lot_id, LEAST(open, r.points - before) AS n FROM taken WHERE before < r.points
            ), cons AS (
                UPDATE points_lot_consumptions k SET restored = k.restored + b.n FROM back b
                WHERE k.entry_id = r.reverses AND k.lot_id = b.lot_id
            ), lots AS (
                UPDATE points_lots l SET remaining = l.remaining + b.n FROM back b WHERE l.entry_id = b.lot_id
            )
            SELECT coalesce(sum(n), 0) INTO took FROM back;
            IF took <> r.points THEN
                RAISE EXCEPTION 'reversal of % points exceeds the % its redemption has left to restore', r.points, took
                    USING ERRCODE = 'check_violation';
            END IF;
        END IF;
    END LOOP;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER ledger_lots AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION ledger_lots();
CREATE TRIGGER points_lot_consumptions_append_only BEFORE DELETE ON points_lot_consumptions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Every member's available balance so far becomes one lot that never
-- expires (what it was credited from is no longer known lot by lot), dated
-- by its member's latest entry that credited available.
INSERT INTO points_lots (entry_id, points, remaining, expires_at)
SELECT DISTINCT ON (m.id) l.id, m.available, m.available, NULL
FROM members m JOIN ledger_entries l ON l.member_id = m.id
WHERE m.available > 0
ORDER BY m.id, l.created_at DESC, l.id DESC;

-- +goose Down
DROP TRIGGER ledger_lots ON ledger_entries;
DROP FUNCTION ledger_lots;
DROP TABLE points_lot_consumptions;
DROP TABLE points_lots;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_expiry_negative;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check
    CHECK (kind IN ('bonus_pending', 'bonus_vested', 'bonus_voided', 'period_credit', 'redemption', 'reversal'));
ALTER TABLE ledger_entries DROP COLUMN reverses;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ledger_entry_postings(kind text, points bigint) RETURNS TABLE (account text, amount bigint)
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
