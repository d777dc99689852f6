package domain

import (
	"fmt"
	"math"
	"time"
)

// EntryKind names a ledger entry. Points are signed by their effect: a
// redemption and a voided bonus are negative.
type EntryKind string

const (
	EntryBonusPending EntryKind = "bonus_pending"
	EntryBonusVested  EntryKind = "bonus_vested"
	EntryBonusVoided  EntryKind = "bonus_voided"
	EntryPeriodCredit EntryKind = "period_credit"
	EntryRedemption   EntryKind = "redemption"
	EntryReversal     EntryKind = "reversal"
)

// EntryKinds is every kind of entry, in the order above; Balance.Apply
// knows each, and the SQL that writes or sums entries must agree with it
// (infra/postgres parity tests go through this list).
var EntryKinds = []EntryKind{EntryBonusPending, EntryBonusVested, EntryBonusVoided, EntryPeriodCredit, EntryRedemption, EntryReversal}

// Entry is one append-only line of a member's points ledger.
type Entry struct {
	ID          string
	MemberID    string
	Kind        EntryKind
	Points      int64
	ExchangeID  string
	ContractID  string
	TermsHash   string
	PeriodStart *time.Time
	PeriodEnd   *time.Time
	Reference   string
	CreatedAt   time.Time
}

// Balance is what a member holds: available to spend, pending until vested.
type Balance struct {
	Available int64
	Pending   int64
}

// Apply returns the balance after an entry, per the kind's effect:
// pending bonuses count as pending until vested or voided.
func (b Balance) Apply(kind EntryKind, points int64) (Balance, error) {
	var err error
	switch kind {
	case EntryBonusPending:
		b.Pending, err = addPoints(b.Pending, points)
	case EntryBonusVested:
		if b.Pending, err = addPoints(b.Pending, -points); err == nil {
			b.Available, err = addPoints(b.Available, points)
		}
	case EntryBonusVoided:
		b.Pending, err = addPoints(b.Pending, points)
	case EntryPeriodCredit, EntryRedemption, EntryReversal:
		b.Available, err = addPoints(b.Available, points)
	default:
		return b, fmt.Errorf("unknown entry kind %q", kind)
	}
	if err != nil {
		return b, err
	}
	if b.Available < 0 || b.Pending < 0 {
		return b, &Error{Kind: KindInvalid, Code: "insufficient-points", Message: "the balance is too low for this",
			Fields: []FieldError{{Pointer: "/points", Reason: "exceeds the available balance"}}}
	}
	return b, nil
}

// addPoints adds with overflow checking; points are never floats.
func addPoints(a, b int64) (int64, error) {
	if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
		return 0, fmt.Errorf("points overflow")
	}
	return a + b, nil
}

// Redeem checks a redemption against the balance and returns the new one.
func (b Balance) Redeem(points int64) (Balance, error) {
	if points <= 0 || points > MaxPoints*100 {
		return b, Invalid("/points", "must be a positive whole number of points")
	}
	return b.Apply(EntryRedemption, -points)
}
