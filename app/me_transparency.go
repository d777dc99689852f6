package app

import (
	"context"
	"fmt"

	"github.com/quidpro/quid/domain"
)

// MemberStatement is everything a member shares, with whom, since when, and
// what each exchange earned.
type MemberStatement struct {
	Exchanges  []ExchangeView
	Recipients map[string]domain.Recipient
}

// Transparency gathers every exchange of the member, newest first.
func (s *Exchanges) Transparency(ctx context.Context, p Principal) (MemberStatement, error) {
	if err := p.Require(RoleMember); err != nil {
		return MemberStatement{}, err
	}
	if err := s.store.RequireEnrolled(ctx, p.Subject); err != nil {
		return MemberStatement{}, err
	}
	var all []domain.Exchange
	page := Page{Limit: 100}
	for {
		es, next, err := s.store.ListExchanges(ctx, p.Subject, page)
		if err != nil {
			return MemberStatement{}, fmt.Errorf("list exchanges: %w", err)
		}
		all = append(all, es...)
		if next == "" {
			break
		}
		page.Cursor = next
	}
	views, err := s.views(ctx, all)
	if err != nil {
		return MemberStatement{}, err
	}
	ids := map[string]bool{}
	for _, v := range views {
		for _, r := range v.Contract.RecipientIDs() {
			ids[r] = true
		}
	}
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	recipients, err := s.recipients.RecipientsByID(ctx, list)
	if err != nil {
		return MemberStatement{}, fmt.Errorf("look up recipients: %w", err)
	}
	return MemberStatement{Exchanges: views, Recipients: recipients}, nil
}

// ConsentLog is the member's own consent history, for the export.
func (s *Exchanges) ConsentLog(ctx context.Context, p Principal) ([]ConsentEvent, error) {
	if err := p.Require(RoleMember); err != nil {
		return nil, err
	}
	return s.store.ConsentLog(ctx, p.Subject)
}
