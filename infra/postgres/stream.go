package postgres

import (
	"context"
	"database/sql"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
)

// SetStreamRecording switches the recording of outbox events for the event
// stream on or off (migration 00030). Events written while it is off are
// never published; switching it on does not reach back to them.
func (s *Store) SetStreamRecording(ctx context.Context, on bool) error {
	return s.db.WithContext(ctx).Exec(`INSERT INTO event_stream_settings (only_row, recording, changed_at) VALUES (true, ?, clock_timestamp())
		ON CONFLICT (only_row) DO UPDATE SET recording = EXCLUDED.recording, changed_at = EXCLUDED.changed_at
		WHERE event_stream_settings.recording IS DISTINCT FROM EXCLUDED.recording`, on).Error
}

// StreamRecording reports whether outbox events are recorded for the
// event stream.
func (s *Store) StreamRecording(ctx context.Context) (bool, error) {
	var on bool
	err := s.db.WithContext(ctx).Raw(`SELECT COALESCE((SELECT s.recording FROM event_stream_settings s), false)`).Row().Scan(&on)
	return on, err
}

// StreamStatus is what `quid stream status` shows.
type StreamStatus struct {
	Recording bool
	Waiting   int64
	GivenUp   int64
	Oldest    sql.NullTime
}

// StreamStatus reads whether recording is on, how many events wait to be
// published and given up, and when the oldest waiting one was written.
func (s *Store) StreamStatus(ctx context.Context) (StreamStatus, error) {
	var st StreamStatus
	err := s.db.WithContext(ctx).Raw(`SELECT
		COALESCE((SELECT s.recording FROM event_stream_settings s), false) AS recording,
		(SELECT count(*) FROM event_stream_outbox p WHERE p.published_at IS NULL AND p.given_up_at IS NULL) AS waiting,
		(SELECT count(*) FROM event_stream_outbox p WHERE p.given_up_at IS NOT NULL) AS given_up,
		(SELECT min(p.created_at) FROM event_stream_outbox p WHERE p.published_at IS NULL AND p.given_up_at IS NULL) AS oldest`).
		Row().Scan(&st.Recording, &st.Waiting, &st.GivenUp, &st.Oldest)
	return st, err
}

// ClaimUnpublishedSQL leases the oldest due unpublished events (@limit, for
// @lease) by event_stream_outbox_due, skipping rows another relay holds.
// It locks only event_stream_outbox rows: the webhook worker's claims and
// marks lock webhook_outbox rows, so neither ever waits for or skips the
// other's events. The payload is read as it is now (erasure may have
// pseudonymised it since the event was written).
const ClaimUnpublishedSQL = `
WITH due AS (
    SELECT p.event_id FROM event_stream_outbox p
    WHERE p.published_at IS NULL AND p.given_up_at IS NULL AND p.next_attempt_at <= clock_timestamp()
    ORDER BY p.next_attempt_at LIMIT @limit FOR UPDATE SKIP LOCKED
)
UPDATE event_stream_outbox p SET next_attempt_at = clock_timestamp() + CAST(@lease AS interval)
FROM due, webhook_outbox o
WHERE p.event_id = due.event_id AND o.id = p.event_id
RETURNING o.id, o.recipient_id, o.event_type, o.payload, p.attempts, o.created_at`

// ClaimUnpublished leases due events not yet published to the stream.
func (s *Store) ClaimUnpublished(ctx context.Context, limit int, lease time.Duration) ([]app.StreamEvent, error) {
	var out []app.StreamEvent
	err := s.db.WithContext(ctx).Raw(ClaimUnpublishedSQL, map[string]any{"limit": limit, "lease": lease}).Scan(&out).Error
	for i := range out {
		// The same bytes the webhook worker posts (ClaimDue).
		out[i].Payload, out[i].CreatedAt = compactJSON(out[i].Payload), out[i].CreatedAt.UTC()
	}
	return out, err
}

// MarkPublished records the stream sequence of each published event.
func (s *Store) MarkPublished(ctx context.Context, ids []string, seqs []uint64) error {
	if len(ids) == 0 {
		return nil
	}
	nums := make([]int64, len(seqs))
	for i, n := range seqs {
		nums[i] = int64(n)
	}
	return s.db.WithContext(ctx).Exec(`UPDATE event_stream_outbox p SET published_at = clock_timestamp(), attempts = p.attempts + 1,
		stream_seq = m.seq, last_error = NULL
		FROM unnest(CAST(? AS uuid[]), CAST(? AS bigint[])) AS m(id, seq)
		WHERE p.event_id = m.id AND p.published_at IS NULL`, textArray(ids), pgtype.Array[int64]{Elements: nums, Valid: true,
		Dims: []pgtype.ArrayDimension{{Length: int32(len(nums)), LowerBound: 1}}}).Error
}

// MarkPublishFailed records a failed attempt.
func (s *Store) MarkPublishFailed(ctx context.Context, id, reason string, next time.Time, giveUp bool) error {
	if len(reason) > 500 {
		reason = reason[:500]
	}
	var givenUp any
	if giveUp {
		givenUp = gorm.Expr("clock_timestamp()")
	}
	return s.db.WithContext(ctx).Exec(`UPDATE event_stream_outbox SET attempts = attempts + 1, last_error = NULLIF(?, ''),
		next_attempt_at = ?, given_up_at = ? WHERE event_id = ? AND published_at IS NULL`, reason, next, givenUp, id).Error
}

// OldestUnpublished reads the oldest waiting event's time by
// event_stream_outbox_oldest (one index entry, whatever the backlog).
func (s *Store) OldestUnpublished(ctx context.Context) (time.Time, error) {
	var oldest sql.NullTime
	err := s.db.WithContext(ctx).Raw(`SELECT min(p.created_at) FROM event_stream_outbox p
		WHERE p.published_at IS NULL AND p.given_up_at IS NULL`).Row().Scan(&oldest)
	if err != nil || !oldest.Valid {
		return time.Time{}, err
	}
	return oldest.Time.UTC(), nil
}
