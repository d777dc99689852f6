package http

import (
	"github.com/gofiber/fiber/v2"
)

// renewExchange answers POST /v1/me/exchanges/{id}/renew: the exchange
// with its new expiry and new consent receipt.
func (h *handlers) renewExchange(c *fiber.Ctx) error {
	id, err := idParam(c, errExchangeNotFound)
	if err != nil {
		return err
	}
	e, err := h.svc.Exchanges.Renew(c.UserContext(), principal(c), id)
	if err != nil {
		return err
	}
	d := exchangeOf(e)
	d.Receipt = e.Receipt()
	return c.JSON(d)
}
