package app

import (
	"context"
	"fmt"
	"time"

	"github.com/quidpro/quid/domain"
)

// RenewalContext is what a renewal decides from, read under the member's
// lock: the exchange as stored (lapsed consent already expired), its
// version, the family's newest published version above it (nil if none),
// how many renewals came before, the recipients the receipt names and the
// database clock.
type RenewalContext struct {
	Exchange   domain.Exchange
	Contract   domain.Contract
	Newer      *domain.Contract
	Renewals   int
	Recipients map[string]domain.Recipient
	Now        time.Time
}

// RenewRequest is a member's request to renew: GPC is the Global Privacy
// Control signal (Sec-GPC: 1) the request carried, AffirmDespiteGPC the
// member's explicit wish to renew anyway, as for a join.
type RenewRequest struct {
	GPC              bool
	AffirmDespiteGPC bool
}

// Renew is RenewWith without privacy signals.
func (s *Exchanges) Renew(ctx context.Context, p Principal, id string) (domain.Exchange, error) {
	return s.RenewWith(ctx, p, id, RenewRequest{})
}

// RenewWith extends a consent with a duration by one more duration on the
// same terms (the same terms hash) and issues a new signed receipt. It is
// a consent event (renewed), recording whether the request carried GPC. A
// family that has a newer published version is 409 newer-version naming
// it; consent that is not active, has no duration, is on a retired version
// or whose renewal window (the contract's renewal_notice before expiry) is
// not open yet is 409 too. Renewal is consent given again, so the join's
// GPC rule applies: with the signal, terms that share with a third party
// or for advertising are renewed only when the member affirms it, else 409
// gpc-conflict (domain.Catalog.CheckGPC).
func (s *Exchanges) RenewWith(ctx context.Context, p Principal, id string, in RenewRequest) (domain.Exchange, error) {
	if err := p.Require(RoleMember); err != nil {
		return domain.Exchange{}, err
	}
	return s.store.RenewExchange(ctx, p.Subject, id, in.GPC, func(rc RenewalContext) (domain.Exchange, error) {
		e := rc.Exchange
		if err := e.CanRenew(rc.Contract, rc.Newer, rc.Now); err != nil {
			return e, err
		}
		if err := s.catalog.CheckGPC(in.GPC, in.AffirmDespiteGPC, rc.Contract.Terms(), rc.Recipients); err != nil {
			return e, err
		}
		if err := e.Renew(rc.Contract, rc.Newer, rc.Renewals, rc.Now); err != nil {
			return e, err
		}
		receiptID := s.ids.NewID()
		r := receiptOf(e, receiptID, rc.Contract, rc.Recipients, s.catalog)
		now := rc.Now
		r.IssuedAt, r.RenewedAt, r.Renewal = now, &now, rc.Renewals+1
		jws, err := s.signer.SignReceipt(r)
		if err != nil {
			return e, fmt.Errorf("sign renewal receipt: %w", err)
		}
		e.AttachReceipt(receiptID, jws)
		return e, nil
	})
}

// ExpiryReminders sends exchange.expiring to the brand (the contract's
// first-party recipients) once per expiry of every consent whose renewal
// window has opened, set-based and safe on many replicas at once.
type ExpiryReminders interface {
	RemindExpiring(ctx context.Context) (int64, error)
}
