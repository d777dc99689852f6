// Package http serves Quid's JSON API on fiber: middleware, handlers,
// problem+json errors and the mapping between wire DTOs and use cases.
package http

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"

	"github.com/quidpro/quid/app"

	"github.com/quidpro/quid/domain"
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
	// RateLimits bounds writes per principal and per client address.
	RateLimits RateLimits

	Services Services
	// Web turns on the web preference centre under /account (issue 13).
	Web *WebOptions
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
		// Forwarded headers count only from the configured proxies.
		EnableTrustedProxyCheck: true,
		TrustedProxies:          prefixStrings(opts.RateLimits.TrustedProxies),
	})
	m := newMetrics(opts.Registry)
	routes := &routeIndex{}
	// Requests answered before fiber runs still count, against the route
	// they were sent to.
	countEarly := func(fctx *fasthttp.RequestCtx) {
		method := string(fctx.Method())
		m.observe(routes.match(method, string(fctx.Path())), methodLabel(method), fctx.Response.StatusCode(), fctx.Time())
	}
	refuseAmbiguousFraming(a, countEarly)
	answerUnparsableRequests(a, countEarly)
	secureResponses(a) // last: it wraps the two above
	a.Use(requestIDs())
	a.Use(accessLog(opts.Logger, m, routes))
	a.Use(recover.New())
	limits := newRateLimiter(opts.RateLimits, opts.Registry)
	a.Use(limits.byAddress(routes))
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
	gate := authenticate(opts.Verifier, limits.byPrincipal)
	h.routes(a, gate, optionalAuth(opts.Verifier))
	if opts.Web != nil {
		newWeb(*opts.Web, h).routes(a, limits.byPrincipal)
	}
	for _, r := range a.GetRoutes(true) {
		routes.add(r.Method, r.Path)
	}

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
func refuseAmbiguousFraming(a *fiber.App, count func(*fasthttp.RequestCtx)) {
	srv := a.Server()
	next := srv.Handler
	srv.Handler = func(fctx *fasthttp.RequestCtx) {
		detail, header := requestLineProblem(&fctx.Request.Header)
		if detail == "" {
			// An absolute-form target (RFC 9112 §3.2.2) names the host itself.
			originForm := bytes.HasPrefix(fctx.Request.Header.RequestURI(), []byte("/"))
			detail, header = framingProblem(fctx.Request.Header.RawHeaders(), fctx.Request.Header.IsHTTP11(), originForm)
		}
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
		he := &httpError{status: fiber.StatusBadRequest, code: "malformed-request", detail: detail, anonymous: true}
		if header != "" {
			he.fields = []problemField{{Pointer: "/headers/" + domain.PointerToken(header), Detail: detail}}
		}
		if err := a.ErrorHandler(c, he); err != nil {
			fctx.SetStatusCode(fiber.StatusBadRequest)
		}
		count(fctx)
	}
}

// framingProblem reads the raw header block (every line after the request
// line, up to the empty line) and says what is ambiguous in it, if anything,
// and in which header when one is to blame.
// http11 and originForm describe the request line: chunked is defined only
// in HTTP/1.1, and an HTTP/1.1 request with an origin-form target ("/…")
// must carry Host.
func framingProblem(raw []byte, http11, originForm bool) (detail, header string) {
	var contentLength, transferEncoding, host int
	var coding string
	seen := map[string]bool{}
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
		if len(name) == 0 || headerName(name) == "" {
			return "a header line has no valid field name", ""
		}
		lower := strings.ToLower(string(name))
		if singleton[lower] {
			if seen[lower] {
				return "the request has more than one " + string(name) + " header", string(name)
			}
			seen[lower] = true
		}
		switch lower {
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
	case transferEncoding > 0 && !http11:
		return "Transfer-Encoding is not defined for HTTP/1.0", fiber.HeaderTransferEncoding
	case host > 1:
		return "the request has more than one Host header", fiber.HeaderHost
	case host == 0 && http11 && originForm:
		return "an HTTP/1.1 request must have a Host header", fiber.HeaderHost
	}
	return "", ""
}

// singleton lists the headers Quid reads that a request may carry once:
// with two, which one counts would depend on the parser (fasthttp takes the
// first of some and the last of others), so neither is guessed.
var singleton = map[string]bool{
	"authorization": true, "idempotency-key": true, "content-type": true,
	"content-encoding": true, "x-request-id": true,
}

// requestLineProblem refuses a request line another parser would read
// differently: a version other than HTTP/1.0 or HTTP/1.1, or a target with
// a space, a control character or a fragment (RFC 9112 §3).
func requestLineProblem(h *fasthttp.RequestHeader) (detail, header string) {
	switch string(h.Protocol()) {
	case "HTTP/1.1", "HTTP/1.0":
	default:
		return "the request line must end with HTTP/1.1 or HTTP/1.0", ""
	}
	// Origin form ("/…"), or absolute form with an http(s) authority, whose
	// host stands in for Host (RFC 9112 §3.2.2); nothing else is routable.
	target := h.RequestURI()
	if !bytes.HasPrefix(target, []byte("/")) {
		u, err := url.Parse(string(target))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "the request target must be a path (/…) or an http(s) URL", ""
		}
	}
	for _, b := range h.RequestURI() {
		switch {
		case b <= ' ' || b == 0x7f:
			return "the request target holds a space or a control character; percent-encode it", ""
		case b == '#':
			return "the request target must not carry a fragment (#…)", ""
		}
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

// answerUnparsableRequests replaces fiber's handler for requests fasthttp
// could not parse. Fiber's own puts fasthttp's error text in the problem's
// detail, and that text quotes the raw bytes read so far — which can be the
// next pipelined request with its bearer token — and maps a network error to
// 502. Here every such request gets a fixed text and a 4xx, and the
// connection is closed, since where the next request starts is unknown.
func answerUnparsableRequests(a *fiber.App, count func(*fasthttp.RequestCtx)) {
	a.Server().ErrorHandler = func(fctx *fasthttp.RequestCtx, err error) {
		fctx.SetConnectionClose()
		c := a.AcquireCtx(fctx)
		defer a.ReleaseCtx(c)
		he := &httpError{status: fiber.StatusBadRequest, code: "malformed-request", anonymous: true,
			detail: "the request could not be read as HTTP/1.1 (request line, headers or body framing)"}
		var small *fasthttp.ErrSmallBuffer
		var netErr net.Error
		switch {
		case errors.As(err, &small):
			he = &httpError{status: fiber.StatusRequestHeaderFieldsTooLarge, code: "request-header-fields-too-large",
				detail: "the request line and headers are larger than this server accepts (QUID_MAX_HEADER_BYTES)"}
		case errors.Is(err, fasthttp.ErrBodyTooLarge):
			he = &httpError{status: fiber.StatusRequestEntityTooLarge, code: "request-entity-too-large",
				detail: "the body is larger than this server accepts"}
		case errors.As(err, &netErr) && netErr.Timeout(), errors.Is(err, fasthttp.ErrTimeout):
			he = &httpError{status: fiber.StatusRequestTimeout, code: "request-timeout",
				detail: "the request did not arrive in time"}
		}
		he.anonymous = true
		if hErr := a.ErrorHandler(c, he); hErr != nil {
			fctx.SetStatusCode(he.status)
		}
		count(fctx)
	}
}
