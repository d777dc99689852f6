package domain

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// DefaultStatsMinCount is k of k-anonymous statistics when a deployment
// sets none (QUID_STATS_MIN_COUNT); MinStatsMinCount is the smallest k
// allowed, since with k = 1 nothing would ever be withheld.
const (
	DefaultStatsMinCount = 10
	MinStatsMinCount     = 2
)

// relation is one linear equation between cells, Σ sign·cell = 0 with
// signs ±1, whose other terms (if any) a reader may know.
type relation struct {
	cells []int
	signs []int8
}

// suppressCells applies small-cell suppression, the rule that makes
// published counts k-anonymous (the "threshold rule" of statistical
// disclosure control, Hundepool et al., Statistical Disclosure Control,
// 2012, §5.2 and §5.4; the NHS "small numbers" and Eurostat practice):
//
//   - Primary suppression: every count below k is withheld, zero included
//     (a zero says that nobody did something, which is as telling as one).
//   - Secondary (complementary) suppression: a withheld cell must not be
//     recoverable from the published ones through the relations between
//     counts (a total and its parts), alone or combined: while solving the
//     relations gives a withheld cell away (by subtraction, or by any
//     chain of them), a published cell of its relations is withheld too,
//     the smallest that hides it. A relation whose withheld cells all stand
//     on one side and are all zero gives them away as well (counts are
//     never negative, so cells summing to zero are each zero), so its
//     smallest published non-zero cell is withheld.
//
// Both steps repeat until nothing is given away. Ties go to the lowest
// index, so the result is deterministic. k below MinStatsMinCount is
// taken as MinStatsMinCount.
func suppressCells(values []int64, k int64, relations []relation) []bool {
	k = max(k, MinStatsMinCount)
	out := make([]bool, len(values))
	for i, v := range values {
		out[i] = v < k
	}
	for {
		if pick := zeroSumPick(values, out, relations); pick >= 0 {
			out[pick] = true
			continue
		}
		given := determined(out, relations)
		if len(given) == 0 {
			return out
		}
		found := given[0]
		pick := complement(values, out, relations, found)
		if pick < 0 {
			return out // nothing left to withhold beside it
		}
		out[pick] = true
	}
}

// zeroSumPick is a published cell to withhold because a relation's
// withheld cells all stand on one side and are all zero (counts are never
// negative, so they would each be known to be zero), or -1.
func zeroSumPick(values []int64, out []bool, relations []relation) int {
	for _, r := range relations {
		withheld, zero, sameSide := 0, true, true
		var side int8
		for j, c := range r.cells {
			if !out[c] {
				continue
			}
			withheld++
			zero = zero && values[c] == 0
			if side == 0 {
				side = r.signs[j]
			} else if side != r.signs[j] {
				sameSide = false
			}
		}
		if withheld < 2 || !zero || !sameSide {
			continue
		}
		// A cell on the zeros' side makes their sum unknown and keeps a
		// total published; the other side will do otherwise.
		pick := smallestPublished(values, out, r, side)
		if pick < 0 {
			pick = smallestPublished(values, out, r, -side)
		}
		if pick >= 0 {
			return pick
		}
	}
	return -1
}

// determined are the withheld cells that the relations, taken together,
// give away (solving them for it from the published cells), in index
// order: a cell is
// given away when its column in the relations restricted to the withheld
// cells is independent of the others', that is when every solution of
// the homogeneous system leaves it unchanged.
func determined(out []bool, relations []relation) []int {
	var cols []int
	index := map[int]int{}
	for _, r := range relations {
		for _, c := range r.cells {
			if _, ok := index[c]; !ok && out[c] {
				index[c] = len(cols)
				cols = append(cols, c)
			}
		}
	}
	if len(cols) == 0 {
		return nil
	}
	m := make([][]float64, 0, len(relations))
	for _, r := range relations {
		row := make([]float64, len(cols))
		for j, c := range r.cells {
			if out[c] {
				row[index[c]] += float64(r.signs[j])
			}
		}
		m = append(m, row)
	}
	// Reduced row echelon form: a pivot column whose row holds no free
	// column is fixed in every solution.
	const eps = 1e-9
	pivotRow := make([]int, len(cols))
	for i := range pivotRow {
		pivotRow[i] = -1
	}
	rank := 0
	for c := 0; c < len(cols) && rank < len(m); c++ {
		p := -1
		for r := rank; r < len(m); r++ {
			if math.Abs(m[r][c]) > eps && (p < 0 || math.Abs(m[r][c]) > math.Abs(m[p][c])) {
				p = r
			}
		}
		if p < 0 {
			continue
		}
		m[rank], m[p] = m[p], m[rank]
		piv := m[rank][c]
		for j := range m[rank] {
			m[rank][j] /= piv
		}
		for r := range m {
			if r != rank && math.Abs(m[r][c]) > eps {
				f := m[r][c]
				for j := range m[r] {
					m[r][j] -= f * m[rank][j]
				}
			}
		}
		pivotRow[c] = rank
		rank++
	}
	var given []int
	for c, pr := range pivotRow {
		if pr < 0 {
			continue
		}
		alone := true
		for j, v := range m[pr] {
			if j != c && pivotRow[j] < 0 && math.Abs(v) > eps {
				alone = false
				break
			}
		}
		if alone {
			given = append(given, cols[c])
		}
	}
	slices.Sort(given)
	return given
}

// complement is the published cell to withhold so that the withheld cell
// found is no longer given away: the smallest cell of its relations that
// does it alone, else their smallest (more follow), else the smallest
// published cell of any relation; -1 when none is left.
func complement(values []int64, out []bool, relations []relation, found int) int {
	var near, all []int
	for _, r := range relations {
		has := slices.Contains(r.cells, found)
		for _, c := range r.cells {
			if out[c] {
				continue
			}
			if has && !slices.Contains(near, c) {
				near = append(near, c)
			}
			if !slices.Contains(all, c) {
				all = append(all, c)
			}
		}
	}
	order := func(cs []int) {
		slices.SortStableFunc(cs, func(a, b int) int {
			if values[a] != values[b] {
				return cmp.Compare(values[a], values[b])
			}
			return cmp.Compare(a, b)
		})
	}
	order(near)
	order(all)
	for _, c := range near {
		out[c] = true
		still := slices.Contains(determined(out, relations), found)
		out[c] = false
		if !still {
			return c
		}
	}
	if len(near) > 0 {
		return near[0]
	}
	if len(all) > 0 {
		return all[0]
	}
	return -1
}

// smallestPublished is the published cell of r with the least value, or
// -1. A side other than 0 asks for a non-zero cell of that sign.
func smallestPublished(values []int64, withheld []bool, r relation, side int8) int {
	best := -1
	for j, c := range r.cells {
		if withheld[c] || (side != 0 && (values[c] == 0 || r.signs[j] != side)) {
			continue
		}
		if best < 0 || values[c] < values[best] {
			best = c
		}
	}
	return best
}

// ContractCounts are the raw aggregates of one contract version, never to
// be shown as they are: Anonymise makes them publishable.
type ContractCounts struct {
	// Joins is every exchange ever made on the version; the others count
	// exchanges by their status now, and add up to Joins.
	Joins, Active, Cancelled, Expired, Terminated, Superseded, Erased int64
	// PointsIssued are the points the version's exchanges earned (periods
	// credited and bonuses vested), Contributors the members who earned any.
	PointsIssued, Contributors int64
	Series                     []StatsBucket
}

// StatsBucket is one step of a contract's time series, [Start, End) in
// UTC: the exchanges joined in it, those active at its end (at the time of
// reading for the last, unfinished one), and the endings in it: every
// exchange that stopped being active on this version (cancelled, expired,
// terminated, erased, and superseded: a member who moved to a newer
// version left this one), so that each bucket's active is the previous
// one's plus its joins minus its endings, and nothing hidden (such as the
// supersessions of a bucket) could be worked out from published counts.
type StatsBucket struct {
	Start, End             time.Time
	Joins, Active, Endings int64
}

// Count is a published count: N, or withheld (N is then zero and must be
// shown as "fewer than k" or withheld, never as a number).
type Count struct {
	N        int64
	Withheld bool
}

// Value is the count and true, or 0 and false when withheld.
func (c Count) Value() (int64, bool) { return c.N, !c.Withheld }

// PublishedStats are ContractCounts made k-anonymous (Anonymise).
type PublishedStats struct {
	// MinCount is k: no published count is below it.
	MinCount                                                          int64
	Joins, Active, Cancelled, Expired, Terminated, Superseded, Erased Count
	// PointsIssued is withheld when fewer than k members earned them.
	PointsIssued Count
	Series       []PublishedBucket
}

// PublishedBucket is a StatsBucket made k-anonymous.
type PublishedBucket struct {
	Start, End             time.Time
	Joins, Active, Endings Count
}

// Anonymise makes c k-anonymous by small-cell suppression (suppressCells):
// every count below k is withheld, and so is any count that would let a
// withheld one be worked out through these relations:
//
//   - joins = active + cancelled + expired + terminated + superseded + erased;
//   - the series' joins add up to joins, its endings to cancelled + expired
//   - terminated + superseded + erased (taken to cover the contract's
//     whole life even when the series is capped: withholding more than
//     needed, never less);
//   - the last bucket's active is the active count;
//   - each bucket's active is the previous one's plus its joins minus its
//     endings.
//
// The points issued are withheld when fewer than k members earned them.
// k below MinStatsMinCount is taken as MinStatsMinCount.
func (c ContractCounts) Anonymise(k int64) PublishedStats {
	k = max(k, MinStatsMinCount)
	const (
		joins = iota
		active
		cancelled
		expired
		terminated
		superseded
		erased
		fixed
	)
	values := []int64{c.Joins, c.Active, c.Cancelled, c.Expired, c.Terminated, c.Superseded, c.Erased}
	sum := func(total int, parts ...int) relation {
		r := relation{cells: []int{total}, signs: []int8{-1}}
		for _, p := range parts {
			r.cells, r.signs = append(r.cells, p), append(r.signs, 1)
		}
		return r
	}
	relations := []relation{sum(joins, active, cancelled, expired, terminated, superseded, erased)}
	n := len(c.Series)
	// Bucket i's cells: joins at fixed+3i, active +1, endings +2.
	bj, ba, be := func(i int) int { return fixed + 3*i }, func(i int) int { return fixed + 3*i + 1 }, func(i int) int { return fixed + 3*i + 2 }
	if n > 0 {
		joinsSum := relation{cells: []int{joins}, signs: []int8{-1}}
		endingsSum := relation{cells: []int{cancelled, expired, terminated, superseded, erased}, signs: []int8{-1, -1, -1, -1, -1}}
		for i, b := range c.Series {
			values = append(values, b.Joins, b.Active, b.Endings)
			joinsSum.cells, joinsSum.signs = append(joinsSum.cells, bj(i)), append(joinsSum.signs, 1)
			endingsSum.cells, endingsSum.signs = append(endingsSum.cells, be(i)), append(endingsSum.signs, 1)
			step := relation{cells: []int{bj(i), ba(i), be(i)}, signs: []int8{1, -1, -1}}
			if i > 0 {
				step.cells, step.signs = append(step.cells, ba(i-1)), append(step.signs, 1)
			}
			relations = append(relations, step)
		}
		relations = append(relations, joinsSum, endingsSum, relation{cells: []int{active, ba(n - 1)}, signs: []int8{1, -1}})
	}
	withheld := suppressCells(values, k, relations)
	count := func(i int) Count {
		if withheld[i] {
			return Count{Withheld: true}
		}
		return Count{N: values[i]}
	}
	out := PublishedStats{MinCount: k, Joins: count(joins), Active: count(active), Cancelled: count(cancelled),
		Expired: count(expired), Terminated: count(terminated), Superseded: count(superseded), Erased: count(erased),
		PointsIssued: Count{N: c.PointsIssued}}
	if c.Contributors < k {
		out.PointsIssued = Count{Withheld: true}
	}
	out.Series = make([]PublishedBucket, n)
	for i, b := range c.Series {
		out.Series[i] = PublishedBucket{Start: b.Start, End: b.End, Joins: count(bj(i)), Active: count(ba(i)), Endings: count(be(i))}
	}
	return out
}

// StatsStep is the width of a time-series bucket.
type StatsStep string

const (
	StatsDay   StatsStep = "day"
	StatsWeek  StatsStep = "week"
	StatsMonth StatsStep = "month"
)

// MaxStatsBuckets bounds a time series: with monthly buckets, the last ten
// years.
const MaxStatsBuckets = 120

// StatsSeriesPlan chooses a time series' buckets for a contract whose first
// exchange joined at first, read at now (UTC): days while the series spans
// at most 60 days, ISO weeks (from Monday) up to 104 weeks, months beyond,
// keeping the last MaxStatsBuckets. from is the first bucket's start, to
// the last's (both truncated to the step); ok is false when nobody joined
// (first is zero) — no series.
func StatsSeriesPlan(first, now time.Time) (step StatsStep, from, to time.Time, ok bool) {
	if first.IsZero() {
		return "", time.Time{}, time.Time{}, false
	}
	first, now = first.UTC(), now.UTC()
	if now.Before(first) {
		now = first
	}
	day := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC) }
	week := func(t time.Time) time.Time {
		d := day(t)
		return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
	}
	month := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC) }
	switch {
	case day(now).Sub(day(first)) < 60*24*time.Hour:
		return StatsDay, day(first), day(now), true
	case week(now).Sub(week(first)) < 104*7*24*time.Hour:
		return StatsWeek, week(first), week(now), true
	}
	from, to = month(first), month(now)
	if earliest := to.AddDate(0, -(MaxStatsBuckets - 1), 0); from.Before(earliest) {
		from = earliest
	}
	return StatsMonth, from, to, true
}

// WithheldNames lists the names of p's withheld counts, in the order
// of the statistics' fields, for a reader that shows them by name.
func (p PublishedStats) WithheldNames() []string {
	var out []string
	for _, f := range []struct {
		name string
		c    Count
	}{{"joins", p.Joins}, {"active", p.Active}, {"cancelled", p.Cancelled}, {"expired", p.Expired},
		{"terminated", p.Terminated}, {"superseded", p.Superseded}, {"erased", p.Erased}, {"points_issued", p.PointsIssued}} {
		if f.c.Withheld {
			out = append(out, f.name)
		}
	}
	return slices.Clip(out)
}
