package http

import (
	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
)

type restrictionIn struct {
	Restricted *bool `json:"restricted" validate:"required"`
}

type restrictionPeriodDTO struct {
	From  string  `json:"from"`
	Until *string `json:"until"`
}

type restrictionDTO struct {
	Restricted bool                   `json:"restricted"`
	Since      *string                `json:"since"`
	Periods    []restrictionPeriodDTO `json:"periods"`
}

func restrictionOf(r app.Restriction) restrictionDTO {
	out := restrictionDTO{Restricted: r.Restricted, Since: optTime(r.Since), Periods: make([]restrictionPeriodDTO, 0, len(r.Periods))}
	for _, p := range r.Periods {
		out.Periods = append(out.Periods, restrictionPeriodDTO{From: timeText(p.From), Until: optTime(p.Until)})
	}
	return out
}

// getRestriction is whether processing is restricted now, and every
// restriction period.
func (h *handlers) getRestriction(c *fiber.Ctx) error {
	r, err := h.svc.Restrictions.Get(c.UserContext(), principal(c))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(restrictionOf(r))
}

// putRestriction restricts processing or lifts the restriction (GDPR Art. 18).
func (h *handlers) putRestriction(c *fiber.Ctx) error {
	var in restrictionIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	r, err := h.svc.Restrictions.Set(c.UserContext(), principal(c), *in.Restricted)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(restrictionOf(r))
}
