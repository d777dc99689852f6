package app

import (
	"context"
	"fmt"

	"github.com/quidpro/quid/domain"
)

// ConsentRecord is everything one exchange's consent record (ISO/IEC TS
// 27560) shows: the exchange with its contract, the recipients it names,
// and its own consent-log events, oldest first.
type ConsentRecord struct {
	View       ExchangeView
	Recipients map[string]domain.Recipient
	Events     []ConsentEvent
}

// Record is the consent record of one of the member's own exchanges;
// another member's exchange is not found, as in Get.
func (s *Exchanges) Record(ctx context.Context, p Principal, id string) (ConsentRecord, error) {
	v, err := s.Get(ctx, p, id)
	if err != nil {
		return ConsentRecord{}, err
	}
	recipients, err := s.recipients.RecipientsByID(ctx, v.Contract.RecipientIDs())
	if err != nil {
		return ConsentRecord{}, fmt.Errorf("look up recipients: %w", err)
	}
	log, err := s.store.ConsentLog(ctx, p.Subject)
	if err != nil {
		return ConsentRecord{}, fmt.Errorf("consent log: %w", err)
	}
	out := ConsentRecord{View: v, Recipients: recipients}
	for _, e := range log {
		if e.ExchangeID == id {
			out.Events = append(out.Events, e)
		}
	}
	return out, nil
}
