package domain

import (
	"fmt"
	"time"
)

// ExchangeStatus is where one member's consent to one version stands.
type ExchangeStatus string

const (
	ExchangeActive     ExchangeStatus = "active"
	ExchangeCancelled  ExchangeStatus = "cancelled"
	ExchangeExpired    ExchangeStatus = "expired"
	ExchangeTerminated ExchangeStatus = "terminated"
	ExchangeSuperseded ExchangeStatus = "superseded"
	ExchangeErased     ExchangeStatus = "erased"
)

// BonusState tracks the join bonus of an exchange.
type BonusState string

const (
	BonusNone        BonusState = "none"
	BonusPending     BonusState = "pending"
	BonusVested      BonusState = "vested"
	BonusVoided      BonusState = "voided"
	BonusTransferred BonusState = "transferred"
)

// ExchangeState is an exchange as plain data, for stores and views. Only
// RehydrateExchange turns it back into an Exchange; state changes go through
// Exchange's methods.
type ExchangeState struct {
	ID              string
	MemberID        string
	ContractID      string
	FamilyID        string
	TermsHash       string
	Status          ExchangeStatus
	JoinedAt        time.Time
	ExpiresAt       *time.Time
	EndedAt         *time.Time
	BonusPoints     int64
	BonusState      BonusState
	BonusVestsAt    *time.Time
	CreditedPeriods int
	// SkippedPeriods counts periods settled without a credit because they
	// overlapped a restriction; the next period to settle is
	// CreditedPeriods + SkippedPeriods.
	SkippedPeriods int
	NextPeriodEnd  *time.Time
	ReceiptID      string
	Receipt        string
}

// Exchange is one member's consent to one contract version.
type Exchange struct {
	s ExchangeState
}

// RehydrateExchange rebuilds a stored exchange; only stores call it.
func RehydrateExchange(s ExchangeState) Exchange { return Exchange{s: s} }

// State is a copy of the exchange as plain data.
func (e Exchange) State() ExchangeState { return e.s }

func (e Exchange) ID() string                { return e.s.ID }
func (e Exchange) MemberID() string          { return e.s.MemberID }
func (e Exchange) ContractID() string        { return e.s.ContractID }
func (e Exchange) FamilyID() string          { return e.s.FamilyID }
func (e Exchange) TermsHash() string         { return e.s.TermsHash }
func (e Exchange) Status() ExchangeStatus    { return e.s.Status }
func (e Exchange) JoinedAt() time.Time       { return e.s.JoinedAt }
func (e Exchange) ExpiresAt() *time.Time     { return e.s.ExpiresAt }
func (e Exchange) EndedAt() *time.Time       { return e.s.EndedAt }
func (e Exchange) BonusPoints() int64        { return e.s.BonusPoints }
func (e Exchange) BonusState() BonusState    { return e.s.BonusState }
func (e Exchange) BonusVestsAt() *time.Time  { return e.s.BonusVestsAt }
func (e Exchange) NextPeriodEnd() *time.Time { return e.s.NextPeriodEnd }
func (e Exchange) ReceiptID() string         { return e.s.ReceiptID }
func (e Exchange) Receipt() string           { return e.s.Receipt }

// AttachReceipt records the signed consent receipt issued at join.
func (e *Exchange) AttachReceipt(id, jws string) {
	e.s.ReceiptID, e.s.Receipt = id, jws
}

// Join starts an exchange on a joinable version at now. bonusEligible is
// false when the member already had this family's join bonus.
func Join(id, memberID string, c Contract, now time.Time, bonusEligible bool) (Exchange, error) {
	if c.IsDraft() { // drafts are not public: their existence is not revealed
		return Exchange{}, ErrContractNotFound
	}
	if !c.Joinable() {
		return Exchange{}, Conflict("contract-not-joinable", fmt.Sprintf("version %d is %s and open to no new joins", c.Version(), c.Status())).At("/contract_id")
	}
	e := Exchange{s: ExchangeState{ID: id, MemberID: memberID, ContractID: c.ID(), FamilyID: c.FamilyID(), TermsHash: c.TermsHash(),
		Status: ExchangeActive, JoinedAt: now, ExpiresAt: c.ExpiresAt(now), BonusState: BonusNone}}
	r := c.Terms().Reward
	if r.JoinBonus > 0 && bonusEligible {
		vests := r.Vesting.AddTo(now, 1)
		e.s.BonusPoints, e.s.BonusState, e.s.BonusVestsAt = r.JoinBonus, BonusPending, &vests
		e.VestDue(now)
	}
	if r.PointsPerPeriod > 0 {
		first := r.Period.AddTo(now, 1)
		e.s.NextPeriodEnd = &first
		e.stopCreditsAfter(e.s.ExpiresAt)
	}
	return e, nil
}

// IsActive reports whether consent currently holds.
func (e Exchange) IsActive() bool { return e.s.Status == ExchangeActive }

// AsOf is the exchange as it stands at now: consent whose duration has run
// out is expired (at its expiry time, with a bonus that had not vested by then
// voided) even before the accrual worker has written so.
func (e Exchange) AsOf(now time.Time) Exchange {
	if e.IsActive() && e.s.ExpiresAt != nil && !e.s.ExpiresAt.After(now) {
		e.end(ExchangeExpired, *e.s.ExpiresAt)
	}
	return e
}

// PeriodBounds is the k-th reward period [start, end) of an exchange.
func PeriodBounds(joined time.Time, period Duration, k int) (time.Time, time.Time) {
	return period.AddTo(joined, k), period.AddTo(joined, k+1)
}

// Period is one reward period [Start, End).
type Period struct{ Start, End time.Time }

// Restriction is a period [From, Until) during which the member restricted
// processing (GDPR Art. 18); Until is nil while it lasts.
type Restriction struct {
	From  time.Time
	Until *time.Time
}

// Overlaps reports whether the restriction shares any instant with the
// period [start, end).
func (r Restriction) Overlaps(start, end time.Time) bool {
	return r.From.Before(end) && (r.Until == nil || r.Until.After(start))
}

// CreditsDue settles, and returns as credited, the reward periods earned by
// now that were not settled yet: every period [joined + k·period,
// joined + (k+1)·period) that ends no later than now, the end of consent
// and the cap of r (k < MaxPeriods) is credited, unless it overlaps one of
// the member's restrictions, in which case it is skipped (counted, never
// shifted: the grid stays anchored at the join). The next period end is
// cleared once no further period can be earned. The accrual worker applies
// this rule set-based in SQL (infra/postgres creditPeriodsSQL); parity
// tests pin the two together.
func (e *Exchange) CreditsDue(r Reward, now time.Time, restricted ...Restriction) []Period {
	if e.s.NextPeriodEnd == nil || e.s.NextPeriodEnd.After(now) {
		return nil
	}
	limit := e.s.EndedAt
	if x := e.s.ExpiresAt; x != nil && (limit == nil || x.Before(*limit)) {
		limit = x
	}
	until := now
	if limit != nil && limit.Before(until) {
		until = *limit
	}
	var out []Period
	k := e.s.CreditedPeriods + e.s.SkippedPeriods
	for ; r.MaxPeriods == 0 || k < r.MaxPeriods; k++ {
		start, end := PeriodBounds(e.s.JoinedAt, r.Period, k)
		if end.After(until) {
			break
		}
		if overlapsAny(restricted, start, end) {
			e.s.SkippedPeriods++
			continue
		}
		out = append(out, Period{start, end})
	}
	e.s.CreditedPeriods += len(out)
	next := r.Period.AddTo(e.s.JoinedAt, k+1)
	if (r.MaxPeriods > 0 && k >= r.MaxPeriods) || (limit != nil && next.After(*limit)) {
		e.s.NextPeriodEnd = nil
	} else {
		e.s.NextPeriodEnd = &next
	}
	return out
}

func overlapsAny(rs []Restriction, start, end time.Time) bool {
	for _, r := range rs {
		if r.Overlaps(start, end) {
			return true
		}
	}
	return false
}

// end stops consent at now. A period that would end after now can never be
// earned, and a bonus that had not vested is voided; the voided points are
// returned so the ledger can record them.
func (e *Exchange) end(status ExchangeStatus, now time.Time) (voided int64) {
	e.s.Status = status
	e.s.EndedAt = &now
	e.stopCreditsAfter(&now)
	if e.s.BonusState == BonusPending && e.s.BonusVestsAt.After(now) {
		e.s.BonusState = BonusVoided
		return e.s.BonusPoints
	}
	return 0
}

func (e *Exchange) stopCreditsAfter(t *time.Time) {
	if t != nil && e.s.NextPeriodEnd != nil && e.s.NextPeriodEnd.After(*t) {
		e.s.NextPeriodEnd = nil
	}
}

// Cancel ends consent at once. Cancelling an exchange that already ended
// changes nothing, so a repeated cancel is harmless.
func (e *Exchange) Cancel(now time.Time) (voided int64, changed bool) {
	return e.endActive(ExchangeCancelled, now)
}

// Terminate ends consent because the marketer retired the version with
// termination; like Cancel, it changes nothing once consent has ended.
func (e *Exchange) Terminate(now time.Time) (voided int64, changed bool) {
	return e.endActive(ExchangeTerminated, now)
}

// Erase ends consent because the member asked for erasure.
func (e *Exchange) Erase(now time.Time) (voided int64, changed bool) {
	return e.endActive(ExchangeErased, now)
}

func (e *Exchange) endActive(status ExchangeStatus, now time.Time) (voided int64, changed bool) {
	if !e.IsActive() {
		return 0, false
	}
	return e.end(status, now), true
}

// Supersede ends consent on the old version because the member re-consented
// to a newer one, which takes over a bonus still pending: consent did not
// lapse, so the bonus keeps vesting on schedule.
func (e *Exchange) Supersede(next *Exchange, now time.Time) {
	e.s.Status = ExchangeSuperseded
	e.s.EndedAt = &now
	e.stopCreditsAfter(&now)
	if e.s.BonusState == BonusPending {
		next.s.BonusPoints, next.s.BonusState, next.s.BonusVestsAt = e.s.BonusPoints, BonusPending, e.s.BonusVestsAt
		e.s.BonusState = BonusTransferred
		next.VestDue(now)
	}
}

// VestDue vests a pending bonus whose vesting time has come and returns the
// points vested: a bonus with no vesting (or one carried over whose time
// passed) is available in the join itself, not at the next accrual run.
// The accrual worker applies the same rule set-based in SQL (infra/postgres
// vestBonusesSQL); a parity test pins the two together.
func (e *Exchange) VestDue(now time.Time) (vested int64) {
	if e.s.BonusState == BonusPending && e.s.BonusVestsAt != nil && !e.s.BonusVestsAt.After(now) {
		e.s.BonusState = BonusVested
		return e.s.BonusPoints
	}
	return 0
}
