package http

import "github.com/gofiber/fiber/v2"

// marketerRoutes registers the marketer's pages (role marketer or admin).
func (w *web) marketerRoutes(g fiber.Router, marketer fiber.Handler) {
}
