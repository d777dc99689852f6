// Command quidbench measures Quid against the bars in DESIGN.md on this
// machine: joins over HTTP (and the same transaction sent straight to
// PostgreSQL), set-based accrual of one period for many exchanges, cached
// reads of offers and transparency statements, and the server's peak memory.
// It starts bin/quid as a separate process on a fresh database and prints
// one table.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/valyala/fasthttp"

	"github.com/quidpro/quid/domain"
	"github.com/quidpro/quid/infra/postgres"
)

const secret = "bench-secret-bench-secret-bench-secret!!"

func main() {
	joins := flag.Int("joins", 20000, "joins to send over HTTP")
	clients := flag.Int("clients", 200, "concurrent HTTP clients")
	accrualN := flag.Int("accrual-exchanges", 1_000_000, "active exchanges for the accrual run")
	readFor := flag.Duration("read-duration", 5*time.Second, "how long to hammer offers and transparency")
	rate := flag.Int("rate", 2000, "joins per second offered when measuring latency")
	flag.Parse()
	if err := run(*joins, *clients, *accrualN, *readFor, *rate); err != nil {
		fmt.Fprintln(os.Stderr, "quidbench:", err)
		os.Exit(1)
	}
}

type row struct{ bar, target, measured, ok string }

func run(joins, clients, accrualN int, readDur time.Duration, rate int) error {
	server := os.Getenv("DATABASE_URL")
	if server == "" {
		return fmt.Errorf("DATABASE_URL is not set (make bench sets it)")
	}
	ctx := context.Background()
	dbURL, drop, err := freshDatabase(ctx, server)
	if err != nil {
		return err
	}
	defer drop()
	port, err := freePort()
	if err != nil {
		return err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	srv := exec.Command(filepath.Join("bin", "quid"), "serve")
	srv.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "QUID_ADDR=127.0.0.1:"+strconv.Itoa(port), "QUID_JWT_SECRET="+secret,
		"QUID_MIN_REWARD_PERIOD=1s", "QUID_ACCRUAL_INTERVAL=24h", "QUID_LOG_LEVEL=error", "QUID_PPROF_ADDR="+os.Getenv("QUID_PPROF_ADDR"),
		// Every join comes from this one address, thousands a second: the
		// address limit is off. The per-principal limit stays at its default
		// (each member joins twice), so joins pay for it as in production.
		"QUID_RATE_LIMIT_ADDRESS=0")
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start bin/quid (run make build): %w", err)
	}
	defer func() { _ = srv.Process.Signal(os.Interrupt); _ = srv.Wait() }()
	if err := waitReady(base); err != nil {
		return err
	}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(16) // as the server's pool
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: clients * 2, MaxIdleConnsPerHost: clients * 2}, Timeout: 30 * time.Second}
	var rows []row

	// Setup: two published contracts and enough enrolled members.
	marketer, admin := mint("marketer", "mark"), mint("admin", "root")
	var recipient struct{ ID string }
	if err := call(client, "POST", base+"/v1/recipients", admin, map[string]any{"name": "Bench Brand", "kind": "first_party", "country": "NO", "privacy_policy_url": "https://bench.example/p"}, &recipient); err != nil {
		return err
	}
	var contracts []string
	for i := 0; i < 2; i++ {
		var c struct{ ID string }
		body := map[string]any{"title": fmt.Sprintf("Bench %d", i), "retention": "P30D",
			"items":  []any{map[string]any{"category": "location.city", "purpose": "loyalty.personalised_offers", "recipients": []string{recipient.ID}}},
			"reward": map[string]any{"join_bonus": 100, "vesting": "P7D", "points_per_period": 10, "period": "PT1H"}}
		if err := call(client, "POST", base+"/v1/contracts", marketer, body, &c); err != nil {
			return err
		}
		if err := call(client, "POST", base+"/v1/contracts/"+c.ID+"/publish", marketer, nil, nil); err != nil {
			return err
		}
		contracts = append(contracts, c.ID)
	}
	pacedN := rate * 5
	members := (joins + pacedN + len(contracts) - 1) / len(contracts)
	if _, err := db.ExecContext(ctx, `INSERT INTO members (id, attributes, created_at, updated_at)
		SELECT 'm' || g, '{"location.city":"Oslo"}', now(), now() FROM generate_series(1, $1) g`, members*2); err != nil {
		return err
	}

	// 1. Joins over HTTP.
	fmt.Fprintf(os.Stderr, "joins: %d over HTTP with %d clients…\n", joins, clients)
	tokens := make([]string, members)
	for i := range tokens {
		tokens[i] = mint("member", fmt.Sprintf("m%d", i+1))
	}
	// Joins go through fasthttp's client: the load generator shares the two
	// cores with the server and PostgreSQL, and net/http's client cost it
	// about twice the CPU per request.
	joiner := &fasthttp.Client{MaxConnsPerHost: clients * 2, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	joinOp := func(i int) error {
		req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(res)
		req.SetRequestURI(base + "/v1/me/exchanges")
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.Set("Authorization", "Bearer "+tokens[i/len(contracts)])
		req.Header.SetContentType("application/json")
		req.SetBodyString(`{"contract_id":"` + contracts[i%len(contracts)] + `"}`)
		if err := joiner.Do(req, res); err != nil {
			return err
		}
		if res.StatusCode() != http.StatusCreated {
			return fmt.Errorf("join: %d %s", res.StatusCode(), res.Body())
		}
		return nil
	}
	cpuBefore := cpuNow(srv.Process.Pid)
	httpRate, sp50, sp99, errs := load(joins, clients, joinOp)
	cpuAfter := cpuNow(srv.Process.Pid)
	fmt.Fprintf(os.Stderr, "joins: %d/s offered for 5 s by %d clients, for latency…\n", rate, clients)
	p50, p99, pacedErrs := paced(pacedN, rate, clients, func(i int) error { return joinOp(joins + i) })
	rows = append(rows,
		row{"join throughput (HTTP, saturated)", "≥ 2000/s", fmt.Sprintf("%.0f/s (%d errors; p99 %.0f ms)", httpRate, errs, ms(sp99)), pass(httpRate >= 2000 && errs == 0)},
		row{fmt.Sprintf("join p99 at %d/s, %d clients", rate, clients), "< 25 ms", fmt.Sprintf("%.1f ms (p50 %.1f ms, %d errors)", ms(p99), ms(p50), pacedErrs), pass(p99 < 25*time.Millisecond && pacedErrs == 0)},
		row{"join CPU per join (saturated run)", "—", cpuAfter.sub(cpuBefore).perOp(joins), "info"})
	_ = sp50

	// 2. The same transaction straight to PostgreSQL, for the ratio.
	fmt.Fprintln(os.Stderr, "joins: the same SQL transaction straight to PostgreSQL…")
	gdb, err := postgres.Open(ctx, dbURL, slog.New(slog.NewTextHandler(io.Discard, nil)), postgres.Settings{})
	if err != nil {
		return err
	}
	loaded := map[string]domain.Contract{}
	for _, id := range contracts {
		c, err := postgres.NewStore(gdb).GetContract(ctx, id)
		if err != nil {
			return err
		}
		loaded[id] = c
	}
	sqlRate, _, _, sqlErrs := load(joins, clients, func(i int) error {
		return joinSQL(ctx, db, fmt.Sprintf("m%d", members+i/len(contracts)+1), loaded[contracts[i%len(contracts)]])
	})
	ratio := sqlRate / httpRate
	rows = append(rows, row{"join: direct SQL vs HTTP", "≤ 2×", fmt.Sprintf("%.0f/s direct (%d errors), ratio %.2f×", sqlRate, sqlErrs, ratio), pass(ratio <= 2)})

	// 3. Cached reads.
	fmt.Fprintln(os.Stderr, "reads: offers and transparency…")
	for _, target := range []struct{ name, path string }{
		{"offers", "/v1/offers"},
		{"transparency", "/v1/contracts/" + contracts[0] + "/transparency"},
	} {
		rate := readLoad(client, base+target.path, 64, readDur)
		rows = append(rows, row{target.name + " reads", "≥ 10000/s", fmt.Sprintf("%.0f/s", rate), pass(rate >= 10000)})
	}
	rss := peakRSS(srv.Process.Pid)
	rows = append(rows, row{"server peak RSS under load", "< 200 MiB", fmt.Sprintf("%.0f MiB", rss), pass(rss < 200)})

	// 4. Accrual of one period for many active exchanges.
	if accrualN > 0 {
		fmt.Fprintf(os.Stderr, "accrual: inserting %d active exchanges…\n", accrualN)
		if err := seedDueExchanges(ctx, db, accrualN); err != nil {
			return err
		}
		start := time.Now()
		cmd := exec.Command(filepath.Join("bin", "quid"), "accrue", "--once")
		cmd.Env = srv.Env
		out, err := cmd.CombinedOutput()
		elapsed := time.Since(start)
		if err != nil {
			return fmt.Errorf("accrue: %v: %s", err, out)
		}
		var credited int
		_ = db.QueryRowContext(ctx, `SELECT count(*) FROM ledger_entries WHERE kind = 'period_credit'`).Scan(&credited)
		rows = append(rows, row{fmt.Sprintf("accrual of one period, %d exchanges", accrualN), "< 60 s",
			fmt.Sprintf("%.1f s (%d credits)", elapsed.Seconds(), credited), pass(elapsed < time.Minute && credited == accrualN)})
	}

	fmt.Printf("\n| %-42s | %-10s | %-44s | %-4s |\n|%s|%s|%s|%s|\n", "bar", "target", "measured", "ok",
		strings.Repeat("-", 44), strings.Repeat("-", 12), strings.Repeat("-", 46), strings.Repeat("-", 6))
	for _, r := range rows {
		fmt.Printf("| %-42s | %-10s | %-44s | %-4s |\n", r.bar, r.target, r.measured, r.ok)
	}
	return nil
}

func pass(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func mint(role, sub string) string {
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "role": role,
		"exp": time.Now().Add(2 * time.Hour).Unix()}).SignedString([]byte(secret))
	return tok
}

func call(c *http.Client, method, url, tok string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, r)
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, url, res.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// load runs n operations over `workers` goroutines and reports the rate and
// latency percentiles.
func load(n, workers int, op func(i int) error) (rate float64, p50, p99 time.Duration, errs int64) {
	lat := make([]time.Duration, n)
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t := time.Now()
				if err := op(i); err != nil {
					if failed.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, "first error:", err)
					}
				}
				lat[i] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return float64(n) / elapsed.Seconds(), lat[n/2], lat[n*99/100], failed.Load()
}

// joinSQL sends the server's join transaction — the very same statements,
// pipelined the same way (BEGIN+lock+read, then write+COMMIT) — straight to
// PostgreSQL through the same driver, without HTTP or use cases.
func joinSQL(ctx context.Context, db *sql.DB, member string, c domain.Contract) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		pc := driverConn.(*stdlib.Conn).Conn()
		args := pgx.NamedArgs{"contract": c.ID(), "member": member}
		read := &pgx.Batch{}
		read.Queue("BEGIN")
		read.Queue(postgres.JoinLockSQL, args)
		var now time.Time
		var status, family string
		var paid bool
		var active *string
		read.Queue(postgres.JoinReadSQL, args).QueryRow(func(r pgx.Row) error {
			return r.Scan(&now, &status, &family, &paid, &active)
		})
		if err := pc.SendBatch(ctx, read).Close(); err != nil {
			_, _ = pc.Exec(ctx, "ROLLBACK")
			return err
		}
		id := uuid.NewString()
		events, err := postgres.JoinedEvents(c, id, member, now, nil, now)
		if err != nil {
			return err
		}
		vests, next := now.Add(7*24*time.Hour), now.Add(time.Hour)
		write := &pgx.Batch{}
		write.Queue(postgres.JoinWriteSQL, pgx.NamedArgs{"id": id, "member": member, "contract": c.ID(),
			"family": c.FamilyID(), "hash": c.TermsHash(), "status": "active", "joined": now, "expires": nil, "bonus_points": 100,
			"bonus_state": "pending", "vests": vests, "next": next, "receipt_id": uuid.NewString(), "receipt": "x",
			"now": now, "bonus": 100, "vest": 0, "events": events})
		write.Queue("COMMIT")
		if err := pc.SendBatch(ctx, write).Close(); err != nil {
			_, _ = pc.Exec(ctx, "ROLLBACK")
			return err
		}
		return nil
	})
}

// paced offers n operations at a fixed rate from `workers` goroutines and
// measures latency from each operation's scheduled start, so time spent
// waiting for a free worker counts (no coordinated omission).
func paced(n, rate, workers int, op func(i int) error) (p50, p99 time.Duration, errs int64) {
	lat := make([]time.Duration, n)
	type job struct {
		i   int
		due time.Time
	}
	jobs := make(chan job, n)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := op(j.i); err != nil && failed.Add(1) == 1 {
					fmt.Fprintln(os.Stderr, "first error:", err)
				}
				lat[j.i] = time.Since(j.due)
			}
		}()
	}
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	for i := 0; i < n; i++ {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		jobs <- job{i, due}
	}
	close(jobs)
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat[n/2], lat[n*99/100], failed.Load()
}

func readLoad(c *http.Client, url string, workers int, d time.Duration) float64 {
	var n atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				res, err := c.Get(url)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode == 200 {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / d.Seconds()
}

// cpuTimes is CPU time used so far by the server, by every PostgreSQL
// process and by this load generator. Unlike throughput, CPU per operation
// barely moves when the machine is busy with something else.
type cpuTimes struct{ server, postgres, loadgen time.Duration }

func cpuNow(serverPID int) cpuTimes {
	t := cpuTimes{server: procCPU(strconv.Itoa(serverPID)), loadgen: procCPU("self")}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		if comm, err := os.ReadFile("/proc/" + d.Name() + "/comm"); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			t.postgres += procCPU(d.Name())
		}
	}
	return t
}

// procCPU is user plus system time of /proc/<pid>, with its waited-for children.
func procCPU(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime is field 14.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} {
		if i < len(f) {
			n, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ is 100 on Linux
}

func (a cpuTimes) sub(b cpuTimes) cpuTimes {
	return cpuTimes{a.server - b.server, a.postgres - b.postgres, a.loadgen - b.loadgen}
}

func (a cpuTimes) perOp(n int) string {
	per := func(d time.Duration) float64 { return ms(d) / float64(n) }
	return fmt.Sprintf("server %.2f + PostgreSQL %.2f + load %.2f ms", per(a.server), per(a.postgres), per(a.loadgen))
}

func peakRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			return float64(kb) / 1024
		}
	}
	return -1
}

// seedDueExchanges inserts n active exchanges, each one period past due, on
// ten contract families so that no member has two in one family.
func seedDueExchanges(ctx context.Context, db *sql.DB, n int) error {
	const families = 10
	_, err := db.ExecContext(ctx, `
INSERT INTO members (id, created_at, updated_at)
SELECT 'a' || g, now(), now() FROM generate_series(1, $1) g`, (n+families-1)/families)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `
WITH fams AS (
    SELECT c.id, c.family_id, c.terms_hash, row_number() OVER (ORDER BY c.id) AS k FROM contracts c WHERE status = 'published' LIMIT 1
)
INSERT INTO contracts (id, family_id, version, status, terms, canonical_terms, terms_hash, join_bonus, points_per_period, reward_period, reward_period_min_seconds, retention, created_at, published_at)
SELECT gen_random_uuid(), gen_random_uuid(), 1, 'published', c.terms, c.canonical_terms, c.terms_hash, 0, 10, interval '1 hour', 3600, c.retention, now(), now()
FROM contracts c, generate_series(1, $1) g WHERE c.id = (SELECT id FROM fams)`, families)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `
WITH fams AS (SELECT id, family_id, terms_hash, row_number() OVER (ORDER BY id) - 1 AS k FROM contracts WHERE points_per_period = 10 AND join_bonus = 0)
INSERT INTO exchanges (id, member_id, contract_id, family_id, terms_hash, status, joined_at, bonus_state, next_period_end, receipt_id, receipt)
SELECT gen_random_uuid(), 'a' || (g / $2 + 1), f.id, f.family_id, f.terms_hash, 'active',
       now() - interval '90 minutes', 'none', now() - interval '30 minutes', gen_random_uuid(), 'bench'
FROM generate_series(0, $1 - 1) g JOIN fams f ON f.k = g % $2`, n, families)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `ANALYZE`)
	return err
}

func freshDatabase(ctx context.Context, server string) (string, func(), error) {
	admin, err := sql.Open("pgx", server)
	if err != nil {
		return "", nil, err
	}
	name := "quid_bench_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return "", nil, err
	}
	u, _ := url.Parse(server)
	u.Path = "/" + name
	return u.String(), func() {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		admin.Close()
	}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitReady(base string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("server not ready after 60 s")
}
