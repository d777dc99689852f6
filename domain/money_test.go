package domain_test

import (
	"testing"

	"github.com/quidpro/quid/domain"
)

// The reward in money is exact decimal arithmetic rounded once, half to
// even, to the currency's minor units: 0.003 EUR a point is 0.999 for 333
// points, shown as 1.00; JPY has no minor unit.
func TestRewardMoneyIsExactForAwkwardPointValues(t *testing.T) {
	t.Parallel()
	reward := func(bonus, per int64, maxPeriods int) domain.Terms {
		tm := terms()
		tm.Reward = domain.Reward{JoinBonus: bonus, PointsPerPeriod: per, Period: domain.MustParseDuration("P1M"), MaxPeriods: maxPeriods}
		return tm
	}
	tests := []struct {
		name            string
		terms           domain.Terms
		pv              domain.PointValue
		digits          int
		bonus, per, max string
	}{
		{"0.003 EUR a point", reward(333, 5, 12), domain.PointValue{Currency: "EUR", Amount: "0.003"}, 2, "1.00", "0.02", "1.18"},
		{"a tie rounds to even, down", reward(5, 0, 0), domain.PointValue{Currency: "EUR", Amount: "0.001"}, 2, "0.00", "0.00", "0.00"},
		{"a tie rounds to even, up", reward(15, 0, 0), domain.PointValue{Currency: "EUR", Amount: "0.001"}, 2, "0.02", "0.00", "0.02"},
		// 0.1 is no binary fraction: float64 makes 3 × 0.1 = 0.30000000000000004.
		{"tenths", reward(3, 7, 10), domain.PointValue{Currency: "EUR", Amount: "0.1"}, 2, "0.30", "0.70", "7.30"},
		{"JPY has no minor unit", reward(1000, 15, 12), domain.PointValue{Currency: "JPY", Amount: "1.5"}, 0, "1500", "22", "1770"},
		{"KWD has three", reward(1, 1, 1), domain.PointValue{Currency: "KWD", Amount: "0.0015"}, 3, "0.002", "0.002", "0.003"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := tc.terms.ValueOf(tc.pv, tc.digits)
			if err != nil {
				t.Fatal(err)
			}
			if v.JoinBonus != tc.bonus || v.PerPeriod != tc.per || v.MaxTotal != tc.max || v.Currency != tc.pv.Currency {
				t.Fatalf("got %+v, want bonus %s, per period %s, max %s", v, tc.bonus, tc.per, tc.max)
			}
		})
	}
}

// The most one consent term pays counts max_periods, or the periods its
// duration holds, and nothing bounds a periodic reward with neither.
func TestMaxTotalCountsThePeriodsOfTheConsentDuration(t *testing.T) {
	t.Parallel()
	d := func(s string) *domain.Duration { x := domain.MustParseDuration(s); return &x }
	tests := []struct {
		duration   *domain.Duration
		period     string
		maxPeriods int
		want       int64
		bounded    bool
	}{
		{d("P12M"), "P1M", 0, 100 + 12*10, true},
		{d("P12M"), "P1M", 6, 100 + 6*10, true},
		{d("P1Y"), "P3M", 0, 100 + 4*10, true},
		{d("P30D"), "P1D", 0, 100 + 30*10, true},
		{d("P90D"), "P1M", 0, 100 + 3*10, true},
		{d("P12M"), "PT1H", 0, 100 + 366*24*10, true},
		{d("P1M"), "P1D", 0, 100 + 31*10, true},
		{d("P1M"), "P1W", 0, 100 + 4*10, true},
		{d("P2M"), "P30D", 0, 100 + 2*10, true},
		{nil, "P1M", 24, 100 + 24*10, true},
		{nil, "P1M", 0, 0, false},
	}
	for _, tc := range tests {
		tm := terms()
		tm.Duration = tc.duration
		tm.Reward = domain.Reward{JoinBonus: 100, PointsPerPeriod: 10, Period: domain.MustParseDuration(tc.period), MaxPeriods: tc.maxPeriods}
		got, ok := tm.MaxTotalPoints()
		if got != tc.want || ok != tc.bounded {
			t.Errorf("duration %v, period %s, max %d: %d %v, want %d %v", tc.duration, tc.period, tc.maxPeriods, got, ok, tc.want, tc.bounded)
		}
	}
}
