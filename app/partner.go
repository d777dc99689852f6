package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/quidpro/quid/domain"
)

// PartnerRead is what a partner may see of a member for a purpose.
type PartnerRead struct {
	MemberID    string
	Purpose     string
	Attributes  map[string]any
	ExchangeIDs []string
}

// ReadMemberData returns only the categories that active exchanges grant
// to this partner for this purpose, and logs the read where the member sees it.
func (s *Enforcement) ReadMemberData(ctx context.Context, p Principal, memberID, purpose, requestID string) (PartnerRead, error) {
	if err := p.Require(RolePartner); err != nil {
		return PartnerRead{}, err
	}
	if purpose == "" {
		return PartnerRead{}, domain.Invalid("/query/purpose", "is required: say why you read the data")
	}
	if _, ok := s.catalog.Purpose(purpose); !ok {
		return PartnerRead{}, domain.Invalid("/query/purpose", "is not a purpose of the catalogue")
	}
	recipients, err := s.recipients.RecipientsByID(ctx, []string{p.Subject})
	if err != nil {
		return PartnerRead{}, fmt.Errorf("look up partner: %w", err)
	}
	partner, known := recipients[p.Subject]
	if !known {
		return PartnerRead{}, errNoConsent
	}
	// Refuse before the member is touched: loading a member and its
	// exchanges only to refuse would make members slower to refuse than
	// strangers, a timing oracle for membership. The grant is checked again
	// below, under the member's lock.
	if granted, err := s.store.GrantsAny(ctx, memberID, p.Subject, purpose); err != nil {
		return PartnerRead{}, fmt.Errorf("check grants: %w", err)
	} else if !granted {
		return PartnerRead{}, s.refuseEnded(ctx, p.Subject, partner.Name, memberID, purpose, requestID)
	}
	var out PartnerRead
	err = s.store.ReadMember(ctx, memberID, func(m MemberSnapshot) (*AccessEntry, error) {
		granted := map[string]bool{}
		var exchanges []string
		for _, a := range m.Active {
			cats := domain.GrantedCategories(a.Terms, p.Subject, purpose)
			if len(cats) == 0 {
				continue
			}
			exchanges = append(exchanges, a.ExchangeID)
			for _, c := range cats {
				granted[c] = true
			}
		}
		if len(exchanges) == 0 {
			return nil, errNoConsent
		}
		if m.Restricted {
			// The attempt is logged where the member sees it; nothing is
			// disclosed.
			return &AccessEntry{MemberID: memberID, AccessorRole: "partner", AccessorID: p.Subject, AccessorName: partner.Name,
				Purpose: purpose, Categories: []string{}, ExchangeIDs: exchanges, RequestID: requestID, At: m.Now,
				Refused: errRestricted.Code}, errRestricted
		}
		keys := make([]string, 0, len(granted))
		for k := range granted {
			keys = append(keys, k)
		}
		values := s.catalog.Disclose(keys, m.Attributes, m.Now)
		out = PartnerRead{MemberID: memberID, Purpose: purpose, Attributes: values, ExchangeIDs: exchanges}
		return &AccessEntry{MemberID: memberID, AccessorRole: "partner", AccessorID: p.Subject, AccessorName: partner.Name,
			Purpose: purpose, Categories: domain.DisclosedKeys(values), ExchangeIDs: exchanges, RequestID: requestID, At: m.Now}, nil
	})
	if errors.Is(err, domain.ErrNotFound) {
		// An unknown or erased member answers exactly as a member who gave
		// this partner nothing: the answer must not tell who is a member.
		return PartnerRead{}, errNoConsent
	}
	if err != nil {
		return PartnerRead{}, fmt.Errorf("read member: %w", err)
	}
	return out, nil
}

// errNoConsent is the one answer a partner gets for every member it may not
// read: unknown, erased, never consented, consent ended, or another purpose.
var errNoConsent = domain.Forbidden("no-consent", "no active consent of this member grants you any data for this purpose")

// refuseEnded refuses a read no active consent grants and, when an ended
// exchange of this member once granted this partner this purpose, logs the
// refused attempt where the member sees it: a member who cancelled sees the
// partner still trying (issue 13's journey). The extra work happens only
// for members this partner already knows it had data of (it was told of
// the ending), so the answer's timing tells it nothing new; strangers,
// erased members and members of other partners are refused without a write.
func (s *Enforcement) refuseEnded(ctx context.Context, partnerID, partnerName, memberID, purpose, requestID string) error {
	ended, err := s.store.GrantedBefore(ctx, memberID, partnerID, purpose)
	if err != nil {
		return fmt.Errorf("check ended grants: %w", err)
	}
	if len(ended) == 0 {
		return errNoConsent
	}
	err = s.store.ReadMember(ctx, memberID, func(m MemberSnapshot) (*AccessEntry, error) {
		for _, a := range m.Active {
			if len(domain.GrantedCategories(a.Terms, partnerID, purpose)) > 0 {
				// Joined again since the check: refused all the same (the
				// partner asks again), logged against the new exchange.
				ended = []string{a.ExchangeID}
			}
		}
		return &AccessEntry{MemberID: memberID, AccessorRole: "partner", AccessorID: partnerID, AccessorName: partnerName,
			Purpose: purpose, Categories: []string{}, ExchangeIDs: ended, RequestID: requestID, At: m.Now,
			Refused: errNoConsent.Code}, errNoConsent
	})
	if errors.Is(err, domain.ErrNotFound) || errors.Is(err, errNoConsent) {
		return errNoConsent
	}
	if err != nil {
		return fmt.Errorf("log refused read: %w", err)
	}
	return errNoConsent
}
