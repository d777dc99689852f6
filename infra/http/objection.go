package http

import (
	"github.com/gofiber/fiber/v2"
)

type objectionIn struct {
	Purpose string `json:"purpose" validate:"required,max=200"`
}

type objectionDTO struct {
	Purpose      string `json:"purpose"`
	PurposeLabel string `json:"purpose_label"`
	ObjectedAt   string `json:"objected_at"`
}

type objectionResultDTO struct {
	objectionDTO
	// EndedExchanges are the exchanges this objection ended (none when it
	// stood already).
	EndedExchanges []string `json:"ended_exchanges"`
}

func (h *handlers) objectionOf(purpose string, at string) objectionDTO {
	p, _ := h.svc.Catalog.Purpose(purpose)
	return objectionDTO{Purpose: purpose, PurposeLabel: p.Label, ObjectedAt: at}
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
	out := objectionResultDTO{objectionDTO: h.objectionOf(res.Objection.Purpose, timeText(res.Objection.At)), EndedExchanges: res.Ended}
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
	os, err := h.svc.Objections.List(c.UserContext(), principal(c))
	if err != nil {
		return err
	}
	out := list[objectionDTO]{Items: make([]objectionDTO, 0, len(os))}
	for _, o := range os {
		out.Items = append(out.Items, h.objectionOf(o.Purpose, timeText(o.At)))
	}
	return c.JSON(out)
}
