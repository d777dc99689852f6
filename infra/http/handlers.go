package http

import (
	"context"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// Services are the use cases the HTTP layer drives; a nil one leaves its
// routes out.
type Services struct {
	Contracts   *app.Contracts
	Members     *app.Members
	Exchanges   *app.Exchanges
	Enforcement *app.Enforcement
	// Restrictions and Objections are the rights to restriction (Art. 18)
	// and objection (Art. 21).
	Restrictions *app.Restrictions
	Objections   *app.Objections
	// Reports are the finance reports (the points liability).
	Reports *app.Reports
	// Tiers is the programme's tiers (PUT/GET /v1/programme/tiers and the
	// member's standing in GET /v1/me).
	Tiers *app.Tiers
	// Rewards is the reward catalogue.
	Rewards *app.Rewards
	Catalog domain.Catalog
	JWKS    func() any
	// Snapshot runs fn with a context whose reads see one consistent
	// snapshot of the database; nil runs fn as is.
	Snapshot func(ctx context.Context, fn func(ctx context.Context) error) error
}

// GPCLastUpdate is the date (RFC 3339 full-date) the way Quid honours Global
// Privacy Control last changed, served in /.well-known/gpc.json.
const GPCLastUpdate = "2026-11-30"

type handlers struct {
	svc   Services
	log   *slog.Logger
	cache *responseCache
}

type roleGate func(roles ...app.Role) fiber.Handler

func (h *handlers) routes(a *fiber.App, auth roleGate, optional fiber.Handler) {
	v1 := a.Group("/v1")
	if h.svc.Contracts != nil {
		h.contractRoutes(v1, auth, optional)
	}
	if h.svc.Members != nil && h.svc.Exchanges != nil {
		h.memberRoutes(v1, auth)
	}
	if h.svc.Enforcement != nil {
		h.enforcementRoutes(v1, auth)
	}
	if h.svc.Reports != nil {
		h.reportRoutes(v1, auth)
	}
	if h.svc.Tiers != nil {
		v1.Get("/programme/tiers", h.getTiers)
		v1.Put("/programme/tiers", auth(app.RoleAdmin), h.putTiers)
	}
	if h.svc.Rewards != nil {
		h.rewardRoutes(v1, auth, optional)
	}
	// The Global Privacy Control support resource (GPC specification,
	// section 4.1): Quid honours the signal on joins (see join).
	a.Get("/.well-known/gpc.json", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderCacheControl, "public, max-age=86400")
		return c.JSON(fiber.Map{"gpc": true, "lastUpdate": GPCLastUpdate})
	})
	if h.svc.JWKS != nil {
		a.Get("/.well-known/jwks.json", func(c *fiber.Ctx) error {
			c.Set(fiber.HeaderCacheControl, "public, max-age=300")
			return c.JSON(fiber.Map{"keys": h.svc.JWKS()})
		})
	}
}

// list is the envelope of every list response.
type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func pageOf(c *fiber.Ctx) (app.Page, error) {
	p := app.Page{Cursor: c.Query("cursor")}
	if raw := c.Query("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 100 {
			return p, domain.Invalid("/query/limit", "must be an integer from 1 to 100")
		}
		p.Limit = n
	}
	return p, nil
}

// pathParam is the one way a handler reads a path parameter. The router
// matches the path as sent, so an encoded "/" (a%2Fb) stays inside its
// segment; the value is percent-decoded here exactly once (url.PathUnescape:
// "+" stays "+"; fiber's Immutable mode already copied it), and must then be an
// identifier (domain.IdentifierProblem), else 422 naming /path/<name>.
func pathParam(c *fiber.Ctx, name string) (string, error) {
	v, err := url.PathUnescape(c.Params(name))
	if err != nil {
		return "", domain.Invalid("/path/"+name, "is not validly percent-encoded")
	}
	if problem := domain.IdentifierProblem(v); problem != "" {
		return "", domain.Invalid("/path/"+name, problem)
	}
	return v, nil
}

// idParam reads a UUID path parameter; anything else, including a value
// pathParam refuses, cannot name a resource: notFound (404, as openapi.yaml
// says), the error the store gives for an id it does not hold.
func idParam(c *fiber.Ctx, notFound error) (string, error) {
	id, err := pathParam(c, "id")
	if err != nil || !isUUID(id) {
		return "", notFound
	}
	return strings.ToLower(id), nil
}

// errExchangeNotFound answers an exchange id that cannot be one.
var errExchangeNotFound = domain.NotFound("exchange-not-found", "no exchange with this id")

// identifierQuery reads an optional query parameter that holds a member or
// recipient id (fasthttp has decoded it once); a value that cannot be an
// identifier is 422 naming /query/<name>.
func identifierQuery(c *fiber.Ctx, name string) (string, error) {
	v := c.Query(name)
	if v == "" {
		return "", nil
	}
	if problem := domain.IdentifierProblem(v); problem != "" {
		return "", domain.Invalid("/query/"+name, problem)
	}
	return v, nil
}

// enumQuery reads an optional query parameter whose values are an enum:
// absent is "", but sent empty ("?status=") is no value of the enum, so it
// is refused rather than read as absent.
func enumQuery(c *fiber.Ctx, name string) (string, error) {
	args := c.Request().URI().QueryArgs()
	if args.Has(name) && len(args.Peek(name)) == 0 {
		return "", domain.Invalid("/query/"+name, "is empty: give one of its values, or leave the parameter out")
	}
	return c.Query(name), nil
}

// resourcePath is the URL path of a resource under prefix, with its id
// encoded as one path segment.
func resourcePath(prefix, id string) string {
	return prefix + "/" + url.PathEscape(id)
}

// isUUID accepts only the canonical 36-character form, the one the API hands out.
func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

func timeText(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func optTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := timeText(*t)
	return &s
}
