package domain

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Duration is an ISO 8601 duration such as P12M or PT1H. Calendar parts stay
// calendar parts: P1M after 31 January is the end of February, the same rule
// PostgreSQL applies to intervals, so SQL and Go agree on period boundaries.
type Duration struct {
	Years, Months, Weeks, Days, Hours, Minutes, Seconds int
}

var isoDuration = regexp.MustCompile(`^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$`)

// ParseDuration reads an ISO 8601 duration with whole-number parts.
func ParseDuration(s string) (Duration, error) {
	m := isoDuration.FindStringSubmatch(s)
	if m == nil || s == "P" || strings.HasSuffix(s, "T") {
		return Duration{}, fmt.Errorf("%q is not an ISO 8601 duration such as P30D, P12M or PT1H", s)
	}
	var parts [7]int
	for i := range parts {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.Atoi(m[i+1])
		if err != nil || n > 100000 {
			return Duration{}, fmt.Errorf("%q has a part that is too large", s)
		}
		parts[i] = n
	}
	d := Duration{parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[6]}
	if d.IsZero() {
		return Duration{}, fmt.Errorf("%q is zero; a duration must be positive", s)
	}
	return d, nil
}

// ParseOptionalDuration reads an ISO 8601 duration where zero (PT0S, P0D)
// is allowed and means "none", as a bonus vesting at once.
func ParseOptionalDuration(s string) (Duration, error) {
	if m := isoDuration.FindStringSubmatch(s); m != nil && s != "P" && !strings.HasSuffix(s, "T") {
		zero := true
		for _, part := range m[1:] {
			if part != "" && strings.Trim(part, "0") != "" {
				zero = false
			}
		}
		if zero {
			return Duration{}, nil
		}
	}
	return ParseDuration(s)
}

// MustParseDuration is for constants and tests.
func MustParseDuration(s string) Duration {
	d, err := ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

// IsZero reports whether every part is zero.
func (d Duration) IsZero() bool { return d == Duration{} }

// String gives the canonical form: P, then Y M W D, then T H M S, zero parts omitted.
func (d Duration) String() string {
	if d.IsZero() {
		return "PT0S"
	}
	var b strings.Builder
	b.WriteString("P")
	for _, p := range []struct {
		n    int
		unit string
	}{{d.Years, "Y"}, {d.Months, "M"}, {d.Weeks, "W"}, {d.Days, "D"}} {
		if p.n != 0 {
			b.WriteString(strconv.Itoa(p.n) + p.unit)
		}
	}
	if d.Hours != 0 || d.Minutes != 0 || d.Seconds != 0 {
		b.WriteString("T")
		for _, p := range []struct {
			n    int
			unit string
		}{{d.Hours, "H"}, {d.Minutes, "M"}, {d.Seconds, "S"}} {
			if p.n != 0 {
				b.WriteString(strconv.Itoa(p.n) + p.unit)
			}
		}
	}
	return b.String()
}

// AddTo returns t plus n times d, with PostgreSQL's interval arithmetic:
// months first (clamping the day to the month's end), then days, then time.
func (d Duration) AddTo(t time.Time, n int) time.Time {
	months := (d.Years*12 + d.Months) * n
	if months != 0 {
		y, m, day := t.Date()
		first := time.Date(y, m+time.Month(months), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
		last := first.AddDate(0, 1, -1).Day()
		t = first.AddDate(0, 0, min(day, last)-1)
	}
	t = t.AddDate(0, 0, (d.Weeks*7+d.Days)*n)
	return t.Add(time.Duration(n) * (time.Duration(d.Hours)*time.Hour + time.Duration(d.Minutes)*time.Minute + time.Duration(d.Seconds)*time.Second))
}

// longestTerm and longestVesting bound the durations of terms.
var (
	longestTerm    = Duration{Years: 10}
	longestVesting = Duration{Years: 2}
)

// Exceeds tells whether d is longer than limit on the calendar: added to
// the same instant (2000-01-01, so leap years count as they come), d ends
// after limit does. Unlike a fixed month length it orders P121M, P3652D and
// P10Y as the calendar does.
func (d Duration) Exceeds(limit Duration) bool {
	ref := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	return d.AddTo(ref, 1).After(limit.AddTo(ref, 1))
}

// ExceedsAnyMonth tells whether d, added to some instant, ends after limit
// added to the same instant: it compares them from every day-of-month
// ending (1, 28, 29, 30, 31) of every month of a four-year cycle, which is
// every way calendar clamping and leap years can order them. P30D exceeds
// P1M (from 1 February), P1M does not exceed P31D, P12M does not exceed
// P12M.
func (d Duration) ExceedsAnyMonth(limit Duration) bool {
	for m := 0; m < 48; m++ {
		for _, day := range []int{1, 28, 29, 30, 31} {
			first := time.Date(2000, time.Month(1+m), 1, 0, 0, 0, 0, time.UTC)
			if day > 1 && first.AddDate(0, 0, day-1).Month() != first.Month() {
				continue
			}
			ref := first.AddDate(0, 0, day-1)
			if d.AddTo(ref, 1).After(limit.AddTo(ref, 1)) {
				return true
			}
		}
	}
	return false
}

// Approx is a length for comparisons only (a month counts 30 days, a year
// 365). It saturates at the longest time.Duration (about 292 years) instead
// of wrapping, so every bound checked through it holds for any part the
// parser accepts (P100000Y is longer than ten years, not negative).
func (d Duration) Approx() time.Duration { return d.length(30) }

// length is d with monthDays days a month and 365 a year, saturating.
func (d Duration) length(monthDays int64) time.Duration {
	days := int64(d.Years)*365 + int64(d.Months)*monthDays + int64(d.Weeks)*7 + int64(d.Days)
	seconds := days*86400 + int64(d.Hours)*3600 + int64(d.Minutes)*60 + int64(d.Seconds)
	if seconds > int64(math.MaxInt64/time.Second) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(seconds) * time.Second
}

// Longest is the most d can last (a month counts 31 days, a year 366), the
// counterpart of Shortest for "always shorter than" rules.
func (d Duration) Longest() time.Duration {
	days := d.Years*366 + d.Months*31 + d.Weeks*7 + d.Days
	return time.Duration(days)*24*time.Hour + time.Duration(d.Hours)*time.Hour +
		time.Duration(d.Minutes)*time.Minute + time.Duration(d.Seconds)*time.Second
}

// Shortest is the least length d can take (a month counts 28 days), used to
// enforce a minimum so that no calendar month falls below it.
func (d Duration) Shortest() time.Duration { return d.length(28) }
