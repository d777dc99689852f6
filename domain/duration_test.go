package domain_test

import (
	"testing"
	"time"

	"github.com/quidpro/quid/domain"
)

func TestParseDurationAcceptsISO8601AndRejectsTheRest(t *testing.T) {
	t.Parallel()
	valid := map[string]string{"P1M": "P1M", "PT1H": "PT1H", "P1Y2M3DT4H5M6S": "P1Y2M3DT4H5M6S", "P2W": "P2W", "PT1S": "PT1S", "P0Y1D": "P1D"}
	for in, canonical := range valid {
		d, err := domain.ParseDuration(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if d.String() != canonical {
			t.Errorf("%s: canonical %s, want %s", in, d.String(), canonical)
		}
	}
	for _, in := range []string{"", "P", "PT", "1H", "P1H", "PT1D", "P-1D", "P1.5D", "P0D", "PT0S", "p1d", "P1DT"} {
		if _, err := domain.ParseDuration(in); err == nil {
			t.Errorf("%q: accepted, want error", in)
		}
	}
}

func TestAddToFollowsCalendarMonthsLikePostgreSQL(t *testing.T) {
	t.Parallel()
	jan31 := time.Date(2024, 1, 31, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		d    string
		n    int
		want time.Time
	}{
		{"P1M", 1, time.Date(2024, 2, 29, 10, 0, 0, 0, time.UTC)},
		{"P1M", 2, time.Date(2024, 3, 31, 10, 0, 0, 0, time.UTC)},
		{"P1Y", 1, time.Date(2025, 1, 31, 10, 0, 0, 0, time.UTC)},
		{"P1D", 3, time.Date(2024, 2, 3, 10, 0, 0, 0, time.UTC)},
		{"PT1H", 5, time.Date(2024, 1, 31, 15, 0, 0, 0, time.UTC)},
		{"P1MT1H", 1, time.Date(2024, 2, 29, 11, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		if got := domain.MustParseDuration(tt.d).AddTo(jan31, tt.n); !got.Equal(tt.want) {
			t.Errorf("%s×%d: got %s, want %s", tt.d, tt.n, got, tt.want)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"P1M", "PT1H", "P1Y2M3DT4H5M6S", "P", "PT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := domain.ParseDuration(s)
		if err != nil {
			return
		}
		again, err := domain.ParseDuration(d.String())
		if err != nil || again != d {
			t.Fatalf("%q → %q does not round-trip", s, d.String())
		}
	})
}
