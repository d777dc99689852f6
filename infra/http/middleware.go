package http

import (
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
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

// accessLog writes one line per request and records metrics. It never logs
// bodies, query strings or headers, which may hold personal data or tokens.
func accessLog(log *slog.Logger, m *metrics) fiber.Handler {
	return func(c *fiber.Ctx) error {
		start := time.Now()
		err := c.Next()
		if err != nil {
			if hErr := c.App().ErrorHandler(c, err); hErr != nil {
				_ = c.SendStatus(fiber.StatusInternalServerError)
			}
		}
		status := c.Response().StatusCode()
		route := c.Route().Path
		if status == fiber.StatusNotFound && route == "/" && c.Path() != "/" {
			route = "unmatched"
		}
		elapsed := time.Since(start)
		labels := []string{route, c.Method(), strconv.Itoa(status)}
		m.requests.WithLabelValues(labels...).Inc()
		m.latency.WithLabelValues(labels...).Observe(elapsed.Seconds())
		log.LogAttrs(c.UserContext(), slog.LevelInfo, "request",
			slog.String("request_id", requestID(c)),
			slog.String("method", c.Method()),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Int("bytes", len(c.Response().Body())),
			slog.Float64("ms", float64(elapsed.Microseconds())/1000),
		)
		return nil
	}
}

// authenticate returns a middleware factory: the produced handler verifies
// the bearer token and admits only the given roles.
func authenticate(v TokenVerifier) func(roles ...app.Role) fiber.Handler {
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
