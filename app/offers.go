package app

import (
	"context"
	"fmt"

	"github.com/quidpro/quid/domain"
)

// RecipientsOf reads, once for all of cs, every recipient the contracts
// name, by id (through the recipient cache). The web pages show recipients
// by name, kind and country where the API gives their ids.
func (s *Contracts) RecipientsOf(ctx context.Context, cs ...domain.Contract) (map[string]domain.Recipient, error) {
	seen := map[string]bool{}
	var ids []string
	for _, c := range cs {
		for _, id := range c.RecipientIDs() {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return map[string]domain.Recipient{}, nil
	}
	out, err := s.recipients.RecipientsByID(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("look up recipients: %w", err)
	}
	return out, nil
}

// OfferStatements is one page of the offers of GET /v1/offers (Offers),
// each as the statement of its terms (Statement): its recipients, its
// reward in money and the programme identity it answers under. Recipients
// and values are read once for the page; the changes since the previous
// version are left out (the offer's own statement shows them).
func (s *Contracts) OfferStatements(ctx context.Context, page Page) ([]Statement, string, error) {
	cs, next, err := s.Offers(ctx, page)
	if err != nil {
		return nil, "", err
	}
	recipients, err := s.RecipientsOf(ctx, cs...)
	if err != nil {
		return nil, "", err
	}
	values, err := s.RewardValues(ctx, cs...)
	if err != nil {
		return nil, "", err
	}
	out := make([]Statement, 0, len(cs))
	for _, c := range cs {
		st := Statement{Contract: c, Recipients: recipients, Catalog: s.policy.Catalog,
			ProgrammePointsExpiry: s.policy.PointsExpireAfter, Programme: c.Terms().Programme}
		if v, ok := values[c.ID()]; ok {
			st.RewardValue = &v
		}
		out = append(out, st)
	}
	return out, next, nil
}
