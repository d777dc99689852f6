package postgres_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/quidpro/quid/domain"
)

// TestAccrualSkipsExactlyThePeriodsARestrictionOverlaps is the parity test
// of the restriction rule (DESIGN.md rule 11) written twice: for many
// random consents, restriction histories (closed and open periods) and
// caps, one late accrual run (creditPeriodsSQL) pays exactly the periods
// domain.Exchange.CreditsDue pays — those on the grid anchored at the join
// that end by now, lie under the cap and overlap no restriction — and
// leaves the same counters: credited_periods counts credits,
// skipped_periods the skipped ones, next_period_end the end of the next
// period to settle.
func TestAccrualSkipsExactlyThePeriodsARestrictionOverlaps(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rng := rand.New(rand.NewPCG(11, uint64(time.Now().UnixNano())))
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

	// Domain's rule, at an instant just before and just after the run
	// (the database reads its own clock in between).
	type outcome struct {
		state   domain.ExchangeState
		periods []domain.Period
	}
	expect := func(tc tcase, now time.Time) outcome {
		e := w.exchange(tc.exchange)
		var rs []domain.Restriction
		for _, r := range tc.restricted {
			dr := domain.Restriction{From: r.from}
			if !r.until.IsZero() {
				until := r.until
				dr.Until = &until
			}
			rs = append(rs, dr)
		}
		reward := uncapped.Terms().Reward
		if tc.cap > 0 {
			reward = capped.Terms().Reward
		}
		periods := e.CreditsDue(reward, now, rs...)
		return outcome{e.State(), periods}
	}
	early := make([]outcome, len(cases))
	for i, tc := range cases {
		early[i] = expect(tc, time.Now())
	}
	w.accrue()
	late := make([]outcome, len(cases))
	for i, tc := range cases {
		late[i] = expect(tc, time.Now())
	}

	for i, tc := range cases {
		var got []domain.Period
		for _, c := range w.credits(tc.exchange) {
			got = append(got, domain.Period{Start: c.PeriodStart, End: c.PeriodEnd})
		}
		stored := w.exchange(tc.exchange).State()
		matches := func(o outcome) bool {
			return fmt.Sprint(got) == fmt.Sprint(o.periods) && stored.CreditedPeriods == o.state.CreditedPeriods &&
				stored.SkippedPeriods == o.state.SkippedPeriods && fmt.Sprint(stored.NextPeriodEnd) == fmt.Sprint(o.state.NextPeriodEnd)
		}
		if !matches(early[i]) && !matches(late[i]) {
			t.Errorf("case %d (restrictions %v, cap %d): SQL paid %v and left credited %d, skipped %d, next %v; domain pays %v and leaves credited %d, skipped %d, next %v",
				i, tc.restricted, tc.cap, got, stored.CreditedPeriods, stored.SkippedPeriods, stored.NextPeriodEnd,
				early[i].periods, early[i].state.CreditedPeriods, early[i].state.SkippedPeriods, early[i].state.NextPeriodEnd)
		}
		for _, p := range got {
			for _, r := range tc.restricted {
				if r.from.Before(p.End) && (r.until.IsZero() || r.until.After(p.Start)) {
					t.Errorf("case %d: period [%s, %s) overlaps the restriction %v and was paid", i, p.Start, p.End, r)
				}
			}
		}
	}
	if again := w.accrue(); again.Credits != 0 {
		t.Fatalf("a second run paid %d more", again.Credits)
	}
}
