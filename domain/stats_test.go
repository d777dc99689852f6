package domain_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/quidpro/quid/domain"
)

func statusCells(p domain.PublishedStats) []domain.Count {
	return []domain.Count{p.Joins, p.Active, p.Cancelled, p.Expired, p.Terminated, p.Superseded, p.Erased}
}

func TestStatsWithholdEveryCountBelowKZeroIncluded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n        int64
		withheld bool
	}{{0, true}, {1, true}, {9, true}, {10, false}, {11, false}} {
		// Joins and active hold n, every other status 0: n alone is then
		// published or not by the k rule, whatever secondary suppression does.
		got := domain.ContractCounts{Joins: tc.n, Active: tc.n, PointsIssued: 100, Contributors: tc.n}.Anonymise(10)
		if got.MinCount != 10 {
			t.Fatalf("min count %d", got.MinCount)
		}
		if got.Joins.Withheld != tc.withheld {
			t.Errorf("joins %d: withheld %v, want %v", tc.n, got.Joins.Withheld, tc.withheld)
		}
		if got.PointsIssued.Withheld != tc.withheld {
			t.Errorf("points from %d members: withheld %v, want %v", tc.n, got.PointsIssued.Withheld, tc.withheld)
		}
		if n, ok := got.Joins.Value(); ok && n != tc.n {
			t.Errorf("joins %d published as %d", tc.n, n)
		}
		if !got.Cancelled.Withheld {
			t.Errorf("a zero count is published: %+v", got.Cancelled)
		}
	}
}

func TestStatsMinCountHasAFloorOfTwo(t *testing.T) {
	t.Parallel()
	got := domain.ContractCounts{Joins: 1, Active: 1}.Anonymise(1)
	if got.MinCount != 2 || !got.Joins.Withheld {
		t.Fatalf("k=1 published %+v", got)
	}
}

// recoverable tells whether the withheld cell i of the status table can be
// worked out from the published ones, knowing that joins is the sum of the
// six statuses and that counts are never negative: it looks for a second
// table, consistent with everything published, where cell i differs (one
// more or one less, the rest absorbed by another withheld cell).
func recoverable(truth []int64, withheld []bool, i int) bool {
	for _, delta := range []int64{1, -1} {
		if truth[i]+delta < 0 {
			continue
		}
		for j := range truth {
			if j == i || !withheld[j] {
				continue
			}
			// Keep joins = Σ statuses: a status moved against joins moves
			// joins the same way; two statuses move opposite ways.
			move := -delta
			if (i == 0) != (j == 0) {
				move = delta
			}
			if truth[j]+move >= 0 {
				return false
			}
		}
	}
	return true
}

func TestStatsSecondarySuppressionLeavesNoCountRecoverableByAnyDerivation(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, k int64, parts []int64) {
		c := domain.ContractCounts{Active: parts[0], Cancelled: parts[1], Expired: parts[2], Terminated: parts[3], Superseded: parts[4], Erased: parts[5]}
		for _, p := range parts {
			c.Joins += p
		}
		truth := append([]int64{c.Joins}, parts...)
		cells := statusCells(c.Anonymise(k))
		withheld := make([]bool, len(cells))
		for i, cell := range cells {
			withheld[i] = cell.Withheld
			if truth[i] < k && !cell.Withheld {
				t.Fatalf("k=%d %v: cell %d (%d) is below k and published", k, truth, i, truth[i])
			}
			if !cell.Withheld && cell.N != truth[i] {
				t.Fatalf("k=%d %v: cell %d published as %d", k, truth, i, cell.N)
			}
		}
		for i := range cells {
			if withheld[i] && recoverable(truth, withheld, i) {
				t.Fatalf("k=%d %v withheld %v: cell %d can be worked out", k, truth, withheld, i)
			}
		}
	}
	// Every table of six statuses from 0 to 4 with k = 3, and every one
	// built from counts around k = 10.
	var each func(k int64, vals []int64, parts []int64)
	each = func(k int64, vals []int64, parts []int64) {
		if len(parts) == 6 {
			check(t, k, parts)
			return
		}
		for _, v := range vals {
			each(k, vals, append(parts, v))
		}
	}
	each(3, []int64{0, 1, 2, 3, 4}, nil)
	each(10, []int64{0, 1, 9, 10, 11, 40}, nil)
}

func TestStatsSeriesBucketsBelowKAreWithheldAndNoneRecoverable(t *testing.T) {
	t.Parallel()
	day := func(i int) time.Time { return time.Date(2026, 11, 1+i, 0, 0, 0, 0, time.UTC) }
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 400 {
		// A consistent history: joins and endings per day, active carried.
		n := 1 + rng.IntN(4)
		c := domain.ContractCounts{}
		ends := []*int64{&c.Cancelled, &c.Expired, &c.Terminated, &c.Superseded, &c.Erased}
		var active int64
		for i := range n {
			j := int64(rng.IntN(14))
			e := int64(rng.IntN(int(active + j + 1)))
			active += j - e
			c.Series = append(c.Series, domain.StatsBucket{Start: day(i), End: day(i + 1), Joins: j, Active: active, Endings: e})
			c.Joins += j
			for range e {
				*ends[rng.IntN(len(ends))]++
			}
		}
		c.Active = active
		k := int64(3 + rng.IntN(8))
		p := c.Anonymise(k)
		// The cells and the relations a reader knows, written out again here.
		truth := []int64{c.Joins, c.Active, c.Cancelled, c.Expired, c.Terminated, c.Superseded, c.Erased}
		var withheld []bool
		for _, cell := range statusCells(p) {
			withheld = append(withheld, cell.Withheld)
		}
		const fixed = 7
		var rel [][2][]int // plus cells, minus cells
		joinsSum, endSum := [2][]int{{}, {0}}, [2][]int{{}, {2, 3, 4, 5, 6}}
		for i, b := range p.Series {
			src := c.Series[i]
			for _, pair := range []struct {
				v int64
				c domain.Count
			}{{src.Joins, b.Joins}, {src.Active, b.Active}, {src.Endings, b.Endings}} {
				if pair.c.N != 0 && pair.c.N != pair.v {
					t.Fatalf("trial %d: bucket %d published %d for %d", trial, i, pair.c.N, pair.v)
				}
				if pair.v < k && !pair.c.Withheld {
					t.Fatalf("trial %d: bucket %d count %d below k=%d published", trial, i, pair.v, k)
				}
				truth, withheld = append(truth, pair.v), append(withheld, pair.c.Withheld)
			}
			bj, ba, be := fixed+3*i, fixed+3*i+1, fixed+3*i+2
			joinsSum[0], endSum[0] = append(joinsSum[0], bj), append(endSum[0], be)
			step := [2][]int{{bj}, {ba, be}}
			if i > 0 {
				step[0] = append(step[0], ba-3)
			}
			rel = append(rel, step)
		}
		rel = append(rel, joinsSum, endSum, [2][]int{{1}, {fixed + 3*(n-1) + 1}}, [2][]int{{1, 2, 3, 4, 5, 6}, {0}})
		// Search every change of ±1 or 0 to the withheld cells (a few of
		// them) for a second history that satisfies every relation.
		var idx []int
		for i, w := range withheld {
			if w {
				idx = append(idx, i)
			}
		}
		if len(idx) > 11 {
			continue
		}
		moved := map[int]bool{}
		delta := make([]int64, len(truth))
		var walk func(d int)
		walk = func(d int) {
			if d == len(idx) {
				for _, r := range rel {
					var s int64
					for _, c := range r[0] {
						s += delta[c]
					}
					for _, c := range r[1] {
						s -= delta[c]
					}
					if s != 0 {
						return
					}
				}
				for _, i := range idx {
					if delta[i] != 0 {
						moved[i] = true
					}
				}
				return
			}
			for _, v := range []int64{-1, 0, 1} {
				// Linear derivations only: a chain of relations that
				// also uses "never negative" is not searched for in the
				// series (see the report), only within one relation.
				delta[idx[d]] = v
				walk(d + 1)
			}
			delta[idx[d]] = 0
		}
		walk(0)
		for _, i := range idx {
			if !moved[i] {
				t.Fatalf("trial %d k=%d: cell %d of %v (withheld %v) can be worked out", trial, k, i, truth, withheld)
			}
		}
	}
}

func TestStatsSeriesPlanChoosesDaysWeeksMonthsAndCapsBuckets(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 17, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		first time.Time
		step  domain.StatsStep
		from  string
	}{
		{now.Add(-time.Hour), domain.StatsDay, "2026-11-30"},
		{now.AddDate(0, 0, -59), domain.StatsDay, "2026-10-02"},
		{now.AddDate(0, 0, -60), domain.StatsWeek, "2026-09-28"},
		{now.AddDate(-1, 0, 0), domain.StatsWeek, "2025-11-24"},
		{now.AddDate(-3, 0, 0), domain.StatsMonth, "2023-11-01"},
		{now.AddDate(-30, 0, 0), domain.StatsMonth, "2016-12-01"},
	} {
		step, from, to, ok := domain.StatsSeriesPlan(tc.first, now)
		if !ok || step != tc.step || from.Format(time.DateOnly) != tc.from {
			t.Errorf("first %s: %s from %s, want %s from %s", tc.first, step, from, tc.step, tc.from)
		}
		if step == domain.StatsMonth && (to.Year()-from.Year())*12+int(to.Month()-from.Month())+1 > domain.MaxStatsBuckets {
			t.Errorf("first %s: more than %d buckets", tc.first, domain.MaxStatsBuckets)
		}
	}
	if _, _, _, ok := domain.StatsSeriesPlan(time.Time{}, now); ok {
		t.Error("a series without joins")
	}
}

func TestStatsWithheldNamesFollowTheFields(t *testing.T) {
	t.Parallel()
	got := fmt.Sprint(domain.ContractCounts{Joins: 20, Active: 20}.Anonymise(10).WithheldNames())
	if got != "[active cancelled expired terminated superseded erased points_issued]" {
		t.Fatal(got)
	}
}

func TestStatsSecondarySuppressionWithholdsNoMoreThanItNeeds(t *testing.T) {
	t.Parallel()
	// Everyone still active: active (and the day's active) must go, or
	// they would tell that every other status is zero; joins need not.
	c := domain.ContractCounts{Joins: 3, Active: 3, Series: []domain.StatsBucket{{Joins: 3, Active: 3}}}
	p := c.Anonymise(3)
	if !p.Active.Withheld || p.Joins.Withheld || p.Series[0].Joins.Withheld || !p.Series[0].Active.Withheld {
		t.Fatalf("%+v", p)
	}
}
