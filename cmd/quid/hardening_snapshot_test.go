package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
)

type ledgerItem struct {
	Kind       string `json:"kind"`
	Points     int64  `json:"points"`
	ExchangeID string `json:"exchange_id"`
}

// sums adds up ledger entries into the balances they make.
func sums(items []ledgerItem) (available, pending, earned int64) {
	for _, e := range items {
		switch e.Kind {
		case "bonus_pending", "bonus_voided":
			pending += e.Points
		case "bonus_vested":
			pending -= e.Points
			available += e.Points
			earned += e.Points
		case "period_credit":
			available += e.Points
			earned += e.Points
		default:
			available += e.Points
		}
	}
	return
}

// Every response that shows totals with their details is read in one
// snapshot: with accrual running in a tight loop (1 s periods), balances
// always equal the sum of the entries shown with them, in the points page
// and in the export (where the exchanges' points also match the ledger).
func TestTotalsAndDetailsComeFromOneSnapshotWhilePointsAccrue(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	body := contractBody(f)
	r := reward(body)
	r["period"], r["points_per_period"], r["vesting"], r["max_periods"] = "PT1S", 25, "PT2S", nil
	id := a.publishContract(f, body)
	const members = 8
	toks := make([]string, members)
	for i := range toks {
		toks[i] = token(t, app.RoleMember, fmt.Sprintf("snap-%d", i))
		a.enrol(toks[i])
		a.joinContract(toks[i], id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // accrual in a tight loop
		defer wg.Done()
		for ctx.Err() == nil {
			_, _ = a.svc.accrual.RunOnce(ctx)
		}
	}()
	get := func(path, tok string) ([]byte, int) {
		hr := httptest.NewRequest("GET", "http://quid.test"+path, nil)
		hr.Header.Set("Authorization", "Bearer "+tok)
		res, err := a.svc.app.Test(hr, -1)
		if err != nil {
			return nil, 0
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return b, res.StatusCode
	}
	var reads, bad atomic.Int64
	var firstBad atomic.Value
	report := func(format string, args ...any) {
		bad.Add(1)
		firstBad.CompareAndSwap(nil, fmt.Sprintf(format, args...))
	}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				tok := toks[(w+i)%members]
				if i%2 == 0 {
					b, status := get("/v1/me/points?limit=100", tok)
					if status != 200 {
						continue
					}
					var p struct {
						Available, Pending int64
						Items              []ledgerItem
						NextCursor         string `json:"next_cursor"`
					}
					if json.Unmarshal(b, &p) != nil || p.NextCursor != "" {
						continue
					}
					reads.Add(1)
					if av, pe, _ := sums(p.Items); av != p.Available || pe != p.Pending {
						report("points: balances %d/%d, entries add up to %d/%d", p.Available, p.Pending, av, pe)
					}
				} else {
					b, status := get("/v1/me/export", tok)
					if status != 200 {
						continue
					}
					var e struct {
						Member struct {
							Balance struct{ Available, Pending int64 }
						}
						Exchanges []struct {
							PointsEarned int64 `json:"points_earned"`
						}
						Ledger []ledgerItem
					}
					if json.Unmarshal(b, &e) != nil {
						continue
					}
					reads.Add(1)
					av, pe, earned := sums(e.Ledger)
					var perExchange int64
					for _, x := range e.Exchanges {
						perExchange += x.PointsEarned
					}
					if av != e.Member.Balance.Available || pe != e.Member.Balance.Pending || earned != perExchange {
						report("export: balance %d/%d, ledger %d/%d, exchanges earned %d, ledger earned %d",
							e.Member.Balance.Available, e.Member.Balance.Pending, av, pe, perExchange, earned)
					}
				}
			}
		}(w)
	}
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Fatalf("%d of %d reads were inconsistent; first: %v", n, reads.Load(), firstBad.Load())
	}
	if reads.Load() < 50 {
		t.Fatalf("only %d reads", reads.Load())
	}
	t.Logf("%d consistent reads", reads.Load())
}
