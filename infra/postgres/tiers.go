package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/quidpro/quid/domain"
)

// tierJobLock is the advisory lock key the tier job holds exclusively and
// an erasure shared (see AnnounceTierChanges).
const tierJobLock = `hashtextextended('member_tiers', 0)`

type tierJSON struct {
	Name      string `json:"name"`
	Threshold int64  `json:"threshold"`
	Benefits  string `json:"benefits"`
}

type tierScheduleRow struct {
	Version       int
	EarningWindow string
	Tiers         string
	CreatedAt     time.Time
}

func (r tierScheduleRow) toDomain() (domain.TierSchedule, error) {
	w, err := domain.ParseDuration(r.EarningWindow)
	if err != nil {
		return domain.TierSchedule{}, fmt.Errorf("tier schedule %d window: %w", r.Version, err)
	}
	var ts []tierJSON
	if err := json.Unmarshal([]byte(r.Tiers), &ts); err != nil {
		return domain.TierSchedule{}, fmt.Errorf("tier schedule %d tiers: %w", r.Version, err)
	}
	out := domain.TierSchedule{Version: r.Version, Window: w, Tiers: make([]domain.Tier, len(ts)), CreatedAt: r.CreatedAt.UTC()}
	for i, t := range ts {
		out.Tiers[i] = domain.Tier(t)
	}
	return out, nil
}

// AddTierSchedule implements app.TierStore: the next version, numbered
// under a transaction-scoped advisory lock as programme versions are.
func (s *Store) AddTierSchedule(ctx context.Context, sched domain.TierSchedule) (domain.TierSchedule, error) {
	ts := make([]tierJSON, len(sched.Tiers))
	for i, t := range sched.Tiers {
		ts[i] = tierJSON(t)
	}
	raw, err := json.Marshal(ts)
	if err != nil {
		return domain.TierSchedule{}, err
	}
	var out domain.TierSchedule
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtextextended('tier_schedules', 0))`).Error; err != nil {
			return err
		}
		var row tierScheduleRow
		if err := tx.Raw(`
INSERT INTO tier_schedules (version, earning_window, tiers, created_at)
SELECT coalesce(max(version), 0) + 1, @window, CAST(@tiers AS jsonb), @created_at FROM tier_schedules
RETURNING version, earning_window, tiers::text AS tiers, created_at`,
			map[string]any{"window": sched.Window.String(), "tiers": string(raw), "created_at": sched.CreatedAt}).Scan(&row).Error; err != nil {
			return err
		}
		out, err = row.toDomain()
		return err
	})
	return out, translate(err, "tier schedule")
}

// CurrentTierSchedule implements app.TierStore.
func (s *Store) CurrentTierSchedule(ctx context.Context) (domain.TierSchedule, bool, error) {
	var rows []tierScheduleRow
	err := s.db.WithContext(ctx).Raw(`SELECT version, earning_window, tiers::text AS tiers, created_at
		FROM tier_schedules ORDER BY version DESC LIMIT 1`).Scan(&rows).Error
	if err != nil || len(rows) == 0 {
		return domain.TierSchedule{}, false, translate(err, "tier schedule")
	}
	out, err := rows[0].toDomain()
	return out, err == nil, err
}

// creditedThroughSQL is, per member, the end of the oldest period the
// accrual worker has yet to credit, where that is already past: the
// member's ledger is complete only up to it. A window ending at now would
// drop the oldest credit before the worker writes the credit that replaces
// it, and a member at a threshold would fall and climb back on every run
// (announcing two tier changes each time); a window ending here cannot.
// Only active exchanges whose next period ends within their consent count
// (a period past expires_at is never credited).
const creditedThroughSQL = `SELECT e.member_id, min(e.next_period_end) AS at FROM exchanges e
    WHERE e.status = 'active' AND e.next_period_end < now() AND e.next_period_end <= coalesce(e.expires_at, 'infinity')`

// earnedSQL is what a member earned in the window [at - window, at), at
// being now or, while the worker has periods of theirs to credit, the end
// of the oldest (creditedThroughSQL; the query joins it as "a"): the
// points of their period credits whose period ended in it and of their
// join bonuses that vested in it. In the double-entry ledger these are the
// entries that move points from the programme (issued, or pending once a
// bonus vests) into the member's available account; a bonus voided never
// vested, and a reversal returns spent points, so neither counts, and
// spending or expiry takes nothing back. A credit's created_at is never
// before its period's end, so the created_at bound ({floor}: the earliest
// at less the window) only narrows the scan.
const earnedSQL = `l.kind IN ('period_credit', 'bonus_vested')
      AND l.created_at >= {floor}
      AND coalesce(l.period_end, l.created_at) >= coalesce(a.at, now()) - CAST(@window AS interval)
      AND coalesce(l.period_end, l.created_at) < coalesce(a.at, now())`

// EarnedInWindow implements app.TierStore.
func (s *Store) EarnedInWindow(ctx context.Context, memberID string, window domain.Duration) (int64, time.Time, error) {
	var out struct {
		Earned int64
		Now    time.Time
	}
	err := s.db.WithContext(ctx).Raw(`WITH a AS (`+creditedThroughSQL+` AND e.member_id = @member GROUP BY e.member_id)
		SELECT coalesce((SELECT sum(l.points) FROM ledger_entries l LEFT JOIN a ON a.member_id = l.member_id
		WHERE l.member_id = @member AND `+strings.ReplaceAll(earnedSQL, "{floor}", "coalesce((SELECT at FROM a), now()) - CAST(@window AS interval)")+`), 0) AS earned,
		coalesce((SELECT at FROM a), now()) AS now`,
		map[string]any{"member": memberID, "window": window.String()}).Scan(&out).Error
	return out.Earned, out.Now.UTC(), translate(err, "points earned")
}

// announceTierChangesSQL computes every member's tier from the ledger (the
// members who earned points in the window, and those whose stored tier is
// not none, so that a tier drops with no new activity), stores the ones
// that differ from the stored tier and queues one member.tier_changed per
// change and brand: the first-party recipients of the contracts of the
// member's active exchanges. The payload names the member, both tiers, the
// points earned and the window; never an attribute. A change is stored
// only where the stored tier still differs (ON CONFLICT ... WHERE), and
// the job runs under an exclusive advisory lock, so it is announced once
// however many replicas run the job; it is computed from timestamps at
// the database's clock, so a late run announces the tier as it is then.
// Erased members are skipped.
var announceTierChangesSQL = `
WITH s AS (
    SELECT earning_window, CAST(earning_window AS interval) AS w, tiers FROM tier_schedules ORDER BY version DESC LIMIT 1
), t AS (
    SELECT x.name, x.threshold FROM s CROSS JOIN LATERAL jsonb_to_recordset(s.tiers) AS x (name text, threshold bigint)
), a AS (
    ` + creditedThroughSQL + ` GROUP BY e.member_id
), earned AS (
    SELECT l.member_id, sum(l.points) AS points FROM ledger_entries l CROSS JOIN s LEFT JOIN a ON a.member_id = l.member_id
    WHERE ` + strings.NewReplacer("CAST(@window AS interval)", "s.w", "{floor}", "least(now(), (SELECT min(at) FROM a)) - s.w").Replace(earnedSQL) + `
    GROUP BY l.member_id
), cand AS (
    SELECT coalesce(e.member_id, k.member_id) AS member_id, coalesce(e.points, 0) AS points, k.tier AS old
    FROM earned e FULL JOIN (SELECT member_id, tier FROM member_tiers WHERE tier IS NOT NULL) k ON k.member_id = e.member_id
), next AS (
    SELECT c.member_id, c.points, c.old,
           (SELECT t.name FROM t WHERE t.threshold <= c.points ORDER BY t.threshold DESC LIMIT 1) AS tier
    FROM cand c JOIN members m ON m.id = c.member_id AND m.erased_at IS NULL
), changed AS (
    INSERT INTO member_tiers AS k (member_id, tier, changed_at)
    SELECT member_id, tier, now() FROM next WHERE tier IS DISTINCT FROM old
    ON CONFLICT (member_id) DO UPDATE SET tier = EXCLUDED.tier, changed_at = EXCLUDED.changed_at
    WHERE k.tier IS DISTINCT FROM EXCLUDED.tier
    RETURNING k.member_id, k.tier
), ins AS (
    INSERT INTO webhook_outbox (id, recipient_id, event_type, payload, created_at, next_attempt_at)
    SELECT gen_random_uuid(), b.recipient_id, 'member.tier_changed', jsonb_build_object(
        'type', 'member.tier_changed',
        'timestamp', ` + utc("clock_timestamp()") + `,
        'data', jsonb_build_object(
            'member_id', ch.member_id, 'from', n.old, 'to', ch.tier, 'points_earned', n.points,
            'window', (SELECT earning_window FROM s), 'changed_at', ` + utc("now()") + `)),
        clock_timestamp(), clock_timestamp()
    FROM changed ch JOIN next n ON n.member_id = ch.member_id
    CROSS JOIN LATERAL (
        SELECT DISTINCT r.id AS recipient_id FROM exchanges e JOIN contracts c ON c.id = e.contract_id
        JOIN recipients r ON ` + brandOfContractSQL + `
        WHERE e.member_id = ch.member_id AND e.status = 'active'
    ) b
    RETURNING 1
)
SELECT (SELECT count(*) FROM changed) AS changes, (SELECT count(*) FROM ins) AS events`

// AnnounceTierChanges implements app.TierChanges. One replica at a time
// runs it (a transaction-scoped advisory lock, tried: a replica that finds
// it held skips this run, as the holder is doing the same work), in one
// set-based statement.
func (s *Store) AnnounceTierChanges(ctx context.Context) (int64, error) {
	var changes int64
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var got bool
		if err := tx.Raw(`SELECT pg_try_advisory_xact_lock(` + tierJobLock + `)`).Scan(&got).Error; err != nil || !got {
			return err
		}
		var n struct{ Changes, Events int64 }
		if err := tx.Raw(announceTierChangesSQL).Scan(&n).Error; err != nil {
			return err
		}
		changes = n.Changes
		return nil
	})
	return changes, markUnreachable(err)
}
