package app

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/quidpro/quid/domain"
)

// Member is a member's profile and balances as stored.
type Member struct {
	ID         string
	Attributes map[string]any
	Balance    domain.Balance
	CreatedAt  time.Time
}

// MemberRepository stores members.
type MemberRepository interface {
	// SaveProfile enrols the member when new and applies the attribute
	// changes (a nil value removes a key), recording which keys changed.
	// Under the member's lock, before writing, it calls guard with the keys
	// the changes remove from the stored profile and, when there are any,
	// the member's active exchanges with the categories each shares; an
	// error from guard aborts the save, writing nothing. In the same
	// transaction, every recipient an active exchange grants one of
	// rectified(changed keys) gets a member.attributes_changed event naming
	// those categories (never the values); a nil rectified means the changed
	// keys themselves.
	SaveProfile(ctx context.Context, memberID string, changes map[string]any,
		guard func(removed []string, after map[string]any, active []domain.Share, now time.Time) error, rectified func(changed []string) []string) (Member, bool, error)
	GetMember(ctx context.Context, memberID string) (Member, error)
}

// Members is the member's own profile.
type Members struct {
	store   MemberRepository
	catalog domain.Catalog
}

// NewMembers wires the profile use cases: store keeps members, catalog says
// which attributes a profile may hold.
func NewMembers(store MemberRepository, catalog domain.Catalog) *Members {
	return &Members{store: store, catalog: catalog}
}

// Enrol enrols or rectifies: every key must be a stored catalogue category
// and every value fit its type; all problems are reported at once.
func (s *Members) Enrol(ctx context.Context, p Principal, attributes map[string]any) (Member, bool, error) {
	if err := p.Require(RoleMember); err != nil {
		return Member{}, false, err
	}
	var v domain.Violations
	keys := make([]string, 0, len(attributes))
	for k := range attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 100 {
		v.Add("/attributes", "must hold at most 100 attributes")
	}
	for _, k := range keys {
		if attributes[k] == nil {
			if _, ok := s.catalog.Category(k); !ok {
				v.Add("/attributes/"+k, "is not a category of the catalogue")
			}
			continue
		}
		if err := s.catalog.ValidateAttribute(k, attributes[k]); err != nil {
			v.Add("/attributes/"+k, err.Error())
		}
	}
	if err := v.Err(); err != nil {
		return Member{}, false, err
	}
	// Rule 9: an attribute an active exchange shares can be corrected but
	// not removed while the exchange is active. Rule 10: nor can the
	// birthdate change so that an active exchange's age rule fails.
	guard := func(removed []string, after map[string]any, active []domain.Share, now time.Time) error {
		if err := s.catalog.CheckRemovals(removed, active); err != nil {
			return err
		}
		return s.catalog.CheckAgeRules(after, active, now)
	}
	m, created, err := s.store.SaveProfile(ctx, p.Subject, attributes, guard, s.catalog.Rectified)
	if err != nil {
		return Member{}, false, fmt.Errorf("save profile: %w", err)
	}
	return m, created, nil
}

// Get is the member's own profile and balance.
func (s *Members) Get(ctx context.Context, p Principal) (Member, error) {
	if err := p.Require(RoleMember); err != nil {
		return Member{}, err
	}
	return s.store.GetMember(ctx, p.Subject)
}
