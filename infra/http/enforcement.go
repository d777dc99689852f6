package http

import (
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

func (h *handlers) enforcementRoutes(v1 fiber.Router, auth roleGate) {
	v1.Get("/partner/members/:member_id/data", auth(app.RolePartner), h.partnerRead)
	v1.Put("/partner/webhook", auth(app.RolePartner), h.putWebhook)
	v1.Post("/partner/deletions", auth(app.RolePartner), h.confirmDeletion)
	v1.Get("/me/access-log", auth(app.RoleMember), h.snapshot, h.myAccessLog)
	v1.Delete("/me", auth(app.RoleMember), noBody, h.erase)
	v1.Get("/audit", auth(app.RoleAdmin), h.audit)
	v1.Get("/audit/overdue-deletions", auth(app.RoleAdmin), h.overdueDeletions)
	v1.Get("/audit/webhook-deliveries", auth(app.RoleAdmin), h.deliveries)
}

type deletionIn struct {
	ExchangeID string `json:"exchange_id" validate:"required,uuid"`
}

type ackDTO struct {
	ExchangeID  string  `json:"exchange_id"`
	RecipientID string  `json:"recipient_id"`
	Recipient   string  `json:"recipient"`
	MemberID    string  `json:"member_id,omitempty"`
	DueAt       string  `json:"due_at"`
	ConfirmedAt *string `json:"confirmed_at"`
	State       string  `json:"state"`
}

func ackOf(a app.DeletionAck, now time.Time, withMember bool) ackDTO {
	d := ackDTO{ExchangeID: a.ExchangeID, RecipientID: a.RecipientID, Recipient: a.RecipientName,
		DueAt: timeText(a.DueAt), ConfirmedAt: optTime(a.ConfirmedAt), State: domain.DeletionState(a.DueAt, a.ConfirmedAt, now)}
	if withMember {
		d.MemberID = a.MemberID
	}
	return d
}

func (h *handlers) confirmDeletion(c *fiber.Ctx) error {
	var in deletionIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	a, err := h.svc.Enforcement.ConfirmDeletion(c.UserContext(), principal(c), strings.ToLower(in.ExchangeID))
	if err != nil {
		return err
	}
	return c.JSON(ackOf(a, time.Now(), false))
}

type accessDTO struct {
	ID         string   `json:"id"`
	MemberID   string   `json:"member_id"`
	Accessor   string   `json:"accessor"`
	AccessorID string   `json:"accessor_id"`
	Role       string   `json:"role"`
	Purpose    *string  `json:"purpose"`
	Categories []string `json:"categories"`
	Exchanges  []string `json:"exchanges"`
	RequestID  string   `json:"request_id"`
	At         string   `json:"at"`
	Refused    *string  `json:"refused,omitempty"`
}

func accessOf(e app.AccessEntry) accessDTO {
	return accessDTO{ID: e.ID, MemberID: e.MemberID, Accessor: e.AccessorName, AccessorID: e.AccessorID, Role: e.AccessorRole,
		Purpose: nilIfEmpty(e.Purpose), Categories: e.Categories, Exchanges: e.ExchangeIDs, RequestID: e.RequestID, At: timeText(e.At), Refused: nilIfEmpty(e.Refused)}
}

func accessList(es []app.AccessEntry, next string) list[accessDTO] {
	out := list[accessDTO]{Items: make([]accessDTO, 0, len(es)), NextCursor: next}
	for _, e := range es {
		out.Items = append(out.Items, accessOf(e))
	}
	return out
}

func (h *handlers) myAccessLog(c *fiber.Ctx) error {
	page, err := feedPageOf(c)
	if err != nil {
		return err
	}
	es, next, err := h.svc.Enforcement.MyAccessLog(c.UserContext(), principal(c), page)
	if err != nil {
		return err
	}
	return c.JSON(accessList(es, next))
}

func queryTime(c *fiber.Ctx, name string) (*time.Time, error) {
	raw := c.Query(name)
	if raw == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return nil, domain.Invalid("/query/"+name, "must be an RFC 3339 time")
	}
	return &t, nil
}

func (h *handlers) audit(c *fiber.Ctx) error {
	page, err := feedPageOf(c)
	if err != nil {
		return err
	}
	var f app.AccessFilter
	if f.MemberID, err = identifierQuery(c, "member_id"); err != nil {
		return err
	}
	if f.AccessorID, err = identifierQuery(c, "recipient_id"); err != nil {
		return err
	}
	if f.From, err = queryTime(c, "from"); err != nil {
		return err
	}
	if f.Until, err = queryTime(c, "until"); err != nil {
		return err
	}
	es, next, err := h.svc.Enforcement.Audit(c.UserContext(), principal(c), f, page)
	if err != nil {
		return err
	}
	return c.JSON(accessList(es, next))
}

func (h *handlers) overdueDeletions(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	acks, next, err := h.svc.Enforcement.OverdueDeletions(c.UserContext(), principal(c), page)
	if err != nil {
		return err
	}
	out := list[ackDTO]{Items: make([]ackDTO, 0, len(acks)), NextCursor: next}
	now := time.Now()
	for _, a := range acks {
		out.Items = append(out.Items, ackOf(a, now, true))
	}
	return c.JSON(out)
}
