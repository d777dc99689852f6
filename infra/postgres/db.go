// Package postgres implements Quid's storage ports on PostgreSQL through gorm,
// applies the embedded migrations and translates driver errors into domain
// errors.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	pgdriver "gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/quidpro/quid/migrations"
)

// Open connects to PostgreSQL with a pool sized for a small service.
func Open(ctx context.Context, url string, log *slog.Logger) (*gorm.DB, error) {
	// Interval arithmetic on timestamptz (P1M, P1D) depends on the session
	// time zone; UTC makes SQL agree with the domain's Duration.AddTo.
	if !strings.Contains(url, "timezone=") {
		if strings.Contains(url, "?") {
			url += "&timezone=UTC"
		} else {
			url += "?timezone=UTC"
		}
	}
	db, err := gorm.Open(pgdriver.Open(url), &gorm.Config{
		TranslateError:         true,
		SkipDefaultTransaction: true,
		PrepareStmt:            false,
		// Parameters are never logged (they can hold personal data): the
		// gorm logger renders statements with placeholders only.
		Logger: sqlLogger{log: log.With("component", "sql"), slow: 500 * time.Millisecond},
	})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(16)
	sqlDB.SetMaxIdleConns(16)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		return nil, fmt.Errorf("reach database: %w", err)
	}
	return db, nil
}

func provider(db *sql.DB, opts ...goose.ProviderOption) (*goose.Provider, error) {
	sub, err := fs.Sub(migrations.FS, ".")
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectPostgres, db, sub, opts...)
}

// Migrate applies every pending migration. It holds goose's session-level
// advisory lock meanwhile, so replicas starting at once apply each migration
// exactly once: the others wait (up to five minutes) and then find nothing
// pending.
func Migrate(ctx context.Context, db *sql.DB) ([]*goose.MigrationResult, error) {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	p, err := provider(db, goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return res, fmt.Errorf("apply migrations: %w", err)
	}
	return res, nil
}

// MigrationStatus reports each known migration and whether it is applied.
func MigrationStatus(ctx context.Context, db *sql.DB) ([]*goose.MigrationStatus, error) {
	p, err := provider(db)
	if err != nil {
		return nil, err
	}
	return p.Status(ctx)
}

// ErrMigrationsPending means the schema is behind the binary.
var ErrMigrationsPending = errors.New("migrations pending")

// Ready checks that the database answers and that no migration is pending.
func Ready(ctx context.Context, db *sql.DB) error {
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	p, err := provider(db)
	if err != nil {
		return err
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("migration state: %w", err)
	}
	if pending {
		return ErrMigrationsPending
	}
	return nil
}

// Exclusively runs fn while holding a session-level advisory lock named name
// in this database, so work every replica does at start (first signing key,
// demo data) happens once: a replica that waited finds it done. fn may use
// other pooled connections; the lock lives on a connection of its own.
func Exclusively(ctx context.Context, db *sql.DB, name string, fn func(context.Context) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(hashtextextended($1, 0))", "quid:"+name); err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	defer func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtextextended($1, 0))", "quid:"+name)
	}()
	return fn(ctx)
}
