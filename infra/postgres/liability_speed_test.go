package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
	"github.com/quidpro/quid/infra/postgres"
	"github.com/quidpro/quid/infra/postgres/pgtest"
)

// TestPointsLiabilitySpeedOnABigLedger times the points liability report
// on a ledger of N lots (ten per member, as the expiry bench seeds them),
// half of them expired: for the last day (a report that reads only what
// was written since its start: the expiry entries) and for the last 60 days
// (every entry, the whole ledger). A measurement, not a unit test: it runs
// only when QUID_LIABILITY_BENCH gives N, e.g.
//
//	QUID_LIABILITY_BENCH=1000000 go test ./infra/postgres -run TestPointsLiabilitySpeed -count=1 -v -timeout 30m
func TestPointsLiabilitySpeedOnABigLedger(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("QUID_LIABILITY_BENCH"))
	if n <= 0 {
		t.Skip("set QUID_LIABILITY_BENCH=N (lots) to time the liability report on a big ledger")
	}
	ctx := context.Background()
	u := pgtest.NewDatabase(t)
	start := time.Now()
	if err := seedExpiryBench(ctx, u, n); err != nil {
		t.Fatal(err)
	}
	raw := openSQL(t, u)
	// Half the members' lots expire (the other half are put back in time).
	if _, err := raw.ExecContext(ctx, `UPDATE points_lots l SET expires_at = now() + interval '1 year'
		FROM ledger_entries c WHERE c.id = l.entry_id AND right(c.member_id, 1) IN ('0', '2', '4', '6', '8')`); err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, u, slog.New(slog.NewTextHandler(io.Discard, nil)), postgres.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := db.DB()
	t.Cleanup(func() { sqlDB.Close() })
	store := postgres.NewStore(db)
	if _, err := app.NewAccrual(store, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil))).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, `VACUUM ANALYZE`); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d lots and expired about half of them in %s", n, time.Since(start).Round(time.Millisecond))
	now := time.Now().UTC()
	for _, c := range []struct {
		name string
		from time.Time
	}{{"the last day", now.Add(-24 * time.Hour)}, {"the last 60 days (the whole ledger)", now.Add(-60 * 24 * time.Hour)}} {
		start := time.Now()
		f, err := store.PointsLiability(ctx, domain.ReportPeriod{From: c.from, To: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		var byVintage int64
		for _, m := range f.ByVintage {
			byVintage += m.Points
		}
		if !f.Reconciles() || byVintage != f.Closing.Available {
			t.Errorf("%s: does not reconcile: %+v", c.name, f)
		}
		t.Logf("liability report over %s on %d lots: %s (opening %d, issued %d, expired %d, closing %d)", c.name, n,
			elapsed.Round(time.Millisecond), f.Opening.Total(), f.IssuedTotal(), f.Expired, f.Closing.Total())
	}
}
