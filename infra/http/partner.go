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

type partnerReadDTO struct {
	MemberID   string         `json:"member_id"`
	Purpose    string         `json:"purpose"`
	Attributes map[string]any `json:"attributes"`
	Exchanges  []string       `json:"exchanges"`
}

func (h *handlers) partnerRead(c *fiber.Ctx) error {
	memberID, err := pathParam(c, "member_id")
	if err != nil {
		return err
	}
	r, err := h.svc.Enforcement.ReadMemberData(c.UserContext(), principal(c), memberID, c.Query("purpose"), requestID(c))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(partnerReadDTO{r.MemberID, r.Purpose, r.Attributes, r.ExchangeIDs})
}

type webhookIn struct {
	URL    string `json:"url" validate:"required,max=2000"`
	Secret string `json:"secret"`
}

type webhookDTO struct {
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"`
}

func (h *handlers) putWebhook(c *fiber.Ctx) error {
	var in webhookIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	w, err := h.svc.Enforcement.RegisterWebhook(c.UserContext(), principal(c), in.URL, in.Secret)
	if err != nil {
		return err
	}
	out := webhookDTO{URL: w.URL}
	if in.Secret == "" {
		out.Secret = w.Secret // generated: shown this once only
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
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
		DueAt: timeText(a.DueAt), ConfirmedAt: optTime(a.ConfirmedAt), State: "due"}
	if withMember {
		d.MemberID = a.MemberID
	}
	switch {
	case a.ConfirmedAt != nil:
		d.State = "deleted"
	case now.After(a.DueAt):
		d.State = "overdue"
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
}

func accessOf(e app.AccessEntry) accessDTO {
	return accessDTO{ID: e.ID, MemberID: e.MemberID, Accessor: e.AccessorName, AccessorID: e.AccessorID, Role: e.AccessorRole,
		Purpose: nilIfEmpty(e.Purpose), Categories: e.Categories, Exchanges: e.ExchangeIDs, RequestID: e.RequestID, At: timeText(e.At)}
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

type deliveryDTO struct {
	ID          string  `json:"id"`
	RecipientID string  `json:"recipient_id"`
	EventType   string  `json:"event_type"`
	CreatedAt   string  `json:"created_at"`
	Attempts    int     `json:"attempts"`
	State       string  `json:"state"`
	NextAttempt *string `json:"next_attempt_at"`
	DeliveredAt *string `json:"delivered_at"`
	LastStatus  *int    `json:"last_status"`
	LastError   *string `json:"last_error"`
}

func (h *handlers) deliveries(c *fiber.Ctx) error {
	page, err := feedPageOf(c)
	if err != nil {
		return err
	}
	recipientID := strings.ToLower(c.Query("recipient_id"))
	if recipientID != "" && !isUUID(recipientID) {
		return domain.Invalid("/query/recipient_id", "must be a recipient id (a UUID)")
	}
	ds, next, err := h.svc.Enforcement.Deliveries(c.UserContext(), principal(c), recipientID, page)
	if err != nil {
		return err
	}
	out := list[deliveryDTO]{Items: make([]deliveryDTO, 0, len(ds)), NextCursor: next}
	for _, d := range ds {
		dto := deliveryDTO{ID: d.ID, RecipientID: d.RecipientID, EventType: d.EventType, CreatedAt: timeText(d.CreatedAt),
			Attempts: d.Attempts, State: "pending", DeliveredAt: optTime(d.DeliveredAt), LastStatus: d.LastStatus, LastError: nilIfEmpty(d.LastError)}
		switch {
		case d.DeliveredAt != nil:
			dto.State = "delivered"
		case d.FailedAt != nil:
			dto.State = "failed"
		default:
			dto.NextAttempt = optTime(&d.NextAttempt)
		}
		out.Items = append(out.Items, dto)
	}
	return c.JSON(out)
}

type erasureDTO struct {
	ErasedAt           string `json:"erased_at"`
	ExchangesEnded     int    `json:"exchanges_ended"`
	RecipientsNotified int    `json:"recipients_notified"`
	// BonusFamilies and Reenrolment say what coming back means: PUT /v1/me
	// starts a fresh member, not paid again a join bonus already paid.
	BonusFamilies int    `json:"bonus_families_remembered"`
	Reenrolment   string `json:"reenrolment"`
}

// reenrolment is the erasure response's word on coming back.
const reenrolment = "PUT /v1/me with the same sign-in starts a fresh member with no link to the erased data. " +
	"A join bonus already paid for a contract family is not paid again: for that alone, a keyed hash (HMAC) of " +
	"the sign-in subject and each such family is kept, and nothing else."

func (h *handlers) erase(c *fiber.Ctx) error {
	e, err := h.svc.Enforcement.Erase(c.UserContext(), principal(c))
	if err != nil {
		return err
	}
	return c.JSON(erasureDTO{timeText(e.ErasedAt), e.ExchangesEnded, e.RecipientsNotified, e.BonusFamilies, reenrolment})
}
