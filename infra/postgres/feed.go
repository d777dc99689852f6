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

// listPage reads one page of an incremental list: newest first by
// (timeCol, id) as findPage does, or with page.Feed, in commit order.
func listPage[R any](s *Store, scope string, q *gorm.DB, timeCol string, page app.Page, key func(R) (time.Time, string)) ([]R, string, error) {
	if !page.Feed {
		return findPage(s, scope, q, timeCol, page, key)
	}
	return feedPage[R](s, scope, q, page)
}

// feedRow is a record with its feed position.
type feedRow[R any] struct {
	Rec      R `gorm:"embedded"`
	FeedXact string
	FeedSeq  int64
}

// feedPage reads one commit-order page of q (a table with xact and seq
// columns, selecting R's columns).
func feedPage[R any](s *Store, scope string, q *gorm.DB, page app.Page) ([]R, string, error) {
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
	q = q.Session(&gorm.Session{})
	q.Statement.Selects = append(q.Statement.Selects, "xact::text AS feed_xact", "seq AS feed_seq")
	q = q.Where("xact < pg_snapshot_xmin(pg_current_snapshot())").
		Where("(xact, seq) > (CAST(? AS xid8), CAST(? AS bigint))", xact, seq).
		Order("xact").Order("seq").Limit(page.Limit)
	var rows []feedRow[R]
	if err := q.Scan(&rows).Error; err != nil {
		return nil, "", err
	}
	recs := make([]R, len(rows))
	for i, r := range rows {
		recs[i] = r.Rec
	}
	if len(rows) > 0 {
		xact, seq = rows[len(rows)-1].FeedXact, rows[len(rows)-1].FeedSeq
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
