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
	// EntryExpiry takes points whose lots' time has come out of available
	// into the programme's expired account (points < 0).
	EntryExpiry EntryKind = "expiry"
)

// EntryKinds is every kind of entry, in the order above; Balance.Apply
// knows each, and the SQL that writes or sums entries must agree with it
// (infra/postgres parity tests go through this list).
var EntryKinds = []EntryKind{EntryBonusPending, EntryBonusVested, EntryBonusVoided, EntryPeriodCredit, EntryRedemption, EntryReversal, EntryExpiry}

// Account names one balance of the double-entry ledger. A member holds
// AccountAvailable and AccountPending; the programme holds the others,
// the counterparts of every point a member gains or loses.
type Account string

const (
	AccountAvailable Account = "available"
	AccountPending   Account = "pending"
	AccountIssued    Account = "issued"
	AccountRedeemed  Account = "redeemed"
	AccountExpired   Account = "expired"
	AccountVoided    Account = "voided"
)

// Accounts is every account, members' first.
var Accounts = []Account{AccountAvailable, AccountPending, AccountIssued, AccountRedeemed, AccountExpired, AccountVoided}

// OfMember tells a member's own balance from a programme account.
func (a Account) OfMember() bool { return a == AccountAvailable || a == AccountPending }

// Posting is one leg of a transaction: a signed amount on one account. A
// positive amount is points into the account, a negative one points out of
// it; a transaction's postings sum to zero. The programme's issued account
// is where points come from, so its balance is minus every point ever
// issued.
type Posting struct {
	Account Account
	Amount  int64
}

// PostingsOf is the chart of movements: the postings of an entry of this
// kind and (signed) points. Each entry is one transaction, and its postings
// sum to zero. The database derives the stored postings with the same chart
// (ledger_entry_postings, migration 00023; parity tests compare them).
func PostingsOf(kind EntryKind, points int64) ([]Posting, error) {
	if points == math.MinInt64 {
		return nil, fmt.Errorf("points overflow")
	}
	// leg moves n points into `to` out of `from` (a negative n the other way).
	leg := func(from, to Account, n int64) []Posting {
		return []Posting{{Account: from, Amount: -n}, {Account: to, Amount: n}}
	}
	switch kind {
	case EntryBonusPending: // points > 0: issued to pending
		return leg(AccountIssued, AccountPending, points), nil
	case EntryBonusVested: // points > 0: pending to available
		return leg(AccountPending, AccountAvailable, points), nil
	case EntryBonusVoided: // points < 0: pending to voided
		return leg(AccountVoided, AccountPending, points), nil
	case EntryPeriodCredit: // points > 0: issued to available
		return leg(AccountIssued, AccountAvailable, points), nil
	case EntryRedemption, EntryReversal: // points < 0 (redemption) or > 0 (reversal): between available and redeemed
		return leg(AccountRedeemed, AccountAvailable, points), nil
	case EntryExpiry: // points < 0: available to expired
		return leg(AccountExpired, AccountAvailable, points), nil
	}
	return nil, fmt.Errorf("unknown entry kind %q", kind)
}

// MemberPostings is the part of an entry's postings a member sees: those
// on their own balances, available first.
func MemberPostings(ps []Posting) []Posting {
	out := make([]Posting, 0, len(ps))
	for _, a := range []Account{AccountAvailable, AccountPending} {
		for _, p := range ps {
			if p.Account == a {
				out = append(out, p)
			}
		}
	}
	return out
}

// Entry is one append-only line of a member's points ledger: one
// transaction, whose postings say which balances it moved.
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
	// Postings are the entry's postings on the member's own balances
	// (available, pending), as stored; the programme's counterparts are
	// not shown to members.
	Postings []Posting
}

// Expiring is what of a member's available points expires at one time:
// the remaining points of their lots with that expires_at.
type Expiring struct {
	Points int64
	On     time.Time
}

// Balance is what a member holds: available to spend, pending until vested.
type Balance struct {
	Available int64
	Pending   int64
}

// Apply returns the balance after an entry: its postings on the member's
// accounts (PostingsOf), so pending bonuses count as pending until vested
// or voided.
func (b Balance) Apply(kind EntryKind, points int64) (Balance, error) {
	postings, err := PostingsOf(kind, points)
	if err != nil {
		return b, err
	}
	for _, p := range postings {
		switch p.Account {
		case AccountAvailable:
			b.Available, err = addPoints(b.Available, p.Amount)
		case AccountPending:
			b.Pending, err = addPoints(b.Pending, p.Amount)
		}
		if err != nil {
			return b, err
		}
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
