package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
	"github.com/quidpro/quid/infra/postgres"
)

// trace is everything a join leaves for one member, without ids or times:
// exchanges, ledger entries, consent events, balances, webhook events.
func (w *world) trace(memberID string) string {
	w.t.Helper()
	var out string
	if err := w.db.Raw(`SELECT coalesce(string_agg(x, ' ; ' ORDER BY x), '') FROM (
    SELECT 'exchange v' || c.version || ' ' || e.status || ' bonus ' || e.bonus_state || ' ' || e.bonus_points
    FROM exchanges e JOIN contracts c ON c.id = e.contract_id WHERE e.member_id = @m
    UNION ALL SELECT 'entry ' || kind || ' ' || points FROM ledger_entries WHERE member_id = @m
    UNION ALL SELECT 'event ' || kind || ' by ' || actor FROM consent_events WHERE member_id = @m
    UNION ALL SELECT 'balance ' || available || '/' || pending FROM members WHERE id = @m
    UNION ALL SELECT 'webhook ' || event_type FROM webhook_outbox WHERE payload->'data'->>'member_id' = @m
    UNION ALL SELECT 'deletion owed' FROM deletion_acks WHERE member_id = @m) t(x)`,
		map[string]any{"m": memberID}).Scan(&out).Error; err != nil {
		w.t.Fatal(err)
	}
	return out
}

// keyed returns a fresh Idempotency-Key for a join of c, as the app sends.
func keyed(c domain.Contract) *app.IdempotencyKey {
	k, err := app.NewIdempotencyKey(fmt.Sprintf("join-%d", keySeq.Add(1)), true, []byte(`{"contract_id":"`+c.ID()+`"}`))
	if err != nil {
		panic(err)
	}
	return k
}

var keySeq atomic.Int64

// One implementation serves every join: whether the request carries an
// Idempotency-Key, whether the member re-consents or rejoins after consent
// lapsed, whether this replica has the terms cached — the member ends with
// exactly the same exchanges, ledger, consent log, balances and events.
func TestEveryKindOfJoinWritesTheSameWithOrWithoutAnIdempotencyKey(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	v1 := w.publish(offer{bonus: 100, vesting: "P7D", perPeriod: 5, period: "P1D", duration: "P30D"})
	nextVersion := func(t *testing.T, c domain.Contract) domain.Contract {
		draft, err := w.contracts.NewVersion(ctx, marketer, c.ID())
		if err != nil {
			t.Fatal(err)
		}
		next, err := w.contracts.Publish(ctx, marketer, draft.ID())
		if err != nil {
			t.Fatal(err)
		}
		return next
	}
	lapsing := w.publish(offer{bonus: 40, duration: "P1D"})

	type joiner func(svc *app.Exchanges, p app.Principal, c domain.Contract) (domain.Exchange, bool, error)
	plain := func(svc *app.Exchanges, p app.Principal, c domain.Contract) (domain.Exchange, bool, error) {
		return svc.Join(ctx, p, c.ID(), nil)
	}
	withKey := func(svc *app.Exchanges, p app.Principal, c domain.Contract) (domain.Exchange, bool, error) {
		return svc.Join(ctx, p, c.ID(), keyed(c))
	}
	scenarios := map[string]func(t *testing.T, svc *app.Exchanges, p app.Principal, join joiner){
		"first join": func(t *testing.T, svc *app.Exchanges, p app.Principal, join joiner) {
			mustJoin(t, join, svc, p, v1)
		},
		"re-consent to a newer version": func(t *testing.T, svc *app.Exchanges, p app.Principal, join joiner) {
			own := w.publish(offer{bonus: 100, vesting: "P7D", perPeriod: 5, period: "P1D", duration: "P30D"})
			mustJoin(t, join, svc, p, own)
			mustJoin(t, join, svc, p, nextVersion(t, own))
		},
		"rejoin after consent lapsed, before any worker closed it": func(t *testing.T, svc *app.Exchanges, p app.Principal, join joiner) {
			old := mustJoin(t, join, svc, p, lapsing)
			w.backdate(old.ID(), 2*24*time.Hour)
			mustJoin(t, join, svc, p, lapsing)
		},
		"join on a replica that has nothing cached": func(t *testing.T, _ *app.Exchanges, p app.Principal, join joiner) {
			cold := postgres.NewStore(w.db)
			mustJoin(t, join, app.NewExchanges(cold, cold, cold, plainSigner{}, ids{}), p, v1)
		},
		"a duplicate join is refused": func(t *testing.T, svc *app.Exchanges, p app.Principal, join joiner) {
			mustJoin(t, join, svc, p, v1)
			if _, _, err := join(svc, p, v1); err == nil {
				t.Fatal("joined the same version twice")
			}
		},
	}
	n := 0
	for name, run := range scenarios {
		n++
		a, b := w.enrol(fmt.Sprintf("plain-%d", n)), w.enrol(fmt.Sprintf("keyed-%d", n))
		run(t, w.exchanges, a, plain)
		run(t, w.exchanges, b, withKey)
		if got, want := w.trace(b.Subject), w.trace(a.Subject); got != want {
			t.Errorf("%s: with a key the join wrote\n  %s\nwithout one\n  %s", name, got, want)
		}
	}
}

func mustJoin(t *testing.T, join func(*app.Exchanges, app.Principal, domain.Contract) (domain.Exchange, bool, error),
	svc *app.Exchanges, p app.Principal, c domain.Contract) domain.Exchange {
	t.Helper()
	e, replayed, err := join(svc, p, c)
	if err != nil || replayed {
		t.Fatalf("join: %v (replayed %v)", err, replayed)
	}
	return e
}

// A replay answers the first join and writes nothing, also when the
// request is retried while the first is still running, on any replica.
func TestRetriedKeyedJoinsMakeOneExchangeAndReplayIt(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.publish(offer{bonus: 10})
	p := w.enrol("alice")
	key := keyed(c)
	const n = 10
	var wg sync.WaitGroup
	type result struct {
		ex       domain.Exchange
		replayed bool
		err      error
	}
	results := make(chan result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc := w.exchanges
			if i%2 == 1 { // another replica, cold
				s := postgres.NewStore(w.db)
				svc = app.NewExchanges(s, s, s, plainSigner{}, ids{})
			}
			ex, replayed, err := svc.Join(context.Background(), p, c.ID(), key)
			results <- result{ex, replayed, err}
		}()
	}
	wg.Wait()
	close(results)
	first, ids := 0, map[string]bool{}
	for r := range results {
		if r.err != nil {
			t.Fatalf("a retried join failed: %v", r.err)
		}
		if !r.replayed {
			first++
		}
		ids[r.ex.ID()] = true
	}
	if first != 1 || len(ids) != 1 {
		t.Fatalf("%d joins were not replays, %d distinct exchanges answered", first, len(ids))
	}
	before := w.trace("alice")
	if _, replayed, err := w.exchanges.Join(context.Background(), p, c.ID(), key); err != nil || !replayed {
		t.Fatalf("late retry: %v, replayed %v", err, replayed)
	}
	if after := w.trace("alice"); after != before {
		t.Fatalf("a replay wrote:\n  %s\nwas\n  %s", after, before)
	}
}
