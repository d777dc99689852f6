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
	// In the same transaction, every recipient an active exchange grants
	// one of rectified(changed keys) gets a member.attributes_changed event
	// naming those categories (never the values); a nil rectified means
	// the changed keys themselves.
	SaveProfile(ctx context.Context, memberID string, changes map[string]any, rectified func(changed []string) []string) (Member, bool, error)
	GetMember(ctx context.Context, memberID string) (Member, error)
}

// Members is the member's own profile.
type Members struct {
	Members MemberRepository
	Catalog domain.Catalog
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
			if _, ok := s.Catalog.Category(k); !ok {
				v.Add("/attributes/"+k, "is not a category of the catalogue")
			}
			continue
		}
		if err := s.Catalog.ValidateAttribute(k, attributes[k]); err != nil {
			v.Add("/attributes/"+k, err.Error())
		}
	}
	if err := v.Err(); err != nil {
		return Member{}, false, err
	}
	m, created, err := s.Members.SaveProfile(ctx, p.Subject, attributes, s.Catalog.Rectified)
	if err != nil {
		return Member{}, false, fmt.Errorf("save profile: %w", err)
	}
	return m, created, nil
}

func (s *Members) Get(ctx context.Context, p Principal) (Member, error) {
	if err := p.Require(RoleMember); err != nil {
		return Member{}, err
	}
	return s.Members.GetMember(ctx, p.Subject)
}
