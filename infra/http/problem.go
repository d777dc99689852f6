package http

import (
	"errors"
	"log/slog"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/google/uuid"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// problem is an RFC 9457 problem details body.
type problem struct {
	Type      string         `json:"type"`
	Title     string         `json:"title"`
	Status    int            `json:"status"`
	Detail    string         `json:"detail,omitempty"`
	Instance  string         `json:"instance,omitempty"`
	Code      string         `json:"code,omitempty"`
	RequestID string         `json:"request_id,omitempty"`
	Errors    []problemField `json:"errors,omitempty"`
	// ExchangeIDs names the member's exchanges a conflict is about, such as
	// the active exchanges to cancel before an attribute can be removed
	// (code attribute-shared).
	ExchangeIDs []string `json:"exchange_ids,omitempty"`
	// NewerVersion names the version to join when a renewal is refused
	// because the family moved on (code newer-version).
	NewerVersion *problemVersion `json:"newer_version,omitempty"`
}

type problemVersion struct {
	ContractID string `json:"contract_id"`
	Version    int    `json:"version"`
}

type problemField struct {
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
}

var statusByKind = map[domain.Kind]int{
	domain.KindInvalid:         fiber.StatusUnprocessableEntity,
	domain.KindNotFound:        fiber.StatusNotFound,
	domain.KindConflict:        fiber.StatusConflict,
	domain.KindForbidden:       fiber.StatusForbidden,
	domain.KindUnauthenticated: fiber.StatusUnauthorized,
}

// httpError is a transport-level failure (malformed JSON, wrong media type)
// that has no domain meaning.
type httpError struct {
	status int
	code   string
	detail string
	fields []problemField
	// cause is logged with a 5xx, never shown.
	cause error
	// anonymous problems are answers to requests whose framing is in doubt:
	// they carry no instance, since the target read may belong to another
	// request glued on by a proxy that framed the bytes differently.
	anonymous bool
}

func (e *httpError) Error() string {
	if e.cause != nil {
		return e.detail + ": " + e.cause.Error()
	}
	return e.detail
}

// retryAfterSeconds is what a 503 asks clients to wait before retrying.
const retryAfterSeconds = "2"

// errorHandler is the only place where an error becomes a response: a
// problem+json body, or on the web pages (issue 13) a page that says the
// same (webErrorPage).
func errorHandler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		p := problemFor(c, err, log)
		if wantsWebPage(c) {
			return webErrorPage(c, p)
		}
		c.Status(p.Status)
		c.Set(fiber.HeaderContentType, "application/problem+json")
		body, mErr := jsonMarshal(p)
		if mErr != nil {
			return c.SendString(`{"type":"urn:quid:problem:internal","title":"Internal Server Error","status":500,"code":"internal"}`)
		}
		return c.Send(body)
	}
}

// problemFor maps an error to its problem (RFC 9457): the status by kind,
// the code, the fields; a 5xx says nothing of its cause and is logged.
func problemFor(c *fiber.Ctx, err error, log *slog.Logger) problem {
	p := problem{Status: fiber.StatusInternalServerError, Instance: c.OriginalURL(), RequestID: requestID(c)}
	if p.RequestID == "" {
		// The server refused the request (too large, unreadable) before the
		// request-id middleware ran; the client still gets an id to quote.
		p.RequestID = uuid.NewString()
		c.Set(fiber.HeaderXRequestID, p.RequestID)
	}
	var de *domain.Error
	var he *httpError
	var fe *fiber.Error
	switch {
	case errors.Is(err, app.ErrUnavailable):
		// Transient: clients and load balancers should retry.
		p.Status, p.Code = fiber.StatusServiceUnavailable, "unavailable"
		p.Detail = "the service cannot reach its database; retry after the time in Retry-After"
		c.Set(fiber.HeaderRetryAfter, retryAfterSeconds)
	case errors.As(err, &de):
		p.Status = statusByKind[de.Kind]
		p.Code = de.Code
		p.Detail = de.Message
		p.ExchangeIDs = de.ExchangeIDs
		for _, f := range de.Fields {
			p.Errors = append(p.Errors, problemField{Pointer: f.Pointer, Detail: f.Reason})
		}
		var nv *domain.NewerVersionError
		if errors.As(err, &nv) {
			p.NewerVersion = &problemVersion{ContractID: nv.ContractID, Version: nv.Version}
		}
	case errors.As(err, &he):
		p.Status, p.Code, p.Detail, p.Errors = he.status, he.code, he.detail, he.fields
		if he.status == fiber.StatusServiceUnavailable {
			c.Set(fiber.HeaderRetryAfter, retryAfterSeconds)
		}
		if he.anonymous {
			p.Instance = ""
		}
	case errors.As(err, &fe):
		p.Status = fe.Code
		p.Detail = fe.Message
		p.Code = strings.ReplaceAll(strings.ToLower(utils.StatusMessage(fe.Code)), " ", "-")
		if fe.Code == fiber.StatusNotFound {
			p.Detail = "no resource at " + c.Path()
			p.Code = "route-not-found"
		}
		if fe.Code == fiber.StatusMethodNotAllowed {
			p.Detail = c.Method() + " is not allowed on " + c.Path()
		}
	}
	if p.Status == 0 {
		p.Status = fiber.StatusInternalServerError
	}
	if p.Status == fiber.StatusServiceUnavailable {
		log.WarnContext(c.UserContext(), "request failed", "request_id", p.RequestID, "route", c.Route().Path, "error", err)
	} else if p.Status >= 500 {
		log.ErrorContext(c.UserContext(), "request failed", "request_id", p.RequestID, "route", c.Route().Path, "error", err)
		p.Code = "internal"
		p.Detail = "an internal error occurred; quote the request id when reporting it"
		p.Errors = nil
		p.ExchangeIDs = nil
	}
	if p.Code == "" {
		p.Code = strings.ReplaceAll(strings.ToLower(utils.StatusMessage(p.Status)), " ", "-")
	}
	p.Title = utils.StatusMessage(p.Status)
	p.Type = "urn:quid:problem:" + p.Code
	if p.Status == fiber.StatusUnauthorized && !wantsWebPage(c) {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="quid"`)
	}
	return p
}
