// Package pgtest gives tests a fresh, migrated PostgreSQL database, cloned from
// a template database so that each clone costs milliseconds, not a migration
// run. It talks to DATABASE_URL, or starts the project's private cluster.
package pgtest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/quidpro/quid/infra/postgres"
	"github.com/quidpro/quid/migrations"
)

var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error
)

// ServerURL returns the URL of a server the tests may create databases on.
func ServerURL(t testing.TB) string {
	t.Helper()
	serverOnce.Do(func() {
		if u := os.Getenv("DATABASE_URL"); u != "" {
			serverURL = u
			return
		}
		// By import path, so it runs from the test's package directory;
		// devdb finds the repository root from there itself.
		cmd := exec.Command("go", "run", "github.com/quidpro/quid/cmd/devdb", "url")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			serverErr = fmt.Errorf("start private PostgreSQL (go run ./cmd/devdb url): %w", err)
			return
		}
		serverURL = strings.TrimSpace(string(out))
	})
	if serverErr != nil {
		t.Fatalf("pgtest: %v", serverErr)
	}
	return serverURL
}

func withDatabase(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + name
	return u.String()
}

func migrationsHash() string {
	h := sha256.New()
	_ = fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(migrations.FS, path)
		h.Write([]byte(path))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:16]
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// ensureTemplate creates the migrated template once per migration set; an
// advisory lock keeps parallel test binaries from building it twice.
func ensureTemplate(ctx context.Context, admin *sql.DB, server string) (string, error) {
	templateOnce.Do(func() {
		name := "quid_template_" + migrationsHash()
		conn, err := admin.Conn(ctx)
		if err != nil {
			templateErr = err
			return
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(727272)"); err != nil {
			templateErr = err
			return
		}
		defer conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock(727272)")
		var exists bool
		if err := conn.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
			templateErr = err
			return
		}
		if !exists {
			building := name + "_building"
			_, _ = conn.ExecContext(ctx, "DROP DATABASE IF EXISTS "+building)
			if _, err := conn.ExecContext(ctx, "CREATE DATABASE "+building); err != nil {
				templateErr = err
				return
			}
			db, err := sql.Open("pgx", withDatabase(server, building))
			if err != nil {
				templateErr = err
				return
			}
			_, err = postgres.Migrate(ctx, db)
			db.Close()
			if err != nil {
				templateErr = err
				return
			}
			if _, err := conn.ExecContext(ctx, "ALTER DATABASE "+building+" RENAME TO "+name); err != nil {
				templateErr = err
				return
			}
			// Templates of older migration sets are of no further use.
			rows, err := conn.QueryContext(ctx, "SELECT datname FROM pg_database WHERE datname LIKE 'quid\\_template\\_%' AND datname <> $1", name)
			if err == nil {
				var stale []string
				for rows.Next() {
					var n string
					if rows.Scan(&n) == nil {
						stale = append(stale, n)
					}
				}
				rows.Close()
				for _, n := range stale {
					_, _ = conn.ExecContext(ctx, "DROP DATABASE IF EXISTS "+n)
				}
			}
		}
		templateName = name
	})
	return templateName, templateErr
}

// NewDatabase creates a fresh migrated database, drops it when the test ends,
// and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	server := ServerURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := sql.Open("pgx", server)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer admin.Close()
	tmpl, err := ensureTemplate(ctx, admin, server)
	if err != nil {
		t.Fatalf("pgtest: build template database: %v", err)
	}
	name := "quid_test_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
	if _, err := admin.ExecContext(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tmpl)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", server)
		if err != nil {
			return
		}
		defer admin.Close()
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	return withDatabase(server, name)
}
