-- +goose Up
-- Erasure forfeits the member's points (attack report F6, forfeitPoints in
-- infra/postgres/erasure.go). Members erased by an earlier release still
-- hold theirs: nobody can spend them, yet they count in the liability and
-- their lots queue points.expiring under the pseudonym. They are forfeited
-- here the same way: every lot with points left is brought due now and one
-- expiry entry per member empties them (the lots trigger checks it), onto
-- the programme's expired account.
UPDATE points_lots l SET expires_at = now()
FROM ledger_entries c JOIN members m ON m.id = c.member_id
WHERE c.id = l.entry_id AND m.erased_at IS NOT NULL AND l.remaining > 0 AND (l.expires_at IS NULL OR l.expires_at > now());

WITH due AS (
    SELECT c.member_id, sum(l.remaining) AS points
    FROM ledger_entries c JOIN points_lots l ON l.entry_id = c.id JOIN members m ON m.id = c.member_id
    WHERE m.erased_at IS NOT NULL AND l.remaining > 0 AND l.expires_at <= now()
    GROUP BY c.member_id
), entries AS (
    INSERT INTO ledger_entries (member_id, kind, points, created_at)
    SELECT member_id, 'expiry', -points, now() FROM due
    RETURNING member_id, points
)
UPDATE members m SET available = m.available + e.points FROM entries e WHERE m.id = e.member_id;

-- +goose Down
-- The forfeiture is history in the append-only ledger: nothing to undo.
SELECT 1;
