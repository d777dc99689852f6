package domain

import (
	"math/big"
	"strings"
	"time"
)

// The points liability (issue 14). Under IFRS 15 (paragraphs 106 and B39–
// B43, customer options for additional goods) points a member holds are a
// separate performance obligation: the consideration allocated to them is a
// contract liability (deferred revenue) until the points are redeemed, when
// it becomes revenue, or lapse (expire, or a pending bonus is voided), when
// the share the brand expects to lapse is breakage revenue. Quid reports
// points, exactly as the double-entry ledger holds them, and values them at
// the programme's point value; the allocation of the transaction price and
// the breakage estimate are the brand's accounting, not Quid's.
//
// The liability in points is the members' accounts, available plus
// pending. Its roll-forward over a period [from, to) reads every posting of
// an entry written in it (ledger_entries.created_at) by the account it
// moved: the programme's counterpart accounts say why the liability moved.
//
//	opening + issued − voided − redeemed − expired = closing
//
// where issued is minus the postings on the programme's issued account,
// redeemed, expired and voided the postings on those accounts (a reversal of
// a redemption is a negative redemption, whatever entry kind writes it).
// Vested (pending → available) moves points between the members' own
// accounts, so it shows in the split of opening and closing into available
// and pending, not in the total.

// MaxReportSpan is the longest period one liability report covers. The
// report's cost grows with the entries written since its start, so the span
// is bounded; a longer history is the sum of reports of consecutive periods
// (each one's closing is the next one's opening).
const MaxReportSpan = 5 * 366 * 24 * time.Hour

// ReportPeriod is a report's period [From, To).
type ReportPeriod struct {
	From, To time.Time
}

// ParseReportInstant reads a report bound: an RFC 3339 time, or an RFC 3339
// full-date (2026-01-01), which is that day's start in UTC.
func ParseReportInstant(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// ValidateReportPeriod checks the raw from and to query values: both given
// (RFC 3339 times or full-dates), from before to, at most MaxReportSpan
// apart. Errors name /query/from and /query/to.
func ValidateReportPeriod(from, to string) (ReportPeriod, error) {
	var v Violations
	var p ReportPeriod
	read := func(name, raw string) (time.Time, bool) {
		if raw == "" {
			v.Add("/query/"+name, "is required: an RFC 3339 time such as 2026-01-01T00:00:00Z, or a date such as 2026-01-01")
			return time.Time{}, false
		}
		t, ok := ParseReportInstant(raw)
		if !ok || t.Year() < 1970 || t.Year() > 9999 {
			v.Add("/query/"+name, "must be an RFC 3339 time such as 2026-01-01T00:00:00Z, or a date such as 2026-01-01, from 1970 on")
			return time.Time{}, false
		}
		return t.Truncate(time.Microsecond), true
	}
	var okFrom, okTo bool
	p.From, okFrom = read("from", from)
	p.To, okTo = read("to", to)
	if okFrom && okTo {
		switch {
		case !p.From.Before(p.To):
			v.Add("/query/to", "must be after from: the period is [from, to)")
		case p.To.Sub(p.From) > MaxReportSpan:
			v.Add("/query/to", "must be at most five years after from: report a longer history as consecutive periods")
		}
	}
	return p, v.Err()
}

// LiabilityBalance is the liability at one instant: the members' available
// and pending accounts summed.
type LiabilityBalance struct {
	Available, Pending int64
}

// Total is available plus pending.
func (b LiabilityBalance) Total() int64 { return b.Available + b.Pending }

// ContractPoints is what one contract issued in the period.
type ContractPoints struct {
	ContractID string
	// Title is the contract's title as its terms say (free text the
	// marketer wrote: CSV writers must neutralise formulas).
	Title  string
	Points int64
}

// MonthPoints is outstanding points of one calendar month (UTC, "2026-01");
// Month is "" for points whose lots never expire.
type MonthPoints struct {
	Month  string
	Points int64
}

// LiabilityFigures is the report in points, as the ledger holds it.
type LiabilityFigures struct {
	Opening, Closing LiabilityBalance
	// Issued by contract (the contract named by the entries that debited
	// the programme's issued account), largest first; entries without a
	// contract under ContractID "".
	Issued                            []ContractPoints
	Vested, Voided, Redeemed, Expired int64
	// ByVintage and ByExpiry split Closing.Available by the lots that hold
	// it at To: by the month the points were earned (a period credit's
	// period end, otherwise the entry's time) and by the month they expire
	// (never: Month ""). Each sums to Closing.Available; pending points are
	// in no lot until they vest.
	ByVintage, ByExpiry []MonthPoints
	// AsOf is the time of the ledger snapshot the figures were read on: a
	// period that ends after it is not over, and its figures are
	// provisional (later entries of the period are not in them yet).
	AsOf time.Time
}

// LiabilitySettle is how long after a period ends its figures may still
// change: an entry is dated by its transaction's start (PostgreSQL now()),
// so a transaction that began before the end and commits after the
// snapshot adds to the period later. Quid's transactions are short (each
// statement is bounded by statement_timeout and the workers commit in
// batches); five minutes covers them with a wide margin.
const LiabilitySettle = 5 * time.Minute

// Provisional reports whether the period [from, to) had not ended, and
// settled (LiabilitySettle), by the snapshot the figures were read on.
func (f LiabilityFigures) Provisional(p ReportPeriod) bool {
	return p.To.After(f.AsOf.Add(-LiabilitySettle))
}

// IssuedTotal sums Issued.
func (f LiabilityFigures) IssuedTotal() int64 {
	var n int64
	for _, c := range f.Issued {
		n += c.Points
	}
	return n
}

// Reconciles tells whether opening + issued − voided − redeemed − expired
// is closing, and vested explains the move from pending to available.
func (f LiabilityFigures) Reconciles() bool {
	return f.Opening.Total()+f.IssuedTotal()-f.Voided-f.Redeemed-f.Expired == f.Closing.Total()
}

// Valuer turns points into money at a point value, exactly: points times
// the value, written with at least the currency's minor units and as many
// more digits as the point value has (0.003 EUR × 333 = "0.999", not
// rounded, so money figures add up exactly as the points do).
type Valuer struct {
	per    *big.Rat
	digits int
}

// NewValuer values points at pv, its currency having digits minor units.
// ok is false when pv's amount is not a decimal amount.
func NewValuer(pv PointValue, digits int) (Valuer, bool) {
	per, ok := ParseAmount(pv.Amount)
	if !ok {
		return Valuer{}, false
	}
	if d := fractionDigits(pv.Amount); d > digits {
		digits = d
	}
	return Valuer{per: per, digits: digits}, true
}

// Of is points in money, a decimal string (negative with a leading "-").
func (v Valuer) Of(points int64) string {
	s := new(big.Rat).Mul(v.per, new(big.Rat).SetInt64(points)).FloatString(v.digits)
	if strings.TrimLeft(s, "-0.") == "" {
		return strings.TrimPrefix(s, "-")
	}
	return s
}
