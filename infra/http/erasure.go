package http

import (
	"github.com/gofiber/fiber/v2"
)

type erasureDTO struct {
	ErasedAt           string `json:"erased_at"`
	ExchangesEnded     int    `json:"exchanges_ended"`
	RecipientsNotified int    `json:"recipients_notified"`
	// BonusFamilies and Reenrolment say what coming back means: PUT /v1/me
	// starts a fresh member, not paid again a join bonus already paid.
	BonusFamilies int    `json:"bonus_families_remembered"`
	Reenrolment   string `json:"reenrolment"`
}

// reenrolment is the erasure response's word on coming back.
const reenrolment = "PUT /v1/me with the same sign-in starts a fresh member with no link to the erased data. " +
	"A join bonus already paid for a contract family is not paid again: for that alone, a keyed hash (HMAC) of " +
	"the sign-in subject and each such family is kept, and nothing else."

func (h *handlers) erase(c *fiber.Ctx) error {
	e, err := h.svc.Enforcement.Erase(c.UserContext(), principal(c))
	if err != nil {
		return err
	}
	return c.JSON(erasureDTO{timeText(e.ErasedAt), e.ExchangesEnded, e.RecipientsNotified, e.BonusFamilies, reenrolment})
}
