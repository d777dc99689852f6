// Package http serves Quid's JSON API on fiber: middleware, handlers,
// problem+json errors and the mapping between wire DTOs and use cases.
package http

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"

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
	// MaxHeaderBytes bounds the request line and headers (431 beyond).
	MaxHeaderBytes int

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
	if opts.MaxHeaderBytes == 0 {
		opts.MaxHeaderBytes = 16 << 10
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
		// Every string fiber hands out (method, path, params, headers, query,
		// body) is a copy, never a view of fasthttp's reused buffers, so
		// nothing kept past the handler (metric labels, cache keys, logs,
		// idempotency keys, goroutines) can change under it.
		Immutable:      true,
		ReadBufferSize: opts.MaxHeaderBytes,
	})
	refuseAmbiguousFraming(a)
	m := newMetrics(opts.Registry)
	a.Use(requestIDs())
	a.Use(accessLog(opts.Logger, m))
	a.Use(recover.New())
	a.Use(checkInput(opts.BodyLimit))
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
		// Until the feed has connected, a change could be missed: bypass.
		h.cache.watched.Store(true)
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

// refuseAmbiguousFraming wraps fasthttp's handler, so it runs for every
// request before fiber does, and answers 400 (closing the connection) when
// another parser on the path could frame the request differently: fasthttp
// takes the last of several Content-Length headers, lets Transfer-Encoding
// win over Content-Length, reads any Transfer-Encoding as chunked, accepts
// bare LF line ends, folded lines and bare CR, NUL or other control bytes
// inside header values. Methods fiber cannot route get a 400 problem too
// (fiber would answer plain text).
func refuseAmbiguousFraming(a *fiber.App) {
	srv := a.Server()
	next := srv.Handler
	srv.Handler = func(fctx *fasthttp.RequestCtx) {
		detail, header := framingProblem(fctx.Request.Header.RawHeaders())
		if detail == "" && methodLabel(string(fctx.Method())) == "other" {
			detail = "the method is not one this server knows"
		}
		if detail == "" {
			next(fctx)
			return
		}
		fctx.SetConnectionClose()
		c := a.AcquireCtx(fctx)
		defer a.ReleaseCtx(c)
		he := &httpError{status: fiber.StatusBadRequest, code: "malformed-request", detail: detail}
		if header != "" {
			he.fields = []problemField{{Pointer: "/headers/" + pointerEscape(header), Detail: detail}}
		}
		if err := a.ErrorHandler(c, he); err != nil {
			fctx.SetStatusCode(fiber.StatusBadRequest)
		}
	}
}

// framingProblem reads the raw header block (every line after the request
// line, up to the empty line) and says what is ambiguous in it, if anything,
// and in which header when one is to blame.
func framingProblem(raw []byte) (detail, header string) {
	var contentLength, transferEncoding, host int
	var coding string
	for len(raw) > 0 {
		line, rest, found := bytes.Cut(raw, []byte("\n"))
		raw = rest
		if !found {
			break
		}
		if len(line) == 0 || line[len(line)-1] != '\r' {
			return "header lines must end with CRLF", ""
		}
		line = line[:len(line)-1]
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return "folded header lines are not accepted", ""
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		for _, b := range line {
			if b < 0x20 && b != '\t' || b == 0x7f {
				return "a header holds a control character (CR, LF, NUL or another)", headerName(name)
			}
		}
		switch strings.ToLower(string(name)) {
		case "content-length":
			contentLength++
		case "transfer-encoding":
			transferEncoding++
			coding = strings.TrimSpace(string(value))
		case "host":
			host++
		}
	}
	switch {
	case contentLength > 1:
		return "the request has more than one Content-Length header", fiber.HeaderContentLength
	case transferEncoding > 0 && contentLength > 0:
		return "the request has both Transfer-Encoding and Content-Length", fiber.HeaderTransferEncoding
	case transferEncoding > 1 || transferEncoding == 1 && !strings.EqualFold(coding, "chunked"):
		return "Transfer-Encoding must be exactly chunked", fiber.HeaderTransferEncoding
	case host > 1:
		return "the request has more than one Host header", fiber.HeaderHost
	}
	return "", ""
}

// headerName is a header's name for a problem pointer, when it is a token.
func headerName(name []byte) string {
	for _, b := range name {
		if b <= ' ' || b >= 0x7f || b == ':' {
			return ""
		}
	}
	return string(name)
}
