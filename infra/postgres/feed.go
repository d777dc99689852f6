package postgres

import (
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
)

// Feeds: a row's time is set before its transaction commits, so a consumer
// that polls "newer than the newest I saw" misses rows whose transaction
// commits late. Feed tables record the writing transaction (xact, a
// pg_current_xact_id() default) and an insertion sequence (seq). A feed page
// hands out rows in (xact, seq) order and only rows whose transaction is
// older than the oldest one still running (pg_snapshot_xmin): every such
// transaction has finished, so no row can later appear before the cursor.
// The cursor (signed like every cursor) carries the last (xact, seq) handed
// out and is returned on every page, empty ones included, for the next poll.

// feedScope keeps feed cursors apart from the same list's newest-first ones.
func feedScope(scope string) string { return listScope("feed", scope) }

// feedPage reads one commit-order page of q, which must select
// "xact::text AS xact, seq"; key gives a record's (xact, seq).
func feedPage[R any](s *Store, scope string, q *gorm.DB, page app.Page, key func(R) (string, int64)) ([]R, string, error) {
	ctx := q.Statement.Context
	xact, seq := "0", int64(0)
	if page.Cursor != "" {
		parts, err := s.openCursor(ctx, feedScope(scope), page.Cursor, 2)
		if err != nil {
			return nil, "", err
		}
		if _, err := strconv.ParseUint(parts[0], 10, 64); err != nil {
			return nil, "", errBadCursor
		}
		if seq, err = strconv.ParseInt(parts[1], 10, 64); err != nil {
			return nil, "", errBadCursor
		}
		xact = parts[0]
	}
	q = q.Where("xact < pg_snapshot_xmin(pg_current_snapshot())").
		Where("(xact, seq) > (CAST(? AS xid8), CAST(? AS bigint))", xact, seq).
		Order("xact").Order("seq").Limit(page.Limit)
	var recs []R
	if err := q.Scan(&recs).Error; err != nil {
		return nil, "", err
	}
	if len(recs) > 0 {
		xact, seq = key(recs[len(recs)-1])
	}
	next, err := s.sealCursor(ctx, feedScope(scope), xact, strconv.FormatInt(seq, 10))
	return recs, next, err
}

// optText renders an optional filter time for a cursor scope.
func optText(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
