package http

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

type newerVersionDTO struct {
	ContractID string `json:"contract_id"`
	Version    int    `json:"version"`
	Material   bool   `json:"material"`
}

type exchangeDTO struct {
	ID           string           `json:"id"`
	ContractID   string           `json:"contract_id"`
	FamilyID     string           `json:"family_id"`
	Version      int              `json:"version,omitempty"`
	Title        string           `json:"title,omitempty"`
	TermsHash    string           `json:"terms_hash"`
	Status       string           `json:"status"`
	JoinedAt     string           `json:"joined_at"`
	ExpiresAt    *string          `json:"expires_at"`
	EndedAt      *string          `json:"ended_at"`
	CancelledAt  *string          `json:"cancelled_at,omitempty"`
	Bonus        *bonusDTO        `json:"bonus"`
	PointsEarned *int64           `json:"points_earned,omitempty"`
	NewerVersion *newerVersionDTO `json:"newer_version,omitempty"`
	Renewable    *bool            `json:"renewable,omitempty"`
	// RewardValue is the contract's reward in money (member views only;
	// null while no programme identity gives points a value).
	RewardValue *rewardValueDTO `json:"reward_value,omitempty"`
	Receipt     string          `json:"receipt,omitempty"`
}

type bonusDTO struct {
	Points  int64   `json:"points"`
	State   string  `json:"state"`
	VestsAt *string `json:"vests_at"`
}

func exchangeOf(ex domain.Exchange) exchangeDTO {
	e := ex.State()
	d := exchangeDTO{ID: e.ID, ContractID: e.ContractID, FamilyID: e.FamilyID, TermsHash: e.TermsHash,
		Status: string(e.Status), JoinedAt: timeText(e.JoinedAt), ExpiresAt: optTime(e.ExpiresAt), EndedAt: optTime(e.EndedAt)}
	if e.Status == domain.ExchangeCancelled {
		d.CancelledAt = d.EndedAt
	}
	if e.BonusState != domain.BonusNone {
		d.Bonus = &bonusDTO{Points: e.BonusPoints, State: string(e.BonusState), VestsAt: optTime(e.BonusVestsAt)}
	}
	return d
}

func exchangeViewOf(v app.ExchangeView, values map[string]domain.RewardValue) exchangeDTO {
	d := exchangeOf(v.Exchange)
	rv, ok := values[v.Contract.ID()]
	d.RewardValue = rewardValueOf(rv, ok)
	d.Version, d.Title = v.Contract.Version(), v.Contract.Terms().Title
	earned := v.PointsEarned
	d.PointsEarned = &earned
	if n := v.NewerVersion; n != nil {
		d.NewerVersion = &newerVersionDTO{n.ContractID, n.Version, n.Material}
	}
	renewable := v.Renewable
	d.Renewable = &renewable
	return d
}

func (h *handlers) listExchanges(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	vs, next, err := h.svc.Exchanges.List(c.UserContext(), principal(c), page)
	if err != nil {
		return err
	}
	out := list[exchangeDTO]{Items: make([]exchangeDTO, 0, len(vs)), NextCursor: next}
	values, err := h.rewardValuesOf(c.UserContext(), vs)
	if err != nil {
		return err
	}
	for _, v := range vs {
		out.Items = append(out.Items, exchangeViewOf(v, values))
	}
	return c.JSON(out)
}

func (h *handlers) getExchange(c *fiber.Ctx) error {
	id, err := idParam(c, errExchangeNotFound)
	if err != nil {
		return err
	}
	v, err := h.svc.Exchanges.Get(c.UserContext(), principal(c), id)
	if err != nil {
		return err
	}
	values, err := h.svc.Contracts.RewardValues(c.UserContext(), v.Contract)
	if err != nil {
		return err
	}
	d := exchangeViewOf(v, values)
	d.Receipt = v.Exchange.Receipt()
	return c.JSON(d)
}

func (h *handlers) cancelExchange(c *fiber.Ctx) error {
	id, err := idParam(c, errExchangeNotFound)
	if err != nil {
		return err
	}
	e, err := h.svc.Exchanges.Cancel(c.UserContext(), principal(c), id)
	if err != nil {
		return err
	}
	return c.JSON(exchangeOf(e))
}

// rewardValuesOf is the reward in money of each exchange's contract.
func (h *handlers) rewardValuesOf(ctx context.Context, vs []app.ExchangeView) (map[string]domain.RewardValue, error) {
	cs := make([]domain.Contract, 0, len(vs))
	for _, v := range vs {
		cs = append(cs, v.Contract)
	}
	return h.svc.Contracts.RewardValues(ctx, cs...)
}
