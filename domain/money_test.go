package domain_test

import (
	"testing"
	"time"

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

// What a member received is shown beside what the brand estimated their data
// to be worth over the same time: the estimate per period prorated exactly
// on the calendar, rounded once, and the points earned in money.
func TestValueEstimateIsProratedExactlyToTheElapsedTime(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	year := domain.MustParseDuration("P1Y")
	tests := []struct {
		name     string
		estimate domain.ValueEstimate
		from, to string
		digits   int
		want     string
	}{
		{"half of 2026 (365 days)", domain.ValueEstimate{Amount: "4.80", Currency: "EUR", Per: year}, "2026-01-01T00:00:00Z", "2026-07-02T12:00:00Z", 2, "2.40"},
		// 2024 has 366 days: 183 of them is exactly half.
		{"half of a leap year", domain.ValueEstimate{Amount: "4.80", Currency: "EUR", Per: year}, "2024-01-01T00:00:00Z", "2024-07-02T00:00:00Z", 2, "2.40"},
		{"one and a half years", domain.ValueEstimate{Amount: "1000", Currency: "JPY", Per: year}, "2025-01-01T00:00:00Z", "2026-07-02T12:00:00Z", 0, "1500"},
		// 1/3 of 1 JPY is 0.33…, rounds to 0 (JPY has no minor unit).
		{"JPY rounds to whole yen", domain.ValueEstimate{Amount: "1", Currency: "JPY", Per: domain.MustParseDuration("P3D")}, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", 0, "0"},
		// 0.01 × 1/3 = 0.00333…, 0.01 × 2/3 = 0.00666… → 0.01.
		{"two thirds of a cent", domain.ValueEstimate{Amount: "0.01", Currency: "EUR", Per: domain.MustParseDuration("P3D")}, "2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z", 2, "0.01"},
		{"nothing before joining", domain.ValueEstimate{Amount: "4.80", Currency: "EUR", Per: year}, "2026-01-01T00:00:00Z", "2025-01-01T00:00:00Z", 2, "0.00"},
		{"whole months", domain.ValueEstimate{Amount: "0.30", Currency: "EUR", Per: domain.MustParseDuration("P1M")}, "2026-01-31T00:00:00Z", "2026-04-30T00:00:00Z", 2, "0.90"},
	}
	for _, tt := range tests {
		got, err := tt.estimate.Over(at(tt.from), at(tt.to), tt.digits)
		if err != nil || got != tt.want {
			t.Errorf("%s: Over = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	v := domain.RewardValue{Currency: "EUR", Point: "0.003", Digits: 2}
	if got := v.PointsWorth(333); got != "1.00" {
		t.Errorf("333 points at 0.003 EUR = %q, want 1.00", got)
	}
	if got := (domain.RewardValue{Currency: "JPY", Point: "0.5", Digits: 0}).PointsWorth(3); got != "2" {
		t.Errorf("3 points at 0.5 JPY = %q, want 2 (1.5 to even)", got)
	}
}
