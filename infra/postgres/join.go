package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// The join's statements. Every join runs them in this order, so every join
// takes its locks in the same order (the contract's advisory lock, then the
// member's row), the lock order of tx.go that every other writer of a
// member's exchanges follows too.
const (
	// joinLockSQL takes the contract's advisory lock in shared mode and
	// locks the member's row: retiring a version takes it exclusively, so a
	// version cannot be retired or terminated halfway through a join, and
	// concurrent joins do not contend on the contract's row. PostgreSQL
	// evaluates the select list in the scan below the row lock (EXPLAIN
	// shows LockRows on top), so the advisory lock comes first, as the lock
	// order in tx.go asks; the member's row is found by its primary key, so
	// the lock is taken once, for this member only. No row means the
	// member is not enrolled. It also returns the keys of the member's
	// attributes and their date of birth (rules 9 and 10), read with the
	// lock that every profile change takes too.
	joinLockSQL = `SELECT m.id, pg_advisory_xact_lock_shared(hashtextextended(CAST(@contract AS text), 0)) IS NULL AS unused,
       ARRAY(SELECT jsonb_object_keys(m.attributes)) AS keys, m.attributes->>'demographic.birthdate' AS birthdate
FROM members m WHERE m.id = @member AND m.erased_at IS NULL FOR UPDATE OF m`
	// joinWriteSQL inserts the exchange, its consent event, its pending
	// bonus (@bonus: new points), the vesting of a bonus due at once (@vest:
	// a bonus without vesting, or a carried-over one whose time passed), the
	// member's balances and the recipients' webhook events (built in Go:
	// assembling them in SQL cost a third of the database's join throughput).
	joinWriteSQL = `
WITH ex AS (
    INSERT INTO exchanges (id, member_id, contract_id, family_id, terms_hash, status, joined_at, expires_at, ended_at,
        bonus_points, bonus_state, bonus_vests_at, credited_periods, next_period_end, receipt_id, receipt)
    VALUES (@id, @member, @contract, @family, @hash, @status, @joined, @expires, NULL,
        @bonus_points, @bonus_state, @vests, 0, @next, @receipt_id, @receipt)
    RETURNING id, member_id, contract_id, family_id, terms_hash
), event AS (
    INSERT INTO consent_events (exchange_id, member_id, contract_id, terms_hash, kind, actor, at, gpc)
    SELECT id, member_id, contract_id, terms_hash, 'joined', 'member', @now, @gpc FROM ex
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
)

var (
	// joinReadSQL reads, after the locks (so nobody can change what it
	// reads until the transaction ends), the contract's status, the clock,
	// whether the family's bonus was ever paid (to this member, or — kept
	// only as a keyed hash since erasure — to an earlier member with the same
	// subject), whether any of the member's consent has lapsed without being
	// closed yet, and the member's active exchange in the family, whole (a
	// re-consent supersedes it, a duplicate answers it: reading it here
	// saves them a round trip; exchanges_one_active allows at most one). No
	// row means there is no such contract.
	joinReadSQL = `SELECT clock_timestamp() AS now, c.status, c.family_id,
       (EXISTS (SELECT 1 FROM ledger_entries l WHERE l.member_id = @member AND l.family_id = c.family_id AND l.kind = 'bonus_pending')
        OR EXISTS (SELECT 1 FROM erased_bonus_claims b WHERE b.digest = bonus_claim_digest(@member, c.family_id))) AS paid,
       EXISTS (SELECT 1 FROM exchanges e WHERE e.member_id = @member AND e.status = 'active' AND ` + lapsedAt("clock_timestamp()") + `) AS lapsed,
       ARRAY(SELECT o.purpose FROM member_objections o WHERE o.member_id = @member) AS objected,
       CAST(a.id AS text), a.member_id, CAST(a.contract_id AS text), CAST(a.family_id AS text), a.terms_hash, a.status,
       a.joined_at, a.expires_at, a.ended_at, a.bonus_points, a.bonus_state, a.bonus_vests_at, a.credited_periods,
       a.next_period_end, CAST(a.receipt_id AS text), a.receipt
FROM contracts c
LEFT JOIN exchanges a ON a.member_id = @member AND a.family_id = c.family_id AND a.status = 'active'
WHERE c.id = @contract`
)

var (
	joinLockQuery  = positional(joinLockSQL, "contract", "member")
	joinReadQuery  = positional(joinReadSQL, "contract", "member")
	joinWriteQuery = positional(joinWriteSQL, "id", "member", "contract", "family", "hash", "status", "joined", "expires",
		"bonus_points", "bonus_state", "vests", "next", "receipt_id", "receipt", "now", "gpc", "bonus", "vest", "events")
)

// noContract stands in for a contract id that is not a UUID: it names no
// contract, and the member's enrolment is still checked first.
const noContract = "00000000-0000-0000-0000-000000000000"

// Join implements app.ExchangeRepository. Every join — with or without an
// Idempotency-Key, a first join or a re-consent, with the contract and its
// recipients cached or not — is this one transaction on one connection:
//
//  0. with a key, one round trip: its stored response, without a lock (a
//     retry of a committed join ends here);
//  1. one round trip: BEGIN, the locks, the read and, with a key, its
//     stored response again, now under the member's lock;
//  2. only when needed, one more each: closing lapsed consent (as the
//     accrual worker would), reading terms or recipients not cached yet
//     (the active exchange a re-consent supersedes came with the read);
//  3. one round trip: the supersession if any, the write, the key's
//     response and COMMIT, pipelined.
//
// A replayed key answers the stored exchange and writes nothing. Errors:
// errNotEnrolled, domain.ErrContractNotFound, errKeyReused, what plan returns,
// app.ErrUnavailable when the database cannot be reached.
func (s *Store) Join(ctx context.Context, memberID, contractID string, idem *app.IdempotencyKey,
	plan func(app.JoinContext) (app.JoinPlan, error)) (domain.Exchange, bool, error) {
	if !isUUID(contractID) {
		contractID = noContract
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return domain.Exchange{}, false, err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return domain.Exchange{}, false, markUnreachable(err)
	}
	defer conn.Close()
	j := &joinTx{s: s, ctx: ctx, conn: conn, member: memberID, contract: contractID, idem: idem}
	ex, replayed, err := j.run(plan)
	if err != nil {
		// The transaction may be open or aborted; either way end it. A
		// connection left inside one is discarded by the driver on release.
		_ = j.pipeline(context.WithoutCancel(ctx), func(pc *pgx.Conn) error {
			_, err := pc.Exec(context.WithoutCancel(ctx), "ROLLBACK")
			return err
		})
		return domain.Exchange{}, false, markUnreachable(translate(err, "active-exchange"))
	}
	return ex, replayed, nil
}

// joinTx is one join in progress on a connection whose transaction was
// begun by the first pipelined batch.
type joinTx struct {
	s        *Store
	ctx      context.Context
	conn     *sql.Conn
	member   string
	contract string
	idem     *app.IdempotencyKey
}

// memberProfile is what joinLockSQL returns of the member's attributes.
type memberProfile struct {
	keys      map[string]bool
	birthdate any
}

func (m *memberProfile) scan(rows pgx.Rows) error {
	var (
		id, unused any
		keys       pgtype.FlatArray[string]
		birthdate  *string
	)
	if err := rows.Scan(&id, &unused, &keys, &birthdate); err != nil {
		return err
	}
	m.keys = make(map[string]bool, len(keys))
	for _, k := range keys {
		m.keys[k] = true
	}
	if birthdate != nil {
		m.birthdate = *birthdate
	}
	return nil
}

// joinState is what joinReadSQL returns.
type joinState struct {
	now      time.Time
	status   string
	familyID string
	paid     bool
	lapsed   bool
	objected []string        // the purposes the member objects to (Art. 21)
	active   *exchangeRecord // the member's active exchange in the family
}

// pipeline runs fn on the driver's connection; database/sql lends it only
// for the duration of fn.
func (j *joinTx) pipeline(ctx context.Context, fn func(pc *pgx.Conn) error) error {
	return j.conn.Raw(func(driverConn any) error { return fn(driverConn.(*stdlib.Conn).Conn()) })
}

// gorm is a gorm handle whose statements run on the join's connection, so
// inside its transaction: for the rare steps, which share their code with
// the other writers (endings, supersession, the contract and recipient
// reads).
func (j *joinTx) gorm() *gorm.DB {
	db := j.s.db.Session(&gorm.Session{NewDB: true, Context: j.ctx})
	db.Statement.ConnPool = j.conn
	return db
}

func (j *joinTx) run(plan func(app.JoinContext) (app.JoinPlan, error)) (domain.Exchange, bool, error) {
	if j.idem != nil {
		// A retry of a join that committed needs no lock: its stored
		// response never changes, so one read answers it. A key not found
		// here is looked up again under the member's lock below, where a
		// concurrent first request with the same key has finished.
		prior, err := j.storedResponse()
		switch {
		case err != nil:
			return domain.Exchange{}, false, fmt.Errorf("look up idempotency key: %w", err)
		case prior != nil:
			ex, err := replayedJoin(prior)
			return ex, err == nil, err
		}
	}
	args := map[string]any{"contract": j.contract, "member": j.member}
	var (
		enrolled bool
		profile  memberProfile
		st       joinState
		readErr  error
		prior    json.RawMessage
	)
	err := j.pipeline(j.ctx, func(pc *pgx.Conn) error {
		batch := &pgx.Batch{}
		batch.Queue("BEGIN")
		batch.Queue(joinLockQuery.sql, joinLockQuery.args(args)...)
		batch.Queue(joinReadQuery.sql, joinReadQuery.args(args)...)
		if j.idem != nil {
			batch.Queue(idempotencyLookupQuery.sql, idempotencyLookupQuery.args(idempotencyArgs(j.member, "join", j.idem))...)
		}
		results := pc.SendBatch(j.ctx, batch)
		defer results.Close()
		if _, err := results.Exec(); err != nil {
			return err
		}
		rows, err := results.Query()
		if err != nil {
			return err
		}
		if enrolled = rows.Next(); enrolled {
			if err := profile.scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		readErr = scanJoinState(results.QueryRow(), &st)
		if j.idem != nil {
			if prior, err = j.scanStored(results.QueryRow()); err != nil {
				return err
			}
		}
		return results.Close()
	})
	switch {
	case err != nil:
		return domain.Exchange{}, false, fmt.Errorf("lock and read: %w", err)
	case !enrolled:
		return domain.Exchange{}, false, errNotEnrolled
	case prior != nil:
		ex, err := replayedJoin(prior)
		if err == nil {
			err = j.end("ROLLBACK") // nothing was written
		}
		return ex, err == nil, err
	case errors.Is(readErr, pgx.ErrNoRows):
		return domain.Exchange{}, false, domain.ErrContractNotFound
	case readErr != nil:
		return domain.Exchange{}, false, fmt.Errorf("read join state: %w", readErr)
	}
	if st.lapsed {
		if err := j.s.expireLapsed(j.gorm(), j.member); err != nil {
			return domain.Exchange{}, false, fmt.Errorf("close lapsed consent: %w", err)
		}
		if err := j.pipeline(j.ctx, func(pc *pgx.Conn) error {
			return scanJoinState(pc.QueryRow(j.ctx, joinReadQuery.sql, joinReadQuery.args(args)...), &st)
		}); err != nil {
			return domain.Exchange{}, false, fmt.Errorf("read join state: %w", err)
		}
	}
	jc, err := j.context(st)
	if err == nil {
		jc.Attributes, jc.Birthdate = profile.keys, profile.birthdate
	}
	if err != nil {
		return domain.Exchange{}, false, err
	}
	p, err := plan(jc)
	if err != nil {
		return domain.Exchange{}, false, err
	}
	if err := j.write(jc, p); err != nil {
		return domain.Exchange{}, false, fmt.Errorf("write join: %w", err)
	}
	return p.Exchange, false, nil
}

// storedResponse looks the key up outside any transaction.
func (j *joinTx) storedResponse() (prior json.RawMessage, err error) {
	err = j.pipeline(j.ctx, func(pc *pgx.Conn) error {
		prior, err = j.scanStored(pc.QueryRow(j.ctx, idempotencyLookupQuery.sql,
			idempotencyLookupQuery.args(idempotencyArgs(j.member, "join", j.idem))...))
		return err
	})
	return prior, err
}

// scanStored reads one idempotency lookup: nil when the key is new, the
// stored response, or errKeyReused.
func (j *joinTx) scanStored(row pgx.Row) (json.RawMessage, error) {
	var hash string
	var response []byte
	switch err := row.Scan(&hash, &response); {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return priorResponse(j.idem, hash, response)
}

func replayedJoin(prior json.RawMessage) (domain.Exchange, error) {
	var rec exchangeRecord
	if err := json.Unmarshal(prior, &rec); err != nil {
		return domain.Exchange{}, fmt.Errorf("decode stored join: %w", err)
	}
	return rec.toDomain(), nil
}

func scanJoinState(row pgx.Row, st *joinState) error {
	var (
		id, member, contract, family, hash, status, bonusState, receiptID, receipt *string
		joined                                                                     *time.Time
		bonusPoints                                                                *int64
		credited                                                                   *int32
		a                                                                          exchangeRecord
	)
	err := row.Scan(&st.now, &st.status, &st.familyID, &st.paid, &st.lapsed, &st.objected,
		&id, &member, &contract, &family, &hash, &status, &joined, &a.ExpiresAt, &a.EndedAt, &bonusPoints, &bonusState,
		&a.BonusVestsAt, &credited, &a.NextPeriodEnd, &receiptID, &receipt)
	st.now = st.now.UTC()
	st.active = nil
	if err == nil && id != nil { // a re-consent or a duplicate
		a.ID, a.MemberID, a.ContractID, a.FamilyID, a.TermsHash, a.Status = *id, *member, *contract, *family, *hash, *status
		a.JoinedAt, a.BonusPoints, a.BonusState, a.CreditedPeriods = *joined, *bonusPoints, *bonusState, int(*credited)
		a.ReceiptID, a.Receipt = *receiptID, *receipt
		st.active = &a
	}
	return err
}

// context is what plan decides from: the frozen terms, the recipients they
// name, the member's active exchange in the family, bonus eligibility.
func (j *joinTx) context(st joinState) (app.JoinContext, error) {
	c, err := j.s.frozenContract(j.gorm(), j.contract, domain.ContractStatus(st.status))
	if err != nil {
		return app.JoinContext{}, fmt.Errorf("read contract: %w", err)
	}
	recipients, err := j.s.recipientsByID(j.gorm(), c.RecipientIDs())
	if err != nil {
		return app.JoinContext{}, fmt.Errorf("read recipients: %w", err)
	}
	jc := app.JoinContext{Contract: c, Recipients: recipients, BonusEligible: !st.paid, Now: st.now}
	if len(st.objected) > 0 {
		jc.Objected = make(map[string]bool, len(st.objected))
		for _, p := range st.objected {
			jc.Objected[p] = true
		}
	}
	if st.active != nil { // a re-consent or a duplicate
		a := st.active.toDomain()
		jc.Active = &a
	}
	return jc, nil
}

// supersededSQL saves what Supersede changed on the previous version.
const supersededSQL = `UPDATE exchanges SET status = @status, ended_at = @ended, bonus_state = @bonus_state,
    next_period_end = @next WHERE id = @id AND status = 'active'`

var (
	supersededQuery      = positional(supersededSQL, "status", "ended", "bonus_state", "next", "id")
	consentEventQuery    = positional(consentEventSQL, "exchange", "member", "contract", "hash", "kind", "actor", "at")
	notifyDeletionsQuery = positional(notifyDeletionsSQL, "ids", "successor")
	notifyEventsQuery    = positional(notifyEventsSQL, "ids", "type", "successor")
)

// queueSupersession ends the member's previous version as the plan
// decided, with its consent event and what its recipients are owed, ahead
// of the new exchange (only one exchange per family may be active).
func queueSupersession(batch *pgx.Batch, old domain.Exchange, successorID string, now time.Time) {
	rec := exchangeToRecord(old)
	batch.Queue(supersededQuery.sql, supersededQuery.args(map[string]any{"status": rec.Status, "ended": rec.EndedAt,
		"bonus_state": rec.BonusState, "next": rec.NextPeriodEnd, "id": rec.ID})...)
	batch.Queue(consentEventQuery.sql, consentEventQuery.args(consentEventArgs(old, "superseded", "member", now))...)
	notify := notifyArgs([]string{old.ID()}, "exchange.superseded", &successorID)
	batch.Queue(notifyDeletionsQuery.sql, notifyDeletionsQuery.args(notify)...)
	batch.Queue(notifyEventsQuery.sql, notifyEventsQuery.args(notify)...)
}

// write sends the join's one write statement, the key's response and COMMIT
// in one round trip.
func (j *joinTx) write(jc app.JoinContext, p app.JoinPlan) error {
	rec := exchangeToRecord(p.Exchange)
	events, err := joinedEvents(jc.Contract, rec.ID, rec.MemberID, rec.JoinedAt, rec.ExpiresAt, jc.Now)
	if err != nil {
		return err
	}
	var saveArgs map[string]any
	if j.idem != nil {
		if saveArgs, err = idempotentResponse(j.member, "join", j.idem, rec); err != nil {
			return err
		}
	}
	return j.pipeline(j.ctx, func(pc *pgx.Conn) error {
		batch := &pgx.Batch{}
		// The write statements are planned once per connection, not on
		// every join: their custom plans (which the plan cache kept choosing,
		// as the generic one's estimates look worse) cost more to make than
		// to run — a supersession's outbox statement took 1.2 ms a call
		// replanned against 0.3 ms with its generic plan. Their generic
		// plans find every row by primary key (the ids are parameters).
		batch.Queue("SET LOCAL plan_cache_mode = force_generic_plan")
		if old := p.Superseded; old != nil {
			queueSupersession(batch, *old, jc.Contract.ID(), jc.Now)
		}
		args := joinWriteArgs(rec, joinBonus(p.Exchange, p.Superseded), jc.Now, events)
		args["gpc"] = p.GPC
		batch.Queue(joinWriteQuery.sql, joinWriteQuery.args(args)...)
		if saveArgs != nil {
			batch.Queue(idempotencySaveQuery.sql, idempotencySaveQuery.args(saveArgs)...)
		}
		batch.Queue("COMMIT")
		results := pc.SendBatch(j.ctx, batch)
		var errs []error
		for range batch.Len() {
			_, err := results.Exec()
			errs = append(errs, err)
		}
		errs = append(errs, results.Close())
		return errors.Join(errs...)
	})
}

// end finishes the transaction with COMMIT or ROLLBACK.
func (j *joinTx) end(statement string) error {
	return j.pipeline(j.ctx, func(pc *pgx.Conn) error {
		_, err := pc.Exec(j.ctx, statement)
		return err
	})
}

// positionalQuery is a query with @named parameters rewritten once, by pgx's
// own rewriter, into $n form: letting pgx rewrite it on every call re-lexed
// the join's SQL each time, a tenth of the server's CPU at saturation.
type positionalQuery struct {
	sql   string
	names []string // names[i] is the parameter $i+1
}

func positional(namedSQL string, names ...string) positionalQuery {
	self := pgx.StrictNamedArgs{}
	for _, n := range names {
		self[n] = n
	}
	sql, ordered, err := self.RewriteQuery(context.Background(), nil, namedSQL, nil)
	if err != nil {
		panic(err) // a programming error in a constant query
	}
	q := positionalQuery{sql: sql}
	for _, o := range ordered {
		q.names = append(q.names, o.(string))
	}
	return q
}

func (q positionalQuery) args(named map[string]any) []any {
	out := make([]any, len(q.names))
	for i, n := range q.names {
		out[i] = named[n]
	}
	return out
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

// joinBonus derives the ledger moves from the planned exchange: a
// re-consent carries an earlier pending bonus over instead of paying a new one.
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

// joinedEvents builds one exchange.joined event per recipient the contract
// names, telling each only the categories and purposes it receives.
func joinedEvents(c domain.Contract, exchangeID, memberID string, joined time.Time, expires *time.Time, now time.Time) (string, error) {
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
