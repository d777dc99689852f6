package app

import (
	"context"
	"fmt"

	"github.com/quidpro/quid/domain"
)

// Statement is everything the transparency statement shows.
type Statement struct {
	Contract   domain.Contract
	Recipients map[string]domain.Recipient
	Catalog    domain.Catalog
	Changes    *domain.Changes
	// Dropped are the recipients the previous version named and this one
	// does not, so the changes can name them.
	Dropped map[string]domain.Recipient
	// RewardValue is the reward in money (RewardValues); nil while no
	// programme identity gives points a value.
	RewardValue *domain.RewardValue
}

// Transparency is the public statement of a version: what it shares with
// whom, and what changed since the version before. Drafts are visible only
// to marketers and admins, as in Get.
func (s *Contracts) Transparency(ctx context.Context, p *Principal, id string) (Statement, error) {
	c, err := s.Get(ctx, p, id)
	if err != nil {
		return Statement{}, err
	}
	recipients, err := s.recipients.RecipientsByID(ctx, c.RecipientIDs())
	if err != nil {
		return Statement{}, fmt.Errorf("look up recipients: %w", err)
	}
	st := Statement{Contract: c, Recipients: recipients, Catalog: s.policy.Catalog}
	values, err := s.RewardValues(ctx, c)
	if err != nil {
		return Statement{}, err
	}
	if v, ok := values[c.ID()]; ok {
		st.RewardValue = &v
	}
	if c.Version() > 1 {
		prev, ok, err := s.store.ContractVersion(ctx, c.FamilyID(), c.Version()-1)
		if err != nil {
			return Statement{}, fmt.Errorf("previous version: %w", err)
		}
		if ok {
			ch := domain.CompareTerms(prev.Version(), prev.Terms(), c.Terms(), func(id string) string { return recipients[id].Name })
			st.Changes = &ch
			if st.Dropped, err = s.recipients.RecipientsByID(ctx, ch.RecipientsRemoved); err != nil {
				return Statement{}, fmt.Errorf("look up dropped recipients: %w", err)
			}
		}
	}
	return st, nil
}
