// Package http serves Quid's JSON API on fiber: middleware, handlers,
// problem+json errors and the mapping between wire DTOs and use cases.
package http

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/quidpro/quid/app"
)

// TokenVerifier turns a bearer token into a principal.
type TokenVerifier interface {
	Verify(token string) (app.Principal, error)
}

// ChangeFeed calls a subscriber after every change to what public
// responses are made of (live true), and with live false while it cannot
// tell (its connection is down).
type ChangeFeed interface {
	Subscribe(fn func(live bool))
}

// Options are the server's collaborators. Use-case fields may be nil while a
// capability is not wired; their routes are then absent.
type Options struct {
	Logger         *slog.Logger
	Verifier       TokenVerifier
	Ready          func(ctx context.Context) error
	Registry       *prometheus.Registry
	OpenAPI        []byte
	RequestTimeout time.Duration
	BodyLimit      int
	// PublicCacheTTL is how long rendered offers and statements are reused
	// at most; with Changes, a change on any replica drops them at once.
	PublicCacheTTL time.Duration
	// Changes announces changes to what public responses are made of.
	Changes ChangeFeed

	Services Services
}

// New builds the fiber application with every route.
func New(opts Options) *fiber.App {
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = 15 * time.Second
	}
	if opts.BodyLimit == 0 {
		opts.BodyLimit = 1 << 20
	}
	a := fiber.New(fiber.Config{
		AppName:               "quid",
		ErrorHandler:          errorHandler(opts.Logger),
		BodyLimit:             opts.BodyLimit,
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          opts.RequestTimeout + 5*time.Second,
		IdleTimeout:           60 * time.Second,
		DisableStartupMessage: true,
		JSONEncoder:           jsonMarshal,
	})
	m := newMetrics(opts.Registry)
	a.Use(requestid.New(requestid.Config{ContextKey: requestIDKey}))
	a.Use(accessLog(opts.Logger, m))
	a.Use(recover.New())
	a.Use(func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(context.Background(), opts.RequestTimeout)
		defer cancel()
		c.SetUserContext(ctx)
		return c.Next()
	})

	a.Get("/healthz", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"status": "ok"})
	})
	a.Get("/readyz", func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
		defer cancel()
		if err := opts.Ready(ctx); err != nil {
			opts.Logger.WarnContext(ctx, "not ready", "error", err)
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "reason": readinessReason(err)})
		}
		return c.JSON(fiber.Map{"status": "ready"})
	})
	a.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{})))
	a.Get("/openapi.yaml", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "application/yaml")
		return c.Send(opts.OpenAPI)
	})

	if opts.PublicCacheTTL == 0 {
		opts.PublicCacheTTL = time.Second
	}
	h := &handlers{svc: opts.Services, log: opts.Logger, cache: newResponseCache(opts.PublicCacheTTL)}
	if opts.Changes != nil {
		opts.Changes.Subscribe(h.cache.changed)
	}
	a.Use("/v1/contracts", h.cache.dropOnWrite)
	a.Use("/v1/recipients", h.cache.dropOnWrite)
	gate := authenticate(opts.Verifier)
	h.routes(a, gate, optionalAuth(opts.Verifier))

	return a
}

func readinessReason(err error) string {
	if strings.Contains(err.Error(), "migrations pending") {
		return "database migrations are pending"
	}
	return "database unreachable"
}
