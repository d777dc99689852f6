package postgres

import (
	"context"
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

// translate maps gorm's translated driver errors to domain errors; anything
// else stays an internal error.
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
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return domain.Conflict(what+"-exists", "a conflicting "+strings.ReplaceAll(what, "-", " ")+" already exists")
	}
	return err
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
// yet accepting, or full: connection_exception (class 08), admin_shutdown,
// crash_shutdown, cannot_connect_now, too_many_connections.
var unreachableStates = map[string]bool{"57P01": true, "57P02": true, "57P03": true, "53300": true}

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

// cursor encodes a keyset position (time, id) as an opaque string.
func encodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(t.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", domain.Invalid("/cursor", "is not a cursor returned by this API")
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	t, perr := time.Parse(time.RFC3339Nano, ts)
	if !ok || perr != nil {
		return time.Time{}, "", domain.Invalid("/cursor", "is not a cursor returned by this API")
	}
	return t, id, nil
}

// keyset applies "newest first" cursor pagination on (timeCol, id).
func keyset(q *gorm.DB, timeCol, idCol, cursor string, limit int) (*gorm.DB, error) {
	if cursor != "" {
		t, id, err := decodeCursor(cursor)
		if err != nil {
			return nil, err
		}
		q = q.Where("("+timeCol+", "+idCol+") < (?, ?)", t, id)
	}
	return q.Order(timeCol + " DESC").Order(idCol + " DESC").Limit(limit + 1), nil
}

// findPage reads one newest-first page of q from the cursor and returns the
// records and the next page's cursor ("" on the last page). key gives a
// record's position (time, id).
func findPage[R any](q *gorm.DB, timeCol string, page app.Page, key func(R) (time.Time, string)) ([]R, string, error) {
	q, err := keyset(q, timeCol, "id", page.Cursor, page.Limit)
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
	return recs, encodeCursor(at, id), nil
}

// mapAll converts records to another type.
func mapAll[R, T any](recs []R, f func(R) T) []T {
	out := make([]T, len(recs))
	for i, r := range recs {
		out[i] = f(r)
	}
	return out
}
