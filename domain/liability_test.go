package domain

import (
	"errors"
	"testing"
)

// Money in the liability report is exact: points times the point value,
// with at least the currency's minor units and as many more as the point
// value has, negative with a sign, never a float's rounding.
func TestLiabilityMoneyIsExactPointsTimesThePointValue(t *testing.T) {
	for _, c := range []struct {
		amount string
		digits int
		points int64
		want   string
	}{
		{"0.01", 2, 12345, "123.45"},
		{"0.003", 2, 333, "0.999"},
		{"0.003", 2, 0, "0.000"},
		{"0.1", 2, -7, "-0.70"},
		{"1", 0, 9223372036854775807, "9223372036854775807"},
		{"0.000000000001", 3, 3, "0.000000000003"},
		{"2.5", 0, 3, "7.5"},
	} {
		v, ok := NewValuer(PointValue{Currency: "EUR", Amount: c.amount}, c.digits)
		if !ok {
			t.Fatalf("%s refused", c.amount)
		}
		if got := v.Of(c.points); got != c.want {
			t.Errorf("%d points at %s (%d digits): %s, want %s", c.points, c.amount, c.digits, got, c.want)
		}
	}
	if _, ok := NewValuer(PointValue{Currency: "EUR", Amount: "1e3"}, 2); ok {
		t.Error("an exponent is not a decimal amount")
	}
}

// A report period is [from, to): both given, times or dates, from before
// to, at most five years; errors name the query parameter.
func TestReportPeriodNamesTheParameterItRefuses(t *testing.T) {
	p, err := ValidateReportPeriod("2026-01-01", "2026-02-01T00:00:00+01:00")
	if err != nil || p.From.Format("2006-01-02T15:04:05Z07:00") != "2026-01-01T00:00:00Z" || p.To.Format("2006-01-02T15:04:05Z07:00") != "2026-01-31T23:00:00Z" {
		t.Fatalf("%v %v", p, err)
	}
	for _, c := range []struct{ from, to, pointer string }{
		{"", "2026-01-01", "/query/from"},
		{"2026-01-01", "", "/query/to"},
		{"2026-01-01", "2026-01-01", "/query/to"},
		{"2026-01-01", "2031-02-01", "/query/to"},
		{"1969-12-31", "2026-01-01", "/query/from"},
		{"2026-01-01", "9999-12-31T23:59:59-23:59", "/query/to"},
		{"2026-1-1", "2026-02-01", "/query/from"},
	} {
		_, err := ValidateReportPeriod(c.from, c.to)
		var de *Error
		if !errors.As(err, &de) || len(de.Fields) != 1 || de.Fields[0].Pointer != c.pointer {
			t.Errorf("from %q to %q: %v, want one error at %s", c.from, c.to, err, c.pointer)
		}
	}
}
