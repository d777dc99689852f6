package http

import (
	"context"
	"fmt"
	"time"

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
	// Received is what the member got so far beside what the brand
	// estimated their data to be worth over the same time (member views).
	Received *receivedDTO `json:"received,omitempty"`
	Receipt  string       `json:"receipt,omitempty"`
}

// receivedDTO sets the points an exchange earned so far, in money, beside
// the contract's value estimate prorated exactly to the same time (from
// joining to the end of consent, or to now while it lasts): the two sides
// of the exchange (Cal. Code Regs. tit. 11 §7016(b)(5)). Money figures are
// decimal strings with the currency's minor units; they are null while the
// contract has no value estimate or points have no value.
type receivedDTO struct {
	From           string  `json:"from"`
	To             string  `json:"to"`
	Points         int64   `json:"points"`
	Currency       *string `json:"currency"`
	PointsValue    *string `json:"points_value"`
	EstimatedValue *string `json:"estimated_value"`
	Plain          string  `json:"plain"`
}

// receivedOf is what v earned by now, beside the estimate for that time.
func receivedOf(v app.ExchangeView, rv domain.RewardValue, valued bool, now time.Time) *receivedDTO {
	e := v.Exchange.State()
	to := now
	if e.EndedAt != nil && e.EndedAt.Before(now) {
		to = *e.EndedAt
	}
	d := &receivedDTO{From: timeText(e.JoinedAt), To: timeText(to), Points: v.PointsEarned}
	d.Plain = fmt.Sprintf("You have earned %d points so far", v.PointsEarned)
	if valued {
		worth := rv.PointsWorth(v.PointsEarned)
		d.Currency, d.PointsValue = &rv.Currency, &worth
		d.Plain += fmt.Sprintf(", worth %s %s", worth, rv.Currency)
	}
	if est := v.Contract.Terms().Value; est != nil && valued && est.Currency == rv.Currency {
		if amount, err := est.Over(e.JoinedAt, to, rv.Digits); err == nil {
			d.EstimatedValue = &amount
			d.Plain += fmt.Sprintf("; over the same time the brand estimates your data is worth %s %s to it (%s %s per %s)",
				amount, est.Currency, est.Amount, est.Currency, everyDuration(est.Per))
		}
	}
	d.Plain += "."
	return d
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
	d.Received = receivedOf(v, rv, ok, time.Now())
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
