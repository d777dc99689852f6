package http

import (
	"github.com/gofiber/fiber/v2"
)

type erasureDTO struct {
	ErasedAt           string `json:"erased_at"`
	ExchangesEnded     int    `json:"exchanges_ended"`
	RecipientsNotified int    `json:"recipients_notified"`
}

func (h *handlers) erase(c *fiber.Ctx) error {
	e, err := h.svc.Enforcement.Erase(c.UserContext(), principal(c))
	if err != nil {
		return err
	}
	return c.JSON(erasureDTO{timeText(e.ErasedAt), e.ExchangesEnded, e.RecipientsNotified})
}
