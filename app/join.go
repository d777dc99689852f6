package app

import (
	"context"
	"errors"
	"fmt"
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
}

// JoinPlan is what the use case decided: the new exchange and, for a
// re-consent, the superseded one.
type JoinPlan struct {
	Exchange   domain.Exchange
	Superseded *domain.Exchange
}

// errAlreadyJoined refuses joining a version the member is active on.
var errAlreadyJoined = domain.Conflict("already-joined", "you already have an active exchange on this version")

// Join consents to a published version. Joining the version again while
// active is a conflict; joining a newer version of a family the member is
// in re-consents, superseding the old exchange in the same transaction.
func (s *Exchanges) Join(ctx context.Context, p Principal, contractID string, idem *IdempotencyKey) (domain.Exchange, bool, error) {
	if err := p.Require(RoleMember); err != nil {
		return domain.Exchange{}, false, err
	}
	ex, replayed, err := s.store.Join(ctx, p.Subject, contractID, idem, func(jc JoinContext) (JoinPlan, error) {
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
		plan := JoinPlan{Exchange: ex}
		if jc.Active != nil {
			old := *jc.Active
			old.Supersede(&plan.Exchange, jc.Now)
			plan.Superseded = &old
		}
		receiptID := s.ids.NewID()
		jws, err := s.signer.SignReceipt(receiptOf(plan.Exchange, receiptID, jc.Contract, jc.Recipients))
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
