package http

import "github.com/gofiber/fiber/v2"

// memberRoutes registers the member's pages; each is gated by signedIn
// (role member) and drives the same use cases as /v1/me.
func (w *web) memberRoutes(g fiber.Router, member fiber.Handler) {
	w.memberPagesA(g, member)
	w.memberPagesB(g, member)
}
