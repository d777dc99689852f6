package postgres

import (
	"context"

	"github.com/quidpro/quid/app"
)

// ExpireIdempotency deletes stored idempotent responses older than
// app.IdempotencyTTL, in
// batches of rows no other replica is deleting at the same moment (SKIP
// LOCKED), so replicas running it together neither wait nor fail.
func (s *Store) ExpireIdempotency(ctx context.Context) (int64, error) {
	const batch = 5000
	var total int64
	for {
		res := s.db.WithContext(ctx).Exec(`DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM idempotency_keys WHERE created_at <= now() - CAST(? AS interval)
			LIMIT ? FOR UPDATE SKIP LOCKED))`, app.IdempotencyTTL, batch)
		if res.Error != nil {
			return total, res.Error
		}
		total += res.RowsAffected
		if res.RowsAffected < batch {
			return total, nil
		}
	}
}
