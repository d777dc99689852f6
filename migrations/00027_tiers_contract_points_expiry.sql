-- +goose Up
-- Issue 14, tiers and a contract's own points expiry.
--
-- 1. A contract may shorten the points expiry for the points it pays: its
--    terms' points_expire_after (an ISO 8601 duration, which PostgreSQL
--    reads as an interval; validated no longer than the programme's
--    QUID_POINTS_EXPIRE_AFTER). The ledger_lots trigger of 00024 opens
--    each lot at the earlier of the programme's and the contract's expiry.
--    Only the lot-opening INSERT changes; the rest is 00024's as it was.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ledger_lots() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    after interval := CAST(NULLIF(current_setting('quid.points_expire_after', true), '') AS interval);
    r record;
    took bigint;
    bad uuid;
BEGIN
    -- A contract may shorten the programme's expiry for the points it pays
    -- (its terms' points_expire_after): the lot expires at the earlier of
    -- the two (LEAST ignores the one that is not set).
    INSERT INTO points_lots (entry_id, points, remaining, expires_at)
    SELECT e.id, e.points, e.points,
           LEAST(coalesce(e.period_end, e.created_at) + after,
                 coalesce(e.period_end, e.created_at) + CAST(k.terms->>'points_expire_after' AS interval))
    FROM new_entries e LEFT JOIN contracts k ON k.id = e.contract_id
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

-- 2. Tiers. Each PUT /v1/programme/tiers adds a version (none is changed;
--    the latest is in force): the rolling window over which points earned
--    are counted, and the tiers, lowest first, as a JSON array of
--    {name, threshold, benefits}. Validation (strictly increasing
--    thresholds, unique names, bounded texts) is domain.ValidateTiers'.
CREATE TABLE tier_schedules (
    version        integer PRIMARY KEY CHECK (version > 0),
    earning_window text NOT NULL,
    tiers          jsonb NOT NULL CHECK (jsonb_typeof(tiers) = 'array'),
    created_at     timestamptz NOT NULL
);

-- Each member's tier as last announced (member.tier_changed): the tier job
-- changes a row only where the tier computed from the ledger differs
-- (INSERT ... ON CONFLICT DO UPDATE ... WHERE tier IS DISTINCT FROM), so a
-- change is announced once however many workers run it. tier NULL: no
-- tier. No row: no tier was ever announced. Erasure deletes the row.
CREATE TABLE member_tiers (
    member_id  text PRIMARY KEY,
    tier       text,
    changed_at timestamptz NOT NULL
);
-- What the tier job reads: the entries written within the window. Entries
-- are written in about created_at order, so a BRIN index finds them for
-- next to nothing on every write (a B-tree would cost each credit of the
-- accrual batches one more index insert).
CREATE INDEX ledger_created_brin ON ledger_entries USING brin (created_at);

-- +goose Down
DROP INDEX ledger_created_brin;
DROP TABLE member_tiers;
DROP TABLE tier_schedules;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ledger_lots() RETURNS trigger LANGUAGE plpgsql AS $$
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
