package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
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

// Stored responses are looked up and saved under the member's row lock,
// which every keyed request (join, redemption) takes first: two requests with
// the same key run one after the other, and the second finds the first's
// response. A response older than app.IdempotencyTTL no longer counts,
// whether or not the expiry worker has deleted it yet: the key starts afresh.
const (
	idempotencyLookupSQL = `SELECT request_hash, response FROM idempotency_keys
WHERE member_id = @member AND scope = @scope AND key = @key AND created_at > now() - CAST(@ttl AS interval)`
	idempotencySaveSQL = `INSERT INTO idempotency_keys (member_id, scope, key, request_hash, response)
VALUES (@member, @scope, @key, @hash, @response)
ON CONFLICT (member_id, scope, key) DO UPDATE
SET request_hash = EXCLUDED.request_hash, response = EXCLUDED.response, created_at = EXCLUDED.created_at`
)

var (
	idempotencyLookupQuery = positional(idempotencyLookupSQL, "member", "scope", "key", "ttl")
	idempotencySaveQuery   = positional(idempotencySaveSQL, "member", "scope", "key", "hash", "response")
)

func idempotencyArgs(memberID, scope string, idem *app.IdempotencyKey) map[string]any {
	return map[string]any{"member": memberID, "scope": scope, "key": idem.Key, "hash": idem.RequestHash, "ttl": app.IdempotencyTTL}
}

// errKeyReused answers a key sent again with another request.
var errKeyReused = &domain.Error{Kind: domain.KindInvalid, Code: "idempotency-key-reused",
	Message: "this Idempotency-Key was used with a different request",
	Fields:  []domain.FieldError{{Pointer: "/headers/Idempotency-Key", Reason: "was used with a different request: another body, or the Sec-GPC signal switched"}}}

// priorResponse is what an earlier request with the same key left: its
// response when the request was the same, errKeyReused when it was not.
func priorResponse(idem *app.IdempotencyKey, requestHash string, response []byte) (json.RawMessage, error) {
	if requestHash != idem.RequestHash {
		return nil, errKeyReused
	}
	return response, nil
}

// claimIdempotency looks key up inside tx, which holds the member's lock.
// It returns nil when the request is new, else the stored response (same
// request) or errKeyReused.
func claimIdempotency(tx *gorm.DB, memberID, scope string, idem *app.IdempotencyKey) (json.RawMessage, error) {
	if idem == nil {
		return nil, nil
	}
	var rows []struct {
		RequestHash string
		Response    []byte
	}
	if err := tx.Raw(idempotencyLookupSQL, idempotencyArgs(memberID, scope, idem)).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("look up idempotency key: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return priorResponse(idem, rows[0].RequestHash, rows[0].Response)
}

// storeIdempotent saves v as the response to key, inside the transaction
// that made it.
func storeIdempotent(tx *gorm.DB, memberID, scope string, idem *app.IdempotencyKey, v any) error {
	if idem == nil {
		return nil
	}
	args, err := idempotentResponse(memberID, scope, idem, v)
	if err != nil {
		return err
	}
	return tx.Exec(idempotencySaveSQL, args).Error
}

func idempotentResponse(memberID, scope string, idem *app.IdempotencyKey, v any) (map[string]any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode idempotent response: %w", err)
	}
	args := idempotencyArgs(memberID, scope, idem)
	args["response"] = string(raw)
	return args, nil
}
