package http

import (
	"sort"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
)

// recipientGrantDTO is what one exchange gave one recipient.
type recipientGrantDTO struct {
	ExchangeID          string   `json:"exchange_id"`
	ContractID          string   `json:"contract_id"`
	Version             int      `json:"version"`
	Status              string   `json:"status"`
	Categories          []string `json:"categories"`
	Purposes            []string `json:"purposes"`
	From                string   `json:"from"`
	Until               *string  `json:"until"`
	ExpiresAt           *string  `json:"expires_at"`
	DeletionDueAt       *string  `json:"deletion_due_at"`
	DeletionConfirmedAt *string  `json:"deletion_confirmed_at"`
	DeletionState       string   `json:"deletion_state"`
}

type deletionCountDTO struct {
	Owed      int     `json:"owed"`
	Confirmed int     `json:"confirmed"`
	Overdue   int     `json:"overdue"`
	NextDueAt *string `json:"next_due_at"`
}

// memberRecipientDTO merges every grant to one recipient: the union of
// categories and purposes, from the first grant until the last one ended
// (null while any is in force), and the grants themselves.
type memberRecipientDTO struct {
	ID               string              `json:"id"`
	Name             string              `json:"name"`
	Kind             string              `json:"kind"`
	Country          string              `json:"country"`
	PrivacyPolicyURL string              `json:"privacy_policy_url"`
	Categories       []string            `json:"categories"`
	Purposes         []string            `json:"purposes"`
	From             string              `json:"from"`
	Until            *string             `json:"until"`
	Active           bool                `json:"active"`
	Reads            int64               `json:"reads"`
	LastReadAt       *string             `json:"last_read_at"`
	Deletion         deletionCountDTO    `json:"deletion"`
	Grants           []recipientGrantDTO `json:"grants"`
}

func union(into map[string]bool, items []string) {
	for _, s := range items {
		into[s] = true
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func memberRecipientOf(r app.MemberRecipient, now time.Time) memberRecipientDTO {
	d := memberRecipientDTO{ID: r.Recipient.ID, Name: r.Recipient.Name, Kind: string(r.Recipient.Kind), Country: r.Recipient.Country,
		PrivacyPolicyURL: r.Recipient.PrivacyPolicyURL, Reads: r.Reads, LastReadAt: optTime(r.LastRead),
		Grants: make([]recipientGrantDTO, 0, len(r.Grants))}
	cats, purs := map[string]bool{}, map[string]bool{}
	var from time.Time
	var until *time.Time
	var nextDue *time.Time
	for _, g := range r.Grants {
		union(cats, g.Categories)
		union(purs, g.Purposes)
		if from.IsZero() || g.From.Before(from) {
			from = g.From
		}
		if g.Until == nil {
			d.Active = true
		} else if until == nil || g.Until.After(*until) {
			until = g.Until
		}
		gd := recipientGrantDTO{ExchangeID: g.ExchangeID, ContractID: g.ContractID, Version: g.Version, Status: string(g.Status),
			Categories: g.Categories, Purposes: g.Purposes, From: timeText(g.From), Until: optTime(g.Until), ExpiresAt: optTime(g.ExpiresAt),
			DeletionDueAt: optTime(g.DeletionDue), DeletionConfirmedAt: optTime(g.DeletedAt), DeletionState: "none"}
		switch {
		case g.DeletedAt != nil:
			gd.DeletionState = "deleted"
			d.Deletion.Owed++
			d.Deletion.Confirmed++
		case g.DeletionDue != nil:
			gd.DeletionState = "due"
			d.Deletion.Owed++
			if now.After(*g.DeletionDue) {
				gd.DeletionState = "overdue"
				d.Deletion.Overdue++
			}
			if nextDue == nil || g.DeletionDue.Before(*nextDue) {
				nextDue = g.DeletionDue
			}
		}
		d.Grants = append(d.Grants, gd)
	}
	d.Categories, d.Purposes, d.From, d.Deletion.NextDueAt = sortedKeys(cats), sortedKeys(purs), timeText(from), optTime(nextDue)
	if !d.Active {
		d.Until = optTime(until)
	}
	return d
}

// myRecipients answers GET /v1/me/recipients (GDPR Art. 15(1)(c), 19).
func (h *handlers) myRecipients(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	rs, next, err := h.svc.Enforcement.MyRecipients(c.UserContext(), principal(c), page)
	if err != nil {
		return err
	}
	now := time.Now()
	out := list[memberRecipientDTO]{Items: make([]memberRecipientDTO, 0, len(rs)), NextCursor: next}
	for _, r := range rs {
		out.Items = append(out.Items, memberRecipientOf(r, now))
	}
	return c.JSON(out)
}
