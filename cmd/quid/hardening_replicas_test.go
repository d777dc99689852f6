package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quidpro/quid/infra/postgres/pgtest"
)

// emptyDatabase creates a database with no schema at all, as a first
// deployment finds it, and drops it when the test ends.
func emptyDatabase(t *testing.T) string {
	t.Helper()
	server := pgtest.ServerURL(t)
	admin, err := sql.Open("pgx", server)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := "quid_fresh_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", server)
		if err == nil {
			_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			admin.Close()
		}
	})
	u, _ := url.Parse(server)
	u.Path = "/" + name
	return u.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Replicas started at the same moment on a fresh database (kind 8): every
// `quid serve --demo` and `quid migrate up` succeeds, the schema is applied
// once, every replica publishes the same JWKS, and there is one demo contract.
func TestReplicasStartingTogetherOnAFreshDatabase(t *testing.T) {
	t.Parallel()
	const rounds, serves, migrates = 4, 3, 2
	for round := range rounds {
		dbURL := emptyDatabase(t)
		env := func(addr string) func(string) string {
			m := map[string]string{
				"DATABASE_URL": dbURL, "QUID_ADDR": addr, "QUID_JWT_SECRET": testSecret,
				"QUID_MIN_REWARD_PERIOD": "1s", "QUID_ACCRUAL_INTERVAL": "1h", "QUID_LOG_LEVEL": "error",
				"QUID_SHUTDOWN_TIMEOUT": "2s",
			}
			return func(k string) string { return m[k] }
		}
		ctx, stop := context.WithCancel(context.Background())
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, serves+migrates)
		addrs := make([]string, serves)
		served := make([]chan error, serves)
		for i := range serves {
			addrs[i] = freeAddr(t)
			served[i] = make(chan error, 1)
			go func() {
				<-start
				served[i] <- serveCmd(ctx, []string{"--demo"}, env(addrs[i]), io.Discard, io.Discard)
			}()
		}
		for range migrates {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				var out strings.Builder
				if err := migrateCmd(ctx, []string{"up"}, env(""), &out, io.Discard); err != nil {
					errs <- fmt.Errorf("migrate up: %w", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
		jwks := make([]string, serves)
		for i, addr := range addrs {
			deadline := time.Now().Add(60 * time.Second)
			for jwks[i] == "" {
				select {
				case err := <-served[i]:
					stop()
					t.Fatalf("round %d: serve %d exited: %v", round, i, err)
				default:
				}
				if res, err := http.Get("http://" + addr + "/.well-known/jwks.json"); err == nil {
					b, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if res.StatusCode == 200 {
						jwks[i] = string(b)
					}
				}
				if time.Now().After(deadline) {
					stop()
					t.Fatalf("round %d: serve %d never answered", round, i)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if jwks[i] != jwks[0] {
				t.Errorf("round %d: replica %d publishes %s, replica 0 %s", round, i, jwks[i], jwks[0])
			}
		}
		stop()
		for i := range serves {
			if err := <-served[i]; err != nil {
				t.Errorf("round %d: serve %d: %v", round, i, err)
			}
		}

		db, err := sql.Open("pgx", dbURL)
		if err != nil {
			t.Fatal(err)
		}
		var contracts, recipients, keys, dupVersions, versions int
		for q, dst := range map[string]*int{
			"SELECT count(*) FROM contracts":    &contracts,
			"SELECT count(*) FROM recipients":   &recipients,
			"SELECT count(*) FROM signing_keys": &keys,
			"SELECT count(*) FROM (SELECT version_id FROM goose_db_version WHERE version_id > 0 GROUP BY version_id HAVING count(*) > 1) d": &dupVersions,
			"SELECT count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0":                                                  &versions,
		} {
			if err := db.QueryRow(q).Scan(dst); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		db.Close()
		if contracts != 1 || recipients != 2 || keys != 1 || dupVersions != 0 || versions == 0 {
			t.Errorf("round %d: %d demo contracts, %d recipients, %d signing keys, %d migrations applied twice, %d applied; want 1, 2, 1, 0, >0",
				round, contracts, recipients, keys, dupVersions, versions)
		}
	}
}
