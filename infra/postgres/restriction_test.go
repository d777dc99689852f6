package postgres_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/quidpro/quid/domain"
)

// TestAccrualSkipsExactlyThePeriodsARestrictionOverlaps is the parity test
// of creditPeriodsSQL's restriction rule (DESIGN.md rule 11): for many
// random consents, restriction histories (closed and open periods) and
// caps, one late accrual run pays exactly the hourly periods, on the grid
// anchored at the join, that end by now, lie under the cap and overlap no
// restriction — as worked out here in Go — and leaves the counters saying
// so: credited_periods counts credits, skipped_periods the skipped ones,
// next_period_end the end of the next period to settle.
func TestAccrualSkipsExactlyThePeriodsARestrictionOverlaps(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rng := rand.New(rand.NewPCG(11, uint64(time.Now().UnixNano())))
	hour := domain.MustParseDuration("PT1H")
	capped, uncapped := w.publish(offer{perPeriod: 10, period: "PT1H", maxPeriods: 12}), w.publish(offer{perPeriod: 10, period: "PT1H"})
	type window struct{ from, until time.Time } // until zero: open
	type tcase struct {
		exchange   string
		joined     time.Time
		cap        int
		restricted []window
	}
	var cases []tcase
	for i := range 40 {
		p := w.enrol(fmt.Sprintf("member-%02d", i))
		c, cap := uncapped, 0
		if i%3 == 0 {
			c, cap = capped, 12
		}
		e := w.join(p, c)
		w.backdate(e.ID(), time.Duration(2+rng.IntN(28))*time.Hour+time.Duration(rng.IntN(3600))*time.Second)
		tc := tcase{exchange: e.ID(), joined: w.exchange(e.ID()).JoinedAt(), cap: cap}
		// Up to three restrictions, in order, between the join and now; the
		// last one may still be in force.
		at := tc.joined.Add(-time.Duration(rng.IntN(90)) * time.Minute)
		for n := rng.IntN(4); n > 0; n-- {
			from := at.Add(time.Duration(rng.IntN(300)) * time.Minute)
			until := from.Add(time.Duration(1+rng.IntN(200)) * time.Minute)
			if !from.Before(time.Now()) {
				break
			}
			wd := window{from: from}
			if until.Before(time.Now()) && (n > 1 || rng.IntN(2) == 0) {
				wd.until = until
			}
			var untilArg any
			if !wd.until.IsZero() {
				untilArg = wd.until
			}
			if err := w.db.Exec(`INSERT INTO member_restrictions (member_id, started_at, ended_at) VALUES (?, ?, ?)`,
				p.Subject, wd.from, untilArg).Error; err != nil {
				t.Fatal(err)
			}
			tc.restricted = append(tc.restricted, wd)
			if wd.until.IsZero() {
				break
			}
			at = wd.until
		}
		cases = append(cases, tc)
	}

	before := time.Now()
	w.accrue()
	after := time.Now()

	// expected lists the periods due by now and under the cap: paid ones,
	// and how many were skipped.
	expected := func(tc tcase, now time.Time) (paid []time.Time, skipped int) {
		for k := 0; tc.cap == 0 || k < tc.cap; k++ {
			start, end := domain.PeriodBounds(tc.joined, hour, k)
			if end.After(now) {
				break
			}
			overlaps := false
			for _, r := range tc.restricted {
				if r.from.Before(end) && (r.until.IsZero() || r.until.After(start)) {
					overlaps = true
				}
			}
			if overlaps {
				skipped++
			} else {
				paid = append(paid, start)
			}
		}
		return paid, skipped
	}
	for i, tc := range cases {
		var got []time.Time
		for _, c := range w.credits(tc.exchange) {
			got = append(got, c.PeriodStart)
		}
		wantEarly, skippedEarly := expected(tc, before)
		wantLate, skippedLate := expected(tc, after)
		if fmt.Sprint(got) != fmt.Sprint(wantEarly) && fmt.Sprint(got) != fmt.Sprint(wantLate) {
			t.Errorf("case %d (restrictions %v, cap %d): paid periods starting %v, want %v", i, tc.restricted, tc.cap, got, wantEarly)
			continue
		}
		var counters struct {
			CreditedPeriods, SkippedPeriods int
			NextPeriodEnd                   *time.Time
		}
		if err := w.db.Raw(`SELECT credited_periods, skipped_periods, next_period_end FROM exchanges WHERE id = ?`, tc.exchange).
			Scan(&counters).Error; err != nil {
			t.Fatal(err)
		}
		skipped := skippedEarly
		if fmt.Sprint(got) == fmt.Sprint(wantLate) {
			skipped = skippedLate
		}
		settled := counters.CreditedPeriods + counters.SkippedPeriods
		if counters.CreditedPeriods != len(got) || counters.SkippedPeriods != skipped {
			t.Errorf("case %d: counters credited %d skipped %d, want %d and %d", i, counters.CreditedPeriods, counters.SkippedPeriods, len(got), skipped)
		}
		_, nextEnd := domain.PeriodBounds(tc.joined, hour, settled)
		switch {
		case tc.cap > 0 && settled >= tc.cap:
			if counters.NextPeriodEnd != nil {
				t.Errorf("case %d: the cap is reached, yet next_period_end is %s", i, counters.NextPeriodEnd)
			}
		case counters.NextPeriodEnd == nil || !counters.NextPeriodEnd.Equal(nextEnd):
			t.Errorf("case %d: next_period_end %v, want %s (period %d of the grid)", i, counters.NextPeriodEnd, nextEnd, settled)
		}
	}
	if again := w.accrue(); again.Credits != 0 {
		t.Fatalf("a second run paid %d more", again.Credits)
	}
}
