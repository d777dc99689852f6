package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// TestAFailingHandlerAnswersAGeneric500WithoutItsInternals makes a handler
// panic and fail with the kinds of text that must never reach a client (a
// runtime error, a driver's error with SQL and a source position) and
// checks that the client gets a bare internal-error problem, as every
// response of every other test is checked by checkSpec.
func TestAFailingHandlerAnswersAGeneric500WithoutItsInternals(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	secret := `ERROR: syntax error at or near "FROM" (SQLSTATE 42601) in SELECT * FROM members; pgx: store.go:42`
	a.svc.app.Get("/test/panic", func(*fiber.Ctx) error {
		var none []string
		return errors.New(none[len(secret)]) // a runtime panic: index out of range
	})
	a.svc.app.Get("/test/panic-value", func(*fiber.Ctx) error { panic(errors.New(secret)) })
	a.svc.app.Get("/test/error", func(*fiber.Ctx) error { return errors.New(secret) })
	for _, path := range []string{"/test/panic", "/test/panic-value", "/test/error"} {
		r := a.send(req{Method: "GET", Path: path})
		if r.Status != 500 || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want a 500 problem", path, r.Status, r.Header.Get("Content-Type"))
		}
		if leak := internalsIn(r); leak != "" || strings.Contains(string(r.Body), "members") {
			t.Errorf("%s: the answer shows internals (%s): %s", path, leak, r.Body)
		}
		if p := r.json(t); p["code"] != "internal" || p["request_id"] == "" {
			t.Errorf("%s: %s, want code internal and a request id", path, r.Body)
		}
	}
	// The server still answers afterwards.
	expect(t, a.do(req{Method: "GET", Path: "/healthz"}), 200)
}
