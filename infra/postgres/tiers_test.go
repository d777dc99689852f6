package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"gorm.io/gorm"

	"github.com/quidpro/quid/infra/postgres"
	"github.com/quidpro/quid/infra/postgres/pgtest"
)

// The tier job's statement announces a change once even without the
// advisory lock that keeps replicas from running it side by side: a
// second run that started from the same snapshot waits for the first's
// rows, re-reads them and finds the tier already stored (ON CONFLICT ...
// WHERE), so it stores and announces nothing.
func TestATierChangeRacingItselfIsStoredAndAnnouncedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.NewDatabase(t), slog.New(slog.NewTextHandler(io.Discard, nil)), postgres.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	for _, stmt := range []string{
		`INSERT INTO tier_schedules VALUES (1, 'P12M', '[{"name": "Bronze", "threshold": 5, "benefits": ""}]', now())`,
		`INSERT INTO members (id, created_at, updated_at) SELECT 'm' || i, now(), now() FROM generate_series(1, 50) i`,
		`INSERT INTO ledger_entries (member_id, kind, points, created_at) SELECT 'm' || i, 'bonus_vested', 10, now() FROM generate_series(1, 50) i`,
	} {
		if err := db.Exec(stmt).Error; err != nil {
			t.Fatal(err)
		}
	}
	type counts struct{ Changes, Events int64 }
	first := db.Begin()
	var a counts
	if err := first.Raw(postgres.AnnounceTierChangesSQL).Scan(&a).Error; err != nil {
		t.Fatal(err)
	}
	second := make(chan counts, 1)
	go func() {
		var b counts
		err := db.Transaction(func(tx *gorm.DB) error { return tx.Raw(postgres.AnnounceTierChangesSQL).Scan(&b).Error })
		if err != nil {
			t.Error(err)
		}
		second <- b
	}()
	// Let the second run reach the first's uncommitted rows, then commit.
	if err := db.Exec(`SELECT pg_sleep(0.5)`).Error; err != nil {
		t.Fatal(err)
	}
	if err := first.Commit().Error; err != nil {
		t.Fatal(err)
	}
	b := <-second
	if a.Changes != 50 || b.Changes != 0 {
		t.Fatalf("first run stored %d changes, the racing one %d; want 50 and 0", a.Changes, b.Changes)
	}
	var stored int64
	if err := db.Raw(`SELECT count(*) FROM member_tiers WHERE tier = 'Bronze'`).Scan(&stored).Error; err != nil || stored != 50 {
		t.Fatalf("%d members stored at Bronze (%v), want 50", stored, err)
	}
}
