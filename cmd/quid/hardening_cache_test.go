package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/infra/config"
)

// Two replicas on one database, each caching public responses for an hour:
// every write on A that changes a cached response (publish, a new version,
// retire, terminate) is seen on B at once — the cache is invalidated on every
// replica, the TTL is only the fallback.
func TestWritesOnOneReplicaInvalidateEveryReplicasCache(t *testing.T) {
	t.Parallel()
	hour := func(c *config.Config) { c.PublicCacheTTL = time.Hour }
	a := newAPI(t, hour)
	svcB, err := build(context.Background(), a.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svcB.close)
	b := &api{t: t, svc: svcB, cfg: a.cfg}
	a.svc.runWorkers(t)
	svcB.runWorkers(t)
	f := a.fixtures()

	offers := func(api *api) string {
		return string(expect(t, api.do(req{Method: "GET", Path: "/v1/offers?limit=100"}), 200).Body)
	}
	status := func(api *api, id string) any {
		return expect(t, api.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/transparency"}), 200).json(t)["status"]
	}
	// seenOnB reads B until cond holds; a change must show within the
	// notification delay (milliseconds; the bound allows for a loaded test
	// machine), far below the hour-long TTL.
	var worst time.Duration
	seenOnB := func(what string, cond func() bool) {
		t.Helper()
		start, tries := time.Now(), 1
		for ; !cond(); tries++ {
			if time.Since(start) > 5*time.Second { // the TTL is an hour
				t.Fatalf("replica B still serves the old %s", what)
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Logf("%s: %v, %d reads", what, time.Since(start), tries)
		if d := time.Since(start); d > worst {
			worst = d
		}
	}
	// Until both listeners are up the caches only use the TTL: wait for B to
	// see a first publication (it proves B's listener is connected).
	warm := a.publishContract(f, contractBody(f))
	seenOnB("offers", func() bool { return strings.Contains(offers(b), warm) })
	worst = 0

	for round := 0; round < 3; round++ {
		offers(b) // cached on B now
		v1 := a.publishContract(f, contractBody(f))
		seenOnB("offers after publish", func() bool { return strings.Contains(offers(b), v1) })
		if status(b, v1) != "published" {
			t.Fatal("v1 is not published on B")
		}

		// A new version replaces the old one in the offers and retires it.
		d := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v1 + "/versions", Token: f.marketer}), 201).json(t)["id"].(string)
		expect(t, a.do(req{Method: "PATCH", Path: "/v1/contracts/" + d, Token: f.marketer, Body: map[string]any{"title": "Coffee club v2"}}), 200)
		offers(b)
		expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + d + "/publish", Token: f.marketer}), 200)
		seenOnB("offers after a new version", func() bool { o := offers(b); return strings.Contains(o, d) && !strings.Contains(o, v1) })
		seenOnB("statement of the replaced version", func() bool { return status(b, v1) == "retired" })

		// Retiring (and terminating) closes it on B too.
		status(b, d)
		body := `{}`
		if round%2 == 1 {
			body = `{"terminate_active": true}`
		}
		expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + d + "/retire", Token: f.marketer, Body: body}), 200)
		seenOnB("offers after retire", func() bool { return !strings.Contains(offers(b), d) })
		seenOnB("statement after retire", func() bool { return status(b, d) == "retired" })
	}
	t.Logf("B saw every write on A within %v (read time included)", worst)

	// The listeners' connections are cut: B must not serve what it cached
	// before, neither while it reconnects nor after.
	offers(b)
	var cut int
	if err := a.svc.sqlDB().QueryRow(`SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN %'`).Scan(&cut); err != nil || cut != 2 {
		t.Fatalf("cut %d listener connections, want 2 (%v)", cut, err)
	}
	v := a.publishContract(f, contractBody(f))
	seenOnB("offers while the listener reconnects", func() bool { return strings.Contains(offers(b), v) })
	time.Sleep(300 * time.Millisecond) // reconnected by now
	offers(b)
	v = a.publishContract(f, contractBody(f))
	seenOnB("offers after the listener reconnected", func() bool { return strings.Contains(offers(b), v) })
}

// The replica that takes a write reads it back on the very next request,
// without waiting for the change notification (no listener runs here, and
// the TTL is an hour).
func TestAWriteIsReadBackAtOnceOnTheSameReplica(t *testing.T) {
	t.Parallel()
	a := newAPI(t, func(c *config.Config) { c.PublicCacheTTL = time.Hour })
	f := a.fixtures()
	offers := func() string {
		return string(expect(t, a.do(req{Method: "GET", Path: "/v1/offers?limit=100"}), 200).Body)
	}
	status := func(id string) any {
		return expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/transparency"}), 200).json(t)["status"]
	}
	offers()
	v1 := a.publishContract(f, contractBody(f))
	if !strings.Contains(offers(), v1) || status(v1) != "published" {
		t.Fatal("a published contract is not in the offers at once")
	}
	d := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v1 + "/versions", Token: f.marketer}), 201).json(t)["id"].(string)
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + d + "/publish", Token: f.marketer}), 200)
	if o := offers(); !strings.Contains(o, d) || strings.Contains(o, v1) || status(v1) != "retired" {
		t.Fatal("a new version did not replace the old one at once")
	}
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + d + "/retire", Token: f.marketer, Body: `{"terminate_active": true}`}), 200)
	if strings.Contains(offers(), d) || status(d) != "retired" {
		t.Fatal("a retired contract is still offered")
	}
}
