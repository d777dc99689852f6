package app

import (
	"context"
	"fmt"
	"time"

	"github.com/quidpro/quid/domain"
)

// ExchangeView is an exchange with what the member sees beside it.
type ExchangeView struct {
	Exchange     domain.Exchange
	Contract     domain.Contract
	PointsEarned int64
	NewerVersion *NewerVersion
	// Renewable says whether POST /v1/me/exchanges/{id}/renew would extend
	// this consent now (domain.Exchange.CanRenew).
	Renewable bool
}

// NewerVersion tells the app to ask the member to re-consent.
type NewerVersion struct {
	ContractID string
	Version    int
	Material   bool
}

// ExchangeRepository stores exchanges, the consent log and the ledger.
type ExchangeRepository interface {
	Enrolment
	// Join locks the member, reads the JoinContext, lets plan decide and
	// saves the outcome with its consent events and ledger entries, in one
	// transaction. replayed is true when idem matched an earlier request.
	Join(ctx context.Context, memberID, contractID string, idem *IdempotencyKey, plan func(JoinContext) (JoinPlan, error)) (ex domain.Exchange, replayed bool, err error)
	// UpdateExchange locks the member and the exchange and saves what fn
	// changed, with the voided bonus if any, under the database clock.
	UpdateExchange(ctx context.Context, memberID, exchangeID, actor string, fn func(e *domain.Exchange, now time.Time) (voided int64, changed bool)) (domain.Exchange, error)
	GetExchange(ctx context.Context, memberID, exchangeID string) (domain.Exchange, error)
	ListExchanges(ctx context.Context, memberID string, page Page) ([]domain.Exchange, string, error)
	PointsEarned(ctx context.Context, exchangeIDs []string) (map[string]int64, error)
	Redeem(ctx context.Context, memberID string, points int64, reference string, idem *IdempotencyKey,
		fn func(b domain.Balance) (domain.Balance, error)) (domain.Entry, domain.Balance, bool, error)
	Points(ctx context.Context, memberID string, page Page) (domain.Balance, []domain.Entry, string, error)
	// ExpiringPoints lists, soonest first, the first limit times at which
	// some of the member's available points expire, with how many.
	ExpiringPoints(ctx context.Context, memberID string, limit int) ([]domain.Expiring, error)
	// ConsentLog lists every consent event of the member, oldest first.
	ConsentLog(ctx context.Context, memberID string) ([]ConsentEvent, error)
	// RenewExchange locks the member, expires lapsed consent, locks the
	// exchange, takes its version's shared lock (as a join does), reads
	// the RenewalContext, lets plan renew, and saves the new expiry, the
	// period grid and receipt with a renewed consent event, in one
	// transaction.
	RenewExchange(ctx context.Context, memberID, exchangeID string, gpc bool, plan func(RenewalContext) (domain.Exchange, error)) (domain.Exchange, error)
}

// ConsentEvent is one line of the append-only consent log.
type ConsentEvent struct {
	ExchangeID string
	ContractID string
	TermsHash  string
	Kind       string
	Actor      string
	At         time.Time
	GPC        bool // the consent was given with Global Privacy Control on
}

// Exchanges is the member's side of consent: join (join.go), cancel, look,
// redeem and read points (points.go), and the member's own statement
// (me_transparency.go).
type Exchanges struct {
	store      ExchangeRepository
	contracts  ContractRepository
	recipients RecipientRepository
	signer     ReceiptSigner
	ids        IDs
	catalog    domain.Catalog
}

// NewExchanges wires the member's use cases: store keeps exchanges and the
// ledger, contracts and recipients are read for views and receipts, signer
// signs consent receipts, ids mints exchange and receipt ids, and catalog
// tells a join which stored attribute each shared category needs.
func NewExchanges(store ExchangeRepository, contracts ContractRepository, recipients RecipientRepository, signer ReceiptSigner, ids IDs,
	catalog domain.Catalog) *Exchanges {
	return &Exchanges{store: store, contracts: contracts, recipients: recipients, signer: signer, ids: ids, catalog: catalog}
}

// Cancel ends consent at once; cancelling again changes nothing.
func (s *Exchanges) Cancel(ctx context.Context, p Principal, id string) (domain.Exchange, error) {
	if err := p.Require(RoleMember); err != nil {
		return domain.Exchange{}, err
	}
	return s.store.UpdateExchange(ctx, p.Subject, id, "member", func(e *domain.Exchange, now time.Time) (int64, bool) {
		return e.Cancel(now)
	})
}

// Get returns one of the member's own exchanges; another's is not found.
func (s *Exchanges) Get(ctx context.Context, p Principal, id string) (ExchangeView, error) {
	if err := p.Require(RoleMember); err != nil {
		return ExchangeView{}, err
	}
	e, err := s.store.GetExchange(ctx, p.Subject, id)
	if err != nil {
		return ExchangeView{}, err
	}
	views, err := s.views(ctx, []domain.Exchange{e})
	if err != nil {
		return ExchangeView{}, err
	}
	return views[0], nil
}

func (s *Exchanges) List(ctx context.Context, p Principal, page Page) ([]ExchangeView, string, error) {
	if err := p.Require(RoleMember); err != nil {
		return nil, "", err
	}
	if err := s.store.RequireEnrolled(ctx, p.Subject); err != nil {
		return nil, "", err
	}
	es, next, err := s.store.ListExchanges(ctx, p.Subject, page.Normalised())
	if err != nil {
		return nil, "", err
	}
	views, err := s.views(ctx, es)
	return views, next, err
}

// views adds each exchange's contract, points earned and, for an active
// exchange, the newer version the member could re-consent to.
func (s *Exchanges) views(ctx context.Context, es []domain.Exchange) ([]ExchangeView, error) {
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.ID()
	}
	earned, err := s.store.PointsEarned(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("points earned: %w", err)
	}
	contracts := map[string]domain.Contract{}
	latest := map[string]*domain.Contract{}
	now := time.Now()
	out := make([]ExchangeView, 0, len(es))
	for _, e := range es {
		c, ok := contracts[e.ContractID()]
		if !ok {
			if c, err = s.contracts.GetContract(ctx, e.ContractID()); err != nil {
				return nil, fmt.Errorf("contract of exchange %s: %w", e.ID(), err)
			}
			contracts[e.ContractID()] = c
		}
		v := ExchangeView{Exchange: e, Contract: c, PointsEarned: earned[e.ID()]}
		if e.IsActive() {
			newest, seen := latest[e.FamilyID()]
			if !seen {
				newest, err = s.newestPublished(ctx, c)
				if err != nil {
					return nil, fmt.Errorf("newest version of contract %s: %w", c.ID(), err)
				}
				latest[e.FamilyID()] = newest
			}
			var newer *domain.Contract
			if newest != nil && newest.Version() > c.Version() {
				ch := domain.CompareTerms(c.Version(), c.Terms(), newest.Terms(), nil)
				v.NewerVersion = &NewerVersion{ContractID: newest.ID(), Version: newest.Version(), Material: ch.Material}
				newer = newest
			}
			v.Renewable = e.Renewable(c, newer, now)
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Exchanges) newestPublished(ctx context.Context, c domain.Contract) (*domain.Contract, error) {
	for v := c.Version() + 1; ; v++ {
		next, ok, err := s.contracts.ContractVersion(ctx, c.FamilyID(), v)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, nil
		}
		if next.Joinable() {
			return &next, nil
		}
	}
}
