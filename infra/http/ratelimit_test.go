package http

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// A flood of distinct keys (addresses or subjects) within one window cannot
// grow the limiter's memory past its cap, and an abuser who keeps writing
// through the flood stays remembered, so stays refused; once the window has
// passed without writes, idle keys are forgotten.
func TestRateLimitMemoryIsBoundedUnderAFloodOfDistinctKeys(t *testing.T) {
	t.Parallel()
	const maxKeys, flood = 1000, 100_000
	window := 10 * time.Second
	p := newPolicy("per-address", Quota{Requests: 2, Window: window}, maxKeys, newRefusedCounter())
	now := time.Now()
	take := func(key string, at time.Time) bool {
		return p.buckets.get(key, at, func() *rate.Limiter { return rate.NewLimiter(p.limit, p.quota.Requests) }).AllowN(at, 1)
	}
	take("abuser", now)
	take("abuser", now)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range flood {
		at := now.Add(time.Duration(i) * time.Microsecond) // all within one window
		if !take("key-"+strconv.Itoa(i), at) {
			t.Fatalf("a new key's first write was refused")
		}
		if i%100 == 0 && take("abuser", at) {
			t.Fatalf("the abuser was admitted after %d distinct keys: its spent bucket was forgotten", i)
		}
		if n := p.buckets.len(); n > maxKeys {
			t.Fatalf("%d keys remembered after %d distinct ones, cap %d", n, i+1, maxKeys)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	// 1,000 buckets are well under 1 MiB; 100,000 would be over 10.
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 4<<20 {
		t.Errorf("heap grew by %d bytes for %d distinct keys", grew, flood)
	}

	later := now.Add(time.Duration(flood)*time.Microsecond + window)
	if !take("newcomer", later) {
		t.Fatal("a new key was refused")
	}
	if n := p.buckets.len(); n != 1 {
		t.Fatalf("%d keys remembered after a whole idle window, want only the newcomer", n)
	}
}
