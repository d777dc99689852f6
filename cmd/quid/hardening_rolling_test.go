package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quidpro/quid/infra/config"
)

// A running release keeps answering while the next release's additive
// migrations are applied (kind 7): with traffic over every route, every
// table gains a column, an index is built and a table is created; no request
// may answer 5xx ("cached plan must not change result type" was a 500).
func TestAdditiveMigrationsUnderTrafficCauseNoErrors(t *testing.T) {
	t.Parallel()
	// Workers run often, so their statements meet the migration too; the
	// log is kept to find their failures.
	cfg := testConfig(t, func(c *config.Config) {
		c.AccrualInterval = 100 * time.Millisecond
		c.WebhookInterval = 100 * time.Millisecond
	})
	var logs lockedBuffer
	svc, err := build(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.close)
	a := &api{t: t, svc: svc, cfg: cfg}
	w := a.world()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.svc.serve(ctx, ln, a.cfg) }()
	defer func() {
		if ctx.Err() == nil {
			stop()
			<-served
		}
	}()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 30 * time.Second}

	var mu sync.Mutex
	var failures []string
	var calls atomic.Int64
	toured := map[string]bool{}
	call := func(c routeCall) response {
		mu.Lock()
		toured[c.route] = true
		mu.Unlock()
		var body io.Reader
		if raw := c.r.raw(); raw != nil {
			body = bytes.NewReader(raw)
		}
		hr, _ := http.NewRequest(c.r.Method, base+c.r.Path, body)
		if body != nil {
			hr.Header.Set("Content-Type", "application/json")
		}
		if c.r.Token != "" {
			hr.Header.Set("Authorization", "Bearer "+c.r.Token)
		}
		for k, v := range c.r.Headers {
			hr.Header.Set(k, v) // the web pages' cookie and form type
		}
		res, err := client.Do(hr)
		calls.Add(1)
		if err != nil {
			mu.Lock()
			failures = append(failures, fmt.Sprintf("%s: %v", c.route, err))
			mu.Unlock()
			return response{}
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 500 {
			mu.Lock()
			failures = append(failures, fmt.Sprintf("%s: %d %s", c.route, res.StatusCode, b))
			mu.Unlock()
		}
		return response{Status: res.StatusCode, Header: res.Header, Body: b}
	}

	// Traffic: every route, from several clients, before, during and after
	// the migration, so statements cached on pooled connections before the
	// change are used after it.
	migrated := make(chan struct{})
	var traffic sync.WaitGroup
	for g := range 4 {
		traffic.Add(1)
		go func() {
			defer traffic.Done()
			after := 0
			for i := 0; after < 2; i++ {
				select {
				case <-migrated:
					after++
				default:
				}
				tour(w, fmt.Sprintf("rolling-%d-%d", g, i), call)
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond) // warm every connection's statement cache

	db, err := sql.Open("pgx", a.cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT table_name FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	if len(tables) < 10 {
		t.Fatalf("only %d tables: %v", len(tables), tables)
	}
	for _, table := range tables {
		ddl := []string{
			fmt.Sprintf(`ALTER TABLE %q ADD COLUMN next_release_note text`, table),
			fmt.Sprintf(`ALTER TABLE %q ADD COLUMN next_release_flag boolean NOT NULL DEFAULT false`, table),
			fmt.Sprintf(`CREATE INDEX ON %q (next_release_flag)`, table),
		}
		for _, stmt := range ddl {
			if _, err := db.Exec(stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		time.Sleep(50 * time.Millisecond) // let traffic use the changed table
	}
	if _, err := db.Exec(`CREATE TABLE next_release_things (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text)`); err != nil {
		t.Fatal(err)
	}
	close(migrated)
	traffic.Wait()

	logged := logs.String() // before shutdown, which cancels work in flight
	stop()
	<-served
	t.Logf("%d requests, %d tables altered", calls.Load(), len(tables))
	checkTourCoversEveryRoute(t, a, toured)
	for _, line := range strings.Split(logged, "\n") {
		if strings.Contains(line, "cached plan") || strings.Contains(line, "level=ERROR") {
			t.Errorf("logged while additive migrations ran: %s", line)
		}
	}
	if len(failures) > 0 {
		if len(failures) > 20 {
			failures = failures[:20]
		}
		t.Fatalf("requests failed while additive migrations ran:\n%s", joinLines(failures))
	}
}

// lockedBuffer is a log destination safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func joinLines(s []string) string {
	var b bytes.Buffer
	for _, l := range s {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}
