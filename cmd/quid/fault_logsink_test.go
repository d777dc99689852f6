package main

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/config"
)

// TestBlockedLogOutputLeavesNoMemberLocked runs the service with the logger
// `quid serve` builds writing to a pipe nobody reads, once the pipe is full.
// Joins and a cancellation then wait on a member's row lock long enough for
// gorm's logger to report a slow statement inside their transactions: they
// must still finish, and no Quid session may stay idle in a transaction
// holding member locks. A session stuck inside a transaction anyway (here:
// one the test leaves open on the service's own pool) is ended by
// PostgreSQL after QUID_DB_IDLE_IN_TRANSACTION_TIMEOUT, so the member it
// locked can join again; another member's join succeeds throughout.
func TestBlockedLogOutputLeavesNoMemberLocked(t *testing.T) {
	t.Parallel()
	const idle = time.Second
	cfg := testConfig(t, func(c *config.Config) {
		c.LogLevel = slog.LevelInfo // the access log writes a line per request, as in production
		c.DBIdleInTransactionTimeout = idle
		c.DBStatementTimeout = 5 * time.Second
	})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	drained := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, r); close(drained) }()
	log, _ := serviceLogger(w, cfg.LogLevel, cfg.LogFormat)
	svc, err := build(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.close)
	// Runs before svc.close: a writer still blocked on the pipe gets EPIPE.
	t.Cleanup(func() { r.Close(); w.Close() })
	a := &api{t: t, svc: svc, cfg: cfg}

	// Quid's sessions carry the configured settings.
	for name, want := range map[string]string{"statement_timeout": "5s", "idle_in_transaction_session_timeout": "1s"} {
		var got string
		if err := svc.db.Raw("SHOW " + name).Scan(&got).Error; err != nil || got != want {
			t.Fatalf("Quid's session has %s = %q (%v), want %q", name, got, err, want)
		}
	}

	f := a.fixtures()
	first := a.publishContract(f, contractBody(f))
	second := a.publishContract(f, contractBody(f))
	third := a.publishContract(f, contractBody(f))
	members := map[string]string{}
	for _, m := range []string{"alice", "bob", "carol"} {
		members[m] = token(t, app.RoleMember, m)
		a.enrol(members[m])
	}
	aliceExchange := a.joinContract(members["alice"], first)["id"].(string)

	// Nobody reads the pipe any more; fill it.
	_ = r.SetReadDeadline(time.Now())
	<-drained
	_ = w.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	chunk := make([]byte, 64<<10)
	filled := 0
	for {
		n, err := w.Write(chunk)
		filled += n
		if err != nil {
			break
		}
	}
	_ = w.SetWriteDeadline(time.Time{})
	if filled == 0 {
		t.Fatal("could not fill the pipe")
	}

	db := openDB(t, cfg.DatabaseURL)
	ctx := context.Background()
	// stuckInTransaction lists Quid sessions idle in a transaction for
	// longer than the timeout, and whether they lock member rows.
	stuckInTransaction := func() []string {
		rows, err := db.QueryContext(ctx, `
SELECT a.pid || ' ' || a.state || ' for ' || round(extract(epoch FROM now() - a.state_change)::numeric, 1) || 's' ||
       CASE WHEN EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.relation = 'members'::regclass) THEN ', locking members' ELSE '' END
FROM pg_stat_activity a
WHERE a.application_name = 'quid' AND a.datname = current_database()
  AND a.state LIKE 'idle in transaction%' AND now() - a.state_change > $1 * interval '1 millisecond'`, (idle + 500*time.Millisecond).Milliseconds())
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			out = append(out, s)
		}
		return out
	}

	// The test holds alice's row lock for longer than gorm's slow-statement
	// threshold (500 ms) while alice cancels and joins: each of those
	// transactions logs a slow statement while it holds her lock.
	holder, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.ExecContext(ctx, `SELECT 1 FROM members WHERE id = 'alice' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	type result struct {
		what   string
		status int
		took   time.Duration
		err    error
	}
	results := make(chan result, 8)
	var wg sync.WaitGroup
	run := func(what string, rq req) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, took, err := a.sendWithin(rq, 8*time.Second)
			results <- result{what, res.Status, took, err}
		}()
	}
	run("alice cancels", req{Method: "DELETE", Path: "/v1/me/exchanges/" + aliceExchange, Token: members["alice"]})
	run("alice joins (Idempotency-Key)", req{Method: "POST", Path: "/v1/me/exchanges", Token: members["alice"],
		Body: map[string]any{"contract_id": second}, Headers: map[string]string{"Idempotency-Key": "blocked-log-1"}})
	run("alice joins", req{Method: "POST", Path: "/v1/me/exchanges", Token: members["alice"], Body: map[string]any{"contract_id": third}})
	time.Sleep(700 * time.Millisecond)
	if err := holder.Commit(); err != nil {
		t.Fatal(err)
	}

	// A Quid session stuck between two statements of a transaction that
	// locked bob: PostgreSQL must end it after the idle timeout.
	// (Through database/sql: the test itself must not log into the pipe.)
	stuck, err := svc.sqlDB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stuck.ExecContext(ctx, `SELECT 1 FROM members WHERE id = 'bob' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	run("carol joins", req{Method: "POST", Path: "/v1/me/exchanges", Token: members["carol"], Body: map[string]any{"contract_id": first}})
	run("bob joins", req{Method: "POST", Path: "/v1/me/exchanges", Token: members["bob"], Body: map[string]any{"contract_id": first}})

	var stuckSeen []string
	deadline := time.Now().Add(2*idle + time.Second)
	for time.Now().Before(deadline) {
		stuckSeen = append(stuckSeen, stuckInTransaction()...)
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	close(results)
	figures := map[string]any{"pipe_filled_bytes": filled}
	for res := range results {
		if res.err != nil {
			t.Errorf("%s with the log output blocked: %v", res.what, res.err)
			continue
		}
		figures[res.what] = map[string]any{"status": res.status, "ms": res.took.Milliseconds()}
		if res.status/100 != 2 {
			t.Errorf("%s with the log output blocked: %d", res.what, res.status)
		}
	}
	if len(stuckSeen) > 0 {
		t.Errorf("Quid sessions stayed idle in a transaction beyond %s: %v", idle, stuckSeen)
	}
	// The stuck transaction's session was ended under it.
	if _, err := stuck.ExecContext(ctx, `SELECT 1`); err == nil {
		t.Error("a Quid session idle in a transaction for twice the timeout was not ended")
	} else if !errors.Is(err, sql.ErrConnDone) {
		figures["stuck_transaction_error"] = err.Error()
	}
	_ = stuck.Rollback()
	figures["idle_in_transaction_timeout_ms"] = idle.Milliseconds()
	verifyNote(t, cfg.DatabaseURL, figures)
	noteFigures(t, "blocked-log-output", figures)
}
