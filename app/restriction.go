package app

import (
	"context"
	"time"

	"github.com/quidpro/quid/domain"
)

// RestrictionPeriod is one period [From, Until) during which the member
// restricted processing (GDPR Art. 18); Until is nil while it lasts.
type RestrictionPeriod struct {
	From  time.Time
	Until *time.Time
}

// Restriction is a member's restriction state and its whole history.
type Restriction struct {
	Restricted bool
	Since      *time.Time
	Periods    []RestrictionPeriod
}

// RestrictionRepository stores restriction periods.
type RestrictionRepository interface {
	// SetRestriction locks the member and, at the database clock read under
	// that lock, opens a period (restricted) or closes the open one; when
	// the state changed it queues member.restricted or
	// member.restriction_lifted for every recipient an active exchange
	// grants data to (Art. 19), in the same transaction.
	SetRestriction(ctx context.Context, memberID string, restricted bool) (Restriction, error)
	Restriction(ctx context.Context, memberID string) (Restriction, error)
}

// Restrictions is the right to restriction of processing: while restricted,
// partner reads are refused and no period is credited; exchanges stay active.
type Restrictions struct {
	store RestrictionRepository
}

// NewRestrictions wires the restriction use cases.
func NewRestrictions(store RestrictionRepository) *Restrictions {
	return &Restrictions{store: store}
}

// Set restricts or lifts; asking for the state already in force changes
// nothing.
func (s *Restrictions) Set(ctx context.Context, p Principal, restricted bool) (Restriction, error) {
	if err := p.Require(RoleMember); err != nil {
		return Restriction{}, err
	}
	return s.store.SetRestriction(ctx, p.Subject, restricted)
}

// Get is the member's restriction state and periods.
func (s *Restrictions) Get(ctx context.Context, p Principal) (Restriction, error) {
	if err := p.Require(RoleMember); err != nil {
		return Restriction{}, err
	}
	return s.store.Restriction(ctx, p.Subject)
}

// errRestricted answers a partner read of a member who restricted
// processing. Only a partner that an active exchange grants data for the
// purpose gets it (others get no-consent), so it tells nobody new that the
// member exists.
var errRestricted = domain.Forbidden("processing-restricted",
	"the member has restricted the processing of their data (GDPR Art. 18); no data is disclosed until they lift it")
