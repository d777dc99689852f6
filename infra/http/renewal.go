package http

import (
	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
)

// renewIn is the optional body of a renewal.
type renewIn struct {
	// AffirmDespiteGPC is the member's explicit choice to renew consent
	// that shares with a third party or for advertising although their
	// browser or device sends Global Privacy Control, as for a join.
	AffirmDespiteGPC bool `json:"affirm_despite_gpc"`
}

// renewExchange answers POST /v1/me/exchanges/{id}/renew: the exchange
// with its new expiry and new consent receipt. The body is optional: none
// at all, or a JSON object decoded as strictly as every other body.
func (h *handlers) renewExchange(c *fiber.Ctx) error {
	id, err := idParam(c, errExchangeNotFound)
	if err != nil {
		return err
	}
	var in renewIn
	if len(c.Body()) > 0 || c.Locals(contentSentKey) != nil {
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
	}
	e, err := h.svc.Exchanges.RenewWith(c.UserContext(), principal(c), id,
		app.RenewRequest{GPC: gpcSignal(c), AffirmDespiteGPC: in.AffirmDespiteGPC})
	if err != nil {
		return err
	}
	d := exchangeOf(e)
	d.Receipt = e.Receipt()
	return c.JSON(d)
}
