package postgres

import (
	"encoding/base64"
	"errors"
	"strings"
	"time"

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
	case errors.Is(err, gorm.ErrRecordNotFound):
		return domain.NotFound(what+"-not-found", "no "+strings.ReplaceAll(what, "-", " ")+" with this id")
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return domain.Conflict(what+"-exists", "a conflicting "+strings.ReplaceAll(what, "-", " ")+" already exists")
	}
	return err
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
