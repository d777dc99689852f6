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
	return s.store.Redeem(ctx, p.Subject, points, reference, idem, func(b domain.Balance) (domain.Balance, error) {
		return b.Redeem(points)
	})
}

// Points is the member's balance and one page of its ledger, newest first.
func (s *Exchanges) Points(ctx context.Context, p Principal, page Page) (domain.Balance, []domain.Entry, string, error) {
	if err := p.Require(RoleMember); err != nil {
		return domain.Balance{}, nil, "", err
	}
	return s.store.Points(ctx, p.Subject, page.Normalised())
}
