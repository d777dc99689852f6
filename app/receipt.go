package app

import (
	"time"

	"github.com/quidpro/quid/domain"
)

// ReceiptSigner signs consent receipts.
type ReceiptSigner interface {
	SignReceipt(r Receipt) (string, error)
}

// Receipt is what a member agreed to, as signed into the consent receipt.
type Receipt struct {
	ID         string
	IssuedAt   time.Time
	MemberID   string
	ExchangeID string
	ContractID string
	FamilyID   string
	Version    int
	TermsHash  string
	Title      string
	Items      []ReceiptItem
	Reward     domain.Reward
	Duration   *domain.Duration
	Retention  domain.Duration
	JoinedAt   time.Time
	ExpiresAt  *time.Time
	// RenewedAt and Renewal are set on a renewal's receipt: when, and
	// which renewal (1 for the first).
	RenewedAt *time.Time
	Renewal   int
	// RewardValue is the reward in money at the point value frozen into
	// the terms (issue 12: the reward in money wherever it is shown); nil
	// for terms published before a programme identity was set, which
	// froze no point value to promise.
	RewardValue *domain.RewardValue
}

type ReceiptItem struct {
	Category   string
	Purpose    string
	Recipients []string
}

// receiptOf is the receipt of a new exchange on c, naming its recipients
// and valuing its reward at the point value c's terms froze (catalog
// gives the currency's minor units).
func receiptOf(e domain.Exchange, receiptID string, c domain.Contract, recipients map[string]domain.Recipient, catalog domain.Catalog) Receipt {
	t := c.Terms()
	r := Receipt{ID: receiptID, IssuedAt: e.JoinedAt(), MemberID: e.MemberID(), ExchangeID: e.ID(), ContractID: c.ID(),
		FamilyID: c.FamilyID(), Version: c.Version(), TermsHash: c.TermsHash(), Title: t.Title, Reward: t.Reward,
		Duration: t.Duration, Retention: t.Retention, JoinedAt: e.JoinedAt(), ExpiresAt: e.ExpiresAt()}
	for _, it := range t.Items {
		ri := ReceiptItem{Category: it.Category, Purpose: it.Purpose}
		for _, id := range it.Recipients {
			ri.Recipients = append(ri.Recipients, recipients[id].Name)
		}
		r.Items = append(r.Items, ri)
	}
	if p := t.Programme; p != nil {
		if digits, ok := catalog.Currency(p.PointValue.Currency); ok {
			if v, err := t.ValueOf(p.PointValue, digits); err == nil {
				r.RewardValue = &v
			}
		}
	}
	return r
}
