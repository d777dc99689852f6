package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/config"
)

// privateCluster is a PostgreSQL cluster of the test's own, made by devdb
// (QUID_DEVDB_DIR), so the test can really stop it without touching the
// cluster the other tests share. It returns the cluster's URL and a way to
// run devdb commands on it ("stop"; "url" starts it again on its port).
func privateCluster(t *testing.T) (string, func(command string)) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "devdb")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/quidpro/quid/cmd/devdb").CombinedOutput(); err != nil {
		t.Fatalf("build devdb: %v\n%s", err, out)
	}
	devdb := func(command string) string {
		cmd := exec.Command(bin, command)
		cmd.Env = append(os.Environ(), "QUID_DEVDB_DIR="+filepath.Join(dir, "cluster"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("devdb %s: %v\n%s", command, err, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	url := devdb("url")
	t.Cleanup(func() { devdb("destroy") })
	return url, func(command string) { devdb(command) }
}

// call is one request of the load and what came back.
type call struct {
	what       string
	start, end time.Time
	status     int // 0: no answer within the bound
	retryAfter string
	problem    bool
}

// TestPostgresStoppedUnderLoadFailsFastAndLosesNoJoin stops the service's
// PostgreSQL server (pg_ctl stop -m fast, then start on the same port) for
// four seconds while clients keep joining and reading, retrying failed
// joins with the same Idempotency-Key. While it is down every request
// fails fast with 503 problem+json and Retry-After and /readyz is 503; the
// service recovers without a restart; afterwards every join a client saw
// acknowledged exists, none is duplicated, and the ledger verifies.
func TestPostgresStoppedUnderLoadFailsFastAndLosesNoJoin(t *testing.T) {
	t.Parallel()
	const (
		downFor = 4 * time.Second
		fast    = 2500 * time.Millisecond // the bound on a failing request
		workers = 4
	)
	dbURL, devdb := privateCluster(t)
	a := newAPI(t, func(c *config.Config) { c.DatabaseURL = dbURL })
	f := a.fixtures()
	var contracts []string
	for range 3 {
		contracts = append(contracts, a.publishContract(f, contractBody(f)))
	}

	var (
		mu        sync.Mutex
		calls     []call
		acked     = map[string]string{}   // exchange id → member, for every 2xx join
		byKey     = map[string][]string{} // Idempotency-Key → exchange ids of its 2xx answers
		landed    = map[string]bool{}     // member|contract whose join was answered or found to exist
		conflicts int                     // unkeyed joins retried after a 503 that found the first had landed
		retried   int                     // joins acknowledged after at least one 503
		replays   int                     // keyed retries answered from the stored response (the 503'd attempt had committed)
	)
	send := func(what string, r req) response {
		start := time.Now()
		res, _, err := a.sendWithin(r, 10*time.Second)
		c := call{what: what, start: start, end: time.Now(), status: res.Status}
		if err == nil {
			c.retryAfter = res.Header.Get("Retry-After")
			c.problem = res.Header.Get("Content-Type") == "application/problem+json"
		}
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
		return res
	}
	stop := make(chan struct{})
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stopped(); i++ {
				member := fmt.Sprintf("load-%d-%03d", w, i)
				tok := token(t, app.RoleMember, member)
				for r := send("enrol", req{Method: "PUT", Path: "/v1/me", Token: tok, Body: map[string]any{"attributes": joinableProfile()}}); r.Status/100 != 2; {
					time.Sleep(50 * time.Millisecond)
					r = send("enrol", req{Method: "PUT", Path: "/v1/me", Token: tok, Body: map[string]any{"attributes": joinableProfile()}})
				}
				for c, contract := range contracts {
					key := ""
					if c < 2 { // the third join carries no key
						key = fmt.Sprintf("%s-%d", member, c)
					}
					r := req{Method: "POST", Path: "/v1/me/exchanges", Token: tok, Body: map[string]any{"contract_id": contract}}
					if key != "" {
						r.Headers = map[string]string{"Idempotency-Key": key}
					}
					for attempt := 0; ; attempt++ {
						res := send("join", r)
						if res.Status/100 == 2 {
							id, _ := jsonField(res.Body, "id")
							mu.Lock()
							acked[id] = member
							if attempt > 0 {
								retried++
							}
							if res.Header.Get("Idempotent-Replayed") == "true" {
								replays++
							}
							landed[member+"|"+contract] = true
							if key != "" {
								byKey[key] = append(byKey[key], id)
							}
							mu.Unlock()
							break
						}
						if res.Status == 409 && key == "" && attempt > 0 {
							mu.Lock()
							conflicts++
							landed[member+"|"+contract] = true
							mu.Unlock()
							break
						}
						if res.Status != 503 && res.Status != 0 {
							t.Errorf("join answered %d: %s", res.Status, res.Body)
							break
						}
						time.Sleep(50 * time.Millisecond)
					}
					if c%2 == 0 {
						send("read", req{Method: "GET", Path: "/v1/me/exchanges", Token: tok})
					} else {
						send("read", req{Method: "GET", Path: "/v1/offers"})
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // readiness, as a load balancer polls it
		defer wg.Done()
		for !stopped() {
			send("readyz", req{Method: "GET", Path: "/readyz"})
			time.Sleep(100 * time.Millisecond)
		}
	}()

	time.Sleep(time.Second)
	devdb("stop") // pg_ctl stop -m fast: sessions are ended, the server is gone
	downFrom := time.Now()
	time.Sleep(downFor)
	downUntil := time.Now()
	devdb("url") // starts it again on the same port
	upAt := time.Now()
	var recovered time.Time
	for recovered.IsZero() {
		if time.Since(upAt) > 15*time.Second {
			close(stop)
			wg.Wait()
			t.Fatal("no join succeeded within 15 s of PostgreSQL coming back")
		}
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		for _, c := range calls {
			if c.what == "join" && c.status/100 == 2 && c.start.After(upAt) && (recovered.IsZero() || c.end.Before(recovered)) {
				recovered = c.end
			}
		}
		mu.Unlock()
	}
	time.Sleep(time.Second) // steady again
	close(stop)
	wg.Wait()

	// While the server was down: every request that ran entirely within
	// the outage was a 503 problem+json with Retry-After, answered fast.
	var during []time.Duration
	readyDown, readyUpAfter, total := 0, false, len(calls)
	for _, c := range calls {
		if c.status >= 500 && c.status != 503 || c.status == 0 {
			t.Errorf("%s at %s: status %d (0: no answer within 10 s)", c.what, c.start.Sub(downFrom), c.status)
		}
		if c.start.After(downFrom) && c.end.Before(downUntil) {
			during = append(during, c.end.Sub(c.start))
			if c.status != 503 || (c.what != "readyz" && (c.retryAfter == "" || !c.problem)) {
				t.Errorf("%s during the outage: %d Retry-After=%q problem+json=%v", c.what, c.status, c.retryAfter, c.problem)
			}
			if c.what == "readyz" {
				readyDown++
			}
		}
		if c.what == "readyz" && c.start.After(recovered) && c.status == 200 {
			readyUpAfter = true
		}
	}
	if len(during) < 10 {
		t.Fatalf("only %d requests ran during the outage", len(during))
	}
	sort.Slice(during, func(i, j int) bool { return during[i] < during[j] })
	if slowest := during[len(during)-1]; slowest > fast {
		t.Errorf("the slowest request during the outage took %s, want under %s", slowest, fast)
	}
	if readyDown == 0 || !readyUpAfter {
		t.Errorf("/readyz: %d answers of 503 during the outage, 200 after recovery: %v", readyDown, readyUpAfter)
	}

	// Every acknowledged join exists, for its member; no retried join was
	// duplicated.
	db := openDB(t, dbURL)
	rows, err := db.QueryContext(context.Background(), `SELECT id::text, member_id, contract_id::text FROM exchanges WHERE member_id LIKE 'load-%'`)
	if err != nil {
		t.Fatal(err)
	}
	stored, pairs := map[string]string{}, map[string]int{}
	for rows.Next() {
		var id, member, contract string
		if err := rows.Scan(&id, &member, &contract); err != nil {
			t.Fatal(err)
		}
		stored[id] = member
		pairs[member+"|"+contract]++
	}
	rows.Close()
	for id, member := range acked {
		if stored[id] != member {
			t.Errorf("join %s of %s was acknowledged but is not stored", id, member)
		}
	}
	for pair, n := range pairs {
		if n != 1 {
			t.Errorf("%s has %d exchanges, want 1", pair, n)
		}
	}
	for pair := range landed {
		if pairs[pair] != 1 {
			t.Errorf("%s: an acknowledged join is not stored", pair)
		}
	}
	for key, ids := range byKey {
		for _, id := range ids[1:] {
			if id != ids[0] {
				t.Errorf("Idempotency-Key %s answered two exchanges: %v", key, ids)
			}
		}
	}
	n503 := 0
	for _, c := range calls {
		if c.status == 503 {
			n503++
		}
	}
	figures := map[string]any{"requests": total, "requests_during_outage": len(during), "answers_503": n503,
		"outage_latency_p50_ms": during[len(during)/2].Milliseconds(), "outage_latency_max_ms": during[len(during)-1].Milliseconds(),
		"readyz_503_during_outage": readyDown, "recovery_ms_after_start": recovered.Sub(upAt).Milliseconds(),
		"joins_acknowledged": len(acked), "exchanges_stored": len(stored), "unkeyed_retries_found_landed": conflicts,
		"joins_acknowledged_after_retry": retried, "keyed_retries_replayed": replays,
		"down_ms": downUntil.Sub(downFrom).Milliseconds()}
	verifyNote(t, dbURL, figures)
	noteFigures(t, "postgres-stopped", figures)
}
