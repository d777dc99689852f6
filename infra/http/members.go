package http

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

func (h *handlers) memberRoutes(v1 fiber.Router, auth roleGate) {
	// The gate sits on each route, not on the group: a group handler would
	// also run for unknown paths and answer 401 where 404 or 405 is true.
	member := auth(app.RoleMember)
	me := v1.Group("/me")
	me.Put("", member, h.putMe)
	me.Get("", member, h.snapshot, h.getMe)
	me.Get("/exchanges", member, h.snapshot, h.listExchanges)
	me.Post("/exchanges", member, h.join)
	me.Get("/exchanges/:id", member, h.snapshot, h.getExchange)
	me.Delete("/exchanges/:id", member, noBody, h.cancelExchange)
	me.Get("/points", member, h.snapshot, h.points)
	me.Post("/redemptions", member, h.redeem)
	me.Get("/transparency", member, h.snapshot, h.myTransparency)
	me.Get("/export", member, h.snapshot, h.export)
	if h.svc.Enforcement != nil {
		me.Get("/recipients", member, h.snapshot, h.myRecipients)
	}
}

type balanceDTO struct {
	Available int64 `json:"available"`
	Pending   int64 `json:"pending"`
}

type memberDTO struct {
	ID         string         `json:"id"`
	Attributes map[string]any `json:"attributes"`
	Balance    balanceDTO     `json:"balance"`
	CreatedAt  string         `json:"created_at"`
}

func memberOf(m app.Member) memberDTO {
	return memberDTO{m.ID, m.Attributes, balanceDTO(m.Balance), timeText(m.CreatedAt)}
}

type profileIn struct {
	Attributes map[string]any `json:"attributes" validate:"required"`
}

func (h *handlers) putMe(c *fiber.Ctx) error {
	var in profileIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	m, created, err := h.svc.Members.Enrol(c.UserContext(), principal(c), in.Attributes)
	if err != nil {
		return err
	}
	if created {
		c.Status(fiber.StatusCreated)
	}
	return c.JSON(memberOf(m))
}

func (h *handlers) getMe(c *fiber.Ctx) error {
	m, err := h.svc.Members.Get(c.UserContext(), principal(c))
	if err != nil {
		return err
	}
	return c.JSON(memberOf(m))
}

type newerVersionDTO struct {
	ContractID string `json:"contract_id"`
	Version    int    `json:"version"`
	Material   bool   `json:"material"`
}

type exchangeDTO struct {
	ID           string           `json:"id"`
	ContractID   string           `json:"contract_id"`
	FamilyID     string           `json:"family_id"`
	Version      int              `json:"version,omitempty"`
	Title        string           `json:"title,omitempty"`
	TermsHash    string           `json:"terms_hash"`
	Status       string           `json:"status"`
	JoinedAt     string           `json:"joined_at"`
	ExpiresAt    *string          `json:"expires_at"`
	EndedAt      *string          `json:"ended_at"`
	CancelledAt  *string          `json:"cancelled_at,omitempty"`
	Bonus        *bonusDTO        `json:"bonus"`
	PointsEarned *int64           `json:"points_earned,omitempty"`
	NewerVersion *newerVersionDTO `json:"newer_version,omitempty"`
	Receipt      string           `json:"receipt,omitempty"`
}

type bonusDTO struct {
	Points  int64   `json:"points"`
	State   string  `json:"state"`
	VestsAt *string `json:"vests_at"`
}

func exchangeOf(ex domain.Exchange) exchangeDTO {
	e := ex.State()
	d := exchangeDTO{ID: e.ID, ContractID: e.ContractID, FamilyID: e.FamilyID, TermsHash: e.TermsHash,
		Status: string(e.Status), JoinedAt: timeText(e.JoinedAt), ExpiresAt: optTime(e.ExpiresAt), EndedAt: optTime(e.EndedAt)}
	if e.Status == domain.ExchangeCancelled {
		d.CancelledAt = d.EndedAt
	}
	if e.BonusState != domain.BonusNone {
		d.Bonus = &bonusDTO{Points: e.BonusPoints, State: string(e.BonusState), VestsAt: optTime(e.BonusVestsAt)}
	}
	return d
}

func exchangeViewOf(v app.ExchangeView) exchangeDTO {
	d := exchangeOf(v.Exchange)
	d.Version, d.Title = v.Contract.Version(), v.Contract.Terms().Title
	earned := v.PointsEarned
	d.PointsEarned = &earned
	if n := v.NewerVersion; n != nil {
		d.NewerVersion = &newerVersionDTO{n.ContractID, n.Version, n.Material}
	}
	return d
}

type joinIn struct {
	ContractID string `json:"contract_id" validate:"required,uuid"`
}

func (h *handlers) join(c *fiber.Ctx) error {
	var in joinIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	idem, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	e, replayed, err := h.svc.Exchanges.Join(c.UserContext(), principal(c), strings.ToLower(in.ContractID), idem)
	if err != nil {
		return err
	}
	if replayed {
		c.Set("Idempotent-Replayed", "true")
	}
	d := exchangeOf(e)
	d.Receipt = e.Receipt()
	c.Location(resourcePath("/v1/me/exchanges", e.ID()))
	return c.Status(fiber.StatusCreated).JSON(d)
}

func (h *handlers) listExchanges(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	vs, next, err := h.svc.Exchanges.List(c.UserContext(), principal(c), page)
	if err != nil {
		return err
	}
	out := list[exchangeDTO]{Items: make([]exchangeDTO, 0, len(vs)), NextCursor: next}
	for _, v := range vs {
		out.Items = append(out.Items, exchangeViewOf(v))
	}
	return c.JSON(out)
}

func (h *handlers) getExchange(c *fiber.Ctx) error {
	id, err := idParam(c, "exchange")
	if err != nil {
		return err
	}
	v, err := h.svc.Exchanges.Get(c.UserContext(), principal(c), id)
	if err != nil {
		return err
	}
	d := exchangeViewOf(v)
	d.Receipt = v.Exchange.Receipt()
	return c.JSON(d)
}

func (h *handlers) cancelExchange(c *fiber.Ctx) error {
	id, err := idParam(c, "exchange")
	if err != nil {
		return err
	}
	e, err := h.svc.Exchanges.Cancel(c.UserContext(), principal(c), id)
	if err != nil {
		return err
	}
	return c.JSON(exchangeOf(e))
}

type entryDTO struct {
	ID          string  `json:"id"`
	Kind        string  `json:"kind"`
	Points      int64   `json:"points"`
	ExchangeID  *string `json:"exchange_id"`
	ContractID  *string `json:"contract_id"`
	TermsHash   *string `json:"terms_hash"`
	PeriodStart *string `json:"period_start"`
	PeriodEnd   *string `json:"period_end"`
	Reference   *string `json:"reference,omitempty"`
	CreatedAt   string  `json:"created_at"`
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func entryOf(e domain.Entry) entryDTO {
	return entryDTO{ID: e.ID, Kind: string(e.Kind), Points: e.Points, ExchangeID: nilIfEmpty(e.ExchangeID),
		ContractID: nilIfEmpty(e.ContractID), TermsHash: nilIfEmpty(e.TermsHash), PeriodStart: optTime(e.PeriodStart),
		PeriodEnd: optTime(e.PeriodEnd), Reference: nilIfEmpty(e.Reference), CreatedAt: timeText(e.CreatedAt)}
}

type pointsDTO struct {
	Available  int64      `json:"available"`
	Pending    int64      `json:"pending"`
	Items      []entryDTO `json:"items"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

func (h *handlers) points(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	b, entries, next, err := h.svc.Exchanges.Points(c.UserContext(), principal(c), page)
	if err != nil {
		return err
	}
	out := pointsDTO{Available: b.Available, Pending: b.Pending, Items: make([]entryDTO, 0, len(entries)), NextCursor: next}
	for _, e := range entries {
		out.Items = append(out.Items, entryOf(e))
	}
	return c.JSON(out)
}

type redeemIn struct {
	Points    int64  `json:"points" validate:"required,gte=1"`
	Reference string `json:"reference" validate:"required,max=200"`
}

type redemptionDTO struct {
	Entry   entryDTO   `json:"entry"`
	Balance balanceDTO `json:"balance"`
}

func (h *handlers) redeem(c *fiber.Ctx) error {
	var in redeemIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	idem, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	e, b, replayed, err := h.svc.Exchanges.Redeem(c.UserContext(), principal(c), in.Points, in.Reference, idem)
	if err != nil {
		return err
	}
	if replayed {
		c.Set("Idempotent-Replayed", "true")
	}
	return c.Status(fiber.StatusCreated).JSON(redemptionDTO{entryOf(e), balanceDTO(b)})
}

// idempotencyKey reads the Idempotency-Key header; PeekAll tells a header
// sent empty from none, which c.Get cannot.
func idempotencyKey(c *fiber.Ctx) (*app.IdempotencyKey, error) {
	key := c.Get("Idempotency-Key")
	return app.NewIdempotencyKey(key, key != "" || len(c.Request().Header.PeekAll("Idempotency-Key")) > 0, c.Body())
}
