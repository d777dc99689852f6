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

func provider(db *sql.DB) (*goose.Provider, error) {
	sub, err := fs.Sub(migrations.FS, ".")
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectPostgres, db, sub)
}

// Migrate applies every pending migration.
func Migrate(ctx context.Context, db *sql.DB) ([]*goose.MigrationResult, error) {
	p, err := provider(db)
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
