package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
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
		CreditedPeriods: r.CreditedPeriods, NextPeriodEnd: utcPtr(r.NextPeriodEnd), ReceiptID: r.ReceiptID, Receipt: r.Receipt})
}

func exchangeToRecord(ex domain.Exchange) exchangeRecord {
	e := ex.State()
	return exchangeRecord{ID: e.ID, MemberID: e.MemberID, ContractID: e.ContractID, FamilyID: e.FamilyID,
		TermsHash: e.TermsHash, Status: string(e.Status), JoinedAt: e.JoinedAt, ExpiresAt: e.ExpiresAt, EndedAt: e.EndedAt,
		BonusPoints: e.BonusPoints, BonusState: string(e.BonusState), BonusVestsAt: e.BonusVestsAt,
		CreditedPeriods: e.CreditedPeriods, NextPeriodEnd: e.NextPeriodEnd, ReceiptID: e.ReceiptID, Receipt: e.Receipt}
}

// The join transaction's statements, exported so the benchmark can send the
// very same SQL straight to PostgreSQL and compare.
const (
	// JoinLockSQL locks the member's row and takes the contract's advisory
	// lock in shared mode: retiring a version takes it exclusively, so a
	// version cannot be retired or terminated halfway through a join, and
	// concurrent joins do not contend on the contract's row. No row means the
	// member is not enrolled.
	JoinLockSQL = `SELECT m.id, pg_advisory_xact_lock_shared(hashtextextended(CAST(@contract AS text), 0)) IS NULL AS unused
FROM members m WHERE m.id = @member AND m.erased_at IS NULL FOR UPDATE OF m`
	// JoinReadSQL reads, after the locks (so in a snapshot nobody can
	// change under us), the contract's status, the clock, whether the
	// family's bonus was ever paid (to this member, or — kept only as a
	// keyed hash since erasure — to an earlier member with the same
	// subject), and the member's active exchange in the family. No row
	// means there is no such contract.
	JoinReadSQL = `SELECT clock_timestamp() AS now, c.status, c.family_id,
       (EXISTS (SELECT 1 FROM ledger_entries l WHERE l.member_id = @member AND l.family_id = c.family_id AND l.kind = 'bonus_pending')
        OR EXISTS (SELECT 1 FROM erased_bonus_claims b WHERE b.digest = bonus_claim_digest(@member, c.family_id))) AS paid,
       (SELECT e.id FROM exchanges e WHERE e.member_id = @member AND e.family_id = c.family_id AND e.status = 'active') AS active_id
FROM contracts c WHERE c.id = @contract`
)

// JoinWriteSQL inserts the exchange, its consent event, its pending bonus
// (@bonus: new points), the vesting of a bonus due at once (@vest: a bonus
// without vesting, or a carried-over one whose time passed), the member's
// balances and the partners' webhook events (built in Go:
// assembling them in SQL cost a third of the database's join throughput).
const JoinWriteSQL = `
WITH ex AS (
    INSERT INTO exchanges (id, member_id, contract_id, family_id, terms_hash, status, joined_at, expires_at, ended_at,
        bonus_points, bonus_state, bonus_vests_at, credited_periods, next_period_end, receipt_id, receipt)
    VALUES (@id, @member, @contract, @family, @hash, @status, @joined, @expires, NULL,
        @bonus_points, @bonus_state, @vests, 0, @next, @receipt_id, @receipt)
    RETURNING id, member_id, contract_id, family_id, terms_hash
), event AS (
    INSERT INTO consent_events (exchange_id, member_id, contract_id, terms_hash, kind, actor, at)
    SELECT id, member_id, contract_id, terms_hash, 'joined', 'member', @now FROM ex
), bonus AS (
    INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, created_at)
    SELECT member_id, 'bonus_pending', CAST(@bonus AS bigint), id, contract_id, family_id, terms_hash, CAST(@now AS timestamptz) FROM ex WHERE CAST(@bonus AS bigint) > 0
    UNION ALL
    SELECT member_id, 'bonus_vested', CAST(@vest AS bigint), id, contract_id, family_id, terms_hash, CAST(@now AS timestamptz) FROM ex WHERE CAST(@vest AS bigint) > 0
), balance AS (
    UPDATE members SET pending = pending + CAST(@bonus AS bigint) - CAST(@vest AS bigint), available = available + CAST(@vest AS bigint)
    WHERE id = @member AND (CAST(@bonus AS bigint) > 0 OR CAST(@vest AS bigint) > 0)
)
INSERT INTO webhook_outbox (id, recipient_id, event_type, payload, created_at, next_attempt_at)
SELECT gen_random_uuid(), CAST(w->>'recipient_id' AS uuid), 'exchange.joined', w->'payload', @now, @now
FROM ex, jsonb_array_elements(CAST(@events AS jsonb)) AS w`

var errExchangeNotFound = domain.NotFound("exchange-not-found", "no exchange of yours with this id")

// claimIdempotency reserves key for this request inside tx. When the key was
// used before, it returns the stored response (same request) or a 422.
func claimIdempotency(tx *gorm.DB, memberID, scope string, idem *app.IdempotencyKey) (json.RawMessage, error) {
	if idem == nil {
		return nil, nil
	}
	// A stored response older than app.IdempotencyTTL no longer counts,
	// whether or not the worker has deleted it yet: the key starts afresh.
	res := tx.Exec(`INSERT INTO idempotency_keys (member_id, scope, key, request_hash, response)
		VALUES (?, ?, ?, ?, 'null') ON CONFLICT (member_id, scope, key) DO UPDATE
		SET request_hash = EXCLUDED.request_hash, response = 'null', created_at = now()
		WHERE idempotency_keys.created_at <= now() - CAST(? AS interval)`, memberID, scope, idem.Key, idem.RequestHash, app.IdempotencyTTL)
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected == 1 {
		return nil, nil
	}
	var row struct {
		RequestHash string
		Response    []byte
	}
	if err := tx.Raw(`SELECT request_hash, response FROM idempotency_keys WHERE member_id = ? AND scope = ? AND key = ?`,
		memberID, scope, idem.Key).Scan(&row).Error; err != nil {
		return nil, err
	}
	if row.RequestHash != idem.RequestHash {
		return nil, &domain.Error{Kind: domain.KindInvalid, Code: "idempotency-key-reused",
			Message: "this Idempotency-Key was used with a different request",
			Fields:  []domain.FieldError{{Pointer: "/headers/Idempotency-Key", Reason: "was used with a different body"}}}
	}
	return row.Response, nil
}

func storeIdempotent(tx *gorm.DB, memberID, scope string, idem *app.IdempotencyKey, v any) error {
	if idem == nil {
		return nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Exec(`UPDATE idempotency_keys SET response = ? WHERE member_id = ? AND scope = ? AND key = ?`,
		raw, memberID, scope, idem.Key).Error
}

// lockMember locks one member row; a missing or erased member is not enrolled.
func lockMember(tx *gorm.DB, memberID string) (memberRecord, error) {
	var m memberRecord
	err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).First(&m, "id = ?", memberID).Error
	if errors.Is(err, gorm.ErrRecordNotFound) || (err == nil && m.ErasedAt != nil) {
		return m, errNotEnrolled
	}
	return m, err
}

func insertConsentEvent(tx *gorm.DB, e domain.Exchange, kind, actor string, at time.Time) error {
	return tx.Exec(`INSERT INTO consent_events (exchange_id, member_id, contract_id, terms_hash, kind, actor, at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		e.ID(), e.MemberID(), e.ContractID(), e.TermsHash(), kind, actor, at).Error
}

func insertEntry(tx *gorm.DB, e domain.Exchange, kind domain.EntryKind, points int64, at time.Time) error {
	return tx.Exec(`INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, e.MemberID(), string(kind), points, e.ID(), e.ContractID(), e.FamilyID(), e.TermsHash(), at).Error
}

// Join runs in five round trips (begin, lock, read, write, commit): joins
// are the hot path. Every change to a member's exchanges holds the member's
// row lock, so the reads after it see a state nobody else can change.
func (s *Store) Join(ctx context.Context, memberID, contractID string, idem *app.IdempotencyKey,
	plan func(app.JoinContext) (app.JoinPlan, error)) (domain.Exchange, bool, error) {
	if idem == nil && isUUID(contractID) {
		ex, err := s.joinPipelined(ctx, memberID, contractID, plan)
		if !errors.Is(err, errGeneralPath) {
			return ex, false, markUnreachable(err)
		}
	}
	var out domain.Exchange
	var replayed bool
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if !isUUID(contractID) {
			contractID = "00000000-0000-0000-0000-000000000000" // names no contract; enrolment is still checked first
		}
		named := map[string]any{"contract": contractID, "member": memberID}
		var locked []struct{ ID string }
		if err := tx.Raw(JoinLockSQL, named).Scan(&locked).Error; err != nil {
			return err
		}
		if len(locked) == 0 {
			return errNotEnrolled
		}
		if err := s.expireLapsed(tx, memberID); err != nil {
			return err
		}
		prior, err := claimIdempotency(tx, memberID, "join", idem)
		if err != nil {
			return err
		}
		if prior != nil {
			var rec exchangeRecord
			if err := json.Unmarshal(prior, &rec); err != nil {
				return err
			}
			out, replayed = rec.toDomain(), true
			return nil
		}
		var state []struct {
			Now      time.Time
			Status   string
			Paid     bool
			ActiveID *string
		}
		if err := tx.Raw(JoinReadSQL, named).Scan(&state).Error; err != nil {
			return err
		}
		if len(state) == 0 {
			return domain.NotFound("contract-not-found", "no contract with this id")
		}
		c, err := s.frozenContract(tx, contractID, domain.ContractStatus(state[0].Status))
		if err != nil {
			return err
		}
		recipients, err := s.recipientsByID(tx, c.RecipientIDs())
		if err != nil {
			return err
		}
		jc := app.JoinContext{Contract: c, Recipients: recipients, BonusEligible: !state[0].Paid, Now: state[0].Now.UTC()}
		if id := state[0].ActiveID; id != nil { // a re-consent or a duplicate: rare, so one more read
			var rec exchangeRecord
			if err := tx.First(&rec, "id = ?", *id).Error; err != nil {
				return err
			}
			a := rec.toDomain()
			jc.Active = &a
		}
		p, err := plan(jc)
		if err != nil {
			return err
		}
		if old := p.Superseded; old != nil {
			if err := tx.Save(ptr(exchangeToRecord(*old))).Error; err != nil {
				return err
			}
			if err := insertConsentEvent(tx, *old, "superseded", "member", jc.Now); err != nil {
				return err
			}
			if err := s.afterSuperseded(tx, endedOf(*old), c.ID()); err != nil {
				return err
			}
		}
		ex := p.Exchange
		if err := insertJoin(tx, c, exchangeToRecord(ex), joinBonus(ex, p.Superseded), jc.Now); err != nil {
			return err
		}
		out = ex
		return storeIdempotent(tx, memberID, "join", idem, exchangeToRecord(ex))
	})
	return out, replayed, err
}

// frozenContract returns the contract in the given status. Published terms
// never change, so they are read once and cached.
func (s *Store) frozenContract(tx *gorm.DB, id string, status domain.ContractStatus) (domain.Contract, error) {
	if cached, ok := s.frozen.Load(id); ok {
		return cached.(domain.Contract).WithStatus(status), nil
	}
	var rec contractRecord
	if err := tx.First(&rec, "id = ?", id).Error; err != nil {
		return domain.Contract{}, err
	}
	c, err := rec.toDomain()
	if err == nil && rec.TermsHash != nil {
		s.frozen.Store(id, c)
	}
	return c.WithStatus(status), err
}

// bonusMoves is what a join writes to the ledger for its bonus: Credit new
// pending points, Vest points that become available in the join itself.
type bonusMoves struct{ Credit, Vest int64 }

// joinBonus derives the ledger moves from the planned exchange; the
// pipelined and the general path both use it, so they write the same.
func joinBonus(ex domain.Exchange, superseded *domain.Exchange) bonusMoves {
	carried := superseded != nil && superseded.BonusState() == domain.BonusTransferred
	var m bonusMoves
	switch ex.BonusState() {
	case domain.BonusPending, domain.BonusVested:
		if !carried {
			m.Credit = ex.BonusPoints()
		}
		if ex.BonusState() == domain.BonusVested {
			m.Vest = ex.BonusPoints()
		}
	}
	return m
}

// insertJoin writes a new exchange with its consent event, its pending
// bonus, the member's pending balance and the partners' webhook events in
// one statement.
func insertJoin(tx *gorm.DB, c domain.Contract, e exchangeRecord, bonus bonusMoves, now time.Time) error {
	events, err := JoinedEvents(c, e.ID, e.MemberID, e.JoinedAt, e.ExpiresAt, now)
	if err != nil {
		return err
	}
	return tx.Exec(JoinWriteSQL, joinWriteArgs(e, bonus, now, events)).Error
}

func joinWriteArgs(e exchangeRecord, bonus bonusMoves, now time.Time, events string) map[string]any {
	return map[string]any{"id": e.ID, "member": e.MemberID, "contract": e.ContractID, "family": e.FamilyID, "hash": e.TermsHash,
		"status": e.Status, "joined": e.JoinedAt, "expires": e.ExpiresAt, "bonus_points": e.BonusPoints,
		"bonus_state": e.BonusState, "vests": e.BonusVestsAt, "next": e.NextPeriodEnd, "receipt_id": e.ReceiptID,
		"receipt": e.Receipt, "now": now, "bonus": bonus.Credit, "vest": bonus.Vest, "events": events}
}

type webhookEvent struct {
	RecipientID string         `json:"recipient_id"`
	Payload     map[string]any `json:"payload"`
}

// JoinedEvents builds one exchange.joined event per recipient the contract
// names, telling each only the categories and purposes it receives.
func JoinedEvents(c domain.Contract, exchangeID, memberID string, joined time.Time, expires *time.Time, now time.Time) (string, error) {
	type grant struct{ categories, purposes map[string]bool }
	grants := map[string]*grant{}
	for _, g := range c.Terms().Grants() {
		gr, ok := grants[g.Recipient]
		if !ok {
			gr = &grant{map[string]bool{}, map[string]bool{}}
			grants[g.Recipient] = gr
		}
		gr.categories[g.Category], gr.purposes[g.Purpose] = true, true
	}
	var expiresText any
	if expires != nil {
		expiresText = utcText(*expires)
	}
	events := make([]webhookEvent, 0, len(grants))
	for _, rid := range c.RecipientIDs() {
		events = append(events, webhookEvent{RecipientID: rid, Payload: map[string]any{
			"type": "exchange.joined", "timestamp": utcText(now),
			"data": map[string]any{"member_id": memberID, "exchange_id": exchangeID, "contract_id": c.ID(),
				"version": c.Version(), "terms_hash": c.TermsHash(), "status": "active",
				"categories": keysOf(grants[rid].categories), "purposes": keysOf(grants[rid].purposes),
				"joined_at": utcText(joined), "expires_at": expiresText},
		}})
	}
	b, err := json.Marshal(events)
	return string(b), err
}

func keysOf(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// utcText formats like the SQL-built events: RFC 3339, UTC, microseconds.
func utcText(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

func ptr[T any](v T) *T { return &v }

func endedOf(e domain.Exchange) endedExchange {
	return endedExchange{ID: e.ID(), MemberID: e.MemberID(), ContractID: e.ContractID(), FamilyID: e.FamilyID(), TermsHash: e.TermsHash(), EndedAt: *e.EndedAt()}
}

func (s *Store) UpdateExchange(ctx context.Context, memberID, exchangeID, actor string,
	fn func(*domain.Exchange, time.Time) (int64, bool)) (domain.Exchange, error) {
	if !isUUID(exchangeID) {
		return domain.Exchange{}, errExchangeNotFound
	}
	var out domain.Exchange
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := lockMember(tx, memberID); err != nil {
			if errors.Is(err, errNotEnrolled) {
				return errExchangeNotFound
			}
			return err
		}
		if err := s.expireLapsed(tx, memberID); err != nil {
			return err
		}
		var rec exchangeRecord
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).First(&rec, "id = ? AND member_id = ?", exchangeID, memberID).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return errExchangeNotFound
			}
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
}

func (entryRecord) TableName() string { return "ledger_entries" }

// entryColumns reads an entry with its reference, which lives apart from
// the append-only ledger so that erasure can delete it.
const entryColumns = `ledger_entries.id, ledger_entries.member_id, ledger_entries.kind, ledger_entries.points, ledger_entries.exchange_id,
	ledger_entries.contract_id, ledger_entries.terms_hash, ledger_entries.period_start, ledger_entries.period_end, r.reference, ledger_entries.created_at`

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (r entryRecord) toDomain() domain.Entry {
	return domain.Entry{ID: r.ID, MemberID: r.MemberID, Kind: domain.EntryKind(r.Kind), Points: r.Points,
		ExchangeID: deref(r.ExchangeID), ContractID: deref(r.ContractID), TermsHash: deref(r.TermsHash),
		PeriodStart: utcPtr(r.PeriodStart), PeriodEnd: utcPtr(r.PeriodEnd), Reference: deref(r.Reference), CreatedAt: r.CreatedAt.UTC()}
}

type redemptionResult struct {
	Entry   entryRecord
	Balance domain.Balance
}

func (s *Store) Redeem(ctx context.Context, memberID string, points int64, reference string, idem *app.IdempotencyKey,
	fn func(domain.Balance) (domain.Balance, error)) (domain.Entry, domain.Balance, bool, error) {
	var res redemptionResult
	var replayed bool
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		m, err := lockMember(tx, memberID)
		if err != nil {
			return err
		}
		prior, err := claimIdempotency(tx, memberID, "redeem", idem)
		if err != nil {
			return err
		}
		if prior != nil {
			replayed = true
			return json.Unmarshal(prior, &res)
		}
		after, err := fn(domain.Balance{Available: m.Available, Pending: m.Pending})
		if err != nil {
			return err
		}
		now, err := dbNow(tx)
		if err != nil {
			return err
		}
		entry := entryRecord{MemberID: memberID, Kind: string(domain.EntryRedemption), Points: -points, Reference: &reference, CreatedAt: now}
		if err := tx.Raw(`INSERT INTO ledger_entries (member_id, kind, points, reference, created_at) VALUES (?, 'redemption', ?, ?, ?) RETURNING id`,
			memberID, -points, reference, now).Scan(&entry.ID).Error; err != nil {
			return err
		}
		if err := tx.Exec(`UPDATE members SET available = ?, pending = ? WHERE id = ?`, after.Available, after.Pending, memberID).Error; err != nil {
			return err
		}
		res = redemptionResult{Entry: entry, Balance: after}
		return storeIdempotent(tx, memberID, "redeem", idem, res)
	})
	return res.Entry.toDomain(), res.Balance, replayed, err
}

func (s *Store) Points(ctx context.Context, memberID string, page app.Page) (domain.Balance, []domain.Entry, string, error) {
	var m memberRecord
	if err := s.db.WithContext(ctx).First(&m, "id = ? AND erased_at IS NULL", memberID).Error; err != nil {
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

func (s *Store) ConsentLog(ctx context.Context, memberID string) ([]app.ConsentEvent, error) {
	var out []app.ConsentEvent
	err := s.db.WithContext(ctx).Raw(`SELECT exchange_id, contract_id, terms_hash, kind, actor, at FROM consent_events
		WHERE member_id = ? ORDER BY id`, memberID).Scan(&out).Error
	for i := range out {
		out[i].At = out[i].At.UTC()
	}
	return out, err
}
