package main

import (
	"math/bits"
	"testing"

	"github.com/google/uuid"
)

// TestRequestIDsAreRandomNotSequential draws request ids from both places
// that make them (the middleware, and the error handler for requests
// refused before it ran) and fails when one could be guessed from
// another: a repeat, a constant or slowly moving part (a counter, a clock,
// a host id), or two consecutive ids a few bits apart. A random UUID
// (v4; or v7's 74 random bits) passes; a sequence or a v1 UUID does not.
func TestRequestIDsAreRandomNotSequential(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	// Each source is judged on its own, so one cannot hide behind the other.
	for _, source := range []struct{ name, method string }{
		{"the middleware", "GET"},
		{"the error handler (a request refused before the middleware)", "BREW"},
	} {
		const n = 400
		var ids []uuid.UUID
		seen := map[string]bool{}
		for range n {
			res := a.send(req{Method: source.method, Path: "/healthz"})
			id := res.Header.Get("X-Request-ID")
			if seen[id] {
				t.Fatalf("%s handed out request id %q twice", source.name, id)
			}
			seen[id] = true
			u, err := uuid.Parse(id)
			if err != nil || len(id) != 36 {
				t.Fatalf("%s: request id %q (status %d) is not a UUID", source.name, id, res.Status)
			}
			ids = append(ids, u)
		}
		checkRandomIDs(t, source.name, ids)
	}
}

// checkRandomIDs fails unless the ids, in the order issued, have at least
// 72 bit positions that vary like coin flips (a counter, a timestamp or a
// host id leaves most positions constant) and no two consecutive ids are a
// few bits apart.
func checkRandomIDs(t *testing.T, source string, ids []uuid.UUID) {
	t.Helper()
	n := len(ids)
	balanced := 0
	for bit := range 128 {
		ones := 0
		for _, u := range ids {
			ones += int(u[bit/8]>>(7-bit%8)) & 1
		}
		if ones > n*2/5 && ones < n*3/5 {
			balanced++
		}
	}
	if balanced < 72 {
		t.Errorf("%s: only %d of 128 bit positions vary like coin flips across %d ids; want at least 72 random bits", source, balanced, n)
	}
	for i := 1; i < n; i++ {
		d := 0
		for j := range ids[i] {
			d += bits.OnesCount8(ids[i][j] ^ ids[i-1][j])
		}
		if d < 12 {
			t.Errorf("%s: ids %s and %s, issued one after the other, differ in only %d bits", source, ids[i-1], ids[i], d)
			return
		}
	}
}
