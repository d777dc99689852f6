package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/quidpro/quid/app"
)

// idempotencyTTL is app.IdempotencyTTL as a PostgreSQL interval.
var idempotencyTTL = fmt.Sprintf("%d seconds", int64(app.IdempotencyTTL/time.Second))

// ExpireIdempotency deletes stored idempotent responses older than ttl, in
// batches of rows no other replica is deleting at the same moment (SKIP
// LOCKED), so replicas running it together neither wait nor fail.
func (s *Store) ExpireIdempotency(ctx context.Context, ttl time.Duration) (int64, error) {
	const batch = 5000
	var total int64
	for {
		res := s.db.WithContext(ctx).Exec(`DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM idempotency_keys WHERE created_at <= now() - ?::interval
			LIMIT ? FOR UPDATE SKIP LOCKED))`, fmt.Sprintf("%d milliseconds", ttl.Milliseconds()), batch)
		if res.Error != nil {
			return total, res.Error
		}
		total += res.RowsAffected
		if res.RowsAffected < batch {
			return total, nil
		}
	}
}
