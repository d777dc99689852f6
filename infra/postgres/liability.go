package postgres

import (
	"context"
	"sort"

	"github.com/quidpro/quid/domain"
)

// The points liability is read as the members' balances now, less what was
// posted since: the opening at from is the members' cached balances (which
// `quid verify` holds equal to their postings) less the postings of every
// entry written at or after from, the closing at to less those written at
// or after to. So a report reads the entries since from (ledger_entries_
// created, migration 00028) and never the whole ledger, and a report of a
// recent month costs that month, however long the ledger.
//
// Postings are classified by account only, never by entry kind, so an
// entry kind added later (a catalogue redemption, its cancellation) lands
// where its postings say: on redeemed (a reversal negative), expired,
// voided or issued. An entry with no posting on a programme account moves
// points between a member's own accounts: vesting.
const liabilityMovements = `
WITH e AS (
    SELECT l.id, l.contract_id, l.created_at < @to AS inside,
           coalesce(sum(p.amount) FILTER (WHERE p.account = 'available'), 0) AS avail,
           coalesce(sum(p.amount) FILTER (WHERE p.account = 'pending'), 0) AS pend,
           coalesce(sum(p.amount) FILTER (WHERE p.account = 'issued'), 0) AS issued,
           coalesce(sum(p.amount) FILTER (WHERE p.account = 'redeemed'), 0) AS redeemed,
           coalesce(sum(p.amount) FILTER (WHERE p.account = 'expired'), 0) AS expired,
           coalesce(sum(p.amount) FILTER (WHERE p.account = 'voided'), 0) AS voided,
           count(*) FILTER (WHERE p.account NOT IN ('available', 'pending')) = 0 AS internal
    FROM ledger_entries l JOIN ledger_postings p ON p.entry_id = l.id
    WHERE l.created_at >= @from
    GROUP BY l.id
)
SELECT e.inside, coalesce(e.contract_id::text, '') AS contract_id, coalesce(max(c.terms->>'title'), '') AS title,
       sum(e.avail)::bigint AS avail, sum(e.pend)::bigint AS pend, (-sum(e.issued))::bigint AS issued,
       sum(e.redeemed)::bigint AS redeemed, sum(e.expired)::bigint AS expired, sum(e.voided)::bigint AS voided,
       coalesce(sum(e.avail) FILTER (WHERE e.internal), 0)::bigint AS vested
FROM e LEFT JOIN contracts c ON c.id = e.contract_id
GROUP BY e.inside, e.contract_id`

// liabilityLots is what each lot held at to: what it holds now, plus what
// entries written at or after to took from it, less what reversals written
// at or after to gave back to it. A reversal restores its redemption's
// takes in their FEFO order (migration 00024), so the restored total of a
// redemption at to, R, fills its takes in that order: a take of n points
// with b points of takes before it had min(n, max(0, R - b)) restored.
// Lots opened at or after to held nothing at to. Only lots holding points
// now or touched since to are read.
const liabilityLots = `
WITH later AS (
    SELECT id, kind, points, reverses FROM ledger_entries WHERE created_at >= @to
), taken AS (
    SELECT k.lot_id, sum(k.points) AS n FROM points_lot_consumptions k JOIN later a ON a.id = k.entry_id GROUP BY k.lot_id
), given AS (
    SELECT reverses AS redemption, sum(points) AS n FROM later
    WHERE kind = 'reversal' AND reverses IS NOT NULL GROUP BY reverses
), takes AS (
    SELECT k.lot_id, k.points, k.restored,
           sum(k.restored) OVER (PARTITION BY k.entry_id) - g.n AS restored_at_to,
           sum(k.points) OVER (PARTITION BY k.entry_id ORDER BY l.expires_at NULLS LAST, c.created_at, k.lot_id) - k.points AS before
    FROM given g JOIN points_lot_consumptions k ON k.entry_id = g.redemption
    JOIN points_lots l ON l.entry_id = k.lot_id JOIN ledger_entries c ON c.id = k.lot_id
), given_later AS (
    SELECT lot_id, sum(restored - LEAST(points, GREATEST(0, restored_at_to - before))) AS n FROM takes GROUP BY lot_id
), lots AS (
    SELECT l.remaining + coalesce(t.n, 0) - coalesce(g.n, 0) AS held,
           coalesce(c.period_end, c.created_at) AS earned, l.expires_at
    FROM points_lots l JOIN ledger_entries c ON c.id = l.entry_id
    LEFT JOIN taken t ON t.lot_id = l.entry_id
    LEFT JOIN given_later g ON g.lot_id = l.entry_id
    WHERE (l.remaining > 0 OR t.lot_id IS NOT NULL) AND c.created_at < @to
)
SELECT to_char(earned AT TIME ZONE 'UTC', 'YYYY-MM') AS vintage,
       coalesce(to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM'), '') AS expiry, sum(held)::bigint AS points
FROM lots WHERE held <> 0
GROUP BY 1, 2`

// PointsLiability implements app.LiabilityStore, reading one snapshot.
func (s *Store) PointsLiability(ctx context.Context, p domain.ReportPeriod) (domain.LiabilityFigures, error) {
	var out domain.LiabilityFigures
	err := s.ReadSnapshot(ctx, func(ctx context.Context) error {
		db := s.db.WithContext(ctx)
		var now domain.LiabilityBalance
		// now() is the snapshot transaction's start: the figures' time.
		if err := db.Raw(`SELECT coalesce(sum(available), 0)::bigint AS available, coalesce(sum(pending), 0)::bigint AS pending, now() AS as_of FROM members`).
			Row().Scan(&now.Available, &now.Pending, &out.AsOf); err != nil {
			return err
		}
		args := map[string]any{"from": p.From, "to": p.To}
		var moves []struct {
			Inside                                         bool
			ContractID, Title                              string
			Avail, Pend, Issued, Redeemed, Expired, Voided int64
			Vested                                         int64
		}
		if err := db.Raw(liabilityMovements, args).Scan(&moves).Error; err != nil {
			return err
		}
		out.Opening, out.Closing = now, now
		for _, m := range moves {
			out.Opening.Available -= m.Avail
			out.Opening.Pending -= m.Pend
			if !m.Inside {
				out.Closing.Available -= m.Avail
				out.Closing.Pending -= m.Pend
				continue
			}
			if m.Issued != 0 {
				out.Issued = append(out.Issued, domain.ContractPoints{ContractID: m.ContractID, Title: m.Title, Points: m.Issued})
			}
			out.Vested += m.Vested
			out.Redeemed += m.Redeemed
			out.Expired += m.Expired
			out.Voided += m.Voided
		}
		sort.Slice(out.Issued, func(i, j int) bool {
			a, b := out.Issued[i], out.Issued[j]
			return a.Points > b.Points || (a.Points == b.Points && a.ContractID < b.ContractID)
		})
		var lots []struct {
			Vintage, Expiry string
			Points          int64
		}
		if err := db.Raw(liabilityLots, args).Scan(&lots).Error; err != nil {
			return err
		}
		vintage, expiry := map[string]int64{}, map[string]int64{}
		for _, l := range lots {
			vintage[l.Vintage] += l.Points
			expiry[l.Expiry] += l.Points
		}
		out.ByVintage, out.ByExpiry = months(vintage), months(expiry)
		return nil
	})
	return out, translate(err, "points liability")
}

// months lists month totals in calendar order, never-expiring ("") last.
func months(m map[string]int64) []domain.MonthPoints {
	out := make([]domain.MonthPoints, 0, len(m))
	for k, v := range m {
		out = append(out, domain.MonthPoints{Month: k, Points: v})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Month, out[j].Month
		if a == "" || b == "" {
			return b == "" && a != ""
		}
		return a < b
	})
	return out
}
