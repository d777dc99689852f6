package app

import (
	"context"
	"time"

	"github.com/quidpro/quid/domain"
)

// RecipientGrant is what one exchange gave one recipient: the categories
// and purposes the contract version names it for, from the join until the
// exchange ended (nil while it is in force), and the recipient's deletion
// duty for it once owed.
type RecipientGrant struct {
	ExchangeID  string
	ContractID  string
	Version     int
	Status      domain.ExchangeStatus
	Categories  []string
	Purposes    []string
	From        time.Time
	Until       *time.Time
	ExpiresAt   *time.Time
	DeletionDue *time.Time
	DeletedAt   *time.Time
}

// MemberRecipient is one recipient that was ever granted any of a member's
// data (GDPR Art. 15(1)(c), 19): every grant, and the reads it made (from
// the access log).
type MemberRecipient struct {
	Recipient domain.Recipient
	Grants    []RecipientGrant
	Reads     int64
	LastRead  *time.Time
}

// MemberRecipients lists, per recipient, what a member's exchanges granted.
type MemberRecipients interface {
	RecipientsOfMember(ctx context.Context, memberID string, page Page) ([]MemberRecipient, string, error)
}

// MyRecipients lists every recipient that was ever granted any of the
// member's data, ordered by recipient id, one page at a time.
func (s *Enforcement) MyRecipients(ctx context.Context, p Principal, page Page) ([]MemberRecipient, string, error) {
	if err := p.Require(RoleMember); err != nil {
		return nil, "", err
	}
	if err := s.store.RequireEnrolled(ctx, p.Subject); err != nil {
		return nil, "", err
	}
	return s.store.RecipientsOfMember(ctx, p.Subject, page.Normalised())
}
