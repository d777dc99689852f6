package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

type exchangeRecord struct {
	ID              string `gorm:"primaryKey"`
	MemberID        string
	ContractID      string
	FamilyID        string
	TermsHash       string
	Status          string
	JoinedAt        time.Time
	ExpiresAt       *time.Time
	EndedAt         *time.Time
	BonusPoints     int64
	BonusState      string
	BonusVestsAt    *time.Time
	CreditedPeriods int
	SkippedPeriods  int
	NextPeriodEnd   *time.Time
	ReceiptID       string
	Receipt         string
}

func (exchangeRecord) TableName() string { return "exchanges" }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func (r exchangeRecord) toDomain() domain.Exchange {
	return domain.RehydrateExchange(domain.ExchangeState{ID: r.ID, MemberID: r.MemberID, ContractID: r.ContractID, FamilyID: r.FamilyID,
		TermsHash: r.TermsHash, Status: domain.ExchangeStatus(r.Status), JoinedAt: r.JoinedAt.UTC(),
		ExpiresAt: utcPtr(r.ExpiresAt), EndedAt: utcPtr(r.EndedAt), BonusPoints: r.BonusPoints,
		BonusState: domain.BonusState(r.BonusState), BonusVestsAt: utcPtr(r.BonusVestsAt),
		CreditedPeriods: r.CreditedPeriods, SkippedPeriods: r.SkippedPeriods, NextPeriodEnd: utcPtr(r.NextPeriodEnd), ReceiptID: r.ReceiptID, Receipt: r.Receipt})
}

func exchangeToRecord(ex domain.Exchange) exchangeRecord {
	e := ex.State()
	return exchangeRecord{ID: e.ID, MemberID: e.MemberID, ContractID: e.ContractID, FamilyID: e.FamilyID,
		TermsHash: e.TermsHash, Status: string(e.Status), JoinedAt: e.JoinedAt, ExpiresAt: e.ExpiresAt, EndedAt: e.EndedAt,
		BonusPoints: e.BonusPoints, BonusState: string(e.BonusState), BonusVestsAt: e.BonusVestsAt,
		CreditedPeriods: e.CreditedPeriods, SkippedPeriods: e.SkippedPeriods, NextPeriodEnd: e.NextPeriodEnd, ReceiptID: e.ReceiptID, Receipt: e.Receipt}
}

var errExchangeNotFound = domain.NotFound("exchange-not-found", "no exchange of yours with this id")

// consentEventSQL appends one event to the consent log.
const consentEventSQL = `INSERT INTO consent_events (exchange_id, member_id, contract_id, terms_hash, kind, actor, at)
VALUES (@exchange, @member, @contract, @hash, @kind, @actor, @at)`

// consentEventGPCSQL is consentEventSQL for an event given by a request
// that may carry Global Privacy Control (@gpc).
const consentEventGPCSQL = `INSERT INTO consent_events (exchange_id, member_id, contract_id, terms_hash, kind, actor, at, gpc)
VALUES (@exchange, @member, @contract, @hash, @kind, @actor, @at, @gpc)`

func consentEventArgs(e domain.Exchange, kind, actor string, at time.Time) map[string]any {
	return map[string]any{"exchange": e.ID(), "member": e.MemberID(), "contract": e.ContractID(), "hash": e.TermsHash(),
		"kind": kind, "actor": actor, "at": at}
}

func insertConsentEvent(tx *gorm.DB, e domain.Exchange, kind, actor string, at time.Time) error {
	return tx.Exec(consentEventSQL, consentEventArgs(e, kind, actor, at)).Error
}

func insertEntry(tx *gorm.DB, e domain.Exchange, kind domain.EntryKind, points int64, at time.Time) error {
	return tx.Exec(`INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, e.MemberID(), string(kind), points, e.ID(), e.ContractID(), e.FamilyID(), e.TermsHash(), at).Error
}

func ptr[T any](v T) *T { return &v }

func endedOf(e domain.Exchange) endedExchange {
	return endedExchange{ID: e.ID(), MemberID: e.MemberID(), ContractID: e.ContractID(), FamilyID: e.FamilyID(), TermsHash: e.TermsHash(), EndedAt: *e.EndedAt()}
}

// lockOwnExchange, inside a transaction holding the member's lock, closes
// the member's lapsed consent first (as the worker would) and then locks
// one of the member's exchanges; another member's is errExchangeNotFound.
func (s *Store) lockOwnExchange(tx *gorm.DB, memberID, exchangeID string) (exchangeRecord, error) {
	var rec exchangeRecord
	if err := s.expireLapsed(tx, memberID); err != nil {
		return rec, err
	}
	err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).First(&rec, "id = ? AND member_id = ?", exchangeID, memberID).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return rec, errExchangeNotFound
	}
	return rec, err
}

func (s *Store) UpdateExchange(ctx context.Context, memberID, exchangeID, actor string,
	fn func(*domain.Exchange, time.Time) (int64, bool)) (domain.Exchange, error) {
	if !isUUID(exchangeID) {
		return domain.Exchange{}, errExchangeNotFound
	}
	var out domain.Exchange
	err := s.inMemberTx(ctx, memberID, memberLock{absent: errExchangeNotFound}, func(tx *gorm.DB, _ memberRecord) error {
		rec, err := s.lockOwnExchange(tx, memberID, exchangeID)
		if err != nil {
			return err
		}
		e := rec.toDomain()
		now, err := dbNow(tx)
		if err != nil {
			return err
		}
		voided, changed := fn(&e, now)
		out = e
		if !changed {
			return nil
		}
		if err := tx.Save(ptr(exchangeToRecord(e))).Error; err != nil {
			return err
		}
		if err := insertConsentEvent(tx, e, string(e.Status()), actor, now); err != nil {
			return err
		}
		if voided > 0 {
			if err := insertEntry(tx, e, domain.EntryBonusVoided, -voided, now); err != nil {
				return err
			}
			if err := tx.Exec(`UPDATE members SET pending = pending - ? WHERE id = ?`, voided, memberID).Error; err != nil {
				return err
			}
		}
		if e.EndedAt() != nil {
			return s.afterEnded(tx, []endedExchange{endedOf(e)}, "exchange."+string(e.Status()))
		}
		return nil
	})
	return out, err
}

func (s *Store) GetExchange(ctx context.Context, memberID, exchangeID string) (domain.Exchange, error) {
	if !isUUID(exchangeID) {
		return domain.Exchange{}, errExchangeNotFound
	}
	var recs []observedExchange
	if err := s.observedExchanges(ctx).Where("id = ? AND member_id = ?", exchangeID, memberID).Scan(&recs).Error; err != nil {
		return domain.Exchange{}, err
	}
	if len(recs) == 0 {
		return domain.Exchange{}, errExchangeNotFound
	}
	return recs[0].toDomain(), nil
}

// observedExchange is an exchange read with the database clock at the
// moment of reading, the clock expiries are written with.
type observedExchange struct {
	Record     exchangeRecord `gorm:"embedded"`
	ObservedAt time.Time
}

// toDomain is the exchange as it stands when read: consent that lapsed
// reads as expired before an accrual run writes it.
func (r observedExchange) toDomain() domain.Exchange {
	return r.Record.toDomain().AsOf(r.ObservedAt)
}

func (s *Store) observedExchanges(ctx context.Context) *gorm.DB {
	return s.db.WithContext(ctx).Model(&exchangeRecord{}).Select(columns(s.db, &exchangeRecord{}) + ", clock_timestamp() AS observed_at")
}

func (s *Store) ListExchanges(ctx context.Context, memberID string, page app.Page) ([]domain.Exchange, string, error) {
	recs, next, err := findPage(s, listScope("exchanges", memberID), s.observedExchanges(ctx).Where("member_id = ?", memberID), "joined_at", page,
		func(r observedExchange) (time.Time, string) { return r.Record.JoinedAt, r.Record.ID })
	return mapAll(recs, observedExchange.toDomain), next, err
}

func (s *Store) PointsEarned(ctx context.Context, exchangeIDs []string) (map[string]int64, error) {
	out := map[string]int64{}
	if len(exchangeIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		ExchangeID string
		Points     int64
	}
	err := s.db.WithContext(ctx).Raw(`SELECT exchange_id, sum(points) AS points FROM ledger_entries
		WHERE exchange_id IN ? AND kind IN ('period_credit', 'bonus_vested') GROUP BY exchange_id`, exchangeIDs).Scan(&rows).Error
	for _, r := range rows {
		out[r.ExchangeID] = r.Points
	}
	return out, err
}

type entryRecord struct {
	ID          string
	MemberID    string
	Kind        string
	Points      int64
	ExchangeID  *string
	ContractID  *string
	TermsHash   *string
	PeriodStart *time.Time
	PeriodEnd   *time.Time
	Reference   *string
	CreatedAt   time.Time
	// Postings are the entry's stored postings on the member's own
	// accounts, as JSON ([{"account", "amount"}]); empty in a redemption
	// response stored for Idempotency-Key replays before migration 00023.
	Postings string
}

func (entryRecord) TableName() string { return "ledger_entries" }

// entryColumns reads an entry with its reference, which lives apart from
// the append-only ledger so that erasure can delete it.
const entryColumns = `ledger_entries.id, ledger_entries.member_id, ledger_entries.kind, ledger_entries.points, ledger_entries.exchange_id,
	ledger_entries.contract_id, ledger_entries.terms_hash, ledger_entries.period_start, ledger_entries.period_end, r.reference, ledger_entries.created_at, ` + memberPostingsColumn

// memberPostingsColumn reads, beside each entry, its postings on the
// member's own accounts (ledger_postings' primary key serves it).
const memberPostingsColumn = `(SELECT CAST(coalesce(json_agg(json_build_object('account', p.account, 'amount', p.amount) ORDER BY p.account), '[]') AS text)
	FROM ledger_postings p WHERE p.entry_id = ledger_entries.id AND p.account IN ('available', 'pending')) AS postings`

type postingRecord struct {
	Account string `json:"account"`
	Amount  int64  `json:"amount"`
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (r entryRecord) toDomain() domain.Entry {
	return domain.Entry{ID: r.ID, MemberID: r.MemberID, Kind: domain.EntryKind(r.Kind), Points: r.Points,
		ExchangeID: deref(r.ExchangeID), ContractID: deref(r.ContractID), TermsHash: deref(r.TermsHash),
		PeriodStart: utcPtr(r.PeriodStart), PeriodEnd: utcPtr(r.PeriodEnd), Reference: deref(r.Reference), CreatedAt: r.CreatedAt.UTC(),
		Postings: r.postings()}
}

// postings decodes the stored postings; a redemption response stored
// before postings existed gets those its kind makes (domain.PostingsOf,
// the chart the database posts with).
func (r entryRecord) postings() []domain.Posting {
	var recs []postingRecord
	if r.Postings == "" || json.Unmarshal([]byte(r.Postings), &recs) != nil {
		all, err := domain.PostingsOf(domain.EntryKind(r.Kind), r.Points)
		if err != nil {
			return []domain.Posting{}
		}
		return domain.MemberPostings(all)
	}
	out := make([]domain.Posting, len(recs))
	for i, p := range recs {
		out[i] = domain.Posting{Account: domain.Account(p.Account), Amount: p.Amount}
	}
	return out
}

// memberPostingsJSON is what memberPostingsColumn reads for an entry the
// database posted with the chart.
func memberPostingsJSON(kind domain.EntryKind, points int64) (string, error) {
	all, err := domain.PostingsOf(kind, points)
	if err != nil {
		return "", err
	}
	ps := domain.MemberPostings(all)
	recs := make([]postingRecord, len(ps))
	for i, p := range ps {
		recs[i] = postingRecord{Account: string(p.Account), Amount: p.Amount}
	}
	b, err := json.Marshal(recs)
	return string(b), err
}

type redemptionResult struct {
	Entry   entryRecord
	Balance domain.Balance
}

// inRedemptionTx runs a redemption under the member's lock, points-only
// and from the catalogue alike (one Idempotency-Key scope, "redeem"): a
// key already answered replays its stored answer into out and runs
// nothing; otherwise the member's points whose lots' time has come are
// expired first, at the database's clock, so a redemption never spends
// them however late the expiry job runs (and, if the redemption fails,
// this expiry rolls back with it); fn then writes the redemption from the
// balance that leaves and fills out, which is stored as the key's answer.
func (s *Store) inRedemptionTx(ctx context.Context, memberID string, idem *app.IdempotencyKey, out any,
	fn func(tx *gorm.DB, now time.Time, bal domain.Balance) error) (replayed bool, err error) {
	err = s.inMemberTx(ctx, memberID, memberLock{}, func(tx *gorm.DB, m memberRecord) error {
		prior, err := claimIdempotency(tx, memberID, "redeem", idem)
		if err != nil {
			return err
		}
		if prior != nil {
			replayed = true
			return json.Unmarshal(prior, out)
		}
		now, err := dbNow(tx)
		if err != nil {
			return err
		}
		_, expired, err := expirePoints(tx, textArray([]string{memberID}), now)
		if err != nil {
			return err
		}
		if err := fn(tx, now, domain.Balance{Available: m.Available - expired, Pending: m.Pending}); err != nil {
			return err
		}
		return storeIdempotent(tx, memberID, "redeem", idem, out)
	})
	return replayed, err
}

// writeRedemption writes a redemption of points as of now: its ledger
// entry (the lots trigger takes the points FEFO; reference, when not nil,
// is the partner's), and the member's balance after it.
func writeRedemption(tx *gorm.DB, memberID string, points int64, reference *string, now time.Time, after domain.Balance) (entryRecord, error) {
	entry := entryRecord{MemberID: memberID, Kind: string(domain.EntryRedemption), Points: -points, Reference: reference, CreatedAt: now}
	var err error
	if entry.Postings, err = memberPostingsJSON(domain.EntryRedemption, -points); err != nil {
		return entry, err
	}
	if err := tx.Raw(`INSERT INTO ledger_entries (member_id, kind, points, reference, created_at) VALUES (?, 'redemption', ?, ?, ?) RETURNING id`,
		memberID, -points, reference, now).Scan(&entry.ID).Error; err != nil {
		return entry, err
	}
	return entry, tx.Exec(`UPDATE members SET available = ?, pending = ? WHERE id = ?`, after.Available, after.Pending, memberID).Error
}

func (s *Store) Redeem(ctx context.Context, memberID string, points int64, reference string, idem *app.IdempotencyKey,
	fn func(domain.Balance) (domain.Balance, error)) (domain.Entry, domain.Balance, bool, error) {
	var res redemptionResult
	replayed, err := s.inRedemptionTx(ctx, memberID, idem, &res, func(tx *gorm.DB, now time.Time, bal domain.Balance) error {
		after, err := fn(bal)
		if err != nil {
			return err
		}
		entry, err := writeRedemption(tx, memberID, points, &reference, now, after)
		res = redemptionResult{Entry: entry, Balance: after}
		return err
	})
	return res.Entry.toDomain(), res.Balance, replayed, err
}

func (s *Store) Points(ctx context.Context, memberID string, page app.Page) (domain.Balance, []domain.Entry, string, error) {
	var m memberRecord
	if err := s.db.WithContext(ctx).Select(balanceNowColumns).First(&m, "id = ? AND erased_at IS NULL", memberID).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return domain.Balance{}, nil, "", errNotEnrolled
		}
		return domain.Balance{}, nil, "", err
	}
	entries := s.db.WithContext(ctx).Table("ledger_entries").Select(entryColumns).
		Joins("LEFT JOIN ledger_references r ON r.entry_id = ledger_entries.id").Where("member_id = ?", memberID)
	recs, next, err := findPage(s, listScope("points", memberID), entries, "created_at", page,
		func(r entryRecord) (time.Time, string) { return r.CreatedAt, r.ID })
	if err != nil {
		return domain.Balance{}, nil, "", err
	}
	out := mapAll(recs, entryRecord.toDomain)
	return domain.Balance{Available: m.Available, Pending: m.Pending}, out, next, nil
}

// ExpiringPoints implements app.ExchangeRepository: the member's lots with
// points left and an expiry still to come, summed per expiry time, soonest
// first. Lots already past their time are left out, as balanceNowColumns
// leaves them out of the balance.
func (s *Store) ExpiringPoints(ctx context.Context, memberID string, limit int) ([]domain.Expiring, error) {
	var out []domain.Expiring
	err := s.db.WithContext(ctx).Raw(`SELECT sum(l.remaining) AS points, l.expires_at AS "on"
		FROM ledger_entries c JOIN points_lots l ON l.entry_id = c.id
		WHERE c.member_id = ? AND l.remaining > 0 AND l.expires_at > clock_timestamp()
		GROUP BY l.expires_at ORDER BY l.expires_at LIMIT ?`, memberID, limit).Scan(&out).Error
	for i := range out {
		out[i].On = out[i].On.UTC()
	}
	if out == nil {
		out = []domain.Expiring{}
	}
	return out, err
}

func (s *Store) ConsentLog(ctx context.Context, memberID string) ([]app.ConsentEvent, error) {
	var out []app.ConsentEvent
	err := s.db.WithContext(ctx).Raw(`SELECT exchange_id, contract_id, terms_hash, kind, actor, at, gpc FROM consent_events
		WHERE member_id = ? ORDER BY id`, memberID).Scan(&out).Error
	for i := range out {
		out[i].At = out[i].At.UTC()
	}
	return out, err
}
