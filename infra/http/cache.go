package http

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
)

// etagOf is the strong ETag of the exact bytes of a body.
func etagOf(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// send sends the response with its strong ETag, answering a matching
// If-None-Match with 304. A cached response carries its ETag, computed
// once when it was rendered, not hashed again on every hit.
func (r cachedResponse) send(c *fiber.Ctx) error {
	etag := r.etag
	if etag == "" {
		etag = etagOf(r.body)
	}
	c.Set(fiber.HeaderETag, etag)
	c.Set(fiber.HeaderCacheControl, r.cacheControl)
	c.Set(fiber.HeaderVary, "Accept")
	if matchesETag(c.Get(fiber.HeaderIfNoneMatch), etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, r.contentType)
	return c.Send(r.body)
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
	// Invalidation: with a change feed (watched), every change to what the
	// responses are made of, on any replica, empties the cache (gen counts
	// them, so a render that raced a change is not stored), and while the
	// feed is down nothing is served from the cache. The TTL is the fallback.
	gen     atomic.Uint64
	watched atomic.Bool
	live    atomic.Bool
}

// changed is the change feed's callback: something changed (or the feed
// came back), or with live false, the feed is down.
func (rc *responseCache) changed(live bool) {
	rc.watched.Store(true)
	rc.clear()
	rc.live.Store(live)
}

// clear drops everything, including renders in flight (by the generation).
func (rc *responseCache) clear() {
	rc.mu.Lock()
	rc.gen.Add(1)
	rc.m = map[string]cachedResponse{}
	rc.mu.Unlock()
}

// dropOnWrite empties the cache when a successful write to contracts or
// recipients returns, so the replica that took the write reads it back at
// once, before the change notification (which tells every other replica)
// arrives.
func (rc *responseCache) dropOnWrite(c *fiber.Ctx) error {
	err := c.Next()
	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
		return err
	}
	if err == nil && c.Response().StatusCode() < 400 {
		rc.clear()
	}
	return err
}

// usable reports whether the cache may serve and store.
func (rc *responseCache) usable() bool { return !rc.watched.Load() || rc.live.Load() }

type cachedResponse struct {
	body         []byte
	contentType  string
	cacheControl string
	etag         string // of body; empty until computed
	expires      time.Time
}

func newResponseCache(ttl time.Duration) *responseCache {
	return &responseCache{ttl: ttl, m: map[string]cachedResponse{}}
}

func (rc *responseCache) get(key string) (cachedResponse, bool) {
	if !rc.usable() {
		return cachedResponse{}, false
	}
	rc.mu.RLock()
	r, ok := rc.m[key]
	rc.mu.RUnlock()
	if !ok || time.Now().After(r.expires) {
		return cachedResponse{}, false
	}
	return r, true
}

// put stores r unless the cache was cleared since gen was read: a render
// that raced a change must not outlive it. The check is under the lock that
// clear takes, so no clear can fall between the check and the store.
func (rc *responseCache) put(key string, r cachedResponse, gen uint64) {
	r.expires = time.Now().Add(rc.ttl)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.gen.Load() != gen {
		return
	}
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
	rc.m[key] = r
}

// serve answers from the cache, or renders, stores and sends.
func (rc *responseCache) serve(c *fiber.Ctx, key string, render func() (cachedResponse, bool, error)) error {
	if r, ok := rc.get(key); ok {
		return r.send(c)
	}
	gen := rc.gen.Load()
	r, cacheable, err := render()
	if err != nil {
		return err
	}
	r.etag = etagOf(r.body)
	if cacheable && rc.usable() {
		rc.put(key, r, gen)
	}
	return r.send(c)
}
