package main

import (
	"context"
	"testing"
	"time"

	"github.com/quidpro/quid/infra/config"
)

// A statement cancelled by Quid's own statement_timeout (a member's row held
// by another session longer than QUID_DB_STATEMENT_TIMEOUT) is the
// database being too slow, not a bug: 503 problem+json with Retry-After,
// never 500, and the member's writes work again once the lock is gone.
func TestStatementTimeoutIsServiceUnavailable(t *testing.T) {
	t.Parallel()
	a := newAPI(t, func(c *config.Config) { c.DBStatementTimeout = 300 * time.Millisecond })
	w := a.world()
	db := openDB(t, a.cfg.DatabaseURL)
	ctx := context.Background()
	holder, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.ExecContext(ctx, `SELECT 1 FROM members WHERE id = 'alice' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	writes := []req{
		{Method: "POST", Path: "/v1/me/redemptions", Token: w.f.member, Body: map[string]any{"points": 1, "reference": "coffee"}},
		{Method: "DELETE", Path: "/v1/me/exchanges/" + w.exchange, Token: w.f.member},
	}
	for _, r := range writes {
		res := a.do(r)
		if res.Status != 503 || res.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s while alice's row is held past the statement timeout: %d %s", r.Method, r.Path, res.Status, res.Body)
		}
	}
	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}
	expect(t, a.do(writes[1]), 200)
}
