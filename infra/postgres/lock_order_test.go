package postgres_test

import (
	"context"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// TestWritersHoldTheVersionLockBeforeWaitingForTheMember pins the lock
// order of tx.go for the writers of a member's exchanges that take a
// version's lock — a join and a renewal: while one of them waits for the
// member's row, it already holds the version's lock in shared mode, so a
// retirement (which takes the version exclusively and only then the
// members) waits for it instead of holding the version while the writer
// holds the member. Once the member's row is free, the writer completes.
func TestWritersHoldTheVersionLockBeforeWaitingForTheMember(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	renewable := func() domain.Contract {
		d, err := w.contracts.CreateDraft(ctx, marketer, app.TermsInput{ValueEstimate: &testEstimate, ValueMethod: str("revenue_attributable"), ValueExplanation: str("Revenue per member."), Title: "Renewable", Retention: "P30D",
			Items:    []app.ItemInput{{Category: "location.city", Purpose: "loyalty.personalised_offers", Recipients: []string{w.brand.ID}}},
			Duration: str("PT1H"), Reward: app.RewardInput{JoinBonus: 1}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := w.contracts.Publish(ctx, marketer, d.ID())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	joining, renewing := renewable(), renewable()
	joiner := w.enrol("lock-joiner")
	renewer := w.enrol("lock-renewer")
	onRenewing := w.join(renewer, renewing)
	openRenewalWindow(t, w.db, onRenewing.ID())

	for _, writer := range []struct {
		name     string
		member   app.Principal
		contract domain.Contract
		run      func() error
	}{
		{"join", joiner, joining, func() error {
			_, _, err := w.exchanges.Join(ctx, joiner, joining.ID(), nil)
			return err
		}},
		{"renewal", renewer, renewing, func() error {
			_, err := w.exchanges.Renew(ctx, renewer, onRenewing.ID())
			return err
		}},
	} {
		t.Run(writer.name, func(t *testing.T) {
			sqlDB, err := w.db.DB()
			if err != nil {
				t.Fatal(err)
			}
			holder, err := sqlDB.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer holder.Close()
			if _, err := holder.ExecContext(ctx, `BEGIN`); err != nil {
				t.Fatal(err)
			}
			if _, err := holder.ExecContext(ctx, `SELECT 1 FROM members WHERE id = $1 FOR UPDATE`, writer.member.Subject); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- writer.run() }()
			waiting := false
			for deadline := time.Now().Add(10 * time.Second); !waiting && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				var n int
				if err := w.db.Raw(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
					AND wait_event_type = 'Lock' AND state = 'active'`).Scan(&n).Error; err != nil {
					t.Fatal(err)
				}
				waiting = n > 0
			}
			if !waiting {
				t.Fatalf("the %s never waited for the member's row", writer.name)
			}
			// A retirement's first step, tried without waiting: it must not
			// get the version while the writer waits for the member.
			var got bool
			if err := w.db.Transaction(func(tx *gorm.DB) error {
				return tx.Raw(`SELECT pg_try_advisory_xact_lock(hashtextextended(CAST(? AS text), 0))`, writer.contract.ID()).Scan(&got).Error
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := holder.ExecContext(ctx, `ROLLBACK`); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("the %s failed once the member's row was free: %v", writer.name, err)
			}
			if got {
				t.Fatalf("the %s waited for the member's row without the version's lock: a retirement can take the version "+
					"and then wait for the member the %s holds (deadlock)", writer.name, writer.name)
			}
		})
	}
}
