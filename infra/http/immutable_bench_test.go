package http

import (
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// BenchmarkJoinAccessors measures what fiber's Immutable mode costs on the
// accessors a join uses (method, path, route, token, idempotency key, body,
// query): go test ./infra/http -run '^$' -bench JoinAccessors.
func BenchmarkJoinAccessors(b *testing.B) {
	for _, immutable := range []bool{false, true} {
		name := "borrowed"
		if immutable {
			name = "immutable"
		}
		b.Run(name, func(b *testing.B) {
			a := fiber.New(fiber.Config{Immutable: immutable, DisableStartupMessage: true})
			var sink int
			a.Post("/v1/me/exchanges", func(c *fiber.Ctx) error {
				sink += len(c.Method()) + len(c.Path()) + len(c.Route().Path) + len(c.Get(fiber.HeaderAuthorization)) +
					len(c.Get("Idempotency-Key")) + len(c.Body()) + len(c.Body()) + len(c.Query("cursor"))
				return c.SendStatus(fiber.StatusCreated)
			})
			h := a.Handler()
			var req fasthttp.Request
			req.Header.SetMethod(fiber.MethodPost)
			req.SetRequestURI("/v1/me/exchanges?cursor=abc")
			req.Header.Set(fiber.HeaderAuthorization, "Bearer eyJhbGciOiJIUzI1NiJ9."+string(make([]byte, 300))+".sig")
			req.Header.Set("Idempotency-Key", "9b2f6a52-3c1d-4f7e-9a0b-1c2d3e4f5a6b")
			req.Header.SetContentType(fiber.MIMEApplicationJSON)
			req.SetBodyString(`{"contract_id":"4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"}`)
			var ctx fasthttp.RequestCtx
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ctx.Init(&req, nil, nil)
				h(&ctx)
			}
			_ = sink
		})
	}
}
