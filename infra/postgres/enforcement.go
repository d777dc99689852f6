package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

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
		WHERE e.member_id = ? AND e.status = 'active' AND (e.expires_at IS NULL OR e.expires_at > clock_timestamp())
		  AND EXISTS (SELECT 1 FROM jsonb_array_elements(c.terms->'items') i
		              WHERE i->>'purpose' = ? AND i->'recipients' @> to_jsonb(CAST(? AS text)))
		LIMIT 1`, memberID, purpose, recipientID).Scan(&found).Error
	return len(found) > 0, err
}

func (s *Store) ReadMember(ctx context.Context, memberID string, fn func(app.MemberSnapshot) (*app.AccessEntry, error)) error {
	var refused error
	txErr := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var m memberRecord
		err := tx.Clauses(clause.Locking{Strength: "SHARE"}).First(&m, "id = ?", memberID).Error
		if errors.Is(err, gorm.ErrRecordNotFound) || (err == nil && m.ErasedAt != nil) {
			return errMemberNotFound
		}
		if err != nil {
			return err
		}
		member, err := m.toApp()
		if err != nil {
			return err
		}
		// The clock and whether the member restricts processing (Art. 18),
		// in one round trip.
		var clock struct {
			Now        time.Time
			Restricted bool
		}
		if err := tx.Raw(`SELECT clock_timestamp() AS now,
			EXISTS (SELECT 1 FROM member_restrictions WHERE member_id = ? AND ended_at IS NULL) AS restricted`, memberID).
			Scan(&clock).Error; err != nil {
			return err
		}
		now := clock.Now.UTC()
		// An exchange whose duration ran out grants nothing even before the
		// accrual worker has marked it expired.
		var rows []struct {
			ExchangeID string
			ContractID string
			Terms      []byte
		}
		if err := tx.Raw(`SELECT e.id AS exchange_id, c.id AS contract_id, c.terms FROM exchanges e JOIN contracts c ON c.id = e.contract_id
			WHERE e.member_id = ? AND e.status = 'active' AND (e.expires_at IS NULL OR e.expires_at > ?)
			ORDER BY e.joined_at`, memberID, now).Scan(&rows).Error; err != nil {
			return err
		}
		snap := app.MemberSnapshot{Attributes: member.Attributes, Restricted: clock.Restricted, Now: now}
		for _, r := range rows {
			c, err := contractRecord{ID: r.ContractID, Terms: r.Terms}.toDomain()
			if err != nil {
				return err
			}
			snap.Active = append(snap.Active, app.ActiveConsent{ExchangeID: r.ExchangeID, Terms: c.Terms()})
		}
		entry, err := fn(snap)
		if entry == nil {
			return err
		}
		if werr := insertAccess(tx, *entry); werr != nil {
			return werr
		}
		refused = err // a refused attempt, logged: commit, then answer err
		return nil
	})
	if txErr != nil {
		return txErr
	}
	return refused
}

func insertAccess(tx *gorm.DB, e app.AccessEntry) error {
	return tx.Exec(`INSERT INTO access_log (member_id, accessor_role, accessor_id, accessor_name, purpose, categories, exchange_ids, request_id, at, refused)
		VALUES (?, ?, ?, ?, NULLIF(?, ''), ?::text[], ?::uuid[], ?, ?, NULLIF(?, ''))`,
		e.MemberID, e.AccessorRole, e.AccessorID, e.AccessorName, e.Purpose, textArray(e.Categories), textArray(e.ExchangeIDs), e.RequestID, e.At, e.Refused).Error
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

func (s *Store) ConfirmDeletion(ctx context.Context, recipientID, exchangeID string) (app.DeletionAck, error) {
	notFound := domain.NotFound("exchange-not-found", "no exchange that named you as a recipient has this id")
	if !isUUID(exchangeID) || !isRecipientID(recipientID) {
		return app.DeletionAck{}, notFound
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
			return err
		}
		if len(recs) == 0 {
			// No duty on record yet. Look again under the member's lock: the
			// consent may have lapsed without an accrual run writing it (which
			// creates the duty now), or ended a moment ago.
			var memberIDs []string
			if err := tx.Raw(`SELECT e.member_id FROM exchanges e JOIN contracts c ON c.id = e.contract_id `+grantsByRecipient+`
				WHERE e.id = ? AND g.recipient_id = ?`, exchangeID, recipientID).Scan(&memberIDs).Error; err != nil {
				return err
			}
			if len(memberIDs) == 0 {
				return notFound
			}
			if _, err := lockMember(tx, memberIDs[0]); err != nil && !errors.Is(err, errNotEnrolled) {
				return err
			}
			if err := s.expireLapsed(tx, memberIDs[0]); err != nil {
				return err
			}
			if recs, err = lockAck(); err != nil {
				return err
			}
		}
		if len(recs) == 0 {
			var status string
			if err := tx.Raw(`SELECT status FROM exchanges WHERE id = ?`, exchangeID).Scan(&status).Error; err != nil {
				return err
			}
			if status == string(domain.ExchangeSuperseded) {
				return domain.Conflict("deletion-not-owed", "the member moved to a newer version that still gives you this data")
			}
			return domain.Conflict("exchange-active", "this exchange is still active; delete the data once it ends")
		}
		rec := recs[0]
		if rec.ConfirmedAt == nil {
			now, err := dbNow(tx)
			if err != nil {
				return err
			}
			if err := tx.Exec(`UPDATE deletion_acks SET confirmed_at = ? WHERE exchange_id = ? AND recipient_id = ?`, now, exchangeID, recipientID).Error; err != nil {
				return err
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

func (s *Store) OverdueDeletions(ctx context.Context, page app.Page) ([]app.DeletionAck, string, error) {
	args, err := s.cursorArgs(ctx, "overdue", page)
	if err != nil {
		return nil, "", err
	}
	q := s.db.WithContext(ctx).Raw(ackSelect+` WHERE a.confirmed_at IS NULL AND a.due_at < clock_timestamp()
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

// ClaimDue leases due events of recipients that registered an endpoint.
func (s *Store) ClaimDue(ctx context.Context, limit int, lease time.Duration) ([]app.OutboxMessage, error) {
	var out []app.OutboxMessage
	err := s.db.WithContext(ctx).Raw(`
WITH due AS (
    SELECT o.id FROM webhook_outbox o JOIN webhook_endpoints w ON w.recipient_id = o.recipient_id
    WHERE o.delivered_at IS NULL AND o.failed_at IS NULL AND o.next_attempt_at <= clock_timestamp()
    ORDER BY o.next_attempt_at LIMIT ? FOR UPDATE OF o SKIP LOCKED
)
UPDATE webhook_outbox o SET next_attempt_at = clock_timestamp() + ?::interval
FROM due, webhook_endpoints w
WHERE o.id = due.id AND w.recipient_id = o.recipient_id
RETURNING o.id, o.recipient_id, o.event_type, o.payload, w.url, w.secret, o.attempts, o.created_at`,
		limit, lease).Scan(&out).Error
	for i := range out {
		out[i].Payload, out[i].CreatedAt = compactJSON(out[i].Payload), out[i].CreatedAt.UTC()
	}
	return out, err
}

func compactJSON(b []byte) []byte {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return b
	}
	out, err := json.Marshal(v)
	if err != nil {
		return b
	}
	return out
}

func (s *Store) MarkDelivered(ctx context.Context, id string, status int) error {
	return s.db.WithContext(ctx).Exec(`UPDATE webhook_outbox SET delivered_at = clock_timestamp(), attempts = attempts + 1, last_status = ?, last_error = NULL, `+
		erasureRequestDelivered+` WHERE id = ?`, status, id).Error
}

func (s *Store) MarkAttemptFailed(ctx context.Context, id string, status int, reason string, next time.Time, giveUp bool) error {
	var failedAt any
	if giveUp {
		failedAt = gorm.Expr("clock_timestamp()")
	}
	if len(reason) > 500 {
		reason = reason[:500]
	}
	// Giving up and forgetting an erasure request's member id commit
	// together: a given-up event never keeps the id.
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`UPDATE webhook_outbox SET attempts = attempts + 1, last_status = NULLIF(?, 0), last_error = NULLIF(?, ''),
		next_attempt_at = ?, failed_at = ? WHERE id = ?`, status, reason, next, failedAt, id).Error; err != nil || !giveUp {
			return err
		}
		return tx.Exec(`UPDATE webhook_outbox SET `+erasureRequestDelivered+` WHERE id = ?`, id).Error
	})
}
