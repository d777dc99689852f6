package http

import (
	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
)

// objectionIn's purpose has the length bound of the {purpose} path
// parameter, so a key too long for one is too long for the other.
type objectionIn struct {
	Purpose string `json:"purpose" validate:"required,max=255"`
}

type objectionDTO struct {
	Purpose      string `json:"purpose"`
	PurposeLabel string `json:"purpose_label"`
	ObjectedAt   string `json:"objected_at"`
	// LiftedAt is when the objection was withdrawn; null while it stands.
	LiftedAt *string `json:"lifted_at"`
}

type objectionResultDTO struct {
	objectionDTO
	// EndedExchanges are the exchanges this objection ended (none when it
	// stood already).
	EndedExchanges []string `json:"ended_exchanges"`
}

func (h *handlers) objectionOf(o app.Objection) objectionDTO {
	p, _ := h.svc.Catalog.Purpose(o.Purpose)
	return objectionDTO{Purpose: o.Purpose, PurposeLabel: p.Label, ObjectedAt: timeText(o.At), LiftedAt: optTime(o.LiftedAt)}
}

// postObjection objects to a purpose (GDPR Art. 21): exchanges using it end,
// and it cannot be joined until lifted.
func (h *handlers) postObjection(c *fiber.Ctx) error {
	var in objectionIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	res, err := h.svc.Objections.Object(c.UserContext(), principal(c), in.Purpose)
	if err != nil {
		return err
	}
	out := objectionResultDTO{objectionDTO: h.objectionOf(res.Objection), EndedExchanges: res.Ended}
	if out.EndedExchanges == nil {
		out.EndedExchanges = []string{}
	}
	c.Location(resourcePath("/v1/me/objections", res.Objection.Purpose))
	if res.Created {
		c.Status(fiber.StatusCreated)
	}
	return c.JSON(out)
}

func (h *handlers) deleteObjection(c *fiber.Ctx) error {
	purpose, err := pathParam(c, "purpose")
	if err != nil {
		return err
	}
	if err := h.svc.Objections.Lift(c.UserContext(), principal(c), purpose); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (h *handlers) listObjections(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	os, next, err := h.svc.Objections.List(c.UserContext(), principal(c), page)
	if err != nil {
		return err
	}
	out := list[objectionDTO]{Items: make([]objectionDTO, 0, len(os)), NextCursor: next}
	for _, o := range os {
		out.Items = append(out.Items, h.objectionOf(o))
	}
	return c.JSON(out)
}

// getObjection is the standing objection a POST's Location names.
func (h *handlers) getObjection(c *fiber.Ctx) error {
	purpose, err := pathParam(c, "purpose")
	if err != nil {
		return err
	}
	o, err := h.svc.Objections.Get(c.UserContext(), principal(c), purpose)
	if err != nil {
		return err
	}
	return c.JSON(h.objectionOf(o))
}
