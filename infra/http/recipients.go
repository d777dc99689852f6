package http

import (
	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

type recipientIn struct {
	Name             string `json:"name" validate:"required,max=200"`
	Kind             string `json:"kind" validate:"required,oneof=first_party third_party"`
	Country          string `json:"country" validate:"required,iso3166_1_alpha2"`
	PrivacyPolicyURL string `json:"privacy_policy_url" validate:"required,max=2000"`
}

type recipientDTO struct {
	ID               string `json:"id"`
	Name             string `json:"name"`
	Kind             string `json:"kind"`
	Country          string `json:"country"`
	PrivacyPolicyURL string `json:"privacy_policy_url"`
	CreatedAt        string `json:"created_at"`
}

func recipientOf(r domain.Recipient) recipientDTO {
	return recipientDTO{r.ID, r.Name, string(r.Kind), r.Country, r.PrivacyPolicyURL, timeText(r.CreatedAt)}
}

func (h *handlers) createRecipient(c *fiber.Ctx) error {
	var in recipientIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	r, err := h.svc.Contracts.CreateRecipient(c.UserContext(), principal(c), app.RecipientInput(in))
	if err != nil {
		return err
	}
	c.Location(resourcePath("/v1/recipients", r.ID))
	return c.Status(fiber.StatusCreated).JSON(recipientOf(r))
}

func (h *handlers) listRecipients(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	rs, next, err := h.svc.Contracts.ListRecipients(c.UserContext(), principal(c), page)
	if err != nil {
		return err
	}
	out := list[recipientDTO]{Items: make([]recipientDTO, 0, len(rs)), NextCursor: next}
	for _, r := range rs {
		out.Items = append(out.Items, recipientOf(r))
	}
	return c.JSON(out)
}

func (h *handlers) getRecipient(c *fiber.Ctx) error {
	id, err := idParam(c, domain.ErrRecipientNotFound)
	if err != nil {
		return err
	}
	r, err := h.svc.Contracts.GetRecipient(c.UserContext(), principal(c), id)
	if err != nil {
		return err
	}
	return c.JSON(recipientOf(r))
}
