package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

var errMemberNotFound = domain.NotFound("member-not-found", "no member with this id")

// GrantsAny is the partner read's first and, when it refuses, only
// statement. It starts from the member's active exchanges (an index on
// member_id), never from the members table, so an unknown member, an erased
// one (whose exchanges carry a pseudonym) and a member without a grant all
// cost one statement that finds no row.
func (s *Store) GrantsAny(ctx context.Context, memberID, recipientID, purpose string) (bool, error) {
	var found []int
	err := s.db.WithContext(ctx).Raw(`SELECT 1 FROM exchanges e JOIN contracts c ON c.id = e.contract_id
		WHERE e.member_id = ? AND `+activeAt("clock_timestamp()")+`
		  AND EXISTS (SELECT 1 FROM jsonb_array_elements(c.terms->'items') i
		              WHERE i->>'purpose' = ? AND i->'recipients' @> to_jsonb(CAST(? AS text)))
		LIMIT 1`, memberID, purpose, recipientID).Scan(&found).Error
	return len(found) > 0, err
}

// GrantedBefore lists the member's ended exchanges (newest first, at most
// 10) whose terms granted the recipient something for the purpose; it
// runs only when GrantsAny refused.
func (s *Store) GrantedBefore(ctx context.Context, memberID, recipientID, purpose string) ([]string, error) {
	var ids []string
	err := s.db.WithContext(ctx).Raw(`SELECT CAST(e.id AS text) FROM exchanges e JOIN contracts c ON c.id = e.contract_id
		WHERE e.member_id = ? AND NOT (`+activeAt("clock_timestamp()")+`) AND e.status <> 'erased'
		  AND EXISTS (SELECT 1 FROM jsonb_array_elements(c.terms->'items') i
		              WHERE i->>'purpose' = ? AND i->'recipients' @> to_jsonb(CAST(? AS text)))
		ORDER BY e.joined_at DESC LIMIT 10`, memberID, purpose, recipientID).Scan(&ids).Error
	return ids, err
}

// The partner read's statements. readLockSQL takes the member's row in
// share mode (no cancellation or erasure can commit halfway through the
// read); readActiveSQL runs after it in the same transaction, so under READ
// COMMITTED its snapshot sees every change committed before the lock was
// granted. An exchange whose duration ran out grants nothing even before
// the accrual worker has marked it expired.
var (
	readLockSQL   = `SELECT m.attributes FROM members m WHERE m.id = $1 AND m.erased_at IS NULL FOR SHARE OF m`
	readActiveSQL = `SELECT n.now, n.restricted, x.exchange_id, x.contract_id, x.terms
FROM (SELECT clock_timestamp() AS now,
             EXISTS (SELECT 1 FROM member_restrictions r WHERE r.member_id = $1 AND r.ended_at IS NULL) AS restricted) n
LEFT JOIN LATERAL (
    SELECT CAST(e.id AS text) AS exchange_id, CAST(c.id AS text) AS contract_id, c.terms, e.joined_at
    FROM exchanges e JOIN contracts c ON c.id = e.contract_id
    WHERE e.member_id = $1 AND ` + activeAt("n.now") + `) x ON true
ORDER BY x.joined_at`
	accessInsertSQL = `INSERT INTO access_log (member_id, accessor_role, accessor_id, accessor_name, purpose, categories, exchange_ids, request_id, at, refused)
VALUES ($1, $2, $3, $4, NULLIF($5, ''), CAST($6 AS text[]), CAST($7 AS uuid[]), $8, $9, NULLIF($10, ''))`
)

// ReadMember is one transaction in two round trips: BEGIN, the member's
// share lock and the read of what is in force, pipelined; then, when fn
// returns an entry, the access log's row and COMMIT, pipelined. A read
// whose entry is not written is not answered: fn's result counts only when
// the COMMIT that carries its entry succeeded.
func (s *Store) ReadMember(ctx context.Context, memberID string, fn func(app.MemberSnapshot) (*app.AccessEntry, error)) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return markUnreachable(err)
	}
	defer conn.Close()
	onConn := func(ctx context.Context, fn func(pc *pgx.Conn) error) error {
		return conn.Raw(func(driverConn any) error { return fn(driverConn.(*stdlib.Conn).Conn()) })
	}
	var open bool // a transaction may be open on conn
	err = func() error {
		var (
			found bool
			attrs []byte
			snap  app.MemberSnapshot
		)
		open = true
		if err := onConn(ctx, func(pc *pgx.Conn) error {
			batch := &pgx.Batch{}
			batch.Queue("BEGIN")
			batch.Queue(readLockSQL, memberID)
			batch.Queue(readActiveSQL, memberID)
			results := pc.SendBatch(ctx, batch)
			defer results.Close()
			if _, err := results.Exec(); err != nil {
				return err
			}
			switch err := results.QueryRow().Scan(&attrs); {
			case err == nil:
				found = true
			case !errors.Is(err, pgx.ErrNoRows):
				return err
			}
			rows, err := results.Query()
			if err != nil {
				return err
			}
			for rows.Next() {
				var exchangeID, contractID *string
				var terms []byte
				if err := rows.Scan(&snap.Now, &snap.Restricted, &exchangeID, &contractID, &terms); err != nil {
					rows.Close()
					return err
				}
				if exchangeID == nil {
					continue // no exchange in force: the row carries only the time
				}
				t, err := s.termsOf(*contractID, terms)
				if err != nil {
					rows.Close()
					return fmt.Errorf("terms of exchange %s: %w", *exchangeID, err)
				}
				snap.Active = append(snap.Active, app.ActiveConsent{ExchangeID: *exchangeID, Terms: t})
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			return results.Close()
		}); err != nil {
			return fmt.Errorf("lock member and read consent in force: %w", err)
		}
		if !found {
			return errMemberNotFound
		}
		snap.Now = snap.Now.UTC()
		snap.Attributes = map[string]any{}
		if len(attrs) > 0 {
			if err := json.Unmarshal(attrs, &snap.Attributes); err != nil {
				return fmt.Errorf("member attributes: %w", err)
			}
		}
		// An entry with an error is a refused attempt (processing
		// restricted): it is logged and committed, then err answers.
		entry, refused := fn(snap)
		if entry == nil {
			return refused
		}
		e := *entry
		if err := onConn(ctx, func(pc *pgx.Conn) error {
			batch := &pgx.Batch{}
			batch.Queue(accessInsertSQL, e.MemberID, e.AccessorRole, e.AccessorID, e.AccessorName, e.Purpose,
				textArray(e.Categories), textArray(e.ExchangeIDs), e.RequestID, e.At, e.Refused)
			batch.Queue("COMMIT")
			results := pc.SendBatch(ctx, batch)
			_, insErr := results.Exec()
			_, commitErr := results.Exec()
			if err := errors.Join(insErr, commitErr, results.Close()); err != nil {
				return fmt.Errorf("log access: %w", err)
			}
			open = false
			return nil
		}); err != nil {
			return err
		}
		return refused
	}()
	if open {
		// Nothing to keep (a refusal, or a failure): end the transaction.
		// A connection left inside one is discarded by the driver on release.
		_ = onConn(context.WithoutCancel(ctx), func(pc *pgx.Conn) error {
			_, err := pc.Exec(context.WithoutCancel(ctx), "ROLLBACK")
			return err
		})
	}
	return markUnreachable(err)
}

// termsOf decodes a contract's terms as stored, through the cache of
// published versions: an exchange names a published version, whose terms
// never change.
func (s *Store) termsOf(contractID string, terms []byte) (domain.Terms, error) {
	if cached, ok := s.frozen.Load(contractID); ok {
		return cached.(domain.Contract).Terms(), nil
	}
	c, err := contractRecord{ID: contractID, Terms: terms}.toDomain()
	return c.Terms(), err
}

type accessRecord struct {
	ID           string
	MemberID     string
	AccessorRole string
	AccessorID   string
	AccessorName string
	Purpose      *string
	Categories   string
	ExchangeIDs  string `gorm:"column:exchange_ids"`
	RequestID    string
	At           time.Time
	Refused      *string
}

// parseTextArray decodes PostgreSQL's text form of a text[] or uuid[]
// with pgx's array codec (quoting and escapes included).
func parseTextArray(s string) []string {
	out := []string{}
	if err := pgtype.NewMap().SQLScanner(&out).Scan(s); err != nil || out == nil {
		return []string{}
	}
	return out
}

func (s *Store) ListAccess(ctx context.Context, f app.AccessFilter, page app.Page) ([]app.AccessEntry, string, error) {
	q := s.db.WithContext(ctx).Table("access_log").
		Select("id, member_id, accessor_role, accessor_id, accessor_name, purpose, categories::text AS categories, exchange_ids::text AS exchange_ids, request_id, at, refused")
	if f.MemberID != "" {
		q = q.Where("member_id = ?", f.MemberID)
	}
	if f.AccessorID != "" {
		q = q.Where("accessor_id = ?", f.AccessorID)
	}
	if f.From != nil {
		q = q.Where("at >= ?", *f.From)
	}
	if f.Until != nil {
		q = q.Where("at < ?", *f.Until)
	}
	list := "audit"
	if f.Own {
		list = "access-log"
	}
	scope := listScope(list, f.MemberID, f.AccessorID, optText(f.From), optText(f.Until))
	recs, next, err := listPage(s, scope, q, "at", page, func(r accessRecord) (time.Time, string) { return r.At, r.ID })
	return mapAll(recs, func(r accessRecord) app.AccessEntry {
		return app.AccessEntry{ID: r.ID, MemberID: r.MemberID, AccessorRole: r.AccessorRole, AccessorID: r.AccessorID,
			AccessorName: r.AccessorName, Purpose: deref(r.Purpose), Categories: parseTextArray(r.Categories),
			ExchangeIDs: parseTextArray(r.ExchangeIDs), RequestID: r.RequestID, At: r.At.UTC(), Refused: deref(r.Refused)}
	}), next, err
}

type ackRecord struct {
	ExchangeID    string
	RecipientID   string
	RecipientName string
	MemberID      string
	DueAt         time.Time
	ConfirmedAt   *time.Time
}

func (r ackRecord) toApp() app.DeletionAck {
	return app.DeletionAck{ExchangeID: r.ExchangeID, RecipientID: r.RecipientID, RecipientName: r.RecipientName,
		MemberID: r.MemberID, DueAt: r.DueAt.UTC(), ConfirmedAt: utcPtr(r.ConfirmedAt)}
}

const ackSelect = `SELECT a.exchange_id, a.recipient_id, r.name AS recipient_name, a.member_id, a.due_at, a.confirmed_at
	FROM deletion_acks a JOIN recipients r ON r.id = a.recipient_id`

// errNotNamedInExchange answers a deletion confirmation for an exchange
// that does not exist or never named the confirming recipient.
var errNotNamedInExchange = domain.NotFound("exchange-not-found", "no exchange that named you as a recipient has this id")

// Deletion confirmations that come too early or are not owed.
var (
	errDeletionNotOwed = domain.Conflict("deletion-not-owed", "the member moved to a newer version that still gives you this data")
	errExchangeActive  = domain.Conflict("exchange-active", "this exchange is still active; delete the data once it ends")
)

func (s *Store) ConfirmDeletion(ctx context.Context, recipientID, exchangeID string) (app.DeletionAck, error) {
	if !isUUID(exchangeID) || !isRecipientID(recipientID) {
		return app.DeletionAck{}, errNotNamedInExchange
	}
	var out app.DeletionAck
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		lockAck := func() ([]ackRecord, error) {
			var recs []ackRecord
			err := tx.Raw(ackSelect+` WHERE a.exchange_id = ? AND a.recipient_id = ? FOR UPDATE OF a`, exchangeID, recipientID).Scan(&recs).Error
			return recs, err
		}
		recs, err := lockAck()
		if err != nil {
			return fmt.Errorf("lock deletion duty: %w", err)
		}
		if len(recs) == 0 {
			// No duty on record yet. Look again under the member's lock: the
			// consent may have lapsed without an accrual run writing it (which
			// creates the duty now), or ended a moment ago.
			var memberIDs []string
			if err := tx.Raw(`SELECT e.member_id FROM exchanges e JOIN contracts c ON c.id = e.contract_id `+grantsByRecipient+`
				WHERE e.id = ? AND g.recipient_id = ?`, exchangeID, recipientID).Scan(&memberIDs).Error; err != nil {
				return fmt.Errorf("find the exchange's member: %w", err)
			}
			if len(memberIDs) == 0 {
				return errNotNamedInExchange
			}
			if _, err := lockMemberRow(tx, memberIDs[0], memberLock{}); err != nil && !errors.Is(err, errNotEnrolled) {
				return err
			}
			if err := s.expireLapsed(tx, memberIDs[0]); err != nil {
				return fmt.Errorf("expire lapsed exchanges: %w", err)
			}
			if recs, err = lockAck(); err != nil {
				return fmt.Errorf("lock deletion duty: %w", err)
			}
		}
		if len(recs) == 0 {
			var status string
			if err := tx.Raw(`SELECT status FROM exchanges WHERE id = ?`, exchangeID).Scan(&status).Error; err != nil {
				return fmt.Errorf("read exchange status: %w", err)
			}
			if status == string(domain.ExchangeSuperseded) {
				return errDeletionNotOwed
			}
			return errExchangeActive
		}
		rec := recs[0]
		if rec.ConfirmedAt == nil {
			now, err := dbNow(tx)
			if err != nil {
				return fmt.Errorf("read clock: %w", err)
			}
			if err := tx.Exec(`UPDATE deletion_acks SET confirmed_at = ? WHERE exchange_id = ? AND recipient_id = ?`, now, exchangeID, recipientID).Error; err != nil {
				return fmt.Errorf("confirm deletion: %w", err)
			}
			rec.ConfirmedAt = &now
		}
		out = rec.toApp()
		return nil
	})
	return out, err
}

func (s *Store) MemberDeletionAcks(ctx context.Context, memberID string) ([]app.DeletionAck, error) {
	var recs []ackRecord
	if err := s.db.WithContext(ctx).Raw(ackSelect+` WHERE a.member_id = ? ORDER BY a.due_at, r.name`, memberID).Scan(&recs).Error; err != nil {
		return nil, err
	}
	out := make([]app.DeletionAck, len(recs))
	for i, r := range recs {
		out[i] = r.toApp()
	}
	return out, nil
}

// overdueAt is the condition, on deletion acknowledgement a, that its duty
// is overdue at the time expression at: domain.DeletionState's "overdue".
func overdueAt(at string) string { return "a.confirmed_at IS NULL AND a.due_at < " + at }

func (s *Store) OverdueDeletions(ctx context.Context, page app.Page) ([]app.DeletionAck, string, error) {
	args, err := s.cursorArgs(ctx, "overdue", page)
	if err != nil {
		return nil, "", err
	}
	q := s.db.WithContext(ctx).Raw(ackSelect+` WHERE `+overdueAt("clock_timestamp()")+`
		AND (?::timestamptz IS NULL OR (a.due_at, a.exchange_id::text || a.recipient_id::text) > (?::timestamptz, ?))
		ORDER BY a.due_at, a.exchange_id::text || a.recipient_id::text LIMIT ?`, args...)
	var recs []ackRecord
	if err := q.Scan(&recs).Error; err != nil {
		return nil, "", err
	}
	next := ""
	if len(recs) > page.Limit {
		recs = recs[:page.Limit]
		last := recs[len(recs)-1]
		if next, err = s.encodeCursor(ctx, "overdue", last.DueAt, last.ExchangeID+last.RecipientID); err != nil {
			return nil, "", err
		}
	}
	out := make([]app.DeletionAck, len(recs))
	for i, r := range recs {
		out[i] = r.toApp()
	}
	return out, next, nil
}

// cursorArgs gives (time, time, key, limit+1) for an oldest-first keyset.
func (s *Store) cursorArgs(ctx context.Context, scope string, page app.Page) ([]any, error) {
	if page.Cursor == "" {
		return []any{nil, nil, "", page.Limit + 1}, nil
	}
	t, key, err := s.decodeCursor(ctx, scope, page.Cursor)
	if err != nil {
		return nil, err
	}
	return []any{t, t, key, page.Limit + 1}, nil
}

func (s *Store) SaveWebhook(ctx context.Context, w app.Webhook) error {
	return s.db.WithContext(ctx).Exec(`INSERT INTO webhook_endpoints (recipient_id, url, secret, created_at, updated_at)
		VALUES (?, ?, ?, now(), now())
		ON CONFLICT (recipient_id) DO UPDATE SET url = EXCLUDED.url, secret = EXCLUDED.secret, updated_at = now()`,
		w.RecipientID, w.URL, w.Secret).Error
}

type deliveryRecord struct {
	ID            string
	RecipientID   string
	EventType     string
	CreatedAt     time.Time
	Attempts      int
	NextAttemptAt time.Time
	DeliveredAt   *time.Time
	FailedAt      *time.Time
	LastStatus    *int
	LastError     *string
}

func (s *Store) ListDeliveries(ctx context.Context, recipientID string, page app.Page) ([]app.Delivery, string, error) {
	q := s.db.WithContext(ctx).Table("webhook_outbox").Select("id, recipient_id, event_type, created_at, attempts, next_attempt_at, delivered_at, failed_at, last_status, last_error")
	if recipientID != "" {
		q = q.Where("recipient_id = ?", recipientID)
	}
	recs, next, err := listPage(s, listScope("deliveries", recipientID), q, "created_at", page,
		func(r deliveryRecord) (time.Time, string) { return r.CreatedAt, r.ID })
	return mapAll(recs, func(r deliveryRecord) app.Delivery {
		return app.Delivery{ID: r.ID, RecipientID: r.RecipientID, EventType: r.EventType, CreatedAt: r.CreatedAt.UTC(),
			Attempts: r.Attempts, NextAttempt: r.NextAttemptAt.UTC(), DeliveredAt: utcPtr(r.DeliveredAt), FailedAt: utcPtr(r.FailedAt),
			LastStatus: r.LastStatus, LastError: deref(r.LastError)}
	}), next, err
}
