package app

import (
	"context"
	"fmt"
	"time"

	"github.com/quidpro/quid/domain"
)

// TierStore keeps the programme's tier schedules and reads what members
// earned.
type TierStore interface {
	// AddTierSchedule stores s as the next version and returns it
	// numbered; CurrentTierSchedule reads the latest (ok false before the
	// first).
	AddTierSchedule(ctx context.Context, s domain.TierSchedule) (domain.TierSchedule, error)
	CurrentTierSchedule(ctx context.Context) (s domain.TierSchedule, ok bool, err error)
	// EarnedInWindow sums the member's points earned within window, as of
	// the database's clock (returned as now): the points of their period
	// credits whose period ended after now - window and of their join
	// bonuses that vested after it (kinds period_credit and bonus_vested: points the programme issued to the member, so a voided bonus, which never vested, and a reversal, which returns spent points, do not count).
	EarnedInWindow(ctx context.Context, memberID string, window domain.Duration) (earned int64, now time.Time, err error)
}

// TierChanges announces tier changes (member.tier_changed), set-based and
// exactly once per change however many replicas run it.
type TierChanges interface {
	AnnounceTierChanges(ctx context.Context) (int64, error)
}

// Tiers is the programme's tiers: the admin sets them, anyone reads them,
// and a member reads where they stand.
type Tiers struct {
	store TierStore
	clock Clock
}

// NewTiers wires the tier use cases.
func NewTiers(store TierStore, clock Clock) *Tiers { return &Tiers{store: store, clock: clock} }

// PutTiers records a new tier schedule (admins only) after
// domain.ValidateTierSchedule; the store numbers the version. Members'
// tiers follow at the next tier job (member.tier_changed for each change).
func (s *Tiers) PutTiers(ctx context.Context, p Principal, in domain.TierSchedule) (domain.TierSchedule, error) {
	if err := p.Require(RoleAdmin); err != nil {
		return domain.TierSchedule{}, err
	}
	in.CreatedAt = s.clock.Now()
	sched, err := domain.ValidateTierSchedule(in)
	if err != nil {
		return domain.TierSchedule{}, err
	}
	out, err := s.store.AddTierSchedule(ctx, sched)
	if err != nil {
		return domain.TierSchedule{}, fmt.Errorf("add tier schedule: %w", err)
	}
	return out, nil
}

// Schedule is the tier schedule in force; ok is false before an admin has
// set one.
func (s *Tiers) Schedule(ctx context.Context) (domain.TierSchedule, bool, error) {
	return s.store.CurrentTierSchedule(ctx)
}

// Standing is where the member stands, computed from the ledger now; ok
// is false while the programme has no tiers.
func (s *Tiers) Standing(ctx context.Context, p Principal) (domain.TierSchedule, domain.TierStanding, bool, error) {
	if err := p.Require(RoleMember); err != nil {
		return domain.TierSchedule{}, domain.TierStanding{}, false, err
	}
	sched, ok, err := s.store.CurrentTierSchedule(ctx)
	if err != nil || !ok || len(sched.Tiers) == 0 {
		return sched, domain.TierStanding{}, false, err
	}
	earned, now, err := s.store.EarnedInWindow(ctx, p.Subject, sched.Window)
	if err != nil {
		return sched, domain.TierStanding{}, false, err
	}
	return sched, sched.Standing(earned, now), true, nil
}
