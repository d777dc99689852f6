package http

import (
	"bytes"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

type ctxKey int

const (
	requestIDKey        = "request_id"
	principalKey ctxKey = iota
)

func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(requestIDKey).(string)
	return id
}

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quid_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "quid_http_request_duration_seconds", Help: "HTTP request latency by route, method and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method", "status"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

// observe counts one answered request and returns how long it took.
func (m *metrics) observe(route, method string, status int, start time.Time) time.Duration {
	elapsed := time.Since(start)
	labels := []string{route, method, strconv.Itoa(status)}
	m.requests.WithLabelValues(labels...).Inc()
	m.latency.WithLabelValues(labels...).Observe(elapsed.Seconds())
	return elapsed
}

// accessLog writes one line per request and records metrics. It never logs
// bodies, query strings or headers, which may hold personal data or tokens.
// Metric labels come from fixed sets only (registered route patterns, known
// methods, status codes), so no client can grow the label space or make two
// series share one label set.
func accessLog(log *slog.Logger, m *metrics, routes *routeIndex) fiber.Handler {
	return func(c *fiber.Ctx) error {
		start := time.Now()
		err := c.Next()
		if err != nil {
			if hErr := c.App().ErrorHandler(c, err); hErr != nil {
				_ = c.SendStatus(fiber.StatusInternalServerError)
			}
		}
		status := c.Response().StatusCode()
		route, method := routeLabel(c, routes), methodLabel(c.Method())
		elapsed := m.observe(route, method, status, start)
		log.LogAttrs(c.UserContext(), slog.LevelInfo, "request",
			slog.String("request_id", requestID(c)),
			slog.String("method", method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Int("bytes", len(c.Response().Body())),
			slog.Float64("ms", float64(elapsed.Microseconds())/1000),
		)
		return nil
	}
}

// routeLabel is the registered pattern of the route that answered. When a
// middleware answered before routing (an edge refusal: 413, 415, 422 for a
// query or header), it is the pattern the request would have reached, so
// refusals count against their route; "unmatched" when none would.
func routeLabel(c *fiber.Ctx, routes *routeIndex) string {
	if r := c.Route(); r != nil && len(r.Handlers) > 0 && routes.has(r.Method, r.Path) {
		return r.Path
	}
	return routes.match(c.Method(), c.Path())
}

// trimSlashes drops one leading and one trailing slash: "//x" keeps an
// empty first segment, as the router sees it.
func trimSlashes(p string) string {
	return strings.TrimSuffix(strings.TrimPrefix(p, "/"), "/")
}

// routeIndex holds the registered (method, pattern) pairs, filled once all
// routes are registered and read-only after.
type routeIndex struct {
	byMethod map[string][][]string // method → patterns split into segments
	patterns map[routeKey]bool
}

type routeKey struct{ method, pattern string }

func (ix *routeIndex) add(method, pattern string) {
	if ix.byMethod == nil {
		ix.byMethod, ix.patterns = map[string][][]string{}, map[routeKey]bool{}
	}
	ix.byMethod[method] = append(ix.byMethod[method], strings.Split(trimSlashes(pattern), "/"))
	ix.patterns[routeKey{method, pattern}] = true
}

func (ix *routeIndex) has(method, pattern string) bool { return ix.patterns[routeKey{method, pattern}] }

// match finds the pattern path would be routed to, matching as fiber does
// by default: case-insensitive, a trailing slash optional, ":name" one
// non-empty segment.
func (ix *routeIndex) match(method, path string) string {
	if !strings.HasPrefix(path, "/") {
		return "unmatched"
	}
	segs := strings.Split(trimSlashes(path), "/")
next:
	for _, p := range ix.byMethod[method] {
		if len(p) != len(segs) {
			continue
		}
		for i, ps := range p {
			if strings.HasPrefix(ps, ":") {
				if segs[i] == "" {
					continue next
				}
			} else if !strings.EqualFold(ps, segs[i]) {
				continue next
			}
		}
		return "/" + strings.Join(p, "/")
	}
	return "unmatched"
}

// knownMethods are the methods fiber routes; each label is a constant, never
// a slice of the request.
var knownMethods = []string{fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch,
	fiber.MethodDelete, fiber.MethodOptions, fiber.MethodConnect, fiber.MethodTrace}

func methodLabel(method string) string {
	for _, m := range knownMethods {
		if m == method {
			return m
		}
	}
	return "other"
}

// requestIDs adopts a caller's X-Request-ID only when it is a short token of
// safe characters (it is logged and stored in the access log); otherwise the
// request gets a fresh UUID.
func requestIDs() fiber.Handler {
	return func(c *fiber.Ctx) error {
		id := c.Get(fiber.HeaderXRequestID)
		if !safeRequestID(id) {
			id = uuid.NewString()
		}
		c.Set(fiber.HeaderXRequestID, id)
		c.Locals(requestIDKey, id)
		return c.Next()
	}
}

func safeRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.' || b == ':') {
			return false
		}
	}
	return true
}

// authenticate returns a middleware factory: the produced handler verifies
// the bearer token, admits only the given roles, then runs each check in
// then (the per-principal rate limit), whose error refuses the request.
func authenticate(v TokenVerifier, then ...func(*fiber.Ctx) error) func(roles ...app.Role) fiber.Handler {
	return func(roles ...app.Role) fiber.Handler {
		return func(c *fiber.Ctx) error {
			header := c.Get(fiber.HeaderAuthorization)
			scheme, token, ok := strings.Cut(header, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
				return &domain.Error{Kind: domain.KindUnauthenticated, Code: "missing-token",
					Message: "send a bearer token in the Authorization header"}
			}
			p, err := v.Verify(strings.TrimSpace(token))
			if err != nil {
				return err
			}
			if err := p.Require(roles...); err != nil {
				return err
			}
			c.Locals(principalKey, p)
			// What a token unlocks is one principal's: no shared cache may
			// keep it (RFC 9111 §5.2.2.5). A handler may set its own policy.
			c.Set(fiber.HeaderCacheControl, "no-store")
			for _, check := range then {
				if err := check(c); err != nil {
					return err
				}
			}
			return c.Next()
		}
	}
}

func principal(c *fiber.Ctx) app.Principal {
	p, _ := c.Locals(principalKey).(app.Principal)
	return p
}

// optionalAuth admits anonymous callers but verifies a token when one is
// sent, so public routes can show more to marketers (drafts).
func optionalAuth(v TokenVerifier) fiber.Handler {
	strict := authenticate(v)(app.RoleMember, app.RoleMarketer, app.RolePartner, app.RoleAdmin)
	return func(c *fiber.Ctx) error {
		if c.Get(fiber.HeaderAuthorization) == "" {
			return c.Next()
		}
		return strict(c)
	}
}

func optionalPrincipal(c *fiber.Ctx) *app.Principal {
	p, ok := c.Locals(principalKey).(app.Principal)
	if !ok {
		return nil
	}
	return &p
}

// Bounds on the parts of a request that every route may read.
const (
	maxQueryParams = 32
	maxQueryValue  = 1024
)

// readHeaders are the request headers Quid reads or stores; every value of
// each (a header may be sent more than once) must be valid UTF-8 (framing
// already refused control characters and NUL).
var readHeaders = []string{fiber.HeaderAuthorization, fiber.HeaderContentType, fiber.HeaderContentEncoding,
	fiber.HeaderAccept, fiber.HeaderIfNoneMatch, "Idempotency-Key", "Sec-GPC"}

// checkInput is the one edge check every request passes before routing:
// header values we read, query parameters and the body's content coding.
// Each refusal is a 4xx problem naming the header or parameter.
func checkInput(bodyLimit int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		for _, name := range readHeaders {
			for _, v := range c.Request().Header.PeekAll(name) {
				if !utf8.Valid(v) {
					return invalidInput("/headers/"+name, "must be valid UTF-8")
				}
				// Framing refused control bytes in the header block; a chunked
				// body's trailer fields are merged in later and checked here.
				if bytes.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
					return &httpError{status: fiber.StatusBadRequest, code: "malformed-request", detail: "a header holds a control character",
						fields: []problemField{{Pointer: "/headers/" + name, Detail: "must not hold control characters"}}}
				}
			}
		}
		if err := checkQuery(c); err != nil {
			return err
		}
		if err := decodeContent(c, bodyLimit); err != nil {
			return err
		}
		return c.Next()
	}
}

func checkQuery(c *fiber.Ctx) error {
	args := c.Request().URI().QueryArgs()
	if args.Len() > maxQueryParams {
		return invalidInput("/query", fmt.Sprintf("at most %d query parameters are accepted", maxQueryParams))
	}
	var err error
	seen := make(map[string]bool, args.Len())
	args.VisitAll(func(key, value []byte) {
		if err != nil {
			return
		}
		name := string(key)
		ptr := "/query/" + domain.PointerToken(name)
		switch {
		case !utf8.Valid(key) || bytes.IndexByte(key, 0) >= 0:
			err = invalidInput("/query", "a parameter name is not valid UTF-8 or holds NUL")
		case len(key) > 64:
			err = invalidInput("/query", "a parameter name is longer than 64 bytes")
		case seen[name]:
			err = invalidInput(ptr, "is given more than once")
		case !utf8.Valid(value):
			err = invalidInput(ptr, "must be valid UTF-8")
		case bytes.IndexByte(value, 0) >= 0:
			err = invalidInput(ptr, "must not contain the NUL character")
		case len(value) > maxQueryValue:
			err = invalidInput(ptr, fmt.Sprintf("must be at most %d bytes", maxQueryValue))
		}
		seen[name] = true
	})
	return err
}

func invalidInput(pointer, detail string) error {
	return &httpError{status: fiber.StatusUnprocessableEntity, code: "validation-failed", detail: "the request is not valid",
		fields: []problemField{{Pointer: pointer, Detail: detail}}}
}
