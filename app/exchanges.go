package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/quidpro/quid/domain"
)

// IdempotencyKey lets a client retry a request safely: the same key with the
// same body replays the first result, with another body it is refused.
type IdempotencyKey struct {
	Key         string
	RequestHash string
}

// NewIdempotencyKey validates a client key and fingerprints the request.
// sent tells whether the header was there at all: a header sent empty (or
// only white space, which HTTP strips) is an invalid key, not an absent one.
// The key is 1 to 200 characters without surrounding spaces (openapi.yaml
// IdempotencyKey); anything else is a validation error at
// /headers/Idempotency-Key, and no key gives nil.
func NewIdempotencyKey(key string, sent bool, body []byte) (*IdempotencyKey, error) {
	if !sent {
		return nil, nil
	}
	if key == "" || utf8.RuneCountInString(key) > 200 || strings.TrimSpace(key) != key {
		return nil, domain.Invalid("/headers/Idempotency-Key", "must be 1 to 200 characters without surrounding spaces")
	}
	sum := sha256.Sum256(body)
	return &IdempotencyKey{Key: key, RequestHash: hex.EncodeToString(sum[:])}, nil
}

// CoverGPC makes the request fingerprint cover the Global Privacy Control
// signal as well as the body. The signal is a header, but it changes what
// a join does (409 gpc-conflict without affirmation) and what the consent
// event records, so the same key sent again with the signal switched is
// another request: it is refused as a reused key rather than answered with
// a stored outcome the signal would have changed. Requests without the
// signal keep the body-only fingerprint, so keys stored before this rule
// still match their retries.
func (k *IdempotencyKey) CoverGPC(body []byte) {
	h := sha256.New()
	h.Write(body)
	h.Write([]byte("\x00Sec-GPC: 1"))
	k.RequestHash = hex.EncodeToString(h.Sum(nil))
}

// JoinContext is what the store knows, under lock, when a member joins.
type JoinContext struct {
	Contract      domain.Contract
	Recipients    map[string]domain.Recipient // everyone the contract names
	Active        *domain.Exchange            // the member's active exchange in the family, if any
	BonusEligible bool
	Now           time.Time
	// Attributes holds the keys of the member's stored profile attributes
	// and Birthdate their date of birth (nil when unknown), read under the
	// member's lock, so no concurrent profile change can slip between the
	// checks and the join.
	Attributes map[string]bool
	Birthdate  any
}

// JoinPlan is what the use case decided: the new exchange and, for a
// re-consent, the superseded one.
type JoinPlan struct {
	Exchange   domain.Exchange
	Superseded *domain.Exchange
	// GPC records in the consent event that the join request carried the
	// Global Privacy Control signal.
	GPC bool
}

// JoinRequest is a member's request to join a contract version. GPC is the
// Global Privacy Control signal (Sec-GPC: 1) the request carried;
// AffirmDespiteGPC is the member's explicit wish to join anyway.
type JoinRequest struct {
	ContractID       string
	Idempotency      *IdempotencyKey
	GPC              bool
	AffirmDespiteGPC bool
}

// ExchangeView is an exchange with what the member sees beside it.
type ExchangeView struct {
	Exchange     domain.Exchange
	Contract     domain.Contract
	PointsEarned int64
	NewerVersion *NewerVersion
}

// NewerVersion tells the app to ask the member to re-consent.
type NewerVersion struct {
	ContractID string
	Version    int
	Material   bool
}

// ExchangeRepository stores exchanges, the consent log and the ledger.
type ExchangeRepository interface {
	Enrolment
	// Join locks the member, reads the JoinContext, lets plan decide and
	// saves the outcome with its consent events and ledger entries, in one
	// transaction. replayed is true when idem matched an earlier request.
	Join(ctx context.Context, memberID, contractID string, idem *IdempotencyKey, plan func(JoinContext) (JoinPlan, error)) (ex domain.Exchange, replayed bool, err error)
	// UpdateExchange locks the member and the exchange and saves what fn
	// changed, with the voided bonus if any, under the database clock.
	UpdateExchange(ctx context.Context, memberID, exchangeID, actor string, fn func(e *domain.Exchange, now time.Time) (voided int64, changed bool)) (domain.Exchange, error)
	GetExchange(ctx context.Context, memberID, exchangeID string) (domain.Exchange, error)
	ListExchanges(ctx context.Context, memberID string, page Page) ([]domain.Exchange, string, error)
	PointsEarned(ctx context.Context, exchangeIDs []string) (map[string]int64, error)
	Redeem(ctx context.Context, memberID string, points int64, reference string, idem *IdempotencyKey,
		fn func(b domain.Balance) (domain.Balance, error)) (domain.Entry, domain.Balance, bool, error)
	Points(ctx context.Context, memberID string, page Page) (domain.Balance, []domain.Entry, string, error)
	// ConsentLog lists every consent event of the member, oldest first.
	ConsentLog(ctx context.Context, memberID string) ([]ConsentEvent, error)
}

// ConsentEvent is one line of the append-only consent log.
type ConsentEvent struct {
	ExchangeID string
	ContractID string
	TermsHash  string
	Kind       string
	Actor      string
	At         time.Time
	GPC        bool // the consent was given with Global Privacy Control on
}

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
}

type ReceiptItem struct {
	Category   string
	Purpose    string
	Recipients []string
}

// Exchanges is the member's side of consent: join, cancel, look, redeem.
type Exchanges struct {
	Exchanges  ExchangeRepository
	Contracts  ContractRepository
	Recipients RecipientRepository
	Signer     ReceiptSigner
	IDs        IDs
	Catalog    domain.Catalog
}

// Join consents to a published version. Joining the version again while
// active is a conflict; joining a newer version of a family the member is
// in re-consents, superseding the old exchange in the same transaction.
func (s *Exchanges) Join(ctx context.Context, p Principal, contractID string, idem *IdempotencyKey) (domain.Exchange, bool, error) {
	return s.JoinWith(ctx, p, JoinRequest{ContractID: contractID, Idempotency: idem})
}

// JoinWith is Join with the request's privacy signals. A join is refused,
// writing nothing, when the member's profile lacks data the contract shares
// (DESIGN rule 9), when the member's age is unknown or below the contract's
// age requirement (rule 10), or when the request carries Global Privacy
// Control for a contract that shares with a third party or for advertising
// and the member did not affirm it.
func (s *Exchanges) JoinWith(ctx context.Context, p Principal, in JoinRequest) (domain.Exchange, bool, error) {
	if err := p.Require(RoleMember); err != nil {
		return domain.Exchange{}, false, err
	}
	ex, replayed, err := s.Exchanges.Join(ctx, p.Subject, in.ContractID, in.Idempotency, func(jc JoinContext) (JoinPlan, error) {
		if jc.Active != nil {
			if jc.Active.ContractID() == jc.Contract.ID() {
				return JoinPlan{}, domain.Conflict("already-joined", "you already have an active exchange on this version")
			}
		}
		ex, err := domain.Join(s.IDs.NewID(), p.Subject, jc.Contract, jc.Now, jc.BonusEligible && jc.Active == nil)
		if err != nil {
			return JoinPlan{}, err
		}
		if err := s.fairJoin(jc, in); err != nil {
			return JoinPlan{}, err
		}
		plan := JoinPlan{Exchange: ex, GPC: in.GPC}
		if jc.Active != nil {
			old := *jc.Active
			old.Supersede(&plan.Exchange, jc.Now)
			plan.Superseded = &old
		}
		receiptID := s.IDs.NewID()
		jws, err := s.Signer.SignReceipt(receiptOf(plan.Exchange, receiptID, jc.Contract, jc.Recipients))
		plan.Exchange.AttachReceipt(receiptID, jws)
		return plan, err
	})
	if errors.Is(err, domain.NotFound("contract-not-found", "")) {
		return ex, false, domain.Invalid("/contract_id", "names no contract")
	}
	return ex, replayed, err
}

// fairJoin applies rules 9 and 10 and the GPC rule: every missing
// attribute (and an unknown age) is reported at once, then a member too
// young, then an unaffirmed GPC signal.
func (s *Exchanges) fairJoin(jc JoinContext, in JoinRequest) error {
	t := jc.Contract.Terms()
	var v domain.Violations
	v.Merge("", s.Catalog.CheckProfileHolds(t, jc.Attributes))
	minAge := domain.AgeRequirement(t, jc.Recipients)
	ageErr := domain.CheckAge(jc.Birthdate, minAge, jc.Now)
	if domain.IsKind(ageErr, domain.KindInvalid) {
		// Reported once: a contract that shares the birthdate itself has
		// already named it as missing.
		if !containsString(s.Catalog.RequiredAttributes(t), domain.BirthdateCategory) || jc.Attributes[domain.BirthdateCategory] {
			v.Merge("", ageErr)
		}
		ageErr = nil
	}
	if err := v.Err(); err != nil {
		return err
	}
	if ageErr != nil {
		return ageErr
	}
	return domain.CheckGPC(in.GPC, in.AffirmDespiteGPC, t, jc.Recipients)
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func receiptOf(e domain.Exchange, receiptID string, c domain.Contract, recipients map[string]domain.Recipient) Receipt {
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
	return r
}

// Cancel ends consent at once; cancelling again changes nothing.
func (s *Exchanges) Cancel(ctx context.Context, p Principal, id string) (domain.Exchange, error) {
	if err := p.Require(RoleMember); err != nil {
		return domain.Exchange{}, err
	}
	return s.Exchanges.UpdateExchange(ctx, p.Subject, id, "member", func(e *domain.Exchange, now time.Time) (int64, bool) {
		return e.Cancel(now)
	})
}

// Get returns one of the member's own exchanges; another's is not found.
func (s *Exchanges) Get(ctx context.Context, p Principal, id string) (ExchangeView, error) {
	if err := p.Require(RoleMember); err != nil {
		return ExchangeView{}, err
	}
	e, err := s.Exchanges.GetExchange(ctx, p.Subject, id)
	if err != nil {
		return ExchangeView{}, err
	}
	views, err := s.views(ctx, []domain.Exchange{e})
	if err != nil {
		return ExchangeView{}, err
	}
	return views[0], nil
}

func (s *Exchanges) List(ctx context.Context, p Principal, page Page) ([]ExchangeView, string, error) {
	if err := p.Require(RoleMember); err != nil {
		return nil, "", err
	}
	if err := s.Exchanges.RequireEnrolled(ctx, p.Subject); err != nil {
		return nil, "", err
	}
	es, next, err := s.Exchanges.ListExchanges(ctx, p.Subject, page.Normalised())
	if err != nil {
		return nil, "", err
	}
	views, err := s.views(ctx, es)
	return views, next, err
}

// views adds each exchange's contract, points earned and, for an active
// exchange, the newer version the member could re-consent to.
func (s *Exchanges) views(ctx context.Context, es []domain.Exchange) ([]ExchangeView, error) {
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.ID()
	}
	earned, err := s.Exchanges.PointsEarned(ctx, ids)
	if err != nil {
		return nil, err
	}
	contracts := map[string]domain.Contract{}
	latest := map[string]*domain.Contract{}
	out := make([]ExchangeView, 0, len(es))
	for _, e := range es {
		c, ok := contracts[e.ContractID()]
		if !ok {
			if c, err = s.Contracts.GetContract(ctx, e.ContractID()); err != nil {
				return nil, fmt.Errorf("contract of exchange %s: %w", e.ID(), err)
			}
			contracts[e.ContractID()] = c
		}
		v := ExchangeView{Exchange: e, Contract: c, PointsEarned: earned[e.ID()]}
		if e.IsActive() {
			newest, seen := latest[e.FamilyID()]
			if !seen {
				newest, err = s.newestPublished(ctx, c)
				if err != nil {
					return nil, err
				}
				latest[e.FamilyID()] = newest
			}
			if newest != nil && newest.Version() > c.Version() {
				ch := domain.CompareTerms(c.Version(), c.Terms(), newest.Terms(), nil)
				v.NewerVersion = &NewerVersion{ContractID: newest.ID(), Version: newest.Version(), Material: ch.Material}
			}
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Exchanges) newestPublished(ctx context.Context, c domain.Contract) (*domain.Contract, error) {
	for v := c.Version() + 1; ; v++ {
		next, ok, err := s.Contracts.ContractVersion(ctx, c.FamilyID(), v)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, nil
		}
		if next.Joinable() {
			return &next, nil
		}
	}
}

// Redeem spends available points; it never overdraws.
func (s *Exchanges) Redeem(ctx context.Context, p Principal, points int64, reference string, idem *IdempotencyKey) (domain.Entry, domain.Balance, bool, error) {
	if err := p.Require(RoleMember); err != nil {
		return domain.Entry{}, domain.Balance{}, false, err
	}
	reference = strings.TrimSpace(reference)
	if reference == "" || utf8.RuneCountInString(reference) > 200 {
		return domain.Entry{}, domain.Balance{}, false, domain.Invalid("/reference", "must be 1 to 200 characters")
	}
	return s.Exchanges.Redeem(ctx, p.Subject, points, reference, idem, func(b domain.Balance) (domain.Balance, error) {
		return b.Redeem(points)
	})
}

func (s *Exchanges) Points(ctx context.Context, p Principal, page Page) (domain.Balance, []domain.Entry, string, error) {
	if err := p.Require(RoleMember); err != nil {
		return domain.Balance{}, nil, "", err
	}
	return s.Exchanges.Points(ctx, p.Subject, page.Normalised())
}

// MemberStatement is everything a member shares, with whom, since when, and
// what each exchange earned.
type MemberStatement struct {
	Exchanges  []ExchangeView
	Recipients map[string]domain.Recipient
}

// Transparency gathers every exchange of the member, newest first.
func (s *Exchanges) Transparency(ctx context.Context, p Principal) (MemberStatement, error) {
	if err := p.Require(RoleMember); err != nil {
		return MemberStatement{}, err
	}
	if err := s.Exchanges.RequireEnrolled(ctx, p.Subject); err != nil {
		return MemberStatement{}, err
	}
	var all []domain.Exchange
	page := Page{Limit: 100}
	for {
		es, next, err := s.Exchanges.ListExchanges(ctx, p.Subject, page)
		if err != nil {
			return MemberStatement{}, err
		}
		all = append(all, es...)
		if next == "" {
			break
		}
		page.Cursor = next
	}
	views, err := s.views(ctx, all)
	if err != nil {
		return MemberStatement{}, err
	}
	ids := map[string]bool{}
	for _, v := range views {
		for _, r := range v.Contract.RecipientIDs() {
			ids[r] = true
		}
	}
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	recipients, err := s.Recipients.RecipientsByID(ctx, list)
	if err != nil {
		return MemberStatement{}, err
	}
	return MemberStatement{Exchanges: views, Recipients: recipients}, nil
}

// ConsentLog is the member's own consent history, for the export.
func (s *Exchanges) ConsentLog(ctx context.Context, p Principal) ([]ConsentEvent, error) {
	if err := p.Require(RoleMember); err != nil {
		return nil, err
	}
	return s.Exchanges.ConsentLog(ctx, p.Subject)
}
