package domain

import (
	"fmt"
	"time"
)

// DefaultRenewalNotice is how long before a consent with a duration
// expires the member is reminded and may renew it, unless the contract
// sets its own renewal_notice.
var DefaultRenewalNotice = Duration{Days: 14}

// Notice is the terms' renewal notice (the default when unset). It only
// means something for terms with a duration.
func (t Terms) Notice() Duration {
	if t.RenewalNotice != nil {
		return *t.RenewalNotice
	}
	return DefaultRenewalNotice
}

// RenewalOpensAt is when consent on t that expires at expires may be
// renewed and its recipients are told it is expiring: the notice before
// the expiry, with PostgreSQL's interval arithmetic (expires - notice).
func RenewalOpensAt(t Terms, expires time.Time) time.Time { return t.Notice().AddTo(expires, -1) }

// NewerVersionError refuses a renewal because the family has moved on: the
// member must join the newer version (ContractID) to consent again.
type NewerVersionError struct {
	ContractID string
	Version    int
}

func (e *NewerVersionError) Error() string { return e.Unwrap().Error() }

// Unwrap is the conflict the error stands for, code newer-version.
func (e *NewerVersionError) Unwrap() error {
	return Conflict("newer-version", fmt.Sprintf("version %d of this contract is published: renewal keeps the old terms, so join version %d (contract %s) instead",
		e.Version, e.Version, e.ContractID))
}

// CanRenew says why consent e on version c cannot be renewed at now, or
// nil when it can: it must be active (not lapsed), c must have a duration,
// be the family's newest published version (newer is the newest published
// one above c, if any) and the renewal window (the notice before expiry)
// must be open.
func (e Exchange) CanRenew(c Contract, newer *Contract, now time.Time) error {
	e = e.AsOf(now)
	if !e.IsActive() {
		return Conflict("exchange-not-active", fmt.Sprintf("this exchange is %s; join the contract again to consent anew", e.Status()))
	}
	t := c.Terms()
	if t.Duration == nil || e.ExpiresAt() == nil {
		return Conflict("not-renewable", "this consent has no duration: it lasts until you cancel it")
	}
	if newer != nil {
		return &NewerVersionError{ContractID: newer.ID(), Version: newer.Version()}
	}
	if !c.Joinable() {
		return Conflict("not-renewable", fmt.Sprintf("version %d is %s and can no longer be renewed", c.Version(), c.Status()))
	}
	if opens := RenewalOpensAt(t, *e.ExpiresAt()); now.Before(opens) {
		return Conflict("renewal-not-open", fmt.Sprintf("renewal opens at %s, %s before this consent expires",
			opens.UTC().Format(time.RFC3339), t.Notice()))
	}
	return nil
}

// Renewable is CanRenew as a yes or no, for views.
func (e Exchange) Renewable(c Contract, newer *Contract, now time.Time) bool {
	return e.CanRenew(c, newer, now) == nil
}

// Renew extends consent on the same terms by one more duration: after
// renewals earlier renewals the consent expires at joined_at + (renewals
// + 2) durations, the same calendar arithmetic as the first expiry, so the
// expiry never drifts from the grid. Periods keep their grid anchored at
// the join; a period that did not fit before the old expiry is earnable
// again when it fits before the new one (capped by max_periods).
func (e *Exchange) Renew(c Contract, newer *Contract, renewals int, now time.Time) error {
	if err := e.CanRenew(c, newer, now); err != nil {
		return err
	}
	t := c.Terms()
	expires := t.Duration.AddTo(e.s.JoinedAt, renewals+2)
	e.s.ExpiresAt = &expires
	r := t.Reward
	if e.s.NextPeriodEnd == nil && r.PointsPerPeriod > 0 && (r.MaxPeriods == 0 || e.s.CreditedPeriods < r.MaxPeriods) {
		_, next := PeriodBounds(e.s.JoinedAt, r.Period, e.s.CreditedPeriods)
		e.s.NextPeriodEnd = &next
		e.stopCreditsAfter(e.s.ExpiresAt)
	}
	return nil
}
