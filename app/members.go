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

// ProfileGuard checks a profile change under the member's lock, before
// anything is written: removed are the keys the change removes from the
// stored profile, after the profile it leaves, active (read only when keys
// are removed or the birthdate changes) the member's active exchanges with
// the categories each shares. An error aborts the save, writing nothing;
// end names active exchanges the save must end (cancelled, consent-event
// actor age_rule) because a corrected birthdate no longer meets their age
// rule.
type ProfileGuard func(removed []string, after map[string]any, active []domain.Share, now time.Time) (end []string, err error)

// ProfileSave is what a profile save did.
type ProfileSave struct {
	Member Member
	// Created is true when the save enrolled the subject (afresh after an
	// erasure).
	Created bool
	// Ended are the exchanges the save ended, in id order: those whose age
	// rule a corrected birthdate no longer meets. Never nil.
	Ended []string
	// Restricted is whether the member restricts processing (Art. 18), read
	// under the save's lock: read after the save, an erasure committing in
	// between would leave no member to read it from.
	Restricted bool
}

// MemberRepository stores members.
type MemberRepository interface {
	// SaveProfile enrols the member when new (also when an erasure of the
	// subject commits while the save waits for the member's lock) and
	// applies the attribute changes (a nil value removes a key), recording
	// which keys changed. Under the member's lock, before writing, it calls
	// guard (nil: no checks); an error from guard aborts the save, writing
	// nothing, and the exchanges it names are ended in the same transaction
	// as cancelled by the actor age_rule, with a member cancel's effects
	// (pending bonus voided, no later period credited, exchange.cancelled
	// and deletion duties for every recipient). In the same transaction,
	// every recipient an exchange still active grants one of
	// rectified(changed keys) gets a member.attributes_changed event naming
	// those categories (never the values); a nil rectified means the changed
	// keys themselves. It also reads whether the member restricts
	// processing.
	SaveProfile(ctx context.Context, memberID string, changes map[string]any, guard ProfileGuard,
		rectified func(changed []string) []string) (ProfileSave, error)
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
// and every value fit its type; all problems are reported at once. The
// answer says whether the subject was enrolled and which exchanges a
// corrected birthdate ended.
func (s *Members) Enrol(ctx context.Context, p Principal, attributes map[string]any) (ProfileSave, error) {
	if err := p.Require(RoleMember); err != nil {
		return ProfileSave{}, err
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
				v.Add("/attributes/"+domain.PointerToken(k), "is not a category of the catalogue")
			}
			continue
		}
		if err := s.catalog.ValidateAttribute(k, attributes[k]); err != nil {
			v.Add("/attributes/"+domain.PointerToken(k), err.Error())
		}
	}
	if err := v.Err(); err != nil {
		return ProfileSave{}, err
	}
	// Rule 9: an attribute an active exchange shares can be corrected but
	// not removed while the exchange is active. Rule 10: nor can the
	// birthdate be removed while an exchange's age rule needs it; a
	// corrected birthdate is accepted and ends the exchanges whose age
	// rule it no longer meets.
	guard := func(removed []string, after map[string]any, active []domain.Share, now time.Time) ([]string, error) {
		if err := s.catalog.CheckRemovals(removed, active); err != nil {
			return nil, err
		}
		return s.catalog.CheckAgeRules(after, active, now)
	}
	saved, err := s.store.SaveProfile(ctx, p.Subject, attributes, guard, s.catalog.Rectified)
	if err != nil {
		return ProfileSave{}, fmt.Errorf("save profile: %w", err)
	}
	return saved, nil
}

// Get is the member's own profile and balance.
func (s *Members) Get(ctx context.Context, p Principal) (Member, error) {
	if err := p.Require(RoleMember); err != nil {
		return Member{}, err
	}
	return s.store.GetMember(ctx, p.Subject)
}
