package http

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/domain"
)

type webhookIn struct {
	URL    string `json:"url" validate:"required,max=2000"`
	Secret string `json:"secret"`
}

type webhookDTO struct {
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"`
}

func (h *handlers) putWebhook(c *fiber.Ctx) error {
	var in webhookIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	w, err := h.svc.Enforcement.RegisterWebhook(c.UserContext(), principal(c), in.URL, in.Secret)
	if err != nil {
		return err
	}
	out := webhookDTO{URL: w.URL}
	if in.Secret == "" {
		out.Secret = w.Secret // generated: shown this once only
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

type deliveryDTO struct {
	ID          string  `json:"id"`
	RecipientID string  `json:"recipient_id"`
	EventType   string  `json:"event_type"`
	CreatedAt   string  `json:"created_at"`
	Attempts    int     `json:"attempts"`
	State       string  `json:"state"`
	NextAttempt *string `json:"next_attempt_at"`
	DeliveredAt *string `json:"delivered_at"`
	LastStatus  *int    `json:"last_status"`
	LastError   *string `json:"last_error"`
}

func (h *handlers) deliveries(c *fiber.Ctx) error {
	page, err := feedPageOf(c)
	if err != nil {
		return err
	}
	recipientID := strings.ToLower(c.Query("recipient_id"))
	if recipientID != "" && !isUUID(recipientID) {
		return domain.Invalid("/query/recipient_id", "must be a recipient id (a UUID)")
	}
	ds, next, err := h.svc.Enforcement.Deliveries(c.UserContext(), principal(c), recipientID, page)
	if err != nil {
		return err
	}
	out := list[deliveryDTO]{Items: make([]deliveryDTO, 0, len(ds)), NextCursor: next}
	for _, d := range ds {
		dto := deliveryDTO{ID: d.ID, RecipientID: d.RecipientID, EventType: d.EventType, CreatedAt: timeText(d.CreatedAt),
			Attempts: d.Attempts, State: "pending", DeliveredAt: optTime(d.DeliveredAt), LastStatus: d.LastStatus, LastError: nilIfEmpty(d.LastError)}
		switch {
		case d.DeliveredAt != nil:
			dto.State = "delivered"
		case d.FailedAt != nil:
			dto.State = "failed"
		default:
			dto.NextAttempt = optTime(&d.NextAttempt)
		}
		out.Items = append(out.Items, dto)
	}
	return c.JSON(out)
}
