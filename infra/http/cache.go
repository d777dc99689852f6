package http

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// sendBytesCached sends body with a strong ETag computed from the exact
// bytes, answering a matching If-None-Match with 304.
func sendBytesCached(c *fiber.Ctx, body []byte, contentType, cacheControl string) error {
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	c.Set(fiber.HeaderETag, etag)
	c.Set(fiber.HeaderCacheControl, cacheControl)
	c.Set(fiber.HeaderVary, "Accept")
	if matchesETag(c.Get(fiber.HeaderIfNoneMatch), etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, contentType)
	return c.Send(body)
}

func matchesETag(header, etag string) bool {
	for _, candidate := range strings.Split(header, ",") {
		candidate = strings.TrimSpace(candidate)
		if candidate == etag || candidate == "*" || strings.TrimPrefix(candidate, "W/") == etag {
			return true
		}
	}
	return false
}

// responseCache keeps rendered public responses for a short time, so hot
// offers and statements are served without touching the database. The TTL
// bounds how stale a status change (a retirement) can be, on every replica.
type responseCache struct {
	ttl time.Duration
	mu  sync.RWMutex
	m   map[string]cachedResponse
}

type cachedResponse struct {
	body         []byte
	contentType  string
	cacheControl string
	expires      time.Time
}

func newResponseCache(ttl time.Duration) *responseCache {
	return &responseCache{ttl: ttl, m: map[string]cachedResponse{}}
}

func (rc *responseCache) get(key string) (cachedResponse, bool) {
	rc.mu.RLock()
	r, ok := rc.m[key]
	rc.mu.RUnlock()
	if !ok || time.Now().After(r.expires) {
		return cachedResponse{}, false
	}
	return r, true
}

func (rc *responseCache) put(key string, r cachedResponse) {
	r.expires = time.Now().Add(rc.ttl)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.m) >= 10_000 {
		now := time.Now()
		for k, v := range rc.m {
			if now.After(v.expires) {
				delete(rc.m, k)
			}
		}
		if len(rc.m) >= 10_000 {
			rc.m = map[string]cachedResponse{}
		}
	}
	// The key is cloned so the map never holds a view of a request buffer,
	// whatever the framework's string handling.
	rc.m[strings.Clone(key)] = r
}

// serve answers from the cache, or renders, stores and sends.
func (rc *responseCache) serve(c *fiber.Ctx, key string, render func() (cachedResponse, bool, error)) error {
	if r, ok := rc.get(key); ok {
		return sendBytesCached(c, r.body, r.contentType, r.cacheControl)
	}
	r, cacheable, err := render()
	if err != nil {
		return err
	}
	if cacheable {
		rc.put(key, r)
	}
	return sendBytesCached(c, r.body, r.contentType, r.cacheControl)
}
