package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
)

// Invariants implements app.InvariantStore: every check is one SQL statement
// that returns only violations, read in one REPEATABLE READ READ ONLY
// transaction (one snapshot, no writes, no locks beyond the ACCESS SHARE
// every read takes), so it runs on a hot standby. Rows are streamed, never
// collected: PostgreSQL aggregates (spilling to its own temporary files when
// large), the caller keeps what it wants.
type Invariants struct{ db *sql.DB }

// NewInvariants wraps an open database for `quid verify`.
func NewInvariants(db *gorm.DB) (*Invariants, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	return &Invariants{db: sqlDB}, nil
}

// invariantCheck is one statement returning (member_id text, rows text[],
// detail text) per violation of rule; rows holds "table/key" names.
type invariantCheck struct {
	rule app.InvariantRule
	sql  string
}

// entryEffects is each ledger entry's effect on available and pending,
// exactly as domain.Balance.Apply applies it.
const entryEffects = `fx AS (
    SELECT l.member_id, l.id, l.seq, l.kind, l.points, l.created_at,
           CASE WHEN l.kind IN ('bonus_pending', 'bonus_voided') THEN 0 ELSE l.points END AS avail,
           CASE l.kind WHEN 'bonus_pending' THEN l.points WHEN 'bonus_voided' THEN l.points
                       WHEN 'bonus_vested' THEN -l.points ELSE 0 END AS pend
    FROM ledger_entries l
)`

// guards are the database objects that refuse what the rules forbid.
const guards = `want (kind, tbl, name) AS (VALUES
    ('trigger', 'ledger_entries', 'ledger_append_only'),
    ('trigger', 'ledger_entries', 'ledger_seal'),
    ('trigger', 'ledger_entries', 'ledger_reference_out'),
    ('trigger', 'ledger_entries', 'ledger_post'),
    ('trigger', 'ledger_postings', 'ledger_postings_balanced'),
    ('trigger', 'ledger_postings', 'ledger_postings_append_only'),
    ('trigger', 'ledger_entries', 'ledger_lots'),
    ('trigger', 'points_lot_consumptions', 'points_lot_consumptions_append_only'),
    ('trigger', 'consent_events', 'consent_events_append_only'),
    ('trigger', 'consent_events', 'consent_events_seal'),
    ('trigger', 'access_log', 'access_log_append_only'),
    ('trigger', 'members', 'members_kept'),
    ('trigger', 'exchanges', 'exchanges_kept'),
    ('trigger', 'ledger_entries', 'ledger_credit_outside_restriction'),
    ('trigger', 'access_log', 'access_log_read_outside_restriction'),
    ('trigger', 'exchanges', 'exchanges_join_outside_objection'),
    ('trigger', 'member_restrictions', 'member_restrictions_kept'),
    ('unique index', 'ledger_entries', 'ledger_one_credit_per_period'),
    ('unique index', 'ledger_entries', 'ledger_one_bonus_per_family'),
    ('unique index', 'ledger_entries', 'ledger_one_bonus_outcome'),
    ('unique index', 'exchanges', 'exchanges_one_active'),
    ('check', 'members', 'members_available_check'),
    ('check', 'members', 'members_pending_check'),
    ('check', 'ledger_entries', 'ledger_entries_no_reference')
)`

// endingKinds are the consent events that end an exchange, one per ending
// status; other kinds a later feature adds (a renewal, say) end nothing.
const endingKinds = `'cancelled', 'expired', 'terminated', 'superseded', 'erased'`

var invariantChecks = []invariantCheck{
	{app.RuleCatalogueStockCounted, `SELECT '', ARRAY['rewards/' || w.id],
       format('stock %s less stock_left %s is %s, but active redemptions hold %s units', w.stock, w.stock_left, w.stock - w.stock_left, coalesce(h.n, 0))
FROM rewards w LEFT JOIN (SELECT reward_id, count(*) AS n FROM reward_redemptions WHERE status = 'active' GROUP BY reward_id) h ON h.reward_id = w.id
WHERE w.stock IS NOT NULL AND w.stock - w.stock_left <> coalesce(h.n, 0)
UNION ALL
SELECT e.member_id, ARRAY['reward_redemptions/' || x.id], format('redemption of %s points has a %s entry of %s points', x.points, e.kind, e.points)
FROM reward_redemptions x JOIN ledger_entries e ON e.id = x.entry_id
WHERE e.kind <> 'redemption' OR e.points <> -x.points
UNION ALL
SELECT e.member_id, ARRAY['reward_redemptions/' || x.id], format('cancelled redemption of %s points is not reversed by exactly one reversal of them', x.points)
FROM reward_redemptions x JOIN ledger_entries e ON e.id = x.entry_id LEFT JOIN ledger_entries v ON v.id = x.reversal_id
WHERE x.status = 'cancelled' AND (v.id IS NULL OR v.kind <> 'reversal' OR v.points <> x.points OR v.reverses IS DISTINCT FROM x.entry_id OR v.member_id <> e.member_id)`},

	{app.RuleLotsEqualAvailable, `WITH lots AS (
    SELECT c.member_id, sum(l.remaining) AS remaining, count(*) AS n
    FROM points_lots l JOIN ledger_entries c ON c.id = l.entry_id GROUP BY c.member_id
)
SELECT m.id, ARRAY['members/' || m.id],
       format('available is %s but its %s lots hold %s points', m.available, coalesce(s.n, 0), coalesce(s.remaining, 0))
FROM members m LEFT JOIN lots s ON s.member_id = m.id
WHERE m.available <> coalesce(s.remaining, 0)
UNION ALL
SELECT '', ARRAY['points_lots/' || l.entry_id], format('lot of %s points belongs to ledger entry %s, which does not exist', l.points, l.entry_id)
FROM points_lots l WHERE NOT EXISTS (SELECT 1 FROM ledger_entries c WHERE c.id = l.entry_id)
UNION ALL
SELECT c.member_id, ARRAY['points_lots/' || l.entry_id],
       format('lot of %s points has %s remaining and %s expired', l.points, l.remaining, l.expired)
FROM points_lots l JOIN ledger_entries c ON c.id = l.entry_id
WHERE l.remaining < 0 OR l.remaining > l.points OR l.expired < 0
UNION ALL
SELECT c.member_id, ARRAY['points_lot_consumptions/' || k.entry_id || ',' || k.lot_id],
       format('what a ledger entry took from a lot (%s points, %s restored) is not a debit''s from a lot of the same member', k.points, k.restored)
FROM points_lot_consumptions k
LEFT JOIN ledger_entries r ON r.id = k.entry_id
LEFT JOIN ledger_entries c ON c.id = k.lot_id
WHERE r.id IS NULL OR c.id IS NULL OR r.points >= 0 OR r.member_id <> c.member_id OR k.restored > k.points
   OR (r.kind <> 'redemption' AND k.restored > 0)`},

	{app.RuleBalanceEqualsEntries, `WITH ` + entryEffects + `, sums AS (
    SELECT member_id, sum(avail) AS avail, sum(pend) AS pend, count(*) AS n FROM fx GROUP BY member_id
)
SELECT coalesce(m.id, s.member_id),
       ARRAY[CASE WHEN m.id IS NULL THEN 'ledger_entries/member_id=' || s.member_id ELSE 'members/' || m.id END],
       CASE WHEN m.id IS NULL THEN format('%s ledger entries belong to no member', s.n)
            ELSE format('available is %s but its entries sum to %s; pending is %s but its entries sum to %s (%s entries)',
                        m.available, coalesce(s.avail, 0), m.pending, coalesce(s.pend, 0), coalesce(s.n, 0)) END
FROM members m FULL JOIN sums s ON s.member_id = m.id
WHERE m.id IS NULL OR m.available <> coalesce(s.avail, 0) OR m.pending <> coalesce(s.pend, 0)
UNION ALL
SELECT e.member_id, ARRAY['exchanges/' || e.id],
       format('credited_periods is %s but the exchange has %s period credits', e.credited_periods, count(l.id))
FROM exchanges e LEFT JOIN ledger_entries l ON l.exchange_id = e.id AND l.kind = 'period_credit'
GROUP BY e.id HAVING e.credited_periods <> count(l.id)`},

	{app.RuleBalanceNotNegative, `WITH ` + entryEffects + `, run AS (
    SELECT member_id, id, kind, points, created_at,
           sum(avail) OVER w AS a, sum(pend) OVER w AS p, row_number() OVER w AS n
    FROM fx
    WINDOW w AS (PARTITION BY member_id ORDER BY created_at, (avail < 0 OR pend < 0), seq, id ROWS UNBOUNDED PRECEDING)
)
SELECT id, ARRAY['members/' || id], format('the cached balance is negative: available %s, pending %s', available, pending)
FROM members WHERE available < 0 OR pending < 0
UNION ALL
SELECT member_id, rows, detail FROM (
    SELECT DISTINCT ON (member_id) member_id, ARRAY['ledger_entries/' || id] AS rows,
           format('after its %s entry of %s points at %s the balance is available %s, pending %s', kind, points, created_at, a, p) AS detail
    FROM run WHERE a < 0 OR p < 0
    ORDER BY member_id, n
) first_negative`},

	{app.RuleTransactionsBalanced, `SELECT l.member_id, ARRAY['ledger_entries/' || l.id],
       CASE WHEN p.entry_id IS NULL THEN format('%s entry of %s points has no postings', l.kind, l.points)
            ELSE format('the %s postings of this %s entry of %s points sum to %s, not zero', p.n, l.kind, l.points, p.total) END
FROM ledger_entries l
LEFT JOIN (SELECT entry_id, sum(amount) AS total, count(*) AS n FROM ledger_postings GROUP BY entry_id) p ON p.entry_id = l.id
WHERE p.entry_id IS NULL OR p.total <> 0
UNION ALL
SELECT '', ARRAY['ledger_postings/' || p.entry_id || ',' || p.account],
       format('posting of %s on %s belongs to ledger entry %s, which does not exist', p.amount, p.account, p.entry_id)
FROM ledger_postings p WHERE NOT EXISTS (SELECT 1 FROM ledger_entries l WHERE l.id = p.entry_id)`},

	{app.RuleBalanceEqualsPostings, `WITH member_sums AS (
    SELECT l.member_id, coalesce(sum(p.amount) FILTER (WHERE p.account = 'available'), 0) AS avail,
           coalesce(sum(p.amount) FILTER (WHERE p.account = 'pending'), 0) AS pend, count(*) AS n
    FROM ledger_postings p JOIN ledger_entries l ON l.id = p.entry_id
    WHERE p.account IN ('available', 'pending')
    GROUP BY l.member_id
), programme AS (
    SELECT a.account, coalesce(sum(p.amount), 0) AS balance
    FROM (VALUES ('issued'), ('redeemed'), ('expired'), ('voided')) AS a (account)
    LEFT JOIN ledger_postings p ON p.account = a.account
    GROUP BY a.account
), totals AS (
    SELECT (SELECT coalesce(sum(available), 0) FROM members) AS avail, (SELECT coalesce(sum(pending), 0) FROM members) AS pend,
           sum(balance) FILTER (WHERE account = 'issued') AS issued, sum(balance) FILTER (WHERE account = 'redeemed') AS redeemed,
           sum(balance) FILTER (WHERE account = 'expired') AS expired, sum(balance) FILTER (WHERE account = 'voided') AS voided
    FROM programme
)
SELECT m.id, ARRAY['members/' || m.id],
       format('available is %s but its postings sum to %s; pending is %s but its postings sum to %s (%s postings)',
              m.available, coalesce(s.avail, 0), m.pending, coalesce(s.pend, 0), coalesce(s.n, 0))
FROM members m LEFT JOIN member_sums s ON s.member_id = m.id
WHERE m.available <> coalesce(s.avail, 0) OR m.pending <> coalesce(s.pend, 0)
UNION ALL
SELECT s.member_id, ARRAY['ledger_entries/member_id=' || s.member_id], format('%s postings on the accounts of a member that does not exist', s.n)
FROM member_sums s WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.id = s.member_id)
UNION ALL
SELECT '', ARRAY['accounts/' || account],
       format('the programme''s %s account sums to %s, which is %s', account, balance,
              CASE account WHEN 'issued' THEN 'more points returned than were ever issued' ELSE 'more points taken back out than ever went in' END)
FROM programme WHERE (account = 'issued' AND balance > 0) OR (account <> 'issued' AND balance < 0)
UNION ALL
SELECT '', ARRAY['accounts/*'],
       format('all accounts sum to %s, not zero: members hold %s available and %s pending, the programme''s issued is %s, redeemed %s, expired %s, voided %s',
              avail + pend + issued + redeemed + expired + voided, avail, pend, issued, redeemed, expired, voided)
FROM totals WHERE avail + pend + issued + redeemed + expired + voided <> 0`},

	{app.RuleCreditInsideConsent, `SELECT l.member_id, array_remove(ARRAY['ledger_entries/' || l.id, 'exchanges/' || e.id], NULL),
       CASE WHEN e.id IS NULL THEN format('period credit for exchange %s, which does not exist', l.exchange_id)
            WHEN l.member_id <> e.member_id THEN 'period credit of an exchange that belongs to another member'
            ELSE format('period [%s, %s) written at %s is outside consent [%s, %s)', l.period_start, l.period_end, l.created_at,
                        e.joined_at, coalesce(LEAST(e.ended_at, e.expires_at)::text, 'open')) END
FROM ledger_entries l LEFT JOIN exchanges e ON e.id = l.exchange_id
WHERE l.kind = 'period_credit' AND (e.id IS NULL OR l.member_id <> e.member_id OR l.period_start IS NULL OR l.period_end IS NULL
    OR l.period_start < e.joined_at OR l.period_start >= l.period_end
    OR l.period_end > LEAST(coalesce(e.ended_at, 'infinity'), coalesce(e.expires_at, 'infinity'))
    OR l.period_end > l.created_at)`},

	{app.RuleCreditOutsideRestriction, `SELECT l.member_id, ARRAY['ledger_entries/' || l.id, 'member_restrictions/' || r.id],
       format('period [%s, %s) credited at %s overlaps the restriction [%s, %s)', l.period_start, l.period_end, l.created_at,
              r.started_at, coalesce(r.ended_at::text, 'open'))
FROM ledger_entries l JOIN member_restrictions r ON r.member_id = l.member_id
WHERE l.kind = 'period_credit' AND r.started_at < l.period_end AND (r.ended_at IS NULL OR r.ended_at > l.period_start)`},

	{app.RuleOneCreditPerPeriod, `SELECT member_id, ARRAY['ledger_entries/' || prev_id, 'ledger_entries/' || id, 'exchanges/' || exchange_id],
       format('exchange credited twice for overlapping periods [%s, %s) and [%s, %s)', prev_start, prev_end, period_start, period_end)
FROM (
    SELECT l.member_id, l.id, l.exchange_id, l.period_start, l.period_end,
           lag(l.id) OVER w AS prev_id, lag(l.period_start) OVER w AS prev_start, lag(l.period_end) OVER w AS prev_end
    FROM ledger_entries l WHERE l.kind = 'period_credit'
    WINDOW w AS (PARTITION BY l.exchange_id ORDER BY l.period_start, l.id)
) x
WHERE prev_end > period_start`},

	{app.RuleConsentEventsComplete, `SELECT e.member_id, ARRAY['exchanges/' || e.id] || array_remove(array_agg('consent_events/' || c.id ORDER BY c.id), NULL),
       format('%s exchange has %s joined event(s) (%s matching its member, contract and joined_at) and %s ending event(s) (%s matching its status, member and ended_at)',
              e.status, count(c.id) FILTER (WHERE c.kind = 'joined'),
              count(c.id) FILTER (WHERE c.kind = 'joined' AND c.at = e.joined_at AND c.member_id = e.member_id AND c.contract_id = e.contract_id),
              count(c.id) FILTER (WHERE c.kind IN (` + endingKinds + `)),
              count(c.id) FILTER (WHERE c.kind = e.status AND c.at = e.ended_at AND c.member_id = e.member_id AND c.contract_id = e.contract_id))
FROM exchanges e LEFT JOIN consent_events c ON c.exchange_id = e.id
GROUP BY e.id
HAVING count(c.id) FILTER (WHERE c.kind = 'joined') <> 1
    OR count(c.id) FILTER (WHERE c.kind = 'joined' AND c.at = e.joined_at AND c.member_id = e.member_id AND c.contract_id = e.contract_id) <> 1
    OR count(c.id) FILTER (WHERE c.kind IN (` + endingKinds + `)) <> CASE WHEN e.status = 'active' THEN 0 ELSE 1 END
    OR (e.status <> 'active' AND count(c.id) FILTER (WHERE c.kind = e.status AND c.at = e.ended_at AND c.member_id = e.member_id AND c.contract_id = e.contract_id) <> 1)
UNION ALL
SELECT c.member_id, ARRAY['consent_events/' || c.id], format('%s event of exchange %s, which does not exist', c.kind, c.exchange_id)
FROM consent_events c WHERE NOT EXISTS (SELECT 1 FROM exchanges e WHERE e.id = c.exchange_id)
UNION ALL
-- Renewals: each renewed event names the exchange's member, contract and
-- terms hash (a renewal keeps the terms) and lies inside its consent, only
-- consent with a duration is renewed, and expires_at is joined_at plus one
-- duration per renewal and one more.
SELECT e.member_id, ARRAY['exchanges/' || e.id] || array_remove(array_agg('consent_events/' || c.id ORDER BY c.id), NULL),
       format('%s exchange of a contract with duration %s has %s renewed event(s), %s with its member, contract and terms hash inside [%s, %s); its expires_at %s is not joined_at plus %s duration(s)',
              e.status, coalesce(k.consent_duration::text, 'none'), count(c.id),
              count(c.id) FILTER (WHERE c.member_id = e.member_id AND c.contract_id = e.contract_id AND c.terms_hash = e.terms_hash
                                   AND c.at >= e.joined_at AND c.at < coalesce(e.ended_at, 'infinity')),
              e.joined_at, coalesce(e.ended_at::text, 'open'), coalesce(e.expires_at::text, 'none'), count(c.id) + 1)
FROM exchanges e JOIN contracts k ON k.id = e.contract_id
LEFT JOIN consent_events c ON c.exchange_id = e.id AND c.kind = 'renewed'
WHERE k.consent_duration IS NOT NULL OR EXISTS (SELECT 1 FROM consent_events r WHERE r.exchange_id = e.id AND r.kind = 'renewed')
GROUP BY e.id, k.consent_duration
HAVING (count(c.id) > 0 AND k.consent_duration IS NULL)
    OR count(c.id) FILTER (WHERE c.member_id = e.member_id AND c.contract_id = e.contract_id AND c.terms_hash = e.terms_hash
                            AND c.at >= e.joined_at AND c.at < coalesce(e.ended_at, 'infinity')) <> count(c.id)
    OR (k.consent_duration IS NOT NULL AND e.expires_at IS DISTINCT FROM e.joined_at + (count(c.id) + 1) * k.consent_duration)`},

	{app.RuleBonusOncePerFamily, `SELECT member_id, array_agg('ledger_entries/' || id ORDER BY created_at, id),
       format('%s %s entries for contract family %s', count(*), what, family_id)
FROM (SELECT member_id, id, created_at, family_id,
             CASE WHEN kind = 'bonus_pending' THEN 'bonus_pending' ELSE 'bonus outcome (vested or voided)' END AS what
      FROM ledger_entries WHERE kind IN ('bonus_pending', 'bonus_vested', 'bonus_voided')) b
GROUP BY member_id, family_id, what
HAVING count(*) > 1
UNION ALL
SELECT l.member_id, ARRAY['ledger_entries/' || l.id],
       format('bonus for contract family %s paid again: an erased identity with the same subject was paid it', l.family_id)
FROM ledger_entries l JOIN members m ON m.id = l.member_id AND m.erased_at IS NULL
WHERE l.kind = 'bonus_pending' AND l.family_id IS NOT NULL
  AND EXISTS (SELECT 1 FROM erased_bonus_claims b WHERE b.digest = bonus_claim_digest(l.member_id, l.family_id))`},

	{app.RuleDeletionDuties, `WITH owed AS (
    SELECT x.id, x.member_id, x.status, x.ended_at, g.recipient_id
    FROM exchanges x JOIN contracts c ON c.id = x.contract_id
    CROSS JOIN LATERAL (
        SELECT rid AS recipient_id, array_agg(DISTINCT i->>'category') AS categories
        FROM jsonb_array_elements(c.terms->'items') i, jsonb_array_elements_text(i->'recipients') rid
        GROUP BY rid
    ) g
    -- A member who re-consented to a newer version still gives a recipient
    -- what that version names: only what it no longer gives is owed.
    LEFT JOIN LATERAL (
        SELECT n.contract_id FROM exchanges n
        WHERE x.status = 'superseded' AND n.member_id = x.member_id AND n.family_id = x.family_id
          AND n.joined_at = x.ended_at AND n.id <> x.id
        LIMIT 1
    ) s ON true
    WHERE x.status <> 'active' AND EXISTS (
        SELECT 1 FROM unnest(g.categories) cat WHERE NOT EXISTS (
            SELECT 1 FROM contracts n CROSS JOIN LATERAL jsonb_array_elements(n.terms->'items') ni
            WHERE n.id = s.contract_id AND ni->>'category' = cat AND ni->'recipients' @> to_jsonb(g.recipient_id)))
)
SELECT o.member_id, ARRAY['exchanges/' || o.id] || array_agg('deletion_acks/' || o.id || ',' || o.recipient_id ORDER BY o.recipient_id),
       format('%s exchange (ended %s) has no deletion duty for recipient(s) %s', o.status, o.ended_at, string_agg(o.recipient_id, ', ' ORDER BY o.recipient_id))
FROM owed o
WHERE NOT EXISTS (SELECT 1 FROM deletion_acks a WHERE a.exchange_id = o.id AND a.recipient_id::text = lower(o.recipient_id))
GROUP BY o.member_id, o.id, o.status, o.ended_at`},

	{app.RuleHistoryUnchanged, `SELECT member_id, ARRAY['ledger_entries/' || id],
       CASE WHEN digest IS NULL THEN 'ledger entry has no seal: written past the seal trigger'
            ELSE format('ledger entry (seq %s) does not match its seal: it was changed, or the member''s entry sealed before it was deleted', seq) END
FROM (
    SELECT l.member_id, l.id, l.seq, l.digest, coalesce(l.digest = ledger_entry_seal(lag(l.digest) OVER w, l), false) AS sealed
    FROM ledger_entries l
    WINDOW w AS (PARTITION BY l.member_id ORDER BY l.seq, l.id)
) x WHERE NOT sealed
UNION ALL
SELECT member_id, ARRAY['consent_events/' || id],
       CASE WHEN digest IS NULL THEN 'consent event has no seal: written past the seal trigger'
            ELSE 'consent event does not match its seal: it was changed, or the member''s event sealed before it was deleted' END
FROM (
    SELECT c.member_id, c.id, c.digest, coalesce(c.digest = consent_event_seal(lag(c.digest) OVER w, c), false) AS sealed
    FROM consent_events c
    WINDOW w AS (PARTITION BY c.member_id ORDER BY c.id)
) x WHERE NOT sealed
UNION ALL
-- A ledger entry's postings are those its sealed kind and points make.
SELECT coalesce(w.member_id, (SELECT l.member_id FROM ledger_entries l WHERE l.id = p.entry_id), ''),
       ARRAY['ledger_postings/' || coalesce(w.id, p.entry_id) || ',' || coalesce(w.account, p.account)],
       CASE WHEN p.entry_id IS NULL THEN format('the %s entry of %s points has no posting of %s on %s', w.kind, w.points, w.amount, w.account)
            WHEN w.id IS NULL THEN format('posting of %s on %s is not one its ledger entry makes: it was added, or its entry changed or deleted', p.amount, p.account)
            ELSE format('the %s entry of %s points posts %s on %s, not %s: the posting was changed', w.kind, w.points, p.amount, p.account, w.amount) END
FROM (SELECT l.id, l.member_id, l.kind, l.points, c.account, c.amount
      FROM ledger_entries l CROSS JOIN LATERAL ledger_entry_postings(l.kind, l.points) c) w
FULL JOIN ledger_postings p ON p.entry_id = w.id AND p.account = w.account
WHERE p.amount IS DISTINCT FROM w.amount`},

	{app.RuleGuardsInPlace, `WITH ` + guards + `
SELECT '', ARRAY[replace(w.kind, ' ', '_') || 's/' || w.tbl || '.' || w.name],
       CASE WHEN w.kind = 'trigger' AND t.tgenabled = 'D' THEN format('trigger %s on %s is disabled', w.name, w.tbl)
            WHEN w.kind = 'trigger' AND t.tgenabled = 'R' THEN format('trigger %s on %s fires only in replica sessions', w.name, w.tbl)
            WHEN w.kind = 'unique index' AND i.indexrelid IS NOT NULL THEN format('unique index %s on %s is not valid', w.name, w.tbl)
            WHEN w.kind = 'check' AND k.oid IS NOT NULL THEN format('check %s on %s is not validated', w.name, w.tbl)
            ELSE format('%s %s on %s is missing', w.kind, w.name, w.tbl) END
FROM want w
LEFT JOIN pg_class r ON r.relname = w.tbl AND pg_table_is_visible(r.oid)
LEFT JOIN pg_trigger t ON w.kind = 'trigger' AND t.tgrelid = r.oid AND t.tgname = w.name AND NOT t.tgisinternal
LEFT JOIN pg_class ic ON w.kind = 'unique index' AND ic.relname = w.name AND ic.relnamespace = r.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = ic.oid AND i.indrelid = r.oid
LEFT JOIN pg_constraint k ON w.kind = 'check' AND k.conrelid = r.oid AND k.conname = w.name AND k.contype = 'c'
WHERE NOT CASE w.kind
    WHEN 'trigger' THEN coalesce(t.tgenabled IN ('O', 'A'), false)
    WHEN 'unique index' THEN coalesce(i.indisunique AND i.indisvalid, false)
    ELSE coalesce(k.convalidated, false) END`},
}

// checkedCounts is what each rule looks at, from the same snapshot.
const checkedCounts = `WITH ` + guards + `
SELECT now(),
       (SELECT count(*) FROM members),
       (SELECT count(*) FROM ledger_entries WHERE kind = 'period_credit'),
       (SELECT count(*) FROM exchanges),
       (SELECT count(*) FROM ledger_entries WHERE kind IN ('bonus_pending', 'bonus_vested', 'bonus_voided')),
       (SELECT count(*) FROM exchanges WHERE status <> 'active'),
       (SELECT count(*) FROM ledger_entries) + (SELECT count(*) FROM consent_events) + (SELECT count(*) FROM ledger_postings),
       (SELECT count(*) FROM want),
       (SELECT count(*) FROM ledger_entries),
       (SELECT count(*) FROM points_lots)`

// CheckInvariants implements app.InvariantStore.
func (v *Invariants) CheckInvariants(ctx context.Context, found func(app.Violation) error) (map[string]int64, time.Time, error) {
	tx, err := v.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("begin read-only snapshot: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep or lose
	// A full check reads every row; a statement timeout meant for request
	// paths must not cut it short. SET LOCAL writes nothing.
	if _, err := tx.ExecContext(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
		return nil, time.Time{}, err
	}
	var snap time.Time
	var members, credits, exchanges, bonuses, ended, history, guardCount, entries, lots int64
	if err := tx.QueryRowContext(ctx, checkedCounts).Scan(&snap, &members, &credits, &exchanges, &bonuses, &ended, &history, &guardCount, &entries, &lots); err != nil {
		return nil, time.Time{}, fmt.Errorf("count: %w", err)
	}
	checked := map[string]int64{
		app.RuleBalanceEqualsEntries.ID: members, app.RuleBalanceNotNegative.ID: members,
		// Two accounts per member, four of the programme's.
		app.RuleTransactionsBalanced.ID: entries, app.RuleBalanceEqualsPostings.ID: 2*members + 4,
		app.RuleCreditInsideConsent.ID: credits, app.RuleCreditOutsideRestriction.ID: credits, app.RuleOneCreditPerPeriod.ID: credits,
		app.RuleConsentEventsComplete.ID: exchanges, app.RuleBonusOncePerFamily.ID: bonuses,
		app.RuleLotsEqualAvailable.ID: lots, app.RuleDeletionDuties.ID: ended, app.RuleHistoryUnchanged.ID: history, app.RuleGuardsInPlace.ID: guardCount,
	}
	// Counted apart from checkedCounts, so the catalogue's rule stands on its own.
	var rewards int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM rewards`).Scan(&rewards); err != nil {
		return nil, time.Time{}, fmt.Errorf("count rewards: %w", err)
	}
	checked[app.RuleCatalogueStockCounted.ID] = rewards
	for _, c := range invariantChecks {
		if err := streamViolations(ctx, tx, c, found); err != nil {
			return nil, time.Time{}, fmt.Errorf("%s: %w", c.rule.ID, err)
		}
	}
	return checked, snap, tx.Commit()
}

func streamViolations(ctx context.Context, tx *sql.Tx, c invariantCheck, found func(app.Violation) error) error {
	rows, err := tx.QueryContext(ctx, c.sql)
	if err != nil {
		return err
	}
	defer rows.Close()
	typeMap := pgtype.NewMap() // decodes the text[] of row names; not for sharing between goroutines
	for rows.Next() {
		var member, detail sql.NullString
		var refs []string
		if err := rows.Scan(&member, typeMap.SQLScanner(&refs), &detail); err != nil {
			return err
		}
		if err := found(app.Violation{RuleID: c.rule.ID, MemberID: member.String, Rows: refs, Detail: detail.String}); err != nil {
			return err
		}
	}
	return rows.Err()
}
