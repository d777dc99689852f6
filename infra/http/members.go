package http

import (
	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
)

func (h *handlers) memberRoutes(v1 fiber.Router, auth roleGate) {
	// The gate sits on each route, not on the group: a group handler would
	// also run for unknown paths and answer 401 where 404 or 405 is true.
	member := auth(app.RoleMember)
	me := v1.Group("/me")
	me.Put("", member, h.putMe)
	me.Get("", member, h.snapshot, h.getMe)
	me.Get("/exchanges", member, h.snapshot, h.listExchanges)
	me.Post("/exchanges", member, h.join)
	me.Get("/exchanges/:id", member, h.snapshot, h.getExchange)
	me.Get("/exchanges/:id/record", member, h.snapshot, h.exchangeRecord)
	me.Delete("/exchanges/:id", member, noBody, h.cancelExchange)
	me.Post("/exchanges/:id/renew", member, h.renewExchange)
	me.Get("/points", member, h.snapshot, h.points)
	me.Post("/redemptions", member, h.redeem)
	me.Get("/transparency", member, h.snapshot, h.myTransparency)
	me.Get("/export", member, h.snapshot, h.export)
	if h.svc.Enforcement != nil {
		me.Get("/recipients", member, h.snapshot, h.myRecipients)
	}
	if h.svc.Restrictions != nil {
		me.Get("/restriction", member, h.getRestriction)
		me.Put("/restriction", member, h.putRestriction)
	}
	if h.svc.Objections != nil {
		me.Get("/objections", member, h.listObjections)
		me.Post("/objections", member, h.postObjection)
		me.Get("/objections/:purpose", member, h.getObjection)
		me.Delete("/objections/:purpose", member, noBody, h.deleteObjection)
	}
}

type balanceDTO struct {
	Available int64 `json:"available"`
	Pending   int64 `json:"pending"`
}

type memberDTO struct {
	ID         string         `json:"id"`
	Attributes map[string]any `json:"attributes"`
	Balance    balanceDTO     `json:"balance"`
	CreatedAt  string         `json:"created_at"`
	// Restricted is shown by GET /v1/me: processing is restricted (Art. 18).
	Restricted *bool `json:"restricted,omitempty"`
	// Expiring is shown by GET /v1/me: when available points expire.
	Expiring *[]expiringDTO `json:"expiring,omitempty"`
	// Tier is shown by GET /v1/me: the member's tier and progress to the
	// next, null while the programme has no tiers.
	Tier **tierStandingDTO `json:"tier,omitempty"`
	// EndedExchanges is shown by PUT /v1/me only: the exchanges a corrected
	// birthdate ended because their age rule no longer holds.
	EndedExchanges *[]string `json:"ended_exchanges,omitempty"`
}

func memberOf(m app.Member) memberDTO {
	return memberDTO{ID: m.ID, Attributes: m.Attributes, Balance: balanceDTO(m.Balance), CreatedAt: timeText(m.CreatedAt)}
}

type profileIn struct {
	Attributes map[string]any `json:"attributes" validate:"required"`
}

func (h *handlers) putMe(c *fiber.Ctx) error {
	var in profileIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	saved, err := h.svc.Members.Enrol(c.UserContext(), principal(c), in.Attributes)
	if err != nil {
		return err
	}
	// The restriction state comes from the save's own transaction: read
	// afterwards, an erasure committed in between would turn a PUT that
	// succeeded into a 404.
	d := memberOf(saved.Member)
	if h.svc.Restrictions != nil {
		d.Restricted = &saved.Restricted
	}
	ended := saved.Ended
	if ended == nil {
		ended = []string{}
	}
	d.EndedExchanges = &ended
	if saved.Created {
		c.Status(fiber.StatusCreated)
	}
	return c.JSON(d)
}

func (h *handlers) getMe(c *fiber.Ctx) error {
	m, err := h.svc.Members.Get(c.UserContext(), principal(c))
	if err != nil {
		return err
	}
	d, err := h.memberView(c, m)
	if err != nil {
		return err
	}
	exp, err := h.expiring(c)
	if err != nil {
		return err
	}
	d.Expiring = &exp
	if h.svc.Tiers != nil {
		t, err := h.tierStanding(c)
		if err != nil {
			return err
		}
		d.Tier = &t
	}
	return c.JSON(d)
}

// memberView is the member as GET /v1/me shows them: the profile and
// balances, and whether processing is restricted. (PUT /v1/me takes the
// restriction state from its own transaction instead.)
func (h *handlers) memberView(c *fiber.Ctx, m app.Member) (memberDTO, error) {
	d := memberOf(m)
	if h.svc.Restrictions != nil {
		r, err := h.svc.Restrictions.Get(c.UserContext(), principal(c))
		if err != nil {
			return d, err
		}
		d.Restricted = &r.Restricted
	}
	return d, nil
}
