package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// The member's pages for offers, joining, exchanges and points (issue 13).
// Every action calls the use case its /v1/me route calls: joining is
// Exchanges.JoinWith with an idempotency key (POST /v1/me/exchanges),
// cancelling Exchanges.Cancel (DELETE /v1/me/exchanges/{id}), renewing
// Exchanges.RenewWith, redeeming Rewards.Redeem and Rewards.Cancel.
//
// Joining and cancelling take the same steps from their pages: one form
// that leads to a confirmation, and one that confirms (GDPR Art. 7(3):
// withdrawing is as easy as consenting).

// memberPagesA registers the offers, exchanges and points pages; member is
// the signed-in gate of role member, on each route.
func (w *web) memberPagesA(g fiber.Router, member fiber.Handler) {
	snap := w.h.snapshot
	g.Get("/offers", member, w.offersPage)
	g.Get("/offers/:id", member, w.offerPage)
	g.Post("/offers/:id/join", member, w.joinConfirmPage)
	g.Post("/offers/:id/join/confirm", member, w.joinConfirmed)
	g.Get("/exchanges", member, snap, w.exchangesPage)
	g.Get("/exchanges/:id", member, snap, w.exchangePage)
	g.Get("/exchanges/:id/receipt", member, w.receiptFile)
	g.Get("/exchanges/:id/record", member, snap, w.recordFile)
	g.Post("/exchanges/:id/renew", member, w.renewExchange)
	g.Post("/exchanges/:id/cancel", member, w.cancelConfirmPage)
	g.Post("/exchanges/:id/cancel/confirm", member, w.cancelConfirmed)
	g.Get("/points", member, snap, w.pointsPage)
	g.Post("/rewards/:id/redeem", member, w.redeemReward)
	g.Post("/redemptions/:id/cancel", member, w.cancelRedemption)
}

// idempotencyField is the hidden form field that carries the key a
// confirmation form was rendered with: a second submission of the same
// form replays the first outcome instead of acting twice.
const idempotencyField = "key"

// formKey reads the form's idempotency key and fingerprints the action
// (what the form asks for, as the API fingerprints a body), covering the
// Global Privacy Control signal when the request carries it.
func formKey(c *fiber.Ctx, action string, gpc bool) (*app.IdempotencyKey, error) {
	form, err := readForm(c)
	if err != nil {
		return nil, err
	}
	key := form.Get(idempotencyField)
	idem, err := app.NewIdempotencyKey(key, true, []byte(action))
	if err != nil || key == "" {
		return nil, domain.Invalid("/form/"+idempotencyField, "this form has no valid key: open the page again and resend it")
	}
	if gpc {
		idem.CoverGPC([]byte(action))
	}
	return idem, nil
}

// formYes is true when a checkbox field was ticked.
func formYes(c *fiber.Ctx, name string) (bool, error) {
	form, err := readForm(c)
	if err != nil {
		return false, err
	}
	switch form.Get(name) {
	case "":
		return false, nil
	case "yes":
		return true, nil
	}
	return false, domain.Invalid("/form/"+name, "must be yes or left out")
}

// errorCode is the code of a domain error, or "".
func errorCode(err error) string {
	var de *domain.Error
	if errors.As(err, &de) {
		return de.Code
	}
	return ""
}

const codeNotEnrolled = "member-not-enrolled"

// ---- offers ----

// offerView is one offer as the pages show it: the statement's words
// (statementOf) and where to read it in full.
type offerView struct {
	statementDTO
	ConflictsWithObjection bool
	Joinable               bool
}

type offersData struct {
	Offers []offerView
	Next   string
}

// offersPage is GET /account/offers: the page of GET /v1/offers (same
// cursor and limit), each offer with what it asks and what it gives.
func (w *web) offersPage(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	sts, next, err := w.h.svc.Contracts.OfferStatements(c.UserContext(), page)
	if err != nil {
		return err
	}
	objected := map[string]bool{}
	if w.h.svc.Objections != nil {
		if objected, err = w.h.svc.Objections.Objected(c.UserContext(), principal(c)); err != nil {
			return err
		}
	}
	d := offersData{Offers: make([]offerView, 0, len(sts))}
	for _, st := range sts {
		d.Offers = append(d.Offers, offerView{statementDTO: statementOf(st), Joinable: st.Contract.Joinable(),
			ConflictsWithObjection: len(domain.ObjectedPurposes(st.Contract.Terms(), objected)) > 0})
	}
	if next != "" {
		q := url.Values{"cursor": {next}}
		if page.Limit > 0 {
			q.Set("limit", fmt.Sprint(page.Limit))
		}
		d.Next = webPrefix + "/offers?" + q.Encode()
	}
	return w.render(c, fiber.StatusOK, "offers", "Offers", "offers", d)
}

// statement reads the statement of the published version id as the
// member sees it (a draft is not found, as in GET /v1/contracts/{id}).
func (w *web) statement(c *fiber.Ctx, id string) (app.Statement, statementDTO, error) {
	p := principal(c)
	st, err := w.h.svc.Contracts.Transparency(c.UserContext(), &p, id)
	if err != nil {
		return app.Statement{}, statementDTO{}, err
	}
	return st, statementOf(st), nil
}

type offerData struct {
	Offer offerView
}

// offerPage is GET /account/offers/{id}: the statement, compact, with the
// Join button (step 1 of 2).
func (w *web) offerPage(c *fiber.Ctx) error {
	id, err := idParam(c, domain.ErrContractNotFound)
	if err != nil {
		return err
	}
	st, dto, err := w.statement(c, id)
	if err != nil {
		return err
	}
	return w.render(c, fiber.StatusOK, "offer", dto.Title, "offers", offerData{Offer: offerView{statementDTO: dto, Joinable: st.Contract.Joinable()}})
}

// sharedValue is one piece of data as a recipient would receive it.
type sharedValue struct {
	Label   string
	Purpose string
	Value   string
	Missing bool
	Derived bool
}

// sharedWith is what one recipient would receive.
type sharedWith struct {
	stmtRecipient
	Items []sharedValue
}

type joinConfirmData struct {
	Offer      offerView
	Shares     []sharedWith
	Key        string
	AskGPC     bool
	Restricted bool
}

// plainValue is a stored attribute as a person reads it: the catalogue's
// spelling of its type (examplePlain), never JSON.
func plainAttribute(cat domain.Category, v any) string {
	if s, ok := v.(string); ok {
		cat.Example = s
	} else {
		raw, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		cat.Example = string(raw)
	}
	return examplePlain(cat)
}

// joinConfirmPage is POST /account/offers/{id}/join (step 1 of 2): it
// writes nothing and shows exactly which values of the member's profile
// the contract would share, with whom and why, and the Confirm button.
func (w *web) joinConfirmPage(c *fiber.Ctx) error {
	id, err := idParam(c, domain.ErrContractNotFound)
	if err != nil {
		return err
	}
	st, dto, err := w.statement(c, id)
	if err != nil {
		return err
	}
	m, err := w.h.svc.Members.Get(c.UserContext(), principal(c))
	if err != nil {
		return w.joinRefused(c, dto, err)
	}
	d := joinConfirmData{Offer: offerView{statementDTO: dto, Joinable: st.Contract.Joinable()}, Key: randomToken(),
		AskGPC: gpcSignal(c) && st.Catalog.SharesWithThirdPartyOrForAdvertising(st.Contract.Terms(), st.Recipients)}
	if !d.Offer.Joinable {
		return w.joinRefused(c, dto, domain.Conflict("contract-not-joinable", "this version is no longer offered"))
	}
	now := time.Now()
	for _, r := range dto.Recipients {
		sw := sharedWith{stmtRecipient: r.stmtRecipient}
		for _, it := range r.Receives {
			cat, _ := st.Catalog.Category(it.Category)
			sv := sharedValue{Label: it.Label, Purpose: it.PurposeLabel, Derived: cat.Derived != nil}
			if v, ok := st.Catalog.Disclose([]string{it.Category}, m.Attributes, now)[it.Category]; ok {
				sv.Value = plainAttribute(cat, v)
			} else {
				sv.Missing = true
			}
			sw.Items = append(sw.Items, sv)
		}
		d.Shares = append(d.Shares, sw)
	}
	if w.h.svc.Restrictions != nil {
		r, err := w.h.svc.Restrictions.Get(c.UserContext(), principal(c))
		if err != nil {
			return err
		}
		d.Restricted = r.Restricted
	}
	return w.render(c, fiber.StatusOK, "join-confirm", "Confirm: "+dto.Title, "offers", d)
}

// joinConfirmed is POST /account/offers/{id}/join/confirm (step 2 of 2):
// the join of POST /v1/me/exchanges, idempotent by the form's key, then
// the exchange page with its signed receipt.
func (w *web) joinConfirmed(c *fiber.Ctx) error {
	id, err := idParam(c, domain.ErrContractNotFound)
	if err != nil {
		return err
	}
	affirm, err := formYes(c, "affirm_despite_gpc")
	if err != nil {
		return err
	}
	gpc := gpcSignal(c)
	idem, err := formKey(c, fmt.Sprintf("join contract_id=%s affirm_despite_gpc=%t", id, affirm), gpc)
	if err != nil {
		return err
	}
	e, _, err := w.h.svc.Exchanges.JoinWith(c.UserContext(), principal(c), app.JoinRequest{
		ContractID: id, Idempotency: idem, GPC: gpc, AffirmDespiteGPC: affirm})
	if err != nil {
		_, dto, sErr := w.statement(c, id)
		if sErr != nil {
			// An id that names no offer: the statement's 404, not the
			// join's 422 for its body field.
			return sErr
		}
		return w.joinRefused(c, dto, err)
	}
	return c.Redirect(resourcePath(webPrefix+"/exchanges", e.ID())+"?joined=1", fiber.StatusSeeOther)
}

type missingData struct {
	Label, Detail string
}

type joinRefusedData struct {
	Offer   offerView
	Title   string
	Detail  string
	Code    string
	Missing []missingData
	// Profile, Objections, Exchanges, Offer say where to go next.
	Profile, Rights, Exchanges, Retry bool
}

// joinRefused shows why a join was refused and what to do about it: the
// use case's words, with a link to the page that fixes it. Errors that are
// not refusals of this member's join go to the error page.
func (w *web) joinRefused(c *fiber.Ctx, offer statementDTO, err error) error {
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind == domain.KindUnauthenticated {
		return err
	}
	d := joinRefusedData{Offer: offerView{statementDTO: offer}, Title: "You cannot join this offer yet", Detail: de.Message, Code: de.Code}
	switch {
	case de.Code == codeNotEnrolled:
		d.Detail, d.Profile = "You have no profile yet. Add your data on your profile page first; then come back to this offer.", true
	case de.Code == "objected-purpose":
		d.Detail, d.Rights = "You object to a purpose this offer uses. If you want to join, lift the objection on your rights page first.", true
	case de.Code == "already-joined":
		d.Title, d.Detail, d.Exchanges = "You have already joined this offer", "You already share data under this version. Your exchanges list it.", true
	case de.Code == "gpc-conflict":
		d.Detail, d.Retry = de.Message+" Go back to the offer, join again and tick the box that says you want this exchange anyway.", true
	case de.Code == "under-minimum-age":
		d.Detail = de.Message + ". If your date of birth in your profile is wrong, correct it there."
		d.Profile = true
	case de.Kind == domain.KindInvalid:
		d.Detail, d.Profile = "This offer shares data your profile does not hold. Add it on your profile page, then join again:", true
		for _, f := range de.Fields {
			key, ok := strings.CutPrefix(f.Pointer, "/attributes/")
			if !ok {
				d.Missing = append(d.Missing, missingData{Label: "This form", Detail: f.Reason})
				d.Profile = false
				continue
			}
			label := key
			if cat, ok := w.h.svc.Catalog.Category(key); ok {
				label = cat.Label
			}
			d.Missing = append(d.Missing, missingData{Label: label, Detail: plainReason(f.Reason)})
		}
	case de.Kind == domain.KindNotFound:
		return err
	}
	return w.render(c, statusByKind[de.Kind], "join-refused", d.Title, "offers", d)
}

// plainReason drops the API's instructions ("with PUT /v1/me") from a
// reason: the page links to the profile page instead.
func plainReason(r string) string {
	if i := strings.Index(r, ": add it with PUT /v1/me"); i >= 0 {
		return r[:i] + "."
	}
	if i := strings.Index(r, ": add your date of birth with PUT /v1/me"); i >= 0 {
		return r[:i] + "; add your date of birth."
	}
	return r
}

// ---- exchanges ----

// shareLine is one item an exchange shares: what, why, with whom.
type shareLine struct {
	Label, Purpose string
	Recipients     []stmtRecipient
}

// exchangeView is one exchange as the pages show it.
type exchangeView struct {
	Earned                      int64
	ID, Title                   string
	Version                     int
	Status                      string
	Active                      bool
	Since                       time.Time
	Until, Ended, RenewalOpens  *time.Time
	Renewable                   bool
	BonusPending                int64
	BonusVestsAt                *time.Time
	Shares                      []shareLine
	ReceiptID                   string
	NewerVersionID              string
	NewerVersionMaterial        bool
	NewerVersion                int
	PointsWorth, Currency       string
	EstimatedValue, Plain       string
	Cancellation, RetentionText string
}

func (w *web) exchangeViewOf(v app.ExchangeView, values map[string]domain.RewardValue, recipients map[string]domain.Recipient, now time.Time) exchangeView {
	dto := exchangeViewOf(v, values)
	e := v.Exchange.AsOf(now)
	t := v.Contract.Terms()
	out := exchangeView{Earned: v.PointsEarned, ID: e.ID(), Title: t.Title, Version: v.Contract.Version(), Status: string(e.Status()),
		Active: e.IsActive(), Since: e.JoinedAt(), Until: e.ExpiresAt(), Ended: e.EndedAt(), Renewable: v.Renewable, ReceiptID: e.ReceiptID()}
	if e.BonusState() == domain.BonusPending {
		out.BonusPending, out.BonusVestsAt = e.BonusPoints(), e.BonusVestsAt()
	}
	if e.IsActive() && e.ExpiresAt() != nil && t.Duration != nil {
		opens := domain.RenewalOpensAt(t, *e.ExpiresAt())
		out.RenewalOpens = &opens
	}
	if n := v.NewerVersion; n != nil {
		out.NewerVersionID, out.NewerVersion, out.NewerVersionMaterial = n.ContractID, n.Version, n.Material
	}
	if r := dto.Received; r != nil {
		out.Plain = r.Plain
		if r.PointsValue != nil {
			out.PointsWorth, out.Currency = *r.PointsValue, *r.Currency
		}
		if r.EstimatedValue != nil {
			out.EstimatedValue = *r.EstimatedValue
		}
	}
	for _, it := range t.Items {
		cat, _ := w.h.svc.Catalog.Category(it.Category)
		pur, _ := w.h.svc.Catalog.Purpose(it.Purpose)
		line := shareLine{Label: cat.Label, Purpose: pur.Label}
		for _, id := range it.Recipients {
			r := recipients[id]
			if r.Name == "" {
				r.Name = id
			}
			line.Recipients = append(line.Recipients, stmtRecipient{r.ID, r.Name, string(r.Kind), r.Country, countryName(r.Country), r.PrivacyPolicyURL})
		}
		out.Shares = append(out.Shares, line)
	}
	out.RetentionText = plainDuration(t.Retention)
	return out
}

type exchangesData struct {
	Enrolled  bool
	Exchanges []exchangeView
	Next      string
}

// exchangesPage is GET /account/exchanges: the page of GET
// /v1/me/exchanges (same cursor and limit).
func (w *web) exchangesPage(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	d := exchangesData{Enrolled: true}
	vs, next, err := w.h.svc.Exchanges.List(c.UserContext(), principal(c), page)
	if errorCode(err) == codeNotEnrolled {
		d.Enrolled = false
		return w.render(c, fiber.StatusOK, "exchanges", "My exchanges", "exchanges", d)
	}
	if err != nil {
		return err
	}
	values, err := w.h.rewardValuesOf(c.UserContext(), vs)
	if err != nil {
		return err
	}
	cs := make([]domain.Contract, 0, len(vs))
	for _, v := range vs {
		cs = append(cs, v.Contract)
	}
	recipients, err := w.h.svc.Contracts.RecipientsOf(c.UserContext(), cs...)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, v := range vs {
		d.Exchanges = append(d.Exchanges, w.exchangeViewOf(v, values, recipients, now))
	}
	if next != "" {
		q := url.Values{"cursor": {next}}
		if page.Limit > 0 {
			q.Set("limit", fmt.Sprint(page.Limit))
		}
		d.Next = webPrefix + "/exchanges?" + q.Encode()
	}
	return w.render(c, fiber.StatusOK, "exchanges", "My exchanges", "exchanges", d)
}

type exchangeData struct {
	Exchange exchangeView
	Joined   bool
	AskGPC   bool
}

// exchange reads one of the member's own exchanges with its recipients
// (Exchanges.Record, as GET /v1/me/exchanges/{id}/record); another
// member's is not found.
func (w *web) exchange(c *fiber.Ctx) (exchangeView, app.ConsentRecord, error) {
	id, err := idParam(c, errExchangeNotFound)
	if err != nil {
		return exchangeView{}, app.ConsentRecord{}, err
	}
	r, err := w.h.svc.Exchanges.Record(c.UserContext(), principal(c), id)
	if err != nil {
		return exchangeView{}, app.ConsentRecord{}, err
	}
	values, err := w.h.svc.Contracts.RewardValues(c.UserContext(), r.View.Contract)
	if err != nil {
		return exchangeView{}, app.ConsentRecord{}, err
	}
	return w.exchangeViewOf(r.View, values, r.Recipients, time.Now()), r, nil
}

// exchangePage is GET /account/exchanges/{id}: the exchange with its
// receipt and record to download, renewal and the Cancel button.
func (w *web) exchangePage(c *fiber.Ctx) error {
	v, r, err := w.exchange(c)
	if err != nil {
		return err
	}
	d := exchangeData{Exchange: v, Joined: c.Query("joined") == "1",
		AskGPC: gpcSignal(c) && w.h.svc.Catalog.SharesWithThirdPartyOrForAdvertising(r.View.Contract.Terms(), r.Recipients)}
	return w.render(c, fiber.StatusOK, "exchange", v.Title, "exchanges", d)
}

// receiptFile is GET /account/exchanges/{id}/receipt: the signed consent
// receipt (compact JWS, RFC 7515, verifiable with /.well-known/jwks.json),
// as the file the API hands out in the exchange's receipt field.
func (w *web) receiptFile(c *fiber.Ctx) error {
	id, err := idParam(c, errExchangeNotFound)
	if err != nil {
		return err
	}
	v, err := w.h.svc.Exchanges.Get(c.UserContext(), principal(c), id)
	if err != nil {
		return err
	}
	jws := v.Exchange.Receipt()
	if jws == "" {
		return domain.NotFound("receipt-not-found", "this exchange has no receipt")
	}
	c.Set(fiber.HeaderContentType, "application/jose")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="quid-receipt-`+id+`.jws"`)
	return c.SendString(jws)
}

// recordFile is GET /account/exchanges/{id}/record: the consent record of
// GET /v1/me/exchanges/{id}/record (ISO/IEC TS 27560, JSON-LD) as a file.
func (w *web) recordFile(c *fiber.Ctx) error {
	id, err := idParam(c, errExchangeNotFound)
	if err != nil {
		return err
	}
	d, err := w.h.consentRecord(c, id)
	if err != nil {
		return err
	}
	body, err := jsonMarshal(d)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, MIMEApplicationLDJSON)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="quid-consent-record-`+id+`.jsonld"`)
	return c.Send(body)
}

// renewExchange is POST /account/exchanges/{id}/renew: the renewal of POST
// /v1/me/exchanges/{id}/renew, then the exchange page.
func (w *web) renewExchange(c *fiber.Ctx) error {
	id, err := idParam(c, errExchangeNotFound)
	if err != nil {
		return err
	}
	affirm, err := formYes(c, "affirm_despite_gpc")
	if err != nil {
		return err
	}
	e, err := w.h.svc.Exchanges.RenewWith(c.UserContext(), principal(c), id, app.RenewRequest{GPC: gpcSignal(c), AffirmDespiteGPC: affirm})
	if err != nil {
		return err
	}
	return c.Redirect(resourcePath(webPrefix+"/exchanges", e.ID()), fiber.StatusSeeOther)
}

type cancelConfirmData struct {
	Exchange  exchangeView
	Stops     []string
	Kept      []string
	Deletions []string
}

// cancelConfirmPage is POST /account/exchanges/{id}/cancel (step 1 of 2):
// it writes nothing and says what stops and what is kept.
func (w *web) cancelConfirmPage(c *fiber.Ctx) error {
	v, r, err := w.exchange(c)
	if err != nil {
		return err
	}
	if !v.Active {
		return c.Redirect(resourcePath(webPrefix+"/exchanges", v.ID), fiber.StatusSeeOther)
	}
	d := cancelConfirmData{Exchange: v}
	d.Stops = append(d.Stops, "Sharing stops at once: no company may read your data for this exchange any more.",
		"You earn no more points from it: no period that ends after you cancel is paid.")
	if v.BonusPending > 0 {
		d.Stops = append(d.Stops, fmt.Sprintf("Your join bonus of %d points has not vested yet, so it is voided.", v.BonusPending))
	}
	d.Kept = append(d.Kept, fmt.Sprintf("The %d points you already earned stay yours.", v.Earned),
		"Your consent receipt and the record of this exchange stay in your account, as proof of what you agreed to and when you stopped.")
	names := map[string]bool{}
	for _, id := range r.View.Contract.RecipientIDs() {
		if n := r.Recipients[id].Name; n != "" && !names[n] {
			names[n] = true
			d.Deletions = append(d.Deletions, n)
		}
	}
	sort.Strings(d.Deletions)
	return w.render(c, fiber.StatusOK, "cancel-confirm", "Cancel: "+v.Title, "exchanges", d)
}

// cancelConfirmed is POST /account/exchanges/{id}/cancel/confirm (step 2
// of 2): the cancellation of DELETE /v1/me/exchanges/{id}, then the
// exchange page showing it cancelled.
func (w *web) cancelConfirmed(c *fiber.Ctx) error {
	id, err := idParam(c, errExchangeNotFound)
	if err != nil {
		return err
	}
	e, err := w.h.svc.Exchanges.Cancel(c.UserContext(), principal(c), id)
	if err != nil {
		return err
	}
	return c.Redirect(resourcePath(webPrefix+"/exchanges", e.ID()), fiber.StatusSeeOther)
}

// ---- points and rewards ----

type entryView struct {
	At                 time.Time
	What               string
	Available, Pending int64
	Reference          string
}

var entryWords = map[domain.EntryKind]string{
	domain.EntryBonusPending: "Join bonus (pending until it vests)",
	domain.EntryBonusVested:  "Join bonus vested: now yours to spend",
	domain.EntryBonusVoided:  "Join bonus voided (cancelled before it vested)",
	domain.EntryPeriodCredit: "Points for a full period of sharing",
	domain.EntryRedemption:   "Points spent",
	domain.EntryReversal:     "Points given back (redemption cancelled)",
	domain.EntryExpiry:       "Points expired",
}

func entryViewOf(e domain.Entry) entryView {
	v := entryView{At: e.CreatedAt, What: entryWords[e.Kind], Reference: e.Reference}
	if v.What == "" {
		v.What = strings.ReplaceAll(string(e.Kind), "_", " ")
	}
	for _, p := range e.Postings {
		switch p.Account {
		case domain.AccountAvailable:
			v.Available += p.Amount
		case domain.AccountPending:
			v.Pending += p.Amount
		}
	}
	return v
}

type expiringView struct {
	Points int64
	On     time.Time
	Worth  string
}

type rewardView struct {
	catalogueRewardDTO
	Worth      string
	Affordable bool
	Key        string
}

type redemptionView struct {
	rewardRedemptionDTO
	Cancellable bool
	Until       time.Time
	At          time.Time
}

type pointsData struct {
	Enrolled                     bool
	Available, Pending           int64
	AvailableWorth, PendingWorth string
	Currency                     string
	Expiring                     []expiringView
	Tier                         *tierStandingDTO
	HowItAdds                    string
	Entries                      []entryView
	Next                         string
	Rewards                      []rewardView
	Redemptions                  []redemptionView
}

// pointsPage is GET /account/points: the balances in points and money,
// expiry, tier, the ledger page of GET /v1/me/points (same cursor and
// limit), the catalogue of GET /v1/rewards and the member's redemptions.
func (w *web) pointsPage(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	ctx, p := c.UserContext(), principal(c)
	d := pointsData{Enrolled: true, HowItAdds: pointsHowItAddsUp}
	b, entries, next, err := w.h.svc.Exchanges.Points(ctx, p, page)
	if errorCode(err) == codeNotEnrolled {
		d.Enrolled = false
	} else if err != nil {
		return err
	}
	worth := func(int64) string { return "" }
	if prog, ok, err := w.h.svc.Contracts.Programme(ctx); err != nil {
		return err
	} else if ok {
		if digits, known := w.h.svc.Catalog.Currency(prog.PointValue.Currency); known {
			rv := domain.RewardValue{Currency: prog.PointValue.Currency, Point: prog.PointValue.Amount, Digits: digits}
			d.Currency = rv.Currency
			worth = rv.PointsWorth
		}
	}
	if d.Enrolled {
		d.Available, d.Pending = b.Available, b.Pending
		d.AvailableWorth, d.PendingWorth = worth(b.Available), worth(b.Pending)
		for _, e := range entries {
			d.Entries = append(d.Entries, entryViewOf(e))
		}
		if next != "" {
			q := url.Values{"cursor": {next}}
			if page.Limit > 0 {
				q.Set("limit", fmt.Sprint(page.Limit))
			}
			d.Next = webPrefix + "/points?" + q.Encode()
		}
		xs, err := w.h.svc.Exchanges.Expiring(ctx, p)
		if err != nil {
			return err
		}
		for _, x := range xs {
			d.Expiring = append(d.Expiring, expiringView{Points: x.Points, On: x.On, Worth: worth(x.Points)})
		}
		if w.h.svc.Tiers != nil {
			if d.Tier, err = w.h.tierStanding(c); err != nil {
				return err
			}
		}
	}
	if w.h.svc.Rewards != nil {
		rs, _, err := w.h.svc.Rewards.List(ctx, p, app.Page{Limit: 100})
		if err != nil {
			return err
		}
		for _, r := range rs {
			d.Rewards = append(d.Rewards, rewardView{catalogueRewardDTO: catalogueRewardOf(r), Worth: worth(r.Cost),
				Affordable: d.Enrolled && r.Cost <= d.Available, Key: randomToken()})
		}
		if d.Enrolled {
			rds, _, err := w.h.svc.Rewards.Redemptions(ctx, p, app.Page{Limit: 100})
			if errorCode(err) != codeNotEnrolled && err != nil {
				return err
			}
			now := time.Now()
			for _, r := range rds {
				d.Redemptions = append(d.Redemptions, redemptionView{rewardRedemptionDTO: rewardRedemptionOf(r), At: r.CreatedAt,
					Until: r.CancellableUntil, Cancellable: r.CancelledAt == nil && now.Before(r.CancellableUntil)})
			}
		}
	}
	return w.render(c, fiber.StatusOK, "points", "Points and rewards", "points", d)
}

// redeemReward is POST /account/rewards/{id}/redeem: the redemption of
// POST /v1/me/redemptions with reward_id, idempotent by the form's key.
func (w *web) redeemReward(c *fiber.Ctx) error {
	id, err := idParam(c, domain.ErrRewardNotFound)
	if err != nil {
		return err
	}
	if w.h.svc.Rewards == nil {
		return domain.ErrRewardNotFound
	}
	idem, err := formKey(c, "redeem reward_id="+id, false)
	if err != nil {
		return err
	}
	if _, _, err := w.h.svc.Rewards.Redeem(c.UserContext(), principal(c), id, idem); err != nil {
		return err
	}
	return c.Redirect(webPrefix+"/points#redemptions", fiber.StatusSeeOther)
}

// cancelRedemption is POST /account/redemptions/{id}/cancel: POST
// /v1/me/redemptions/{id}/cancel, then the points page.
func (w *web) cancelRedemption(c *fiber.Ctx) error {
	id, err := idParam(c, errRedemptionNotFound)
	if err != nil {
		return err
	}
	if w.h.svc.Rewards == nil {
		return errRedemptionNotFound
	}
	if _, _, err := w.h.svc.Rewards.Cancel(c.UserContext(), principal(c), id); err != nil {
		return err
	}
	return c.Redirect(webPrefix+"/points#redemptions", fiber.StatusSeeOther)
}
