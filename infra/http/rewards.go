package http

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// rewardRoutes are the reward catalogue (issue 14): marketers manage it,
// everyone reads what can be redeemed now, members redeem (POST
// /v1/me/redemptions with reward_id, in redeem) and cancel.
func (h *handlers) rewardRoutes(v1 fiber.Router, auth roleGate, optional fiber.Handler) {
	marketer, member := auth(app.RoleMarketer), auth(app.RoleMember)
	v1.Get("/rewards", optional, h.listRewards)
	v1.Post("/rewards", marketer, h.createReward)
	v1.Get("/rewards/:id", optional, h.getReward)
	v1.Patch("/rewards/:id", marketer, h.patchReward)
	v1.Post("/rewards/:id/retire", marketer, noBody, h.retireReward)
	v1.Get("/me/redemptions", member, h.listRedemptions)
	v1.Post("/me/redemptions/:id/cancel", member, noBody, h.cancelRedemption)
}

// catalogueRewardIn is the body of POST /v1/rewards. Bounds beyond the tags are
// domain.CatalogueReward.Validate's.
type catalogueRewardIn struct {
	Name           string  `json:"name" validate:"required,max=200"`
	Description    string  `json:"description" validate:"max=2000"`
	ImageURL       *string `json:"image_url" validate:"omitempty,max=2000"`
	Cost           *int64  `json:"cost" validate:"required"`
	Stock          *int64  `json:"stock"`
	PerMemberLimit *int64  `json:"per_member_limit"`
	ValidFrom      *string `json:"valid_from"`
	ValidUntil     *string `json:"valid_until"`
}

// rewardPatchIn is the body of PATCH /v1/rewards/{id}: each field sent
// replaces the reward's; null clears the optional ones (no image, stock
// unlimited, no per-member limit, no start or end).
type rewardPatchIn struct {
	Name        *string `json:"name" validate:"omitempty,max=200"`
	Description *string `json:"description" validate:"omitempty,max=2000"`
	// ImageURL is a pointer, not a nullable, for its length tag; a null
	// sent for it is seen in the raw body (imageSet).
	ImageURL       *string          `json:"image_url" validate:"omitempty,max=2000"`
	Cost           *int64           `json:"cost"`
	Stock          nullable[int64]  `json:"stock"`
	PerMemberLimit nullable[int64]  `json:"per_member_limit"`
	ValidFrom      nullable[string] `json:"valid_from"`
	ValidUntil     nullable[string] `json:"valid_until"`
}

type catalogueRewardDTO struct {
	ID             string  `json:"id"`
	Name           string  `json:"name"`
	Description    string  `json:"description"`
	ImageURL       *string `json:"image_url"`
	Cost           int64   `json:"cost"`
	Stock          *int64  `json:"stock"`
	StockLeft      *int64  `json:"stock_left"`
	PerMemberLimit *int64  `json:"per_member_limit"`
	ValidFrom      *string `json:"valid_from"`
	ValidUntil     *string `json:"valid_until"`
	RetiredAt      *string `json:"retired_at"`
	CreatedAt      string  `json:"created_at"`
	UpdatedAt      string  `json:"updated_at"`
}

func catalogueRewardOf(r domain.CatalogueReward) catalogueRewardDTO {
	return catalogueRewardDTO{ID: r.ID, Name: r.Name, Description: r.Description, ImageURL: nilIfEmpty(r.ImageURL), Cost: r.Cost,
		Stock: r.Stock, StockLeft: r.StockLeft, PerMemberLimit: r.PerMemberLimit, ValidFrom: optTime(r.ValidFrom),
		ValidUntil: optTime(r.ValidUntil), RetiredAt: optTime(r.RetiredAt), CreatedAt: timeText(r.CreatedAt), UpdatedAt: timeText(r.UpdatedAt)}
}

type rewardRedemptionDTO struct {
	ID               string  `json:"id"`
	RewardID         string  `json:"reward_id"`
	RewardName       string  `json:"reward_name"`
	Code             string  `json:"code"`
	Points           int64   `json:"points"`
	Status           string  `json:"status"`
	EntryID          string  `json:"entry_id"`
	ReversalID       *string `json:"reversal_id"`
	CreatedAt        string  `json:"created_at"`
	CancelledAt      *string `json:"cancelled_at"`
	CancellableUntil string  `json:"cancellable_until"`
}

func rewardRedemptionOf(r domain.RewardRedemption) rewardRedemptionDTO {
	return rewardRedemptionDTO{ID: r.ID, RewardID: r.RewardID, RewardName: r.RewardName, Code: r.Code, Points: r.Points,
		Status: r.Status, EntryID: r.EntryID, ReversalID: nilIfEmpty(r.ReversalID), CreatedAt: timeText(r.CreatedAt),
		CancelledAt: optTime(r.CancelledAt), CancellableUntil: timeText(r.CancellableUntil)}
}

// timestampIn reads an RFC 3339 timestamp with its offset (years 0001 to
// 9999), else 422 at ptr.
func timestampIn(ptr string, s *string) (*time.Time, error) {
	if s == nil {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil || t.Year() < 1 {
		return nil, domain.Invalid(ptr, "must be an RFC 3339 timestamp with a time zone offset, such as 2027-01-31T00:00:00Z")
	}
	t = t.UTC()
	return &t, nil
}

func (h *handlers) createReward(c *fiber.Ctx) error {
	var in catalogueRewardIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	from, err := timestampIn("/valid_from", in.ValidFrom)
	if err != nil {
		return err
	}
	until, err := timestampIn("/valid_until", in.ValidUntil)
	if err != nil {
		return err
	}
	r, err := h.svc.Rewards.CreateReward(c.UserContext(), principal(c), app.CatalogueRewardInput{Name: in.Name,
		Description: in.Description, ImageURL: deref(in.ImageURL), Cost: *in.Cost, Stock: in.Stock, PerMemberLimit: in.PerMemberLimit,
		ValidFrom: from, ValidUntil: until})
	if err != nil {
		return err
	}
	c.Location(resourcePath("/v1/rewards", r.ID))
	return c.Status(fiber.StatusCreated).JSON(catalogueRewardOf(r))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// notNullReward are the PATCH fields every reward has: null is refused
// for them rather than read as "leave unchanged".
var notNullReward = []string{"name", "description", "cost"}

func (h *handlers) patchReward(c *fiber.Ctx) error {
	id, err := idParam(c, domain.ErrRewardNotFound)
	if err != nil {
		return err
	}
	var p rewardPatchIn
	if err := decodeJSON(c, &p); err != nil {
		return err
	}
	var top map[string]json.RawMessage
	var imageSet bool
	if json.Unmarshal(c.Body(), &top) == nil {
		_, imageSet = top["image_url"]
		for _, k := range notNullReward {
			if raw, ok := top[k]; ok && strings.TrimSpace(string(raw)) == "null" {
				return domain.Invalid("/"+k, "must not be null: leave the field out to keep it")
			}
		}
	}
	from, err := timestampIn("/valid_from", p.ValidFrom.Value)
	if err != nil {
		return err
	}
	until, err := timestampIn("/valid_until", p.ValidUntil.Value)
	if err != nil {
		return err
	}
	r, err := h.svc.Rewards.EditReward(c.UserContext(), principal(c), id, func(in *app.CatalogueRewardInput) {
		if p.Name != nil {
			in.Name = *p.Name
		}
		if p.Description != nil {
			in.Description = *p.Description
		}
		if imageSet {
			in.ImageURL = deref(p.ImageURL)
		}
		if p.Cost != nil {
			in.Cost = *p.Cost
		}
		if p.Stock.Set {
			in.Stock = p.Stock.Value
		}
		if p.PerMemberLimit.Set {
			in.PerMemberLimit = p.PerMemberLimit.Value
		}
		if p.ValidFrom.Set {
			in.ValidFrom = from
		}
		if p.ValidUntil.Set {
			in.ValidUntil = until
		}
	})
	if err != nil {
		return err
	}
	return c.JSON(catalogueRewardOf(r))
}

func (h *handlers) retireReward(c *fiber.Ctx) error {
	id, err := idParam(c, domain.ErrRewardNotFound)
	if err != nil {
		return err
	}
	r, err := h.svc.Rewards.RetireReward(c.UserContext(), principal(c), id)
	if err != nil {
		return err
	}
	return c.JSON(catalogueRewardOf(r))
}

func (h *handlers) getReward(c *fiber.Ctx) error {
	id, err := idParam(c, domain.ErrRewardNotFound)
	if err != nil {
		return err
	}
	r, err := h.svc.Rewards.Reward(c.UserContext(), principal(c), id)
	if err != nil {
		return err
	}
	return c.JSON(catalogueRewardOf(r))
}

func (h *handlers) listRewards(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	rs, next, err := h.svc.Rewards.List(c.UserContext(), principal(c), page)
	if err != nil {
		return err
	}
	out := list[catalogueRewardDTO]{Items: make([]catalogueRewardDTO, 0, len(rs)), NextCursor: next}
	for _, r := range rs {
		out.Items = append(out.Items, catalogueRewardOf(r))
	}
	return c.JSON(out)
}

func (h *handlers) listRedemptions(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	rs, next, err := h.svc.Rewards.Redemptions(c.UserContext(), principal(c), page)
	if err != nil {
		return err
	}
	out := list[rewardRedemptionDTO]{Items: make([]rewardRedemptionDTO, 0, len(rs)), NextCursor: next}
	for _, r := range rs {
		out.Items = append(out.Items, rewardRedemptionOf(r))
	}
	return c.JSON(out)
}

var errRedemptionNotFound = domain.ErrRedemptionNotFound

type cancelledRedemptionDTO struct {
	Redemption rewardRedemptionDTO `json:"redemption"`
	Balance    balanceDTO          `json:"balance"`
}

func (h *handlers) cancelRedemption(c *fiber.Ctx) error {
	id, err := idParam(c, errRedemptionNotFound)
	if err != nil {
		return err
	}
	r, b, err := h.svc.Rewards.Cancel(c.UserContext(), principal(c), id)
	if err != nil {
		return err
	}
	return c.JSON(cancelledRedemptionDTO{Redemption: rewardRedemptionOf(r), Balance: balanceDTO(b)})
}

// rewardRedeemIn is the body of POST /v1/me/redemptions that redeems a
// reward of the catalogue (a points-only redemption sends points and
// reference instead: redeemIn).
type rewardRedeemIn struct {
	RewardID string `json:"reward_id" validate:"required"`
}

// redeemReward answers POST /v1/me/redemptions with reward_id. A reward id
// that cannot be one is 422; one no reward has is 404.
func (h *handlers) redeemReward(c *fiber.Ctx) error {
	var in rewardRedeemIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if !isUUID(in.RewardID) {
		return domain.Invalid("/reward_id", "must be a reward id (a UUID)")
	}
	idem, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	res, replayed, err := h.svc.Rewards.Redeem(c.UserContext(), principal(c), strings.ToLower(in.RewardID), idem)
	if err != nil {
		return err
	}
	if replayed {
		c.Set("Idempotent-Replayed", "true")
	}
	rd := rewardRedemptionOf(res.Redemption)
	return c.Status(fiber.StatusCreated).JSON(redemptionDTO{Entry: entryOf(res.Entry), Balance: balanceDTO(res.Balance), Redemption: &rd})
}
