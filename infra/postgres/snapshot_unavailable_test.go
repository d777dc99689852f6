package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/postgres"
	"github.com/quidpro/quid/infra/postgres/pgtest"
)

// A server that ends the session between a snapshot's last read and its
// COMMIT — pg_ctl stop -m fast does that to every session, with SQLSTATE
// 57P01 — leaves the database unavailable, a 503, not an internal error:
// the snapshot's BEGIN and COMMIT do not pass through gorm's translation.
func TestSnapshotEndedByTheServerIsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	db, err := postgres.Open(ctx, url, slog.New(slog.NewTextHandler(io.Discard, nil)), postgres.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	store := postgres.NewStore(db)
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	err = store.ReadSnapshot(ctx, func(ctx context.Context) error {
		if _, err := store.GetMember(ctx, "nobody"); err != nil && errors.Is(err, app.ErrUnavailable) {
			return err
		}
		var pid int
		if err := admin.QueryRowContext(context.Background(), `SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'quid' AND state LIKE 'idle in transaction%'`).Scan(&pid); err != nil {
			return err
		}
		if _, err := admin.ExecContext(context.Background(), `SELECT pg_terminate_backend($1, 5000)`, pid); err != nil {
			return err
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			var alive bool
			if err := admin.QueryRowContext(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)`, pid).Scan(&alive); err != nil || !alive {
				return err
			}
			if time.Now().After(deadline) {
				return errors.New("the snapshot's session did not end")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	if !errors.Is(err, app.ErrUnavailable) {
		t.Fatalf("a snapshot whose session the server ended: %v, want app.ErrUnavailable", err)
	}
}
