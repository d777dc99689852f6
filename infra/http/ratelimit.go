package http

import (
	lru "container/list"
	"hash/maphash"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Quota is at most Requests within any Window, refilled evenly (a token
// bucket of Requests tokens gaining Requests/Window per second). Requests 0
// means no limit.
type Quota struct {
	Requests int
	Window   time.Duration
}

// RateLimits bounds writes (POST, PUT, PATCH, DELETE) to the API, in this
// process only: with several replicas, a client may make up to the quota on
// each. Reads are never limited.
type RateLimits struct {
	// Principal is per verified token: its subject and role together.
	Principal Quota
	// Address is per client address (an IPv6 address counts by its /64),
	// before the token is read, so it also bounds writes with bad tokens.
	Address Quota
	// TrustedProxies are the peers whose X-Forwarded-For is believed; the
	// client is the rightmost address in it that is not a trusted proxy.
	// Without them the TCP peer is the client, whatever headers say.
	TrustedProxies []netip.Prefix
	// MaxKeys bounds how many principals, and how many addresses, are
	// remembered (50,000 each when 0); past it the least recently seen is
	// forgotten, so it starts again with a full quota.
	MaxKeys int
}

// Policy names, as the RateLimit-Policy and RateLimit headers and the
// quid_http_rate_limited_total metric give them.
const (
	policyPrincipal = "per-principal"
	policyAddress   = "per-address"
)

// rateLimiter holds one policy per kind of key; a nil policy is off.
type rateLimiter struct {
	principal, address *policy
	trusted            []netip.Prefix
}

func newRateLimiter(cfg RateLimits, reg *prometheus.Registry) *rateLimiter {
	refused := newRefusedCounter()
	reg.MustRegister(refused)
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 50_000
	}
	l := &rateLimiter{trusted: cfg.TrustedProxies}
	l.principal = newPolicy(policyPrincipal, cfg.Principal, cfg.MaxKeys, refused)
	l.address = newPolicy(policyAddress, cfg.Address, cfg.MaxKeys, refused)
	return l
}

func newRefusedCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quid_http_rate_limited_total",
		Help: "Writes refused with 429 because a rate-limit policy's quota was used up, by policy.",
	}, []string{"policy"})
}

func isWrite(method string) bool {
	switch method {
	case fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch, fiber.MethodDelete:
		return true
	}
	return false
}

// byAddress is the app-wide middleware that counts every write to a route
// that exists against the client's address, before the token, the query or
// the body are read: a flood of writes from one address costs no more than
// this lookup, whatever tokens it carries.
func (l *rateLimiter) byAddress(routes *routeIndex) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if l.address == nil || !isWrite(c.Method()) || routes.match(c.Method(), c.Path()) == "unmatched" {
			return c.Next()
		}
		if err := l.address.admit(c, l.clientAddress(c).String()); err != nil {
			return err
		}
		return c.Next()
	}
}

// byPrincipal counts a write against the principal authenticate has just
// verified (subject and role: the same subject in another role is another
// principal). It runs before the handler, so a refused write writes nothing.
func (l *rateLimiter) byPrincipal(c *fiber.Ctx) error {
	if l.principal == nil || !isWrite(c.Method()) {
		return nil
	}
	p := principal(c)
	return l.principal.admit(c, string(p.Role)+"\x00"+p.Subject)
}

// clientAddress is the TCP peer, unless the peer is a trusted proxy: then
// X-Forwarded-For is read from the right (each proxy appends the address it
// received from) and the first address that is not a trusted proxy is the
// client. Entries left of it were written by the client and are ignored, so
// a client cannot choose its key. IPv6 addresses count by their /64, the
// block one host is usually given.
func (l *rateLimiter) clientAddress(c *fiber.Ctx) netip.Addr {
	client, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	client = client.Unmap()
	if l.trusts(client) {
		var hops []string
		for _, h := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
			hops = append(hops, strings.Split(string(h), ",")...)
		}
		for i := len(hops) - 1; i >= 0; i-- {
			hop, ok := parseHop(hops[i])
			if !ok {
				break // a trusted proxy wrote what is not an address: keep the proxy
			}
			client = hop
			if !l.trusts(hop) {
				break
			}
		}
	}
	if client.Is6() {
		client = netip.PrefixFrom(client, 64).Masked().Addr()
	}
	return client
}

func (l *rateLimiter) trusts(a netip.Addr) bool {
	for _, p := range l.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop reads one X-Forwarded-For entry: an address, optionally with a
// port ("192.0.2.1:4711", "[2001:db8::1]:4711").
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// policy is one quota applied per key, with the token buckets of
// golang.org/x/time/rate.
type policy struct {
	name    string
	quota   Quota
	limit   rate.Limit
	header  string // the RateLimit-Policy field value
	refused prometheus.Counter
	buckets *bucketSet
}

func newPolicy(name string, q Quota, maxKeys int, refused *prometheus.CounterVec) *policy {
	counter := refused.WithLabelValues(name)
	if q.Requests <= 0 || q.Window <= 0 {
		return nil
	}
	return &policy{
		name: name, quota: q, refused: counter,
		limit:   rate.Limit(float64(q.Requests) / q.Window.Seconds()),
		header:  strconv.Quote(name) + ";q=" + strconv.Itoa(q.Requests) + ";w=" + strconv.Itoa(windowSeconds(q.Window)),
		buckets: newBucketSet(maxKeys, q.Window),
	}
}

func windowSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// admit takes one write from key's bucket, or answers 429 with Retry-After
// and the RateLimit-Policy and RateLimit fields of
// draft-ietf-httpapi-ratelimit-headers (-11). No partition key (pk) is sent:
// it would echo an address or a member id.
func (p *policy) admit(c *fiber.Ctx, key string) error {
	now := time.Now()
	lim := p.buckets.get(key, now, func() *rate.Limiter { return rate.NewLimiter(p.limit, p.quota.Requests) })
	if lim.AllowN(now, 1) {
		return nil
	}
	p.refused.Inc()
	// The next token arrives when the bucket has refilled to one.
	wait := (1 - lim.TokensAt(now)) / float64(p.limit)
	seconds := strconv.Itoa(max(1, int(math.Ceil(wait))))
	c.Set(fiber.HeaderRetryAfter, seconds)
	c.Set("RateLimit-Policy", p.header)
	c.Set("RateLimit", strconv.Quote(p.name)+";r=0;t="+seconds)
	who := "this token"
	if p.name == policyAddress {
		who = "this client address"
	}
	return &httpError{status: fiber.StatusTooManyRequests, code: "rate-limited",
		detail: "too many writes from " + who + " (policy " + p.name + ": " + strconv.Itoa(p.quota.Requests) +
			" per " + strconv.Itoa(windowSeconds(p.quota.Window)) + " s); retry after " + seconds + " s"}
}

// bucketSet keeps one limiter per key, most recently used first, in bounded
// memory: a bucket idle for a whole window is full again, so it is dropped
// (a new one would answer the same), and past max keys the least recently
// used is dropped even if not yet full. Keys are stored as 64-bit seeded
// hashes, so a long subject costs no more than a short one.
type bucketSet struct {
	mu    sync.Mutex
	max   int
	idle  time.Duration
	seed  maphash.Seed
	byKey map[uint64]*lru.Element
	order *lru.List // of *bucket, front = most recently used
}

type bucket struct {
	key  uint64
	seen time.Time
	lim  *rate.Limiter
}

func newBucketSet(max int, idle time.Duration) *bucketSet {
	return &bucketSet{max: max, idle: idle, seed: maphash.MakeSeed(), byKey: map[uint64]*lru.Element{}, order: lru.New()}
}

func (s *bucketSet) get(key string, now time.Time, create func() *rate.Limiter) *rate.Limiter {
	h := maphash.String(s.seed, key)
	s.mu.Lock()
	defer s.mu.Unlock()
	for e := s.order.Back(); e != nil && now.Sub(e.Value.(*bucket).seen) >= s.idle; e = s.order.Back() {
		s.drop(e)
	}
	if e, ok := s.byKey[h]; ok {
		b := e.Value.(*bucket)
		b.seen = now
		s.order.MoveToFront(e)
		return b.lim
	}
	if len(s.byKey) >= s.max {
		s.drop(s.order.Back())
	}
	b := &bucket{key: h, seen: now, lim: create()}
	s.byKey[h] = s.order.PushFront(b)
	return b.lim
}

func (s *bucketSet) drop(e *lru.Element) {
	s.order.Remove(e)
	delete(s.byKey, e.Value.(*bucket).key)
}

func (s *bucketSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byKey)
}

// prefixStrings gives prefixes in the form fiber's TrustedProxies reads.
func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}
