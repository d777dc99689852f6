package http

import (
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

type shareDTO struct {
	Category      string   `json:"category"`
	CategoryLabel string   `json:"category_label"`
	Purpose       string   `json:"purpose"`
	PurposeLabel  string   `json:"purpose_label"`
	Recipients    []string `json:"recipients"`
}

type myExchangeDTO struct {
	exchangeDTO
	Shares          []shareDTO `json:"shares"`
	Deletions       []ackDTO   `json:"deletions"`
	DeletionSummary *string    `json:"deletion_summary"`
}

type myTransparencyDTO struct {
	MemberID  string          `json:"member_id"`
	Exchanges []myExchangeDTO `json:"exchanges"`
	AccessLog []accessDTO     `json:"access_log"`
	// OlderAccess continues the access log at GET /v1/me/access-log?cursor=.
	OlderAccess string      `json:"access_log_next_cursor,omitempty"`
	Points      myPointsDTO `json:"points"`
}

// myPointsDTO is the member statement's account of their points (issue
// 14: the statement describes the ledger): the two balances, when points
// expire, the tier, and in words how the history adds up to the balances.
type myPointsDTO struct {
	Balance   balanceDTO       `json:"balance"`
	Expiring  []expiringDTO    `json:"expiring"`
	Tier      *tierStandingDTO `json:"tier"`
	HowItAdds string           `json:"how_it_adds_up"`
}

// pointsHowItAddsUp is the ledger in words, for members: double entry
// (each entry's postings say which balance it moved), FEFO spending, expiry
// that cancelling does not hasten, and tiers that never change a reward.
const pointsHowItAddsUp = "Your points sit in two balances: pending (a join bonus that has not vested yet) and available (points you can spend). " +
	"Each entry in your points history moves points between the programme and one of your balances, or from pending to available, " +
	"and its postings say which balance it moved, so the postings of a balance add up to that balance. " +
	"When you spend points, those that expire first are used first; points you earned stay yours when you cancel an exchange, " +
	"until the expiry date shown, if the programme sets one. " +
	"A tier counts the points you earned in its window; it never changes what a contract pays."

func (h *handlers) myTransparency(c *fiber.Ctx) error {
	p := principal(c)
	st, err := h.svc.Exchanges.Transparency(c.UserContext(), p)
	if err != nil {
		return err
	}
	out := myTransparencyDTO{MemberID: p.Subject, Exchanges: []myExchangeDTO{}, AccessLog: []accessDTO{}}
	acks := map[string][]ackDTO{}
	now := time.Now()
	if h.svc.Enforcement != nil {
		all, err := h.svc.Enforcement.MyDeletionAcks(c.UserContext(), p)
		if err != nil {
			return err
		}
		for _, a := range all {
			acks[a.ExchangeID] = append(acks[a.ExchangeID], ackOf(a, now, false))
		}
		log, older, err := h.svc.Enforcement.MyAccessLog(c.UserContext(), p, app.Page{Limit: 100})
		if err != nil {
			return err
		}
		out.AccessLog, out.OlderAccess = accessList(log, "").Items, older
	}
	values, err := h.rewardValuesOf(c.UserContext(), st.Exchanges)
	if err != nil {
		return err
	}
	for _, v := range st.Exchanges {
		d := myExchangeDTO{exchangeDTO: exchangeViewOf(v, values), Shares: []shareDTO{}, Deletions: []ackDTO{}}
		list := acks[v.Exchange.ID()]
		if ended := v.Exchange.EndedAt(); len(list) == 0 && ended != nil && v.Exchange.Status() == domain.ExchangeExpired {
			// Consent lapsed and no write has recorded it yet, so its
			// deletion duties are not stored; they are already owed.
			due := v.Contract.Terms().DeleteBy(*ended)
			for _, id := range v.Contract.RecipientIDs() {
				list = append(list, ackOf(app.DeletionAck{ExchangeID: v.Exchange.ID(), RecipientID: id,
					RecipientName: st.Recipients[id].Name, MemberID: p.Subject, DueAt: due}, now, false))
			}
		}
		if len(list) > 0 {
			d.Deletions = list
			done := 0
			for _, a := range list {
				if a.State == "deleted" {
					done++
				}
			}
			summary := fmt.Sprintf("%d of %d recipients confirmed deletion", done, len(list))
			d.DeletionSummary = &summary
		}
		for _, it := range v.Contract.Terms().Items {
			cat, _ := h.svc.Catalog.Category(it.Category)
			pur, _ := h.svc.Catalog.Purpose(it.Purpose)
			s := shareDTO{Category: it.Category, CategoryLabel: cat.Label, Purpose: it.Purpose, PurposeLabel: pur.Label, Recipients: []string{}}
			for _, r := range it.Recipients {
				s.Recipients = append(s.Recipients, st.Recipients[r].Name)
			}
			d.Shares = append(d.Shares, s)
		}
		out.Exchanges = append(out.Exchanges, d)
	}
	if out.Points, err = h.myPoints(c); err != nil {
		return err
	}
	return c.JSON(out)
}

// myPoints reads the member's balances, expiring points and tier for the
// member statement, through the same use cases as GET /v1/me.
func (h *handlers) myPoints(c *fiber.Ctx) (myPointsDTO, error) {
	m, err := h.svc.Members.Get(c.UserContext(), principal(c))
	if err != nil {
		return myPointsDTO{}, err
	}
	out := myPointsDTO{Balance: balanceDTO(m.Balance), HowItAdds: pointsHowItAddsUp}
	if out.Expiring, err = h.expiring(c); err != nil {
		return myPointsDTO{}, err
	}
	if h.svc.Tiers != nil {
		if out.Tier, err = h.tierStanding(c); err != nil {
			return myPointsDTO{}, err
		}
	}
	return out, nil
}

type consentDTO struct {
	ExchangeID string `json:"exchange_id"`
	ContractID string `json:"contract_id"`
	TermsHash  string `json:"terms_hash"`
	Kind       string `json:"kind"`
	Actor      string `json:"actor"`
	At         string `json:"at"`
	// GPC tells whether the request that gave this consent carried the
	// Global Privacy Control signal (Sec-GPC: 1).
	GPC bool `json:"gpc"`
}

type exportDTO struct {
	Format     string        `json:"format"`
	ExportedAt string        `json:"exported_at"`
	Member     memberDTO     `json:"member"`
	Exchanges  []exchangeDTO `json:"exchanges"`
	ConsentLog []consentDTO  `json:"consent_log"`
	Ledger     []entryDTO    `json:"ledger"`
	AccessLog  []accessDTO   `json:"access_log"`
	Deletions  []ackDTO      `json:"deletions"`
	// Recipients is every page of GET /v1/me/recipients.
	Recipients []memberRecipientDTO `json:"recipients"`
	// Renewals are the renewed events of the consent log: each extended
	// consent by one duration on the same terms (the current receipt is on
	// the exchange).
	Renewals []consentDTO `json:"renewals"`
	// Restriction periods (Art. 18) and objections (Art. 21).
	Restrictions []restrictionPeriodDTO `json:"restrictions"`
	Objections   []objectionDTO         `json:"objections"`
	// ConsentRecords are GET /v1/me/exchanges/{id}/record of every
	// exchange: ISO/IEC TS 27560 consent records (DPV-27560 profile).
	ConsentRecords []consentRecordLD `json:"consent_records"`
	// Redemptions are every page of GET /v1/me/redemptions: each reward
	// redeemed from the catalogue, with its code and status.
	Redemptions []rewardRedemptionDTO `json:"redemptions"`
}

// export is the right to data portability: everything Quid holds about the
// member, in one JSON document, receipts included.
func (h *handlers) export(c *fiber.Ctx) error {
	ctx, p := c.UserContext(), principal(c)
	m, err := h.svc.Members.Get(ctx, p)
	if err != nil {
		return err
	}
	out := exportDTO{Format: "quid-export/1", ExportedAt: timeText(time.Now()), Member: memberOf(m),
		Exchanges: []exchangeDTO{}, ConsentLog: []consentDTO{}, Ledger: []entryDTO{}, AccessLog: []accessDTO{}, Deletions: []ackDTO{},
		Recipients: []memberRecipientDTO{}, Renewals: []consentDTO{},
		Restrictions: []restrictionPeriodDTO{}, Objections: []objectionDTO{}, ConsentRecords: []consentRecordLD{},
		Redemptions: []rewardRedemptionDTO{}}
	st, err := h.svc.Exchanges.Transparency(ctx, p)
	if err != nil {
		return err
	}
	values, err := h.rewardValuesOf(ctx, st.Exchanges)
	if err != nil {
		return err
	}
	for _, v := range st.Exchanges {
		d := exchangeViewOf(v, values)
		d.Receipt = v.Exchange.Receipt()
		out.Exchanges = append(out.Exchanges, d)
	}
	events, err := h.svc.Exchanges.ConsentLog(ctx, p)
	if err != nil {
		return err
	}
	contracts := make([]domain.Contract, 0, len(st.Exchanges))
	for _, v := range st.Exchanges {
		contracts = append(contracts, v.Contract)
	}
	current, err := h.currentProgramme(ctx, contracts...)
	if err != nil {
		return err
	}
	byExchange := map[string][]app.ConsentEvent{}
	for _, e := range events {
		byExchange[e.ExchangeID] = append(byExchange[e.ExchangeID], e)
	}
	now := time.Now()
	for _, v := range st.Exchanges {
		out.ConsentRecords = append(out.ConsentRecords, consentRecordOf(v.Exchange, v.Contract, st.Recipients, h.svc.Catalog,
			answeringProgramme(v.Contract, current), byExchange[v.Exchange.ID()], now))
	}
	for _, e := range events {
		d := consentDTO{e.ExchangeID, e.ContractID, e.TermsHash, e.Kind, e.Actor, timeText(e.At), e.GPC}
		out.ConsentLog = append(out.ConsentLog, d)
		if e.Kind == "renewed" {
			out.Renewals = append(out.Renewals, d)
		}
	}
	for page := (app.Page{Limit: 100}); h.svc.Rewards != nil; {
		rs, next, err := h.svc.Rewards.Redemptions(ctx, p, page)
		if err != nil {
			return err
		}
		for _, r := range rs {
			out.Redemptions = append(out.Redemptions, rewardRedemptionOf(r))
		}
		if page.Cursor = next; next == "" {
			break
		}
	}
	for page := (app.Page{Limit: 100}); ; {
		_, entries, next, err := h.svc.Exchanges.Points(ctx, p, page)
		if err != nil {
			return err
		}
		for _, e := range entries {
			out.Ledger = append(out.Ledger, entryOf(e))
		}
		if page.Cursor = next; next == "" {
			break
		}
	}
	if h.svc.Enforcement != nil {
		for page := (app.Page{Limit: 100}); ; {
			log, next, err := h.svc.Enforcement.MyAccessLog(ctx, p, page)
			if err != nil {
				return err
			}
			out.AccessLog = append(out.AccessLog, accessList(log, "").Items...)
			if page.Cursor = next; next == "" {
				break
			}
		}
		acks, err := h.svc.Enforcement.MyDeletionAcks(ctx, p)
		if err != nil {
			return err
		}
		now := time.Now()
		for _, a := range acks {
			out.Deletions = append(out.Deletions, ackOf(a, now, false))
		}
		for page := (app.Page{Limit: 100}); ; {
			rs, next, err := h.svc.Enforcement.MyRecipients(ctx, p, page)
			if err != nil {
				return err
			}
			for _, r := range rs {
				out.Recipients = append(out.Recipients, memberRecipientOf(r, now))
			}
			if page.Cursor = next; next == "" {
				break
			}
		}
	}
	if h.svc.Restrictions != nil {
		r, err := h.svc.Restrictions.Get(ctx, p)
		if err != nil {
			return err
		}
		out.Member.Restricted = &r.Restricted
		out.Restrictions = restrictionOf(r).Periods
	}
	if h.svc.Objections != nil {
		os, err := h.svc.Objections.History(ctx, p)
		if err != nil {
			return err
		}
		for _, o := range os {
			out.Objections = append(out.Objections, h.objectionOf(o))
		}
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="quid-export.json"`)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}
