package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/quidpro/quid/domain"
)

// IdempotencyKey lets a client retry a request safely: the same key with the
// same body replays the first result, with another body it is refused.
type IdempotencyKey struct {
	Key         string
	RequestHash string
}

// NewIdempotencyKey validates a client key and fingerprints the request.
// sent tells whether the header was there at all: a header sent empty (or
// only white space, which HTTP strips) is an invalid key, not an absent one.
// The key is 1 to 200 characters without surrounding spaces (openapi.yaml
// IdempotencyKey); anything else is a validation error at
// /headers/Idempotency-Key, and no key gives nil.
func NewIdempotencyKey(key string, sent bool, body []byte) (*IdempotencyKey, error) {
	if !sent {
		return nil, nil
	}
	if key == "" || utf8.RuneCountInString(key) > 200 || strings.TrimSpace(key) != key {
		return nil, domain.Invalid("/headers/Idempotency-Key", "must be 1 to 200 characters without surrounding spaces")
	}
	sum := sha256.Sum256(body)
	return &IdempotencyKey{Key: key, RequestHash: hex.EncodeToString(sum[:])}, nil
}

// IdempotencyTTL is how long a stored response answers a retried request
// with the same Idempotency-Key; after it the key may be used afresh.
const IdempotencyTTL = 24 * time.Hour

// IdempotencyExpiry deletes stored idempotent responses older than ttl. It
// is safe to run on several replicas at once.
type IdempotencyExpiry interface {
	ExpireIdempotency(ctx context.Context) (int64, error)
}
