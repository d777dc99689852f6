package http

import (
	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// feedPageOf reads the page of an incremental list: order=commit asks for
// commit order (oldest first, a cursor on every page that never skips a
// committed row); order=newest (the default) for newest first.
func feedPageOf(c *fiber.Ctx) (app.Page, error) {
	p, err := pageOf(c)
	if err != nil {
		return p, err
	}
	order, err := enumQuery(c, "order")
	if err != nil {
		return p, err
	}
	switch order {
	case "", "newest":
	case "commit":
		p.Feed = true
	default:
		return p, domain.Invalid("/query/order", "must be newest or commit")
	}
	return p, nil
}
