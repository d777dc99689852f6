package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
)

// The test binary doubles as the quid binary for tests that need a real
// process to kill: run with QUID_TEST_RUN_AS_QUID=1, it is `quid` with the
// arguments it was given.
func init() {
	if os.Getenv("QUID_TEST_RUN_AS_QUID") == "1" {
		main()
		os.Exit(0)
	}
}

// quidProcess is `quid args...` as a separate process on databaseURL.
func quidProcess(databaseURL string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "QUID_TEST_RUN_AS_QUID=1", "DATABASE_URL="+databaseURL, "QUID_JWT_SECRET="+testSecret,
		"QUID_MIN_REWARD_PERIOD=1s", "QUID_LOG_LEVEL=warn", "QUID_LOG_FORMAT=text")
	return cmd
}

// TestAccrualKilledMidRunCreditsEveryPeriodOnce kills `quid accrue --once`
// with SIGKILL while it works through many small batches of due members,
// runs it again to completion, and checks that every due period of every
// exchange was credited exactly once and every due bonus vested once.
func TestAccrualKilledMidRunCreditsEveryPeriodOnce(t *testing.T) {
	t.Parallel()
	const (
		members, families  = 160, 3
		periods, perPeriod = 5, 7
		bonus              = 100
	)
	a := newAPI(t)
	f := a.fixtures()
	body := contractBody(f)
	body["reward"] = map[string]any{"join_bonus": bonus, "vesting": "PT1S", "points_per_period": perPeriod, "period": "PT1S", "max_periods": periods}
	var contracts []string
	for range families {
		contracts = append(contracts, a.publishContract(f, body))
	}
	// Members enrol and join every family, four at a time.
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				tok := token(t, app.RoleMember, fmt.Sprintf("accrue-%03d", i))
				rs := []response{a.send(req{Method: "PUT", Path: "/v1/me", Token: tok, Body: map[string]any{"attributes": joinableProfile()}})}
				for _, c := range contracts {
					rs = append(rs, a.send(req{Method: "POST", Path: "/v1/me/exchanges", Token: tok, Body: map[string]any{"contract_id": c}}))
				}
				for _, r := range rs {
					if r.Status/100 != 2 {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%d %s", r.Status, r.Body))
						mu.Unlock()
					}
				}
			}
		}()
	}
	for i := range members {
		work <- i
	}
	close(work)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("setting up: %d requests failed, first: %s", len(failures), failures[0])
	}
	exchanges := members * families
	total := exchanges * periods

	db := openDB(t, a.cfg.DatabaseURL)
	ctx := context.Background()
	count := func(q string) int {
		var n int
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Wait until every period of every exchange is due (by the database's clock).
	var wait float64
	if err := db.QueryRowContext(ctx, `SELECT extract(epoch FROM max(joined_at) + $1 * interval '1 second' - now()) FROM exchanges`, periods).Scan(&wait); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Duration(wait*float64(time.Second)) + 200*time.Millisecond)

	credits := `SELECT count(*) FROM ledger_entries WHERE kind = 'period_credit'`
	first := quidProcess(a.cfg.DatabaseURL, "accrue", "--once", "--batch", "4")
	var firstOut strings.Builder
	first.Stdout, first.Stderr = &firstOut, &firstOut
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- first.Wait() }()
	started := time.Now()
	seen := 0
	for seen == 0 {
		select {
		case err := <-exited:
			t.Fatalf("accrue finished (%v) before any credit was seen; output:\n%s", err, firstOut.String())
		default:
		}
		if time.Since(started) > 30*time.Second {
			t.Fatal("accrue wrote no credit within 30 s")
		}
		seen = count(credits)
		if seen == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-exited
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("accrue was not killed mid-run (%v); output:\n%s", err, firstOut.String())
	}
	// The killed process's sessions end (rolling back what was in flight)
	// before the next run, which would otherwise skip the members they lock.
	deadline := time.Now().Add(10 * time.Second)
	for count(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'quid' AND pid <> pg_backend_pid()`) > countServiceSessions(a) {
		if time.Now().After(deadline) {
			t.Fatal("the killed accrue's sessions did not end")
		}
		time.Sleep(20 * time.Millisecond)
	}
	atKill := count(credits)
	if atKill <= 0 || atKill >= total {
		t.Fatalf("the kill did not land mid-run: %d of %d credits written", atKill, total)
	}

	second := quidProcess(a.cfg.DatabaseURL, "accrue", "--once", "--batch", "4")
	out, err := second.CombinedOutput()
	if err != nil {
		t.Fatalf("second accrue: %v\n%s", err, out)
	}

	// Every exchange: exactly `periods` credits, one per period
	// [joined + k s, joined + (k+1) s), k = 0…periods-1, and its bonus vested once.
	var wrong []string
	rows, err := db.QueryContext(ctx, `
SELECT e.id::text, e.credited_periods, e.bonus_state,
       count(l.id) FILTER (WHERE l.kind = 'period_credit'),
       count(DISTINCT l.period_start) FILTER (WHERE l.kind = 'period_credit'),
       coalesce(sum(l.points) FILTER (WHERE l.kind = 'period_credit'), 0),
       count(l.id) FILTER (WHERE l.kind = 'bonus_vested'),
       bool_and(l.kind <> 'period_credit' OR (l.period_end - l.period_start = interval '1 second'
           AND extract(epoch FROM l.period_start - e.joined_at) IN (0, 1, 2, 3, 4)))
FROM exchanges e LEFT JOIN ledger_entries l ON l.exchange_id = e.id
GROUP BY e.id`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var id, state string
		var credited, entries, distinct, vested int
		var points int64
		var aligned *bool
		if err := rows.Scan(&id, &credited, &state, &entries, &distinct, &points, &vested, &aligned); err != nil {
			t.Fatal(err)
		}
		n++
		if credited != periods || entries != periods || distinct != periods || points != periods*perPeriod ||
			vested != 1 || state != "vested" || aligned == nil || !*aligned {
			wrong = append(wrong, fmt.Sprintf("%s: credited_periods=%d entries=%d distinct=%d points=%d vested=%d state=%s aligned=%v",
				id, credited, entries, distinct, points, vested, state, aligned))
		}
	}
	rows.Close()
	if n != exchanges {
		t.Fatalf("%d exchanges, want %d", n, exchanges)
	}
	if len(wrong) > 0 {
		t.Fatalf("%d of %d exchanges were not credited exactly once per period, first: %s", len(wrong), exchanges, wrong[0])
	}
	if got := count(credits); got != total {
		t.Fatalf("%d period credits, want %d", got, total)
	}
	figures := map[string]any{"members": members, "exchanges": exchanges, "credits_expected": total,
		"credits_at_kill": atKill, "second_run": strings.TrimSpace(string(out)), "first_run_ms_before_kill": time.Since(started).Milliseconds()}
	verifyNote(t, a.cfg.DatabaseURL, figures)
	noteFigures(t, "accrue-sigkill", figures)
}

// countServiceSessions is how many sessions the in-process service holds.
func countServiceSessions(a *api) int {
	return a.svc.sqlDB().Stats().OpenConnections
}
