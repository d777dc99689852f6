package app

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"time"

	"github.com/quidpro/quid/domain"
)

// RewardRepository keeps the reward catalogue and its redemptions.
type RewardRepository interface {
	CreateReward(ctx context.Context, r domain.CatalogueReward) (domain.CatalogueReward, error)
	// EditReward runs fn on the reward under its lock; held is how many
	// units its active redemptions hold. The store keeps StockLeft equal
	// to Stock - held.
	EditReward(ctx context.Context, id string, fn func(r *domain.CatalogueReward, held int64, now time.Time) error) (domain.CatalogueReward, error)
	GetReward(ctx context.Context, id string) (domain.CatalogueReward, error)
	// ListRewards lists newest first; all includes the retired, the not
	// yet (or no longer) valid and the out of stock.
	ListRewards(ctx context.Context, all bool, page Page) ([]domain.CatalogueReward, string, error)
	RedeemReward(ctx context.Context, memberID, rewardID string, code func() (string, error), cancelWindow domain.Duration,
		idem *IdempotencyKey) (RewardRedemptionResult, bool, error)
	CancelRedemption(ctx context.Context, memberID, id string, window domain.Duration) (domain.RewardRedemption, domain.Balance, error)
	ListRedemptions(ctx context.Context, memberID string, window domain.Duration, page Page) ([]domain.RewardRedemption, string, error)
}

// RewardRedemptionResult is what a redemption of a reward did: the
// redemption (with its code), its ledger entry and the balance after it.
type RewardRedemptionResult struct {
	Redemption domain.RewardRedemption
	Entry      domain.Entry
	Balance    domain.Balance
}

// Rewards are the catalogue's use cases: marketers manage rewards, members
// redeem them and may cancel a redemption within CancelWindow.
type Rewards struct {
	store        RewardRepository
	clock        Clock
	ids          IDs
	CancelWindow domain.Duration
}

// DefaultCancelWindow is how long a member may cancel a redemption when
// QUID_REDEMPTION_CANCEL_WINDOW is not set.
var DefaultCancelWindow = domain.MustParseDuration("P14D")

// NewRewards wires the catalogue.
func NewRewards(store RewardRepository, clock Clock, ids IDs) *Rewards {
	return &Rewards{store: store, clock: clock, ids: ids, CancelWindow: DefaultCancelWindow}
}

// CatalogueRewardInput is a reward as a marketer sends it.
type CatalogueRewardInput struct {
	Name, Description, ImageURL string
	Cost                        int64
	Stock, PerMemberLimit       *int64
	ValidFrom, ValidUntil       *time.Time
}

// CreateReward adds a reward to the catalogue (marketers only); with a
// stock, all of it is left.
func (s *Rewards) CreateReward(ctx context.Context, p Principal, in CatalogueRewardInput) (domain.CatalogueReward, error) {
	if err := p.Require(RoleMarketer); err != nil {
		return domain.CatalogueReward{}, err
	}
	now := s.clock.Now().UTC()
	r := domain.CatalogueReward{ID: s.ids.NewID(), Name: in.Name, Description: in.Description, ImageURL: in.ImageURL, Cost: in.Cost,
		Stock: in.Stock, PerMemberLimit: in.PerMemberLimit, ValidFrom: in.ValidFrom, ValidUntil: in.ValidUntil,
		CreatedAt: now, UpdatedAt: now}
	if err := r.Validate(); err != nil {
		return domain.CatalogueReward{}, err
	}
	if r.Stock != nil {
		left := *r.Stock
		r.StockLeft = &left
	}
	return s.store.CreateReward(ctx, r)
}

// EditReward changes a reward that is not retired (marketers only): any
// field may change; a new stock counts the units active redemptions hold
// (it may not be less than them: 409 stock-below-redeemed), a new cost
// applies to redemptions after it, and a lower per-member limit stops
// further redemptions without touching those made.
func (s *Rewards) EditReward(ctx context.Context, p Principal, id string, apply func(*CatalogueRewardInput)) (domain.CatalogueReward, error) {
	if err := p.Require(RoleMarketer); err != nil {
		return domain.CatalogueReward{}, err
	}
	return s.store.EditReward(ctx, id, func(r *domain.CatalogueReward, held int64, now time.Time) error {
		if r.RetiredAt != nil {
			return domain.ErrRewardRetired
		}
		in := CatalogueRewardInput{Name: r.Name, Description: r.Description, ImageURL: r.ImageURL, Cost: r.Cost, Stock: r.Stock,
			PerMemberLimit: r.PerMemberLimit, ValidFrom: r.ValidFrom, ValidUntil: r.ValidUntil}
		apply(&in)
		r.Name, r.Description, r.ImageURL, r.Cost = in.Name, in.Description, in.ImageURL, in.Cost
		r.Stock, r.PerMemberLimit, r.ValidFrom, r.ValidUntil = in.Stock, in.PerMemberLimit, in.ValidFrom, in.ValidUntil
		if err := r.Validate(); err != nil {
			return err
		}
		r.StockLeft = nil
		if r.Stock != nil {
			if *r.Stock < held {
				return domain.ErrStockBelowHeld
			}
			left := *r.Stock - held
			r.StockLeft = &left
		}
		r.UpdatedAt = now
		return nil
	})
}

// RetireReward takes a reward out of the catalogue for good (marketers
// only); redemptions made stay, and may still be cancelled. Retiring a
// retired reward changes nothing.
func (s *Rewards) RetireReward(ctx context.Context, p Principal, id string) (domain.CatalogueReward, error) {
	if err := p.Require(RoleMarketer); err != nil {
		return domain.CatalogueReward{}, err
	}
	return s.store.EditReward(ctx, id, func(r *domain.CatalogueReward, _ int64, now time.Time) error {
		if r.RetiredAt == nil {
			r.RetiredAt, r.UpdatedAt = &now, now
		}
		return nil
	})
}

// Reward is one reward: marketers see any, everyone else only one the
// catalogue lists now (else ErrRewardNotFound, so that a reward not yet
// announced stays unseen).
func (s *Rewards) Reward(ctx context.Context, p Principal, id string) (domain.CatalogueReward, error) {
	r, err := s.store.GetReward(ctx, id)
	if err != nil {
		return domain.CatalogueReward{}, err
	}
	if p.Role != RoleMarketer && r.AvailableAt(s.clock.Now()) != nil {
		return domain.CatalogueReward{}, domain.ErrRewardNotFound
	}
	return r, nil
}

// List is one page of the catalogue: for marketers every reward, for
// everyone else those that can be redeemed now (not retired, valid now,
// in stock).
func (s *Rewards) List(ctx context.Context, p Principal, page Page) ([]domain.CatalogueReward, string, error) {
	return s.store.ListRewards(ctx, p.Role == RoleMarketer, page.Normalised())
}

// Redeem spends the reward's cost from the member's points (lots first to
// expire first), takes a unit of its stock and a place of its per-member
// limit, all in one transaction, and hands back a fresh redemption code.
func (s *Rewards) Redeem(ctx context.Context, p Principal, rewardID string, idem *IdempotencyKey) (RewardRedemptionResult, bool, error) {
	if err := p.Require(RoleMember); err != nil {
		return RewardRedemptionResult{}, false, err
	}
	return s.store.RedeemReward(ctx, p.Subject, rewardID, NewRedemptionCode, s.CancelWindow, idem)
}

// Cancel reverses one of the member's redemptions within CancelWindow of
// it: its points return (to the lots it took them from, which keep their
// expiry), its stock unit and its place in the per-member limit too.
func (s *Rewards) Cancel(ctx context.Context, p Principal, id string) (domain.RewardRedemption, domain.Balance, error) {
	if err := p.Require(RoleMember); err != nil {
		return domain.RewardRedemption{}, domain.Balance{}, err
	}
	return s.store.CancelRedemption(ctx, p.Subject, id, s.CancelWindow)
}

// Redemptions is one page of the member's redemptions of rewards, newest first.
func (s *Rewards) Redemptions(ctx context.Context, p Principal, page Page) ([]domain.RewardRedemption, string, error) {
	if err := p.Require(RoleMember); err != nil {
		return nil, "", err
	}
	return s.store.ListRedemptions(ctx, p.Subject, s.CancelWindow, page.Normalised())
}

// RedemptionCodeBits is the entropy of a redemption code.
const RedemptionCodeBits = 128

var codeEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewRedemptionCode is 128 bits from crypto/rand in unpadded RFC 4648
// base32 (26 characters A–Z, 2–7): unguessable, and readable aloud
// without confusing 0/O or 1/I.
func NewRedemptionCode() (string, error) {
	var b [RedemptionCodeBits / 8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("redemption code: %w", err)
	}
	return codeEncoding.EncodeToString(b[:]), nil
}
