package main

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/valyala/fasthttp"
)

// measureCatalogue redeems a reward of the catalogue once for each of n
// members (m1…mn, who joined v1), each request with its own
// Idempotency-Key, o.clients at once: every redemption takes the member's
// lock and the reward's (its stock is counted, so all of them queue on
// that one row, the worst case), takes points from the lots FEFO, moves
// stock_left and writes the code. The members are given the points
// first, in raw SQL: one period credit each, which opens a lot.
func (b *bench) measureCatalogue(ctx context.Context, n int) (phase, error) {
	fmt.Fprintf(os.Stderr, "catalogue: %d redemptions of one reward with counted stock, %d clients…\n", n, b.o.clients)
	if _, err := b.pool.Exec(ctx, `WITH one AS (
		SELECT DISTINCT ON (member_id) id, member_id, contract_id, family_id, terms_hash, joined_at FROM exchanges
		WHERE member_id = ANY(ARRAY(SELECT 'm' || g FROM generate_series(1, $1) g)) ORDER BY member_id, joined_at
	), credited AS (
		INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, period_start, period_end, created_at)
		SELECT member_id, 'period_credit', 1000, id, contract_id, family_id, terms_hash, joined_at - interval '2 hours', joined_at - interval '1 hour', now() FROM one
		RETURNING member_id
	)
	UPDATE members m SET available = available + 1000 FROM credited c WHERE m.id = c.member_id`, n); err != nil {
		return phase{}, fmt.Errorf("give points: %w", err)
	}
	var reward struct{ ID string }
	hc := &http.Client{}
	if err := call(hc, "POST", b.base+"/v1/rewards", mint("marketer", "mark"), map[string]any{
		"name": "Bench gift", "description": "One of many.", "cost": 100, "stock": n, "per_member_limit": 1}, &reward); err != nil {
		return phase{}, err
	}
	body := `{"reward_id":"` + reward.ID + `"}`
	p := b.saturate(n, b.o.clients, func(i int) error {
		req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(res)
		req.SetRequestURI(b.base + "/v1/me/redemptions")
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.Set("Authorization", "Bearer "+b.tokens[i])
		req.Header.SetContentType("application/json")
		req.Header.Set("Idempotency-Key", "gift-"+memberID(i))
		req.SetBodyString(body)
		if err := b.fc.Do(req, res); err != nil {
			return err
		}
		if res.StatusCode() != http.StatusCreated {
			return fmt.Errorf("redeem: %d %.300s", res.StatusCode(), res.Body())
		}
		return nil
	})
	var left int
	if err := b.pool.QueryRow(ctx, `SELECT stock_left FROM rewards WHERE id = $1`, reward.ID).Scan(&left); err != nil {
		return p, err
	}
	if int64(left) != int64(n-p.n)+p.errs {
		return p, fmt.Errorf("catalogue: %d left of %d after %d redemptions (%d errors)", left, n, int64(p.n)-p.errs, p.errs)
	}
	return p, nil
}
