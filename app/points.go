package app

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/quidpro/quid/domain"
)

// Redeem spends available points; it never overdraws.
func (s *Exchanges) Redeem(ctx context.Context, p Principal, points int64, reference string, idem *IdempotencyKey) (domain.Entry, domain.Balance, bool, error) {
	if err := p.Require(RoleMember); err != nil {
		return domain.Entry{}, domain.Balance{}, false, err
	}
	reference = strings.TrimSpace(reference)
	if reference == "" || utf8.RuneCountInString(reference) > 200 {
		return domain.Entry{}, domain.Balance{}, false, domain.Invalid("/reference", "must be 1 to 200 characters")
	}
	if domain.ReordersLine(reference) {
		// Shown back to the member in the history, like a profile value.
		return domain.Entry{}, domain.Balance{}, false, domain.Invalid("/reference", "must be one line without control characters or bidirectional embeddings, overrides or isolates")
	}
	return s.store.Redeem(ctx, p.Subject, points, reference, idem, func(b domain.Balance) (domain.Balance, error) {
		return b.Redeem(points)
	})
}

// ExpiringShown is how many upcoming expiry times a member is shown.
const ExpiringShown = 3

// Expiring is when the member's available points expire, soonest first:
// the first ExpiringShown times and how many points expire at each.
func (s *Exchanges) Expiring(ctx context.Context, p Principal) ([]domain.Expiring, error) {
	if err := p.Require(RoleMember); err != nil {
		return nil, err
	}
	return s.store.ExpiringPoints(ctx, p.Subject, ExpiringShown)
}

// Points is the member's balance and one page of its ledger, newest first.
func (s *Exchanges) Points(ctx context.Context, p Principal, page Page) (domain.Balance, []domain.Entry, string, error) {
	if err := p.Require(RoleMember); err != nil {
		return domain.Balance{}, nil, "", err
	}
	return s.store.Points(ctx, p.Subject, page.Normalised())
}
