package http

import (
	"github.com/gofiber/fiber/v2"
)

type partnerReadDTO struct {
	MemberID   string         `json:"member_id"`
	Purpose    string         `json:"purpose"`
	Attributes map[string]any `json:"attributes"`
	Exchanges  []string       `json:"exchanges"`
}

func (h *handlers) partnerRead(c *fiber.Ctx) error {
	memberID, err := pathParam(c, "member_id")
	if err != nil {
		return err
	}
	r, err := h.svc.Enforcement.ReadMemberData(c.UserContext(), principal(c), memberID, c.Query("purpose"), requestID(c))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(partnerReadDTO{r.MemberID, r.Purpose, r.Attributes, r.ExchangeIDs})
}
