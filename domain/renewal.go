package domain

import (
	"fmt"
	"time"
)

// DefaultRenewalNotice is how long before a consent with a duration
// expires the member is reminded and may renew it, unless the contract
// sets its own renewal_notice or its duration is too short for it (see
// DefaultNoticeFor).
var DefaultRenewalNotice = Duration{Days: 14}

// DefaultNoticeFor is the notice terms with duration d take when they set
// none: DefaultRenewalNotice, or half the duration (in whole seconds,
// rounded down) when d is not longer than twice DefaultRenewalNotice. The
// notice is so always shorter than the duration: a renewal moves the
// window past the present and renewals cannot stack.
func DefaultNoticeFor(d Duration) Duration {
	if d.Approx() > 2*DefaultRenewalNotice.Approx() {
		return DefaultRenewalNotice
	}
	half := int(d.Approx()/time.Second) / 2
	return Duration{Days: half / 86400, Hours: half % 86400 / 3600, Minutes: half % 3600 / 60, Seconds: half % 60}
}

// Notice is the terms' renewal notice (the default for their duration when
// unset). It only means something for terms with a duration.
//
// A published version's terms always hold the notice they were published
// with (Contract.Publish writes it in), so a later change to the default
// never changes what a published version promised and hashed; versions
// published before that hold none and were published under P14D, which
// stores read back (infra/postgres contractRecord.toDomain).
func (t Terms) Notice() Duration {
	if t.RenewalNotice != nil {
		return *t.RenewalNotice
	}
	if t.Duration == nil {
		return DefaultRenewalNotice
	}
	return DefaultNoticeFor(*t.Duration)
}

// NotBeforeText shows a time before which something is refused, in whole
// seconds (RFC 3339, UTC) rounded up: a client that retries at the time
// shown is never early. Every "not before" time in a problem detail is
// written with it.
func NotBeforeText(t time.Time) string {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		t = r.Add(time.Second)
	}
	return t.UTC().Format(time.RFC3339)
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
			NotBeforeText(opens), t.Notice()))
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
