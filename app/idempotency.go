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

// CoverGPC makes the request fingerprint cover the Global Privacy Control
// signal as well as the body. The signal is a header, but it changes what
// a join does (409 gpc-conflict without affirmation) and what the consent
// event records, so the same key sent again with the signal switched is
// another request: it is refused as a reused key rather than answered with
// a stored outcome the signal would have changed. Requests without the
// signal keep the body-only fingerprint, so keys stored before this rule
// still match their retries.
func (k *IdempotencyKey) CoverGPC(body []byte) {
	h := sha256.New()
	h.Write(body)
	h.Write([]byte("\x00Sec-GPC: 1"))
	k.RequestHash = hex.EncodeToString(h.Sum(nil))
}

// IdempotencyTTL is how long a stored response answers a retried request
// with the same Idempotency-Key; after it the key may be used afresh.
const IdempotencyTTL = 24 * time.Hour

// IdempotencyExpiry deletes stored idempotent responses older than ttl. It
// is safe to run on several replicas at once.
type IdempotencyExpiry interface {
	ExpireIdempotency(ctx context.Context) (int64, error)
}
