package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/quidpro/quid/domain"
)

// A join and the removal of the attribute it shares, sent at once, never
// both succeed: the join reads the profile under the member's row lock and
// the removal checks the active exchanges under the same lock, so there is
// never an active exchange sharing data the profile no longer holds
// (DESIGN rule 9).
func TestRemovalAndJoinOfTheSameAttributeNeverBothSucceed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	c := w.publish(offer{bonus: 10})
	joins, removals := 0, 0
	for i := range 40 {
		p := w.enrol(fmt.Sprintf("racer%02d", i))
		var joinErr, removeErr error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _, _, joinErr = w.exchanges.Join(ctx, p, c.ID(), nil) }()
		go func() {
			defer wg.Done()
			_, removeErr = w.members.Enrol(ctx, p, map[string]any{"location.city": nil})
		}()
		wg.Wait()
		switch {
		case joinErr == nil && removeErr == nil:
			t.Fatalf("%s: both the join and the removal of location.city succeeded", p.Subject)
		case joinErr == nil:
			joins++
			if !domain.IsKind(removeErr, domain.KindConflict) {
				t.Fatalf("%s: removal after the join: %v, want a conflict", p.Subject, removeErr)
			}
		case removeErr == nil:
			removals++
			if !domain.IsKind(joinErr, domain.KindInvalid) {
				t.Fatalf("%s: join after the removal: %v, want invalid", p.Subject, joinErr)
			}
		default:
			t.Fatalf("%s: both failed: join %v, removal %v", p.Subject, joinErr, removeErr)
		}
		m, err := w.members.Get(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, held := m.Attributes["location.city"]; held != (joinErr == nil) {
			t.Fatalf("%s: city held %v after join error %v", p.Subject, held, joinErr)
		}
	}
	t.Logf("%d joins won, %d removals won", joins, removals)
}
