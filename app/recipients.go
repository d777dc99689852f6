package app

import (
	"context"
	"fmt"

	"github.com/quidpro/quid/domain"
)

// RecipientRepository stores the recipients registry.
type RecipientRepository interface {
	CreateRecipient(ctx context.Context, r domain.Recipient) error
	GetRecipient(ctx context.Context, id string) (domain.Recipient, error)
	ListRecipients(ctx context.Context, page Page) ([]domain.Recipient, string, error)
	RecipientsByID(ctx context.Context, ids []string) (map[string]domain.Recipient, error)
}

// RecipientInput registers a recipient.
type RecipientInput struct {
	Name, Kind, Country, PrivacyPolicyURL string
}

// CreateRecipient registers a recipient (admins only). The registry's use
// cases belong to Contracts, whose terms name recipients and are checked
// against the registry.
func (s *Contracts) CreateRecipient(ctx context.Context, p Principal, in RecipientInput) (domain.Recipient, error) {
	if err := p.Require(RoleAdmin); err != nil {
		return domain.Recipient{}, err
	}
	r, err := domain.NewRecipient(s.ids.NewID(), in.Name, domain.RecipientKind(in.Kind), in.Country, in.PrivacyPolicyURL, s.clock.Now())
	if err != nil {
		return domain.Recipient{}, err
	}
	if err := s.recipients.CreateRecipient(ctx, r); err != nil {
		return domain.Recipient{}, fmt.Errorf("create recipient: %w", err)
	}
	return r, nil
}

func (s *Contracts) GetRecipient(ctx context.Context, p Principal, id string) (domain.Recipient, error) {
	if err := p.Require(RoleAdmin, RoleMarketer); err != nil {
		return domain.Recipient{}, err
	}
	return s.recipients.GetRecipient(ctx, id)
}

func (s *Contracts) ListRecipients(ctx context.Context, p Principal, page Page) ([]domain.Recipient, string, error) {
	if err := p.Require(RoleAdmin, RoleMarketer); err != nil {
		return nil, "", err
	}
	return s.recipients.ListRecipients(ctx, page.Normalised())
}
