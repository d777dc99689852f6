package http

import (
	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
)

// idempotencyKey reads the Idempotency-Key header; PeekAll tells a header
// sent empty from none, which c.Get cannot.
func idempotencyKey(c *fiber.Ctx) (*app.IdempotencyKey, error) {
	key := c.Get("Idempotency-Key")
	return app.NewIdempotencyKey(key, key != "" || len(c.Request().Header.PeekAll("Idempotency-Key")) > 0, c.Body())
}
