package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/quidpro/quid/domain"
)

// JoinContext is what the store knows, under lock, when a member joins.
type JoinContext struct {
	Contract      domain.Contract
	Recipients    map[string]domain.Recipient // everyone the contract names
	Active        *domain.Exchange            // the member's active exchange in the family, if any
	BonusEligible bool
	// Objected holds the purposes the member objects to (Art. 21).
	Objected map[string]bool
	Now      time.Time
	// Attributes holds the keys of the member's stored profile attributes
	// and Birthdate their date of birth (nil when unknown), read under the
	// member's lock, so no concurrent profile change can slip between the
	// checks and the join.
	Attributes map[string]bool
	Birthdate  any
}

// JoinPlan is what the use case decided: the new exchange and, for a
// re-consent, the superseded one.
type JoinPlan struct {
	Exchange   domain.Exchange
	Superseded *domain.Exchange
	// GPC records in the consent event that the join request carried the
	// Global Privacy Control signal.
	GPC bool
}

// JoinRequest is a member's request to join a contract version. GPC is the
// Global Privacy Control signal (Sec-GPC: 1) the request carried;
// AffirmDespiteGPC is the member's explicit wish to join anyway.
type JoinRequest struct {
	ContractID       string
	Idempotency      *IdempotencyKey
	GPC              bool
	AffirmDespiteGPC bool
}

// errAlreadyJoined refuses joining a version the member is active on.
var errAlreadyJoined = domain.Conflict("already-joined", "you already have an active exchange on this version").At("/contract_id")

// Join consents to a published version. Joining the version again while
// active is a conflict; joining a newer version of a family the member is
// in re-consents, superseding the old exchange in the same transaction.
func (s *Exchanges) Join(ctx context.Context, p Principal, contractID string, idem *IdempotencyKey) (domain.Exchange, bool, error) {
	return s.JoinWith(ctx, p, JoinRequest{ContractID: contractID, Idempotency: idem})
}

// JoinWith is Join with the request's privacy signals. A join is refused,
// writing nothing, when the member's profile lacks data the contract shares
// (DESIGN rule 9), when the member's age is unknown or below the contract's
// age requirement (rule 10), or when the request carries Global Privacy
// Control for a contract that shares with a third party or for advertising
// and the member did not affirm it.
func (s *Exchanges) JoinWith(ctx context.Context, p Principal, in JoinRequest) (domain.Exchange, bool, error) {
	if err := p.Require(RoleMember); err != nil {
		return domain.Exchange{}, false, err
	}
	ex, replayed, err := s.store.Join(ctx, p.Subject, in.ContractID, in.Idempotency, func(jc JoinContext) (JoinPlan, error) {
		if objected := domain.ObjectedPurposes(jc.Contract.Terms(), jc.Objected); len(objected) > 0 {
			return JoinPlan{}, errObjectedPurpose(objected)
		}
		if jc.Active != nil {
			if jc.Active.ContractID() == jc.Contract.ID() {
				return JoinPlan{}, errAlreadyJoined
			}
		}
		ex, err := domain.Join(s.ids.NewID(), p.Subject, jc.Contract, jc.Now, jc.BonusEligible && jc.Active == nil)
		if err != nil {
			return JoinPlan{}, err
		}
		if err := s.fairJoin(jc, in); err != nil {
			return JoinPlan{}, err
		}
		plan := JoinPlan{Exchange: ex, GPC: in.GPC}
		if jc.Active != nil {
			old := *jc.Active
			old.Supersede(&plan.Exchange, jc.Now)
			plan.Superseded = &old
		}
		receiptID := s.ids.NewID()
		jws, err := s.signer.SignReceipt(receiptOf(plan.Exchange, receiptID, jc.Contract, jc.Recipients, s.catalog))
		if err != nil {
			return JoinPlan{}, fmt.Errorf("sign consent receipt: %w", err)
		}
		plan.Exchange.AttachReceipt(receiptID, jws)
		return plan, nil
	})
	if errors.Is(err, domain.ErrContractNotFound) {
		return ex, false, domain.Invalid("/contract_id", "names no contract")
	}
	return ex, replayed, err
}

// fairJoin applies rules 9 and 10 and the GPC rule: every missing
// attribute (and an unknown age) is reported at once, then a member too
// young, then an unaffirmed GPC signal.
func (s *Exchanges) fairJoin(jc JoinContext, in JoinRequest) error {
	t := jc.Contract.Terms()
	var v domain.Violations
	v.Merge("", s.catalog.CheckProfileHolds(t, jc.Attributes))
	minAge := s.catalog.AgeRequirement(t, jc.Recipients)
	ageErr := domain.CheckAge(jc.Birthdate, minAge, jc.Now)
	if domain.IsKind(ageErr, domain.KindInvalid) {
		// Reported once: a contract that shares the birthdate itself has
		// already named it as missing.
		if !slices.Contains(s.catalog.RequiredAttributes(t), domain.BirthdateCategory) || jc.Attributes[domain.BirthdateCategory] {
			v.Merge("", ageErr)
		}
		ageErr = nil
	}
	if err := v.Err(); err != nil {
		return err
	}
	if ageErr != nil {
		return ageErr
	}
	return s.catalog.CheckGPC(in.GPC, in.AffirmDespiteGPC, t, jc.Recipients)
}
