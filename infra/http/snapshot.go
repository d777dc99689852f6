package http

import (
	"context"

	"github.com/gofiber/fiber/v2"
)

// snapshot runs the rest of the route in one consistent read snapshot, so a
// response that presents totals with their details (balances and entries,
// an export, a statement, stats) never mixes two moments of the database.
// It follows the route's role gate, so no transaction is opened for a
// request that is refused.
func (h *handlers) snapshot(c *fiber.Ctx) error {
	if h.svc.Snapshot == nil {
		return c.Next()
	}
	outer := c.UserContext()
	defer c.SetUserContext(outer)
	return h.svc.Snapshot(outer, func(ctx context.Context) error {
		c.SetUserContext(ctx)
		return c.Next()
	})
}
