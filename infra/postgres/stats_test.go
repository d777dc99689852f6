package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/quidpro/quid/domain"
)

// addExchanges writes n exchanges on the contract of the exchange seed,
// each for a member of its own, joined at joined(i) and, when ended(i) is
// not nil, ended then with status status(i). Set-based, so a test can hold
// many of them.
func (w *world) addExchanges(seed string, n int, sql string, args map[string]any) {
	w.t.Helper()
	args["seed"], args["n"] = seed, n
	if err := w.db.Exec(`INSERT INTO members (id, created_at, updated_at)
SELECT 'stats-' || g, now(), now() FROM generate_series(1, @n) g`, args).Error; err != nil {
		w.t.Fatal(err)
	}
	if err := w.db.Exec(`WITH rows AS (`+sql+`)
INSERT INTO exchanges (id, member_id, contract_id, family_id, terms_hash, status, joined_at, ended_at, bonus_state, receipt_id, receipt)
SELECT gen_random_uuid(), 'stats-' || r.g, e.contract_id, e.family_id, e.terms_hash, r.status, r.joined_at, r.ended_at, 'none', gen_random_uuid(), e.receipt
FROM rows r, exchanges e WHERE e.id = @seed`, args).Error; err != nil {
		w.t.Fatal(err)
	}
}

func TestContractSeriesCountsJoinsEndingsAndActivePerUTCDay(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.publish(offer{bonus: 10})
	seed := w.join(w.enrol("alice"), c) // joined now: after the series
	day := func(d int, h, m, s int) time.Time { return time.Date(2026, 3, 10+d, h, m, s, 0, time.UTC) }
	ts := func(t time.Time) string { return t.Format(time.RFC3339) }
	// Before the series: joined day -5, still active. Day 0: two joins, the
	// last in its last second. Day 1: a join at midnight, a day-0 join
	// cancelled. Day 2: a supersession (an ending on this version).
	w.addExchanges(seed.ID(), 4, `
SELECT g, CASE g WHEN 2 THEN 'cancelled' WHEN 3 THEN 'superseded' ELSE 'active' END AS status,
  (CAST(ARRAY[@before, @early, @late, @midnight ] AS timestamptz[]))[g] AS joined_at,
  CAST(CASE g WHEN 2 THEN @cancelled WHEN 3 THEN @superseded END AS timestamptz) AS ended_at
FROM generate_series(1, @n) g`, map[string]any{
		"before": ts(day(-5, 9, 0, 0)), "early": ts(day(0, 8, 0, 0)), "late": ts(day(0, 23, 59, 59)), "midnight": ts(day(1, 0, 0, 0)),
		"cancelled": ts(day(1, 12, 0, 0)), "superseded": ts(day(2, 0, 0, 1))})
	got, err := w.store.ContractSeries(context.Background(), c.ID(), domain.StatsDay, day(0, 0, 0, 0), day(3, 0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.StatsBucket{
		{Start: day(0, 0, 0, 0), End: day(1, 0, 0, 0), Joins: 2, Active: 3, Endings: 0},
		{Start: day(1, 0, 0, 0), End: day(2, 0, 0, 0), Joins: 1, Active: 3, Endings: 1},
		{Start: day(2, 0, 0, 0), End: day(3, 0, 0, 0), Joins: 0, Active: 2, Endings: 1},
		{Start: day(3, 0, 0, 0), End: day(4, 0, 0, 0), Joins: 0, Active: 2, Endings: 0},
	}
	if len(got) != len(want) {
		t.Fatalf("%d buckets, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !got[i].Start.Equal(want[i].Start) || !got[i].End.Equal(want[i].End) || got[i].Joins != want[i].Joins ||
			got[i].Active != want[i].Active || got[i].Endings != want[i].Endings {
			t.Errorf("bucket %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// Weeks start on Monday (2026-03-09), months on the first.
	weeks, err := w.store.ContractSeries(context.Background(), c.ID(), domain.StatsWeek, day(-1, 0, 0, 0), day(-1, 0, 0, 0))
	if err != nil || len(weeks) != 1 || weeks[0].Joins != 3 || !weeks[0].End.Equal(day(6, 0, 0, 0)) {
		t.Fatalf("weeks %+v, %v", weeks, err)
	}
	counts, first, err := w.store.ContractStats(context.Background(), c.ID())
	if err != nil || !first.Equal(day(-5, 9, 0, 0)) || counts.Joins != 5 || counts.Superseded != 1 || counts.Cancelled != 1 {
		t.Fatalf("counts %+v, first %s, %v", counts, first, err)
	}
}

// The statistics of a contract with 100,000 exchanges over 60 days, read
// the way GET /v1/contracts/{id}/stats reads them (counts, then the
// series), stay well inside a request's budget.
func TestContractStatsOf100kExchangesAreFast(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.publish(offer{bonus: 10})
	seed := w.join(w.enrol("alice"), c)
	now := time.Now().UTC()
	w.addExchanges(seed.ID(), 100_000, `
SELECT g, CASE WHEN g % 3 = 0 THEN 'cancelled' ELSE 'active' END AS status,
  CAST(@now AS timestamptz) - make_interval(secs => g * 51) AS joined_at,
  CASE WHEN g % 3 = 0 THEN CAST(@now AS timestamptz) - make_interval(secs => g * 25) END AS ended_at
FROM generate_series(1, @n) g`, map[string]any{"now": now})
	if err := w.db.Exec(`ANALYZE exchanges`).Error; err != nil {
		t.Fatal(err)
	}
	best := time.Hour
	var series []domain.StatsBucket
	for range 5 {
		start := time.Now()
		counts, first, err := w.store.ContractStats(context.Background(), c.ID())
		if err != nil || counts.Joins != 100_001 {
			t.Fatalf("counts %+v, %v", counts, err)
		}
		step, from, to, _ := domain.StatsSeriesPlan(first, now)
		if series, err = w.store.ContractSeries(context.Background(), c.ID(), step, from, to); err != nil {
			t.Fatal(err)
		}
		best = min(best, time.Since(start))
	}
	var joins int64
	for _, b := range series {
		joins += b.Joins
	}
	if joins != 100_001 || len(series) > domain.MaxStatsBuckets {
		t.Fatalf("%d buckets holding %d joins", len(series), joins)
	}
	t.Logf("stats of 100,000 exchanges (%d buckets): best of 5 %.1f ms", len(series), float64(best.Microseconds())/1000)
	if best > 2*time.Second {
		t.Fatalf("stats took %s", best)
	}
}
