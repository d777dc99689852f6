package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/valyala/fasthttp"
)

// The workers scenario (`-only workers`, issue 15): the background work
// that every `quid serve` replica runs without a leader, shared through
// SKIP LOCKED, timed with 1, 2, 3… replicas on copies of one seeded
// database. Two kinds of work are due at the start of each run:
//
//   - accrual: -worker-exchanges active exchanges (ten per member), each
//     with one hourly period past due (as the accrual row seeds them);
//   - webhooks: one exchange.joined event to the partner for each of
//     -worker-joins joins made through the API, waiting in the outbox for
//     the partner's endpoint (a receiver in this process, which counts
//     every delivery by its webhook-id).
//
// Each run starts its replicas at once and polls the database until
// nothing of either kind is due; it then checks that every period was
// credited exactly once, that the balances equal the ledger, and that the
// receiver saw every event, none twice.

// workerRun is what one run with some number of replicas measured.
type workerRun struct {
	replicas                 int
	ready                    time.Duration // until every replica answered /readyz
	credits, deliveries      int
	accrual, webhooks        time.Duration // from the start of the replicas until nothing of that kind was due
	duplicates, missing      int           // deliveries: received more than once, never received
	doubleCredits, imbalance int           // (exchange, period) credited twice; members whose balance differs from the ledger
	cpuQuid, cpuPostgres     time.Duration
	verify                   string // quid verify's verdict on the rules the seeding keeps
	locked, passes           int    // members the replicas' accrual passes locked, in all; passes that locked any
}

// passLog reads the replicas' JSON logs: it adds up the members each
// accrual pass locked ("accrual" lines) and passes errors on to stderr.
type passLog struct {
	mu             sync.Mutex
	partial        []byte
	locked, passes int
}

func (l *passLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := l.partial[:i]
		var rec struct {
			Level, Msg string
			Members    int
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "accrual" {
			l.locked += rec.Members
			l.passes++
		} else if rec.Level != "INFO" {
			os.Stderr.Write(append(line, '\n'))
		}
		l.partial = l.partial[i+1:]
	}
}

func (l *passLog) total() (int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.locked, l.passes
}

// receiver is the partner's webhook endpoint: it answers 204 and counts
// deliveries by their webhook-id header.
type receiver struct {
	mu   sync.Mutex
	seen map[string]int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	r.seen[id]++
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// reset forgets what was received and returns it.
func (r *receiver) reset() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := r.seen
	r.seen = map[string]int{}
	return seen
}

// startServe starts `quid serve` on dbURL, on a free loopback port, with
// env and extra settings, and returns the process and its base URL.
func startServe(env []string, dbURL string, stderr io.Writer, extra ...string) (*exec.Cmd, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(filepath.Join("bin", "quid"), "serve")
	cmd.Env = append(append(env, "DATABASE_URL="+dbURL, "QUID_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"QUID_MIN_REWARD_PERIOD=1s", "QUID_WEBHOOK_ALLOW_PRIVATE=true", "QUID_RATE_LIMIT_ADDRESS=0"), extra...)
	cmd.Stderr = stderr
	// A replica outliving a quidbench that crashed would hold its pipes
	// and keep working on the database.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start bin/quid (run make build): %w", err)
	}
	return cmd, fmt.Sprintf("http://127.0.0.1:%d", port), nil
}

func stopServe(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
}

// measureWorkers seeds one database, then for each replica count times a
// run on a copy of it, and prints the table.
func (b *bench) measureWorkers(ctx context.Context, env []string) ([]workerRun, error) {
	recv := &receiver{seen: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: recv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()

	templateURL, drop, err := b.createDatabase(ctx, "")
	if err != nil {
		return nil, err
	}
	defer drop()
	if err := b.seedWorkers(ctx, env, templateURL, "http://"+ln.Addr().String()+"/hook"); err != nil {
		return nil, err
	}
	recv.reset()

	var runs []workerRun
	for _, k := range b.o.workerReplicas {
		r, err := b.workerRun(ctx, env, templateURL, k, recv)
		if err != nil {
			return runs, err
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// seedWorkers fills the template database: through one server (its
// workers idle), a contract; in SQL, the due exchanges; then, through the
// server again, -worker-joins members who join with keys and the partner's
// webhook endpoint.
func (b *bench) seedWorkers(ctx context.Context, env []string, dbURL, hook string) error {
	srv, base, err := startServe(env, dbURL, os.Stderr, "QUID_ACCRUAL_INTERVAL=24h", "QUID_WEBHOOK_INTERVAL=24h")
	if err != nil {
		return err
	}
	defer stopServe(srv)
	if err := waitReady(base); err != nil {
		return err
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	contract, partner, err := publishBenchContract(hc, base)
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	// The due exchanges first: the seeding gives every exchange in the
	// database its first period's credit.
	from, err := loadRawContract(ctx, pool, contract)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "workers: seeding %d due exchanges…\n", b.o.workerExchanges)
	if err := seedDueExchanges(ctx, dbURL, b.o.workerExchanges, from); err != nil {
		return err
	}
	joins := b.o.workerJoins
	fmt.Fprintf(os.Stderr, "workers: %d joins through the API (one exchange.joined event each for the partner)…\n", joins)
	if _, err := pool.Exec(ctx, `INSERT INTO members (id, attributes, created_at, updated_at)
		SELECT 'm' || g, '{"location.city":"Oslo","demographic.birthdate":"1990-05-01"}', now(), now() FROM generate_series(1, $1) g`, joins); err != nil {
		return err
	}
	b.base = base
	b.fc = &fasthttp.Client{MaxConnsPerHost: 128, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	b.tokens = make([]string, joins)
	for i := range b.tokens {
		b.tokens[i] = mint("member", memberID(i))
	}
	if p := b.saturate(joins, min(b.o.clients, 64), func(i int) error { return b.join(i, contract, joinKey(i), false) }); p.errs > 0 {
		return fmt.Errorf("workers: %d of %d joins failed", p.errs, joins)
	}
	// The endpoint is registered last: the server's own dispatcher polled
	// once at its start, and next in 24 hours.
	if err := call(hc, "PUT", base+"/v1/partner/webhook", mint("partner", partner), map[string]any{"url": hook}, nil); err != nil {
		return err
	}
	return nil
}

// workerRun copies the template, starts k replicas on the copy and waits
// until every due period is credited and every event delivered.
func (b *bench) workerRun(ctx context.Context, env []string, templateURL string, k int, recv *receiver) (workerRun, error) {
	r := workerRun{replicas: k}
	dbURL, drop, err := b.createDatabase(ctx, templateURL)
	if err != nil {
		return r, err
	}
	defer drop()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return r, err
	}
	defer pool.Close()
	var creditsBefore, due int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM ledger_entries WHERE kind = 'period_credit'),
		(SELECT count(*) FROM webhook_outbox o JOIN webhook_endpoints w USING (recipient_id) WHERE o.delivered_at IS NULL)`).Scan(&creditsBefore, &due); err != nil {
		return r, err
	}
	fmt.Fprintf(os.Stderr, "workers: %d replica(s), %d exchanges due, %d events to deliver…\n", k, b.o.workerExchanges, due)
	b.checkpoint(ctx)
	pgBefore := b.cpuNow().postgres
	start := time.Now()
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			stopServe(p)
		}
	}()
	var bases []string
	passes := &passLog{}
	for range k {
		p, base, err := startServe(env, dbURL, passes, "QUID_ACCRUAL_INTERVAL=1s", "QUID_WEBHOOK_INTERVAL="+b.o.workerWebhookInterval.String(),
			"QUID_LOG_LEVEL=info", "QUID_LOG_FORMAT=json")
		if err != nil {
			return r, err
		}
		procs, bases = append(procs, p), append(bases, base)
	}
	ready := make(chan time.Duration, 1)
	go func() {
		for _, base := range bases {
			if waitReady(base) != nil {
				break
			}
		}
		ready <- time.Since(start)
	}()
	deadline := start.Add(b.o.workerTimeout)
	for r.accrual == 0 || r.webhooks == 0 {
		if time.Now().After(deadline) {
			return r, fmt.Errorf("workers: %d replicas not done after %s", k, b.o.workerTimeout)
		}
		time.Sleep(100 * time.Millisecond)
		var periods, events int
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM exchanges WHERE next_period_end <= now()),
			(SELECT count(*) FROM webhook_outbox o JOIN webhook_endpoints w USING (recipient_id) WHERE o.delivered_at IS NULL AND o.failed_at IS NULL)`).Scan(&periods, &events); err != nil {
			return r, err
		}
		if periods == 0 && r.accrual == 0 {
			r.accrual = time.Since(start)
		}
		if events == 0 && r.webhooks == 0 {
			r.webhooks = time.Since(start)
		}
	}
	for _, p := range procs {
		r.cpuQuid += procCPU(strconv.Itoa(p.Process.Pid))
	}
	r.cpuPostgres = b.cpuNow().postgres - pgBefore
	r.ready = <-ready
	r.locked, r.passes = passes.total()
	for _, p := range procs {
		stopServe(p)
	}
	procs = nil

	// Exactly once: no (exchange, period) twice, every balance its ledger,
	// every event received once.
	var credits int
	if err := pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM ledger_entries WHERE kind = 'period_credit'),
		(SELECT count(*) FROM (SELECT 1 FROM ledger_entries WHERE kind = 'period_credit' GROUP BY exchange_id, period_start HAVING count(*) > 1) d),
		(SELECT count(*) FROM members m LEFT JOIN (SELECT member_id, sum(points) AS s FROM ledger_entries GROUP BY member_id) l
		   ON l.member_id = m.id WHERE m.available + m.pending <> coalesce(l.s, 0))`).Scan(&credits, &r.doubleCredits, &r.imbalance); err != nil {
		return r, err
	}
	r.credits = credits - creditsBefore
	if r.verify, err = verifyVerdict(env, dbURL); err != nil {
		return r, err
	}
	seen := recv.reset()
	rows, err := pool.Query(ctx, `SELECT o.id::text FROM webhook_outbox o JOIN webhook_endpoints w USING (recipient_id)`)
	if err != nil {
		return r, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return r, err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return r, err
	}
	for _, id := range ids {
		switch n := seen[id]; {
		case n == 0:
			r.missing++
		case n > 1:
			r.duplicates += n - 1
		}
	}
	for _, n := range seen {
		r.deliveries += n
	}
	if k == b.o.workerReplicas[len(b.o.workerReplicas)-1] {
		if err := printStorage(ctx, pool); err != nil {
			return r, err
		}
	}
	return r, nil
}

// seedSkips are the rules of quid verify that seeded rows break by
// design: seedDueExchanges writes no consent events and gives its ledger
// entries stand-in digests (with the seal trigger off).
var seedSkips = map[string]bool{"consent-events-complete": true, "history-unchanged": true}

// verifyVerdict runs `quid verify --json` on dbURL and names the broken
// rules, but for seedSkips.
func verifyVerdict(env []string, dbURL string) (string, error) {
	cmd := exec.Command(filepath.Join("bin", "quid"), "verify", "--json", "--max-shown", "1")
	cmd.Env = append(env, "DATABASE_URL="+dbURL)
	out, err := cmd.Output()
	var rep struct {
		Error string
		Rules []struct {
			ID         string
			Checked    int
			Violations int
		}
	}
	if jerr := json.Unmarshal(out, &rep); jerr != nil || rep.Error != "" {
		return "", fmt.Errorf("quid verify: %v %s %s", err, rep.Error, out)
	}
	var broken []string
	held := 0
	for _, rule := range rep.Rules {
		switch {
		case seedSkips[rule.ID]:
		case rule.Violations > 0:
			broken = append(broken, fmt.Sprintf("%s (%d)", rule.ID, rule.Violations))
		default:
			held++
		}
	}
	if len(broken) > 0 {
		return "BROKEN: " + strings.Join(broken, ", "), nil
	}
	return fmt.Sprintf("verify: %d rules hold", held), nil
}

// printStorage prints, for the database after the last run, each table's
// rows and bytes (pg_total_relation_size: heap, indexes and TOAST), for the
// sizing in docs/scaling.md.
func printStorage(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return err
	}
	rows, err := pool.Query(ctx, `SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND pg_total_relation_size(c.oid) > 65536
		ORDER BY 3 DESC`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "\nstorage after the last run (pg_total_relation_size, with indexes and TOAST; rows from ANALYZE):\n")
	var total int64
	for rows.Next() {
		var name string
		var n, size int64
		if err := rows.Scan(&name, &n, &size); err != nil {
			return err
		}
		total += size
		per := "—"
		if n > 0 {
			per = strconv.FormatInt(size/n, 10) + " B/row"
		}
		fmt.Fprintf(&b, "  %-28s %10d rows %9.1f MiB  %s\n", name, n, float64(size)/(1<<20), per)
	}
	fmt.Fprintf(&b, "  %-28s %26.1f MiB\n", "(tables above)", float64(total)/(1<<20))
	storageNote = b.String()
	return rows.Err()
}

// storageNote is printed after the table.
var storageNote string

// reportWorkers prints the table: per kind of work and replica count, the
// items done, the seconds until none was due, the rate and its ratio to
// the first replica count.
func reportWorkers(runs []workerRun, o options) {
	t := &table{head: &tableRow{"#", "work, replicas", "items in seconds = items/s", "exactly once (checked after the run)", "rate vs 1st", "target", "ok"}}
	if len(runs) == 0 {
		return
	}
	base := runs[0]
	rate := func(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }
	for _, r := range runs {
		exact := r.doubleCredits == 0 && r.imbalance == 0 && !strings.HasPrefix(r.verify, "BROKEN")
		t.add("W", fmt.Sprintf("accrual, %d replica(s): periods credited", r.replicas),
			fmt.Sprintf("%d in %.1f s = %.0f/s", r.credits, r.accrual.Seconds(), rate(r.credits, r.accrual)),
			fmt.Sprintf("%d twice, %d balances off; %s", r.doubleCredits, r.imbalance, r.verify),
			ratio(rate(r.credits, r.accrual), rate(base.credits, base.accrual))+" 1st",
			"all once", exact && r.credits == o.workerExchanges)
	}
	for _, r := range runs {
		t.add("W", fmt.Sprintf("webhooks, %d replica(s): events delivered", r.replicas),
			fmt.Sprintf("%d in %.1f s = %.0f/s", r.deliveries, r.webhooks.Seconds(), rate(r.deliveries, r.webhooks)),
			fmt.Sprintf("%d duplicates, %d missing", r.duplicates, r.missing),
			ratio(rate(r.deliveries, r.webhooks), rate(base.deliveries, base.webhooks))+" 1st",
			"all, once", r.missing == 0 && r.duplicates == 0)
	}
	for _, r := range runs {
		t.info("", fmt.Sprintf("%d replica(s): ready, CPU", r.replicas),
			fmt.Sprintf("all ready after %.2f s", r.ready.Seconds()),
			fmt.Sprintf("CPU quid %.1f s + PostgreSQL %.1f s", r.cpuQuid.Seconds(), r.cpuPostgres.Seconds()),
			fmt.Sprintf("accrual passes locked %d members in %d passes (%d due)", r.locked, r.passes, o.workerExchanges/10))
	}
	t.print(os.Stdout)
	fmt.Print(storageNote)
}

// parseReplicas reads -worker-replicas: a comma-separated list of counts.
func parseReplicas(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 16 {
			return nil, fmt.Errorf("-worker-replicas: %q is not a list of counts from 1 to 16", s)
		}
		out = append(out, n)
	}
	return out, nil
}
