package http

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
)

type joinIn struct {
	ContractID string `json:"contract_id" validate:"required,uuid"`
	// AffirmDespiteGPC is the member's explicit choice to join a contract
	// that shares with a third party or for advertising although their
	// browser or device sends Global Privacy Control.
	AffirmDespiteGPC bool `json:"affirm_despite_gpc"`
}

// gpcSignal tells whether the request carries Global Privacy Control: the
// header Sec-GPC with the value 1 (GPC specification, section 3). A header
// sent more than once, or as a list, carries the signal if any of its values
// is 1: the doubt goes to the member's privacy, not to the join.
func gpcSignal(c *fiber.Ctx) bool {
	for _, v := range c.Request().Header.PeekAll("Sec-GPC") {
		for _, part := range strings.Split(string(v), ",") {
			if strings.TrimSpace(part) == "1" {
				return true
			}
		}
	}
	return false
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
	gpc := gpcSignal(c)
	if gpc && idem != nil {
		// The signal decides the outcome and is recorded with the consent,
		// so a retry must carry it as the first request did (see
		// app.IdempotencyKey.CoverGPC).
		idem.CoverGPC(c.Body())
	}
	e, replayed, err := h.svc.Exchanges.JoinWith(c.UserContext(), principal(c), app.JoinRequest{
		ContractID: strings.ToLower(in.ContractID), Idempotency: idem, GPC: gpc, AffirmDespiteGPC: in.AffirmDespiteGPC})
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
