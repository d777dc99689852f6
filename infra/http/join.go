package http

import (
	"strings"

	"github.com/gofiber/fiber/v2"
)

type joinIn struct {
	ContractID string `json:"contract_id" validate:"required,uuid"`
}

// join is POST /v1/me/exchanges: the member consents to a published version
// (app/join.go), with or without an Idempotency-Key.
func (h *handlers) join(c *fiber.Ctx) error {
	var in joinIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	idem, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	e, replayed, err := h.svc.Exchanges.Join(c.UserContext(), principal(c), strings.ToLower(in.ContractID), idem)
	if err != nil {
		return err
	}
	if replayed {
		c.Set("Idempotent-Replayed", "true")
	}
	d := exchangeOf(e)
	d.Receipt = e.Receipt()
	c.Location(resourcePath("/v1/me/exchanges", e.ID()))
	return c.Status(fiber.StatusCreated).JSON(d)
}
