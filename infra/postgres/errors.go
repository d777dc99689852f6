package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// translate maps driver errors to domain errors — gorm's translated ones and
// pgx's own, from the statements sent straight to the driver — so both paths
// answer the same; anything else stays an internal error.
func translate(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, app.ErrUnavailable):
		return err
	case isUnreachable(err):
		return unavailable(err)
	case errors.Is(err, gorm.ErrRecordNotFound):
		return domain.NotFound(what+"-not-found", "no "+strings.ReplaceAll(what, "-", " ")+" with this id")
	case errors.Is(err, gorm.ErrDuplicatedKey), isUniqueViolation(err):
		return domain.Conflict(what+"-exists", "a conflicting "+strings.ReplaceAll(what, "-", " ")+" already exists")
	}
	return err
}

// isUniqueViolation tells a unique_violation (SQLSTATE 23505) straight from
// pgx, which gorm's translation never saw.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// unavailable wraps an error that means the database cannot be reached now
// with app.ErrUnavailable, keeping the driver's error in the chain.
func unavailable(err error) error {
	if err == nil || errors.Is(err, app.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", app.ErrUnavailable, err)
}

// markUnreachable is unavailable(err) when err means the database went away,
// else err unchanged: for paths that use the driver directly.
func markUnreachable(err error) error {
	if err != nil && isUnreachable(err) {
		return unavailable(err)
	}
	return err
}

// unreachableStates are the SQLSTATEs of a server that is going away, not
// yet accepting, full, or too slow to answer in time: connection_exception
// (class 08), admin_shutdown, crash_shutdown, cannot_connect_now,
// too_many_connections, and query_canceled and
// idle_in_transaction_session_timeout, which Quid's own session timeouts
// (QUID_DB_STATEMENT_TIMEOUT, QUID_DB_IDLE_IN_TRANSACTION_TIMEOUT) raise
// when the database is overloaded or a lock is held too long: the client
// may retry, so 503 with Retry-After, not 500.
var unreachableStates = map[string]bool{"57P01": true, "57P02": true, "57P03": true, "53300": true, "57014": true, "25P03": true}

// isUnreachable reports whether err says the database could not be reached
// or went away, as opposed to refusing a statement.
func isUnreachable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || unreachableStates[pgErr.Code]
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false // the caller gave up; not the database's state
	}
	// pgconn reports a connection that died mid-use as plain text.
	msg := err.Error()
	return strings.Contains(msg, "conn closed") ||
		strings.Contains(msg, "failed to connect") || strings.Contains(msg, "broken pipe") ||
		strings.Contains(msg, "connection reset")
}

// Cursors are opaque and tamper-evident: the position they carry is signed
// with HMAC-SHA256 under a key kept in the database (one per database, so
// every replica accepts the cursors of every other), together with the
// list's scope (the list and its filters). An altered, truncated, forged
// or foreign cursor is a 422 naming the cursor parameter; nothing a client
// sends reaches SQL unless the server wrote it.
var errBadCursor = domain.Invalid("/query/cursor", "is not a cursor this list handed out; start again without it")

// cursorMACSize is how many bytes of the HMAC a cursor carries.
const cursorMACSize = 16

// cursorKey loads the signing key once.
func (s *Store) cursorKey(ctx context.Context) ([]byte, error) {
	if k := s.cursorSecret.Load(); k != nil {
		return *k, nil
	}
	var key []byte
	if err := s.db.WithContext(ctx).Raw(`SELECT key FROM cursor_keys WHERE id = 1`).Row().Scan(&key); err != nil {
		return nil, fmt.Errorf("cursor key: %w", err)
	}
	if len(key) < 16 {
		return nil, errors.New("cursor key: too short")
	}
	s.cursorSecret.Store(&key)
	return key, nil
}

func cursorMAC(key []byte, scope, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(scope))
	m.Write([]byte{0})
	m.Write([]byte(payload))
	return m.Sum(nil)[:cursorMACSize]
}

// sealCursor signs a position (parts without "|") for one list scope.
func (s *Store) sealCursor(ctx context.Context, scope string, parts ...string) (string, error) {
	key, err := s.cursorKey(ctx)
	if err != nil {
		return "", err
	}
	payload := strings.Join(parts, "|")
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." +
		base64.RawURLEncoding.EncodeToString(cursorMAC(key, scope, payload)), nil
}

// openCursor checks a cursor's signature for scope and returns its n parts.
func (s *Store) openCursor(ctx context.Context, scope, cursor string, n int) ([]string, error) {
	if len(cursor) > 512 {
		return nil, errBadCursor
	}
	p64, m64, ok := strings.Cut(cursor, ".")
	if !ok {
		return nil, errBadCursor
	}
	// Each cursor has one spelling: the decoder skips CR and LF and, unless
	// strict, ignores unused trailing bits, so the parts must also be
	// exactly what encoding the decoded bytes gives back.
	b64 := base64.RawURLEncoding.Strict()
	payload, err1 := b64.DecodeString(p64)
	mac, err2 := b64.DecodeString(m64)
	if err1 != nil || err2 != nil || len(mac) != cursorMACSize ||
		b64.EncodeToString(payload) != p64 || b64.EncodeToString(mac) != m64 {
		return nil, errBadCursor
	}
	key, err := s.cursorKey(ctx)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(mac, cursorMAC(key, scope, string(payload))) {
		return nil, errBadCursor
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != n {
		return nil, errBadCursor
	}
	return parts, nil
}

// encodeCursor signs a keyset position (time, id) for scope.
func (s *Store) encodeCursor(ctx context.Context, scope string, t time.Time, id string) (string, error) {
	return s.sealCursor(ctx, scope, t.UTC().Format(time.RFC3339Nano), id)
}

// decodeCursor checks and reads a keyset position (time, id) of scope.
func (s *Store) decodeCursor(ctx context.Context, scope, c string) (time.Time, string, error) {
	parts, err := s.openCursor(ctx, scope, c, 2)
	if err != nil {
		return time.Time{}, "", err
	}
	t, err := time.Parse(time.RFC3339Nano, parts[0])
	if err != nil {
		return time.Time{}, "", errBadCursor
	}
	return t, parts[1], nil
}

// keyset applies "newest first" cursor pagination on (timeCol, id).
func (s *Store) keyset(q *gorm.DB, scope, timeCol, idCol, cursor string, limit int) (*gorm.DB, error) {
	if cursor != "" {
		t, id, err := s.decodeCursor(q.Statement.Context, scope, cursor)
		if err != nil {
			return nil, err
		}
		q = q.Where("("+timeCol+", "+idCol+") < (?, ?)", t, id)
	}
	return q.Order(timeCol + " DESC").Order(idCol + " DESC").Limit(limit + 1), nil
}

// findPage reads one newest-first page of q from the cursor and returns the
// records and the next page's cursor ("" on the last page). scope names the
// list and its filters (a cursor of another list is refused); key gives a
// record's position (time, id).
func findPage[R any](s *Store, scope string, q *gorm.DB, timeCol string, page app.Page, key func(R) (time.Time, string)) ([]R, string, error) {
	q, err := s.keyset(q, scope, timeCol, "id", page.Cursor, page.Limit)
	if err != nil {
		return nil, "", err
	}
	var recs []R
	if err := q.Scan(&recs).Error; err != nil {
		return nil, "", err
	}
	if len(recs) <= page.Limit {
		return recs, "", nil
	}
	recs = recs[:page.Limit]
	at, id := key(recs[len(recs)-1])
	next, err := s.encodeCursor(q.Statement.Context, scope, at, id)
	return recs, next, err
}

// listScope joins a list's name and filters into a cursor scope.
func listScope(parts ...string) string { return strings.Join(parts, "\x00") }

// mapAll converts records to another type.
func mapAll[R, T any](recs []R, f func(R) T) []T {
	out := make([]T, len(recs))
	for i, r := range recs {
		out[i] = f(r)
	}
	return out
}
