package domain

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"
)

// Money amounts are decimal strings everywhere: in requests, views and
// canonical terms. Arithmetic on them is exact (math/big.Rat: the domain
// uses the standard library only), never floating point; a result is
// rounded once, at the end, to the currency's minor units, half to even
// (banker's rounding, ISO 80000-1 B.3 rule A / IEEE 754 roundTiesToEven),
// so 0.003 × 333 = 0.999 shows as 1.00 EUR and 0.005 as 0.00, 0.015 as 0.02.

// amountSyntax is a non-negative decimal: digits, optionally a point and
// 1 to 12 fractional digits, no sign, exponent or leading zeros.
var amountSyntax = regexp.MustCompile(`^(0|[1-9][0-9]{0,14})(\.[0-9]{1,12})?$`)

// ParseAmount reads a decimal amount exactly.
func ParseAmount(s string) (*big.Rat, bool) {
	if !amountSyntax.MatchString(s) {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

// fractionDigits counts the digits after the decimal point of a valid amount.
func fractionDigits(s string) int {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return len(s) - i - 1
	}
	return 0
}

// trimAmount drops trailing fractional zeros (0.010 → 0.01, 1.0 → 1), so
// one value has one spelling in canonical terms.
func trimAmount(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// FormatMoney rounds r half to even to digits fractional digits and writes
// it with exactly that many (JPY, 0 digits: "1000"; EUR, 2: "1.00").
func FormatMoney(r *big.Rat, digits int) string {
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(digits)), nil)
	scaled := new(big.Rat).Mul(r, new(big.Rat).SetInt(scale))
	q, m := new(big.Int).QuoRem(scaled.Num(), scaled.Denom(), new(big.Int))
	// Compare twice the remainder with the denominator: above rounds up,
	// equal rounds to the even neighbour. Amounts are never negative.
	switch new(big.Int).Lsh(m, 1).Cmp(scaled.Denom()) {
	case 1:
		q.Add(q, big.NewInt(1))
	case 0:
		if q.Bit(0) == 1 {
			q.Add(q, big.NewInt(1))
		}
	}
	s := q.String()
	if digits == 0 {
		return s
	}
	if len(s) <= digits {
		s = strings.Repeat("0", digits-len(s)+1) + s
	}
	return s[:len(s)-digits] + "." + s[len(s)-digits:]
}

// Currencies tells an ISO 4217 currency code and its minor units (the
// digits after the decimal point: 2 for EUR, 0 for JPY, 3 for KWD). The
// standard library has no list; the catalogue's loader supplies one.
type Currencies func(code string) (digits int, ok bool)

// currencyCode is three capital letters, the form of ISO 4217 codes.
var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

// PointValue is what one point is worth: Amount (a decimal string, may have
// more digits than the currency's minor units, 0.003 EUR) of Currency.
type PointValue struct {
	Currency string
	Amount   string
}

// ValueEstimate is the brand's good-faith estimate of what a member's data
// is worth to it (Cal. Code Regs. tit. 11 §7016(b)(5)): Amount of Currency
// per Per (P1Y: each year).
type ValueEstimate struct {
	Amount   string
	Currency string
	Per      Duration
}

// ValueMethods are the methods Cal. Code Regs. tit. 11 §7081(a) lists for
// calculating the value of consumer data, as stable keys, in its order.
var ValueMethods = []string{
	"marginal_value",               // (1) marginal value to the business of the sale, collection or deletion of a consumer's data
	"average_value",                // (2) average value to the business of the same
	"aggregate_value_per_consumer", // (3) aggregate value to the business divided by the number of consumers
	"revenue_attributable",         // (4) revenue generated from sale, collection or retention of personal information
	"expenses_related",             // (5) expenses related to sale, collection or retention of personal information
	"incentive_expenses",           // (6) expenses related to offering or providing the financial incentive
	"profit_attributable",          // (7) profit generated from sale, collection or retention of personal information
	"practical_method",             // (8) any other practical and reasonably reliable method used in good faith
}

// IsValueMethod tells a key of ValueMethods.
func IsValueMethod(s string) bool {
	for _, m := range ValueMethods {
		if m == s {
			return true
		}
	}
	return false
}

// RewardValue is a reward in money: the join bonus, the points of one
// period and the most a member can earn in one consent term, each rounded
// to the currency's minor units. MaxTotal is "" when the reward has no
// bound (periodic points, no max_periods, no duration).
type RewardValue struct {
	Currency  string
	Point     string // what one point is worth, the basis of the others
	JoinBonus string
	PerPeriod string
	MaxTotal  string
	// Digits are the currency's minor units, for amounts derived later
	// (PointsWorth).
	Digits int
}

// PointsWorth is what points are worth at v's point value, rounded once to
// the currency's minor units: 333 points at 0.003 EUR are "1.00".
func (v RewardValue) PointsWorth(points int64) string {
	per, ok := ParseAmount(v.Point)
	if !ok {
		return ""
	}
	return FormatMoney(new(big.Rat).Mul(per, new(big.Rat).SetInt64(points)), v.Digits)
}

// Over is the estimate for the time from from to to, prorated exactly: as
// many whole periods Per as fit on the calendar from from, plus the share of
// the next period that has elapsed (by its own length: a leap year's 366
// days), times Amount, rounded once to digits. Before from it is zero.
func (e ValueEstimate) Over(from, to time.Time, digits int) (string, error) {
	amount, ok := ParseAmount(e.Amount)
	if !ok || e.Per.IsZero() {
		return "", fmt.Errorf("value estimate %q per %s is not usable", e.Amount, e.Per)
	}
	periods := new(big.Rat)
	if to.After(from) {
		// Per never lasts longer than Longest, so at least n periods fit.
		n := int(to.Sub(from) / e.Per.Longest())
		for !e.Per.AddTo(from, n+1).After(to) {
			n++
		}
		start, end := e.Per.AddTo(from, n), e.Per.AddTo(from, n+1)
		periods.SetFrac(big.NewInt(int64(to.Sub(start))), big.NewInt(int64(end.Sub(start))))
		periods.Add(periods, new(big.Rat).SetInt64(int64(n)))
	}
	return FormatMoney(periods.Mul(periods, amount), digits), nil
}

// MaxTotalPoints is the most points one consent term pays: the join bonus
// plus the periods it can hold, max_periods when set, otherwise as many
// periods as fit in the consent duration. ok is false when nothing bounds
// it. The periods are counted on the calendar, at the join instant that
// fits the most (periodsIn): P12M holds 12 periods of P1M and 8784 of PT1H
// (a leap year), P90D holds 3 of P1M (from 1 February).
func (t Terms) MaxTotalPoints() (total int64, ok bool) {
	r := t.Reward
	if r.PointsPerPeriod == 0 || r.Period.IsZero() {
		return r.JoinBonus, true
	}
	n := int64(r.MaxPeriods)
	if t.Duration != nil && (n == 0 || n > int64(t.Duration.Shortest()/r.Period.Longest())) {
		// The duration may end the term before max_periods do.
		fit := periodsIn(*t.Duration, r.Period)
		if n == 0 || fit < n {
			n = fit
		}
	}
	if n == 0 && t.Duration == nil {
		return 0, false
	}
	return r.JoinBonus + r.PointsPerPeriod*n, true
}

// periodsIn is the most whole periods p that end within one d, over every
// join instant. Durations follow the calendar (AddTo), so the count depends
// on where the term starts; it is taken at the first, 29th, 30th and 31st
// of each month of a four-year leap cycle, in UTC, which covers every
// month length and end-of-month clamp there is (a century year without
// 29 February only makes February as short as any other year's).
func periodsIn(d, p Duration) int64 {
	months, fixed := p.Years*12+p.Months, p.length(0)
	dMonths, dFixed := d.Years*12+d.Months, d.length(0)
	switch {
	case months == 0 && fixed <= 0:
		return 0
	case months > 0 && fixed == 0 && dFixed == 0:
		// Whole months both: n periods end within the term exactly when
		// n × months ≤ its months (adding months is monotonic).
		return int64(dMonths / months)
	case months == 0 && dMonths == 0:
		return int64(dFixed / fixed) // fixed lengths both (UTC days)
	}
	var best int64
	for m := range 48 {
		for _, day := range []int{1, 29, 30, 31} {
			start := time.Date(2024, time.Month(1+m), day, 0, 0, 0, 0, time.UTC)
			end := d.AddTo(start, 1)
			// p never lasts longer than Longest, so at least this many
			// fit; count up from there.
			k := int64(end.Sub(start) / p.Longest())
			if months == 0 {
				k = int64(end.Sub(start) / fixed)
			}
			for !p.AddTo(start, int(k+1)).After(end) {
				k++
			}
			best = max(best, k)
		}
	}
	return best
}

// ValueOf is the reward of t in money at the point value pv, the
// currency having digits minor units.
func (t Terms) ValueOf(pv PointValue, digits int) (RewardValue, error) {
	per, ok := ParseAmount(pv.Amount)
	if !ok {
		return RewardValue{}, fmt.Errorf("point value %q is not a decimal amount", pv.Amount)
	}
	money := func(points int64) string {
		return FormatMoney(new(big.Rat).Mul(per, new(big.Rat).SetInt64(points)), digits)
	}
	v := RewardValue{Currency: pv.Currency, Point: pv.Amount, Digits: digits, JoinBonus: money(t.Reward.JoinBonus), PerPeriod: money(t.Reward.PointsPerPeriod)}
	if total, ok := t.MaxTotalPoints(); ok {
		v.MaxTotal = money(total)
	}
	return v, nil
}

// ValidatePointValue checks a point value: a known currency and a positive
// decimal amount. It returns the amount in its one spelling.
func ValidatePointValue(pv PointValue, currencies Currencies, at string, v *Violations) PointValue {
	if _, ok := currencies(pv.Currency); !currencyCode.MatchString(pv.Currency) || !ok {
		v.Add(at+"/currency", "must be an ISO 4217 currency code such as EUR")
	}
	r, ok := ParseAmount(pv.Amount)
	switch {
	case !ok:
		v.Add(at+"/amount", `must be a decimal string such as "0.01": digits, at most 12 after the point`)
	case r.Sign() <= 0:
		v.Add(at+"/amount", "must be above zero")
	default:
		pv.Amount = trimAmount(pv.Amount)
	}
	return pv
}

// ValidateValueEstimate checks a value estimate against the currency the
// programme's points are valued in: the same currency, at most its minor
// units, a period of at most ten years. It returns the amount written with
// exactly the currency's minor units (4.8 → 4.80).
func ValidateValueEstimate(e ValueEstimate, pointCurrency string, currencies Currencies, v *Violations) ValueEstimate {
	digits, known := currencies(e.Currency)
	switch {
	case !currencyCode.MatchString(e.Currency) || !known:
		v.Add("/value_estimate/currency", "must be an ISO 4217 currency code such as EUR")
	case pointCurrency != "" && e.Currency != pointCurrency:
		v.Add("/value_estimate/currency", fmt.Sprintf("must be %s, the currency the programme values its points in", pointCurrency))
	}
	r, ok := ParseAmount(e.Amount)
	switch {
	case !ok:
		v.Add("/value_estimate/amount", `must be a decimal string such as "4.80"`)
	case known && fractionDigits(e.Amount) > digits:
		v.Add("/value_estimate/amount", fmt.Sprintf("must have at most %d digits after the point, the minor units of %s", digits, e.Currency))
	case known:
		e.Amount = FormatMoney(r, digits)
	}
	if e.Per.IsZero() {
		v.Add("/value_estimate/per", "must be a period such as P1Y")
	} else if e.Per.Exceeds(longestTerm) {
		v.Add("/value_estimate/per", "must be at most 10 years")
	}
	return e
}
