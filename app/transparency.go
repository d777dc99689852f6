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
	// Programme is who answers for the data: the identity frozen into the
	// published terms, or for a draft (and a version published before
	// programmes existed) the current one; nil when none was ever set.
	Programme *domain.Programme
	// ProgrammePointsExpiry is the programme's points expiry
	// (QUID_POINTS_EXPIRE_AFTER; zero: points never expire), which applies
	// to the contract's points unless its terms shorten it.
	ProgrammePointsExpiry domain.Duration
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
	st := Statement{Contract: c, Recipients: recipients, Catalog: s.policy.Catalog, ProgrammePointsExpiry: s.policy.PointsExpireAfter}
	values, err := s.RewardValues(ctx, c)
	if err != nil {
		return Statement{}, err
	}
	if v, ok := values[c.ID()]; ok {
		st.RewardValue = &v
	}
	st.Programme = c.Terms().Programme
	if st.Programme == nil {
		p, ok, err := s.store.CurrentProgramme(ctx)
		if err != nil {
			return Statement{}, fmt.Errorf("read programme: %w", err)
		}
		if ok {
			st.Programme = &p
		}
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

// Notice is the Notice of Financial Incentive of a published (or retired)
// version (Cal. Code Regs. tit. 11 §7016): a view of its frozen terms only,
// so nothing outside them (the current programme, a draft, the contract's
// status) can make it say something else. A draft has none: it is
// ErrContractNotFound, whoever asks.
func (s *Contracts) Notice(ctx context.Context, id string) (Statement, error) {
	c, err := s.Get(ctx, nil, id)
	if err != nil {
		return Statement{}, err
	}
	if c.IsDraft() {
		return Statement{}, domain.ErrContractNotFound
	}
	recipients, err := s.recipients.RecipientsByID(ctx, c.RecipientIDs())
	if err != nil {
		return Statement{}, fmt.Errorf("look up recipients: %w", err)
	}
	st := Statement{Contract: c, Recipients: recipients, Catalog: s.policy.Catalog, ProgrammePointsExpiry: s.policy.PointsExpireAfter, Programme: c.Terms().Programme}
	if p := st.Programme; p != nil {
		digits, ok := s.policy.Catalog.Currency(p.PointValue.Currency)
		if !ok {
			return Statement{}, fmt.Errorf("programme version %d: currency %s is unknown", p.Version, p.PointValue.Currency)
		}
		v, err := c.Terms().ValueOf(p.PointValue, digits)
		if err != nil {
			return Statement{}, err
		}
		st.RewardValue = &v
	}
	return st, nil
}
