package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quidpro/quid/domain"
)

// Webhook is a partner's delivery endpoint.
type Webhook struct {
	RecipientID string
	URL         string
	Secret      string
}

// Delivery is the state of one outbox event.
type Delivery struct {
	ID          string
	RecipientID string
	EventType   string
	CreatedAt   time.Time
	Attempts    int
	NextAttempt time.Time
	DeliveredAt *time.Time
	FailedAt    *time.Time
	LastStatus  *int
	LastError   string
}

// URLGuard refuses webhook URLs that must not be called.
type URLGuard interface {
	Check(ctx context.Context, rawURL string) error
}

// SecretMaker validates and generates webhook signing secrets.
type SecretMaker interface {
	Validate(secret string) error
	Generate() (string, error)
}

// RegisterWebhook sets the partner's endpoint. An empty secret is generated
// and returned once; it is never shown again.
func (s *Enforcement) RegisterWebhook(ctx context.Context, p Principal, url, secret string) (Webhook, error) {
	if err := p.Require(RolePartner); err != nil {
		return Webhook{}, err
	}
	if _, err := s.recipients.GetRecipient(ctx, p.Subject); errors.Is(err, domain.ErrNotFound) {
		return Webhook{}, domain.Forbidden("unknown-recipient", "your token's subject is not a registered recipient")
	} else if err != nil {
		return Webhook{}, fmt.Errorf("look up recipient: %w", err)
	}
	var v domain.Violations
	if err := s.guard.Check(ctx, url); err != nil {
		v.Add("/url", err.Error())
	}
	if secret == "" {
		generated, err := s.secrets.Generate()
		if err != nil {
			return Webhook{}, fmt.Errorf("generate secret: %w", err)
		}
		secret = generated
	} else if err := s.secrets.Validate(secret); err != nil {
		v.Add("/secret", err.Error())
	}
	if err := v.Err(); err != nil {
		return Webhook{}, err
	}
	w := Webhook{RecipientID: p.Subject, URL: url, Secret: secret}
	if err := s.store.SaveWebhook(ctx, w); err != nil {
		return Webhook{}, fmt.Errorf("save webhook: %w", err)
	}
	return w, nil
}

// Deliveries shows admins the delivery state of a recipient's events.
func (s *Enforcement) Deliveries(ctx context.Context, p Principal, recipientID string, page Page) ([]Delivery, string, error) {
	if err := p.Require(RoleAdmin); err != nil {
		return nil, "", err
	}
	return s.store.ListDeliveries(ctx, recipientID, page.Normalised())
}
