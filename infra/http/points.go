package http

import (
	"encoding/json"

	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/domain"
)

type entryDTO struct {
	ID          string       `json:"id"`
	Kind        string       `json:"kind"`
	Points      int64        `json:"points"`
	ExchangeID  *string      `json:"exchange_id"`
	ContractID  *string      `json:"contract_id"`
	TermsHash   *string      `json:"terms_hash"`
	PeriodStart *string      `json:"period_start"`
	PeriodEnd   *string      `json:"period_end"`
	Reference   *string      `json:"reference,omitempty"`
	CreatedAt   string       `json:"created_at"`
	Postings    []postingDTO `json:"postings"`
}

type postingDTO struct {
	Account string `json:"account"`
	Amount  int64  `json:"amount"`
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func entryOf(e domain.Entry) entryDTO {
	d := entryDTO{ID: e.ID, Kind: string(e.Kind), Points: e.Points, ExchangeID: nilIfEmpty(e.ExchangeID),
		ContractID: nilIfEmpty(e.ContractID), TermsHash: nilIfEmpty(e.TermsHash), PeriodStart: optTime(e.PeriodStart),
		PeriodEnd: optTime(e.PeriodEnd), Reference: nilIfEmpty(e.Reference), CreatedAt: timeText(e.CreatedAt),
		Postings: make([]postingDTO, 0, len(e.Postings))}
	for _, p := range e.Postings {
		d.Postings = append(d.Postings, postingDTO{Account: string(p.Account), Amount: p.Amount})
	}
	return d
}

type pointsDTO struct {
	Available  int64         `json:"available"`
	Pending    int64         `json:"pending"`
	Expiring   []expiringDTO `json:"expiring"`
	Items      []entryDTO    `json:"items"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// expiringDTO is "N points expire on D".
type expiringDTO struct {
	Points int64  `json:"points"`
	On     string `json:"on"`
}

func (h *handlers) expiring(c *fiber.Ctx) ([]expiringDTO, error) {
	xs, err := h.svc.Exchanges.Expiring(c.UserContext(), principal(c))
	out := make([]expiringDTO, 0, len(xs))
	for _, x := range xs {
		out = append(out, expiringDTO{Points: x.Points, On: timeText(x.On)})
	}
	return out, err
}

func (h *handlers) points(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	b, entries, next, err := h.svc.Exchanges.Points(c.UserContext(), principal(c), page)
	if err != nil {
		return err
	}
	exp, err := h.expiring(c)
	if err != nil {
		return err
	}
	out := pointsDTO{Available: b.Available, Pending: b.Pending, Expiring: exp, Items: make([]entryDTO, 0, len(entries)), NextCursor: next}
	for _, e := range entries {
		out.Items = append(out.Items, entryOf(e))
	}
	return c.JSON(out)
}

type redeemIn struct {
	Points    int64  `json:"points" validate:"required,gte=1"`
	Reference string `json:"reference" validate:"required,max=200"`
}

type redemptionDTO struct {
	Entry   entryDTO   `json:"entry"`
	Balance balanceDTO `json:"balance"`
	// Redemption is the reward redeemed, with its code; absent for a
	// points-only redemption.
	Redemption *rewardRedemptionDTO `json:"redemption,omitempty"`
}

// redeem answers POST /v1/me/redemptions: a body naming reward_id redeems
// a reward of the catalogue (redeemReward); otherwise points and reference
// spend points with a partner, as before the catalogue.
func (h *handlers) redeem(c *fiber.Ctx) error {
	var probe map[string]json.RawMessage
	if json.Unmarshal(c.Body(), &probe) == nil && h.svc.Rewards != nil {
		if _, ok := probe["reward_id"]; ok {
			return h.redeemReward(c)
		}
	}
	var in redeemIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	idem, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	e, b, replayed, err := h.svc.Exchanges.Redeem(c.UserContext(), principal(c), in.Points, in.Reference, idem)
	if err != nil {
		return err
	}
	if replayed {
		c.Set("Idempotent-Replayed", "true")
	}
	return c.Status(fiber.StatusCreated).JSON(redemptionDTO{Entry: entryOf(e), Balance: balanceDTO(b)})
}
