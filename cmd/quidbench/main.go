// Command quidbench measures Quid against the bars in DESIGN.md on this
// machine and prints one table, each figure beside a raw baseline measured
// in the same run: joins over HTTP without and with an Idempotency-Key,
// idempotent replays, re-consents to a new version, the latency of joins at
// a fixed offered rate, partner reads with access logging, cached offers and
// transparency reads, the server's peak memory, and the accrual of one
// period for many exchanges. It starts bin/quid as its own process on a
// fresh database. The raw baselines (baseline.go, static.go, accrual.go)
// are written from the schema and the API contract: quidbench imports no
// SQL and no protocol of the service.
//
// Scenarios compared by a ratio run in alternating halves (A B B A, or
// A B C C B A) so that the tables growing and autovacuum waking up weigh
// on each side alike.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/valyala/fasthttp"
)

const secret = "bench-secret-bench-secret-bench-secret!!"

const purpose = "loyalty.personalised_offers"

type options struct {
	joins, clients, replays, reconsents  int
	rate, pacedRuns                      int
	pacedFor, readFor                    time.Duration
	readClients, accrualN                int
	expiryN                              int
	only                                 string
	redemptions                          int
	workerReplicas                       []int
	workerExchanges, workerJoins         int
	workerWebhookInterval, workerTimeout time.Duration
}

func main() {
	if spec := os.Getenv("QUIDBENCH_STATIC"); spec != "" {
		if err := serveStatic(spec, os.Getenv("QUIDBENCH_STATIC_ADDR")); err != nil {
			fmt.Fprintln(os.Stderr, "quidbench static:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.IntVar(&o.joins, "joins", 20000, "joins per join scenario (without key, with key, raw SQL), each run in two halves")
	flag.IntVar(&o.clients, "clients", 200, "concurrent clients for joins, replays and re-consents (the raw SQL shares 16 connections, as the server does)")
	flag.IntVar(&o.replays, "replays", 20000, "replays of the keyed joins, and raw replays (at most -joins)")
	flag.IntVar(&o.reconsents, "reconsents", 10000, "re-consents over HTTP, and raw SQL re-consents (at most -joins)")
	flag.IntVar(&o.rate, "rate", 2000, "joins per second offered when measuring latency")
	flag.DurationVar(&o.pacedFor, "paced-duration", 5*time.Second, "length of each latency run")
	flag.IntVar(&o.pacedRuns, "paced-runs", 3, "consecutive latency runs (joins with keys)")
	flag.DurationVar(&o.readFor, "read-duration", 5*time.Second, "length of each read scenario and of its baseline (partner, offers, transparency)")
	flag.IntVar(&o.readClients, "read-clients", 64, "concurrent clients for reads")
	flag.IntVar(&o.accrualN, "accrual-exchanges", 1_000_000, "due exchanges for the accrual comparison (0 skips it)")
	flag.IntVar(&o.expiryN, "expiry-lots", 1_000_000, "points lots past their time for the expiry comparison (0 skips it)")
	flag.StringVar(&o.only, "only", "", "run only this scenario (expiry, or workers: throughput of the background workers with -worker-replicas replicas), not the whole bench")
	flag.IntVar(&o.redemptions, "redemptions", 10000, "redemptions of a reward of the catalogue, one per member who joined (at most -joins; 0 skips them)")
	replicas := flag.String("worker-replicas", "1,2,3", "-only workers: replica counts to run, each on a copy of one seeded database")
	flag.IntVar(&o.workerExchanges, "worker-exchanges", 500_000, "-only workers: due exchanges, ten per member (accrual batches take 5,000 members each)")
	flag.IntVar(&o.workerJoins, "worker-joins", 2000, "-only workers: joins through the API, each leaving one webhook event for the partner to deliver")
	flag.DurationVar(&o.workerWebhookInterval, "worker-webhook-interval", time.Second, "-only workers: QUID_WEBHOOK_INTERVAL of the replicas (the default's)")
	flag.DurationVar(&o.workerTimeout, "worker-timeout", 15*time.Minute, "-only workers: longest wait for one run")
	flag.Parse()
	if o.only != "" && o.only != "expiry" && o.only != "workers" {
		fmt.Fprintln(os.Stderr, "quidbench: -only takes expiry or workers")
		os.Exit(2)
	}
	var err error
	if o.workerReplicas, err = parseReplicas(*replicas); err != nil || o.workerExchanges < 10 || o.workerJoins < 1 {
		fmt.Fprintln(os.Stderr, "quidbench: -worker-replicas 1,2,3 (counts from 1 to 16), -worker-exchanges ≥ 10, -worker-joins ≥ 1")
		os.Exit(2)
	}
	if o.joins < 2 || o.clients < 1 || o.rate < 1 || o.readClients < 1 {
		fmt.Fprintln(os.Stderr, "quidbench: -joins ≥ 2, -clients, -rate and -read-clients ≥ 1")
		os.Exit(2)
	}
	o.replays, o.reconsents, o.redemptions = min(o.replays, o.joins), min(o.reconsents, o.joins), min(o.redemptions, o.joins)
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "quidbench:", err)
		os.Exit(1)
	}
}

type bench struct {
	o                     options
	serverURL, dbURL      string
	admin, pool           *pgxpool.Pool
	base                  string
	serverPID, postmaster int
	fc                    *fasthttp.Client
	tokens                []string // tokens[i] is member "m<i+1>"
}

func memberID(i int) string { return "m" + strconv.Itoa(i+1) }

func run(o options) error {
	ctx := context.Background()
	started, loadBefore := time.Now().UTC(), loadAverage()
	b := &bench{o: o, serverURL: os.Getenv("DATABASE_URL")}
	if b.serverURL == "" {
		return fmt.Errorf("DATABASE_URL is not set (make bench sets it)")
	}
	var err error
	if b.admin, err = pgxpool.New(ctx, b.serverURL); err != nil {
		return err
	}
	defer b.admin.Close()
	var backend int
	if err := b.admin.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return err
	}
	b.postmaster, _ = strconv.Atoi(ppid(strconv.Itoa(backend)))
	serverEnv := append(os.Environ(), "QUID_JWT_SECRET="+secret, "QUID_LOG_LEVEL=error")
	if o.only == "expiry" {
		t := &table{}
		exp, err := b.measureExpiry(ctx, o.expiryN, serverEnv)
		if err != nil {
			return err
		}
		exp.report(t)
		fmt.Printf("\nquidbench -only expiry %s UTC, %.1f min; load average %s at the start, %s at the end (the machine may be shared)\n",
			started.Format("2006-01-02 15:04"), time.Since(started).Minutes(), loadBefore, loadAverage())
		t.print(os.Stdout)
		exp.notes()
		return nil
	}
	if o.only == "workers" {
		runs, err := b.measureWorkers(ctx, serverEnv)
		if err != nil {
			return err
		}
		fmt.Printf("\nquidbench -only workers %s UTC, %.1f min; load average %s at the start, %s at the end (the machine may be shared)\n",
			started.Format("2006-01-02 15:04"), time.Since(started).Minutes(), loadBefore, loadAverage())
		reportWorkers(runs, o)
		return nil
	}
	var drop func()
	if b.dbURL, drop, err = b.createDatabase(ctx, ""); err != nil {
		return err
	}
	defer drop()

	port, err := freePort()
	if err != nil {
		return err
	}
	b.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	srv := exec.Command(filepath.Join("bin", "quid"), "serve")
	srv.Env = append(serverEnv, "DATABASE_URL="+b.dbURL, "QUID_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"QUID_MIN_REWARD_PERIOD=1s", "QUID_ACCRUAL_INTERVAL=24h", "QUID_PPROF_ADDR="+os.Getenv("QUID_PPROF_ADDR"),
		// Every request comes from this one address, thousands a second:
		// the address limit is off. The per-principal limit stays at its
		// default (each member writes at most twice), as in production.
		"QUID_RATE_LIMIT_ADDRESS=0")
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start bin/quid (run make build): %w", err)
	}
	b.serverPID = srv.Process.Pid
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = srv.Process.Signal(os.Interrupt)
			_ = srv.Wait()
		}
	}
	defer stop()
	if err := waitReady(b.base); err != nil {
		return err
	}
	cfg, err := pgxpool.ParseConfig(b.dbURL)
	if err != nil {
		return err
	}
	cfg.MaxConns = 16 // as the server's pool
	if b.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return err
	}
	defer b.pool.Close()
	b.fc = &fasthttp.Client{MaxConnsPerHost: o.clients * 2, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}

	// Setup: a brand and a partner, one published contract naming both.
	hc := &http.Client{Timeout: 30 * time.Second}
	marketer := mint("marketer", "mark")
	v1, partnerID, err := publishBenchContract(hc, b.base)
	if err != nil {
		return err
	}
	rawV1, err := loadRawContract(ctx, b.pool, v1)
	if err != nil {
		return err
	}
	contracts := map[string]*rawContract{v1: rawV1}

	J := o.joins
	pacedN := max(1, int(float64(o.rate)*o.pacedFor.Seconds()))
	warm := min(500, max(1, J/10)) // joins per path before measuring, on members of their own
	members := 3*J + (o.pacedRuns+1)*pacedN + 3*warm
	firstWarm := 3*J + (o.pacedRuns+1)*pacedN
	fmt.Fprintf(os.Stderr, "setup: %d members…\n", members)
	if _, err := b.pool.Exec(ctx, `INSERT INTO members (id, attributes, created_at, updated_at)
		SELECT 'm' || g, '{"location.city":"Oslo","demographic.birthdate":"1990-05-01"}', now(), now() FROM generate_series(1, $1) g`, members); err != nil {
		return err
	}
	b.tokens = make([]string, members)
	for i := range b.tokens {
		b.tokens[i] = mint("member", memberID(i))
	}
	receipt := ""
	rawJoinAt := func(i int, c *rawContract) error {
		return rawJoin(ctx, b.pool, memberID(i), c, contracts, receipt)
	}

	// Warm-up: connections, caches and prepared statements of each path.
	fmt.Fprintf(os.Stderr, "warm-up: %d joins on each path…\n", warm)
	b.saturate(warm, o.clients, func(i int) error { return b.join(firstWarm+i, v1, "", false) })
	b.saturate(warm, o.clients, func(i int) error { return b.join(firstWarm+warm+i, v1, joinKey(firstWarm+warm+i), false) })
	var l int // the raw joins store as many receipt bytes as the service's signed receipts
	if err := b.pool.QueryRow(ctx, `SELECT coalesce(avg(length(receipt)), 400)::int FROM exchanges`).Scan(&l); err != nil {
		return err
	}
	receipt = strings.Repeat("r", l)
	b.saturate(warm, o.clients, func(i int) error { return rawJoinAt(firstWarm+2*warm+i, rawV1) })

	// 1, 2, 5: joins without a key, with a key, and the raw SQL.
	fmt.Fprintf(os.Stderr, "joins: %d each without key, with key and raw SQL, %d clients (halves A B C C B A)…\n", J, o.clients)
	joinPh := b.interleave(J, []func(off, n int) phase{
		func(off, n int) phase {
			return b.saturate(n, o.clients, func(i int) error { return b.join(off+i, v1, "", false) })
		},
		func(off, n int) phase {
			return b.saturate(n, o.clients, func(i int) error { return b.join(J+off+i, v1, joinKey(J+off+i), false) })
		},
		func(off, n int) phase {
			return b.saturate(n, o.clients, func(i int) error { return rawJoinAt(2*J+off+i, rawV1) })
		},
	})
	noKey, withKey, rawJ := joinPh[0], joinPh[1], joinPh[2]

	// 3: replays of the keyed joins, and the raw read of a stored response.
	fmt.Fprintf(os.Stderr, "replays: %d of the keyed joins, and raw SQL (halves A B B A)…\n", o.replays)
	replayPh := b.interleave(o.replays, []func(off, n int) phase{
		func(off, n int) phase {
			return b.saturate(n, o.clients, func(i int) error { return b.join(J+off+i, v1, joinKey(J+off+i), true) })
		},
		func(off, n int) phase {
			return b.saturate(n, o.clients, func(i int) error {
				return rawReplay(ctx, b.pool, memberID(J+off+i), joinKey(J+off+i))
			})
		},
	})

	// Latency at a fixed offered rate, with keys, three runs in a row; then
	// the raw SQL at the same rate.
	var pacedPh []phase
	for r := 0; r < o.pacedRuns; r++ {
		fmt.Fprintf(os.Stderr, "latency: run %d, %d joins/s with keys offered for %s by %d clients…\n", r+1, o.rate, o.pacedFor, o.clients)
		first := 3*J + r*pacedN
		pacedPh = append(pacedPh, b.paced(pacedN, o.rate, o.clients, func(i int) error {
			return b.join(first+i, v1, joinKey(first+i), false)
		}))
	}
	fmt.Fprintf(os.Stderr, "latency: raw SQL joins at %d/s…\n", o.rate)
	firstRaw := 3*J + o.pacedRuns*pacedN
	rawPaced := b.paced(pacedN, o.rate, o.clients, func(i int) error { return rawJoinAt(firstRaw+i, rawV1) })

	// 7: partner reads of members who joined with a key.
	fmt.Fprintf(os.Stderr, "partner reads: %s each over HTTP and raw SQL, %d clients…\n", o.readFor, o.readClients)
	partnerTok := mint("partner", partnerID)
	var pick atomic.Int64
	readMember := func() string { return memberID(J + int(pick.Add(1)%int64(J))) }
	partnerPh := b.interleaveFor(o.readFor, []func(d time.Duration) phase{
		func(d time.Duration) phase {
			return b.during(d, o.readClients, func(_, _ int) error {
				return get(b.fc, b.base+"/v1/partner/members/"+url.PathEscape(readMember())+"/data?purpose="+purpose, partnerTok, 200)
			})
		},
		func(d time.Duration) phase {
			return b.during(d, o.readClients, func(_, _ int) error {
				return rawPartnerRead(ctx, b.pool, readMember(), partnerID, partnerName, purpose)
			})
		},
	})

	// 8: offers and transparency, and a minimal fiber server sending the
	// same bytes.
	reads := []struct{ name, path string }{{"offers", "/v1/offers"}, {"transparency", "/v1/contracts/" + v1 + "/transparency"}}
	var routes []staticRoute
	for _, r := range reads {
		sr, err := captureRoute(b.fc, b.base, r.path)
		if err != nil {
			return err
		}
		routes = append(routes, sr)
	}
	staticPort, err := freePort()
	if err != nil {
		return err
	}
	static, err := startStatic("127.0.0.1:"+strconv.Itoa(staticPort), routes)
	if err != nil {
		return err
	}
	staticBase := fmt.Sprintf("http://127.0.0.1:%d", staticPort)
	if err := waitReady(staticBase); err != nil {
		return err
	}
	var readPh [][]phase
	for _, r := range reads {
		fmt.Fprintf(os.Stderr, "reads: %s, %s each from the service and the minimal fiber server…\n", r.name, o.readFor)
		readPh = append(readPh, b.interleaveFor(o.readFor, []func(d time.Duration) phase{
			func(d time.Duration) phase {
				return b.during(d, o.readClients, func(_, _ int) error { return get(b.fc, b.base+r.path, "", 200) })
			},
			func(d time.Duration) phase {
				return b.during(d, o.readClients, func(_, _ int) error { return get(b.fc, staticBase+r.path, "", 200) })
			},
		}))
	}
	staticRSS := peakRSS(static.Process.Pid)
	_ = static.Process.Signal(os.Interrupt)
	_ = static.Wait()

	// 4: re-consents to version 2 of the family, by members with an active
	// version 1 exchange: over HTTP (with keys, as the app sends) by those
	// who joined without a key, in raw SQL by those who joined in raw SQL.
	var v2 struct{ ID string }
	if err := call(hc, "POST", b.base+"/v1/contracts/"+v1+"/versions", marketer, nil, &v2); err != nil {
		return err
	}
	if err := call(hc, "POST", b.base+"/v1/contracts/"+v2.ID+"/publish", marketer, nil, nil); err != nil {
		return err
	}
	rawV2, err := loadRawContract(ctx, b.pool, v2.ID)
	if err != nil {
		return err
	}
	contracts[v2.ID] = rawV2
	fmt.Fprintf(os.Stderr, "re-consents: %d to version 2 over HTTP and in raw SQL (halves A B B A)…\n", o.reconsents)
	reconsentPh := b.interleave(o.reconsents, []func(off, n int) phase{
		func(off, n int) phase {
			return b.saturate(n, o.clients, func(i int) error { return b.join(off+i, v2.ID, "rc-"+memberID(off+i), false) })
		},
		func(off, n int) phase {
			return b.saturate(n, o.clients, func(i int) error { return rawJoinAt(2*J+off+i, rawV2) })
		},
	})

	var catalogue *phase
	if o.redemptions > 0 {
		p, err := b.measureCatalogue(ctx, o.redemptions)
		if err != nil {
			return err
		}
		catalogue = &p
	}

	rss := peakRSS(b.serverPID)
	stop()
	b.serverPID = 0
	serviceRows, err := writesPerMember(ctx, b.pool, 0, o.reconsents)
	if err != nil {
		return err
	}
	rawRows, err := writesPerMember(ctx, b.pool, 2*J, 2*J+o.reconsents)
	if err != nil {
		return err
	}

	// 6: accrual.
	var acc *accrualResult
	if o.accrualN > 0 {
		r, err := b.measureAccrual(ctx, o.accrualN, serverEnv, rawV1)
		if err != nil {
			return err
		}
		acc = &r
	}
	var exp *expiryResult
	if o.expiryN > 0 {
		r, err := b.measureExpiry(ctx, o.expiryN, serverEnv)
		if err != nil {
			return err
		}
		exp = &r
	}

	t := &table{}
	raw := rawJ.rate()
	t.add("1", fmt.Sprintf("joins without a key (HTTP, %d clients, saturated)", o.clients), rateText(noKey, true),
		"raw SQL join "+perSec(raw), ratio(noKey.rate(), raw)+" raw", "≥ 2500/s, ≥ 0.8× raw",
		noKey.rate() >= 2500 && noKey.rate() >= 0.8*raw && noKey.errs == 0)
	t.add("2", "joins with a unique Idempotency-Key each (as the app)", rateText(withKey, true),
		"raw SQL join "+perSec(raw), ratio(withKey.rate(), raw)+" raw, "+ratio(withKey.rate(), noKey.rate())+" no key",
		"≥ 2500/s, ≥ 0.9× no key, ≥ 0.8× raw",
		withKey.rate() >= 2500 && withKey.rate() >= 0.9*noKey.rate() && withKey.rate() >= 0.8*raw && withKey.errs == 0)
	t.add("3", "idempotent replays (same key, same body)", rateText(replayPh[0], true),
		"raw SQL read of the stored response "+perSec(replayPh[1].rate()), ratio(replayPh[0].rate(), replayPh[1].rate()),
		"≥ 5000/s", replayPh[0].rate() >= 5000 && replayPh[0].errs == 0)
	t.add("4", "re-consents to version 2 (with keys)", rateText(reconsentPh[0], true),
		"raw SQL re-consent "+perSec(reconsentPh[1].rate()), ratio(reconsentPh[0].rate(), reconsentPh[1].rate()),
		"≥ 1500/s", reconsentPh[0].rate() >= 1500 && reconsentPh[0].errs == 0)
	t.info("5", "raw SQL join (pgx, 2 round trips, 16 connections)", rateText(rawJ, true), "(the baseline)", "1.00×")
	t.info("5", "raw SQL re-consent (same, supersedes v1)", rateText(reconsentPh[1], false), "(the baseline)", "1.00×")
	for i, p := range pacedPh {
		p99 := p.percentile(0.99)
		t.add("", fmt.Sprintf("join p99 at %d/s offered, %d clients, keys: run %d", o.rate, o.clients, i+1),
			fmt.Sprintf("p99 %.1f ms, p50 %.1f ms, %d errors", ms(p99), ms(p.percentile(0.5)), p.errs),
			fmt.Sprintf("raw SQL p99 %.1f ms, p50 %.1f ms", ms(rawPaced.percentile(0.99)), ms(rawPaced.percentile(0.5))),
			ratio(float64(p99), float64(rawPaced.percentile(0.99))), "< 25 ms", p99 < 25*time.Millisecond && p.errs == 0)
	}
	rawCPU := cpuPer(rawJ.cpu.postgres+rawJ.cpu.loadgen, rawJ.n)
	for _, c := range []struct {
		name string
		p    phase
	}{{"no key", noKey}, {"with key", withKey}} {
		t.info("", "CPU per join, "+c.name+" (saturated)",
			fmt.Sprintf("server %.2f + PostgreSQL %.2f ms", cpuPer(c.p.cpu.server, c.p.n), cpuPer(c.p.cpu.postgres, c.p.n)),
			fmt.Sprintf("raw: PostgreSQL %.2f + pgx client %.2f ms", cpuPer(rawJ.cpu.postgres, rawJ.n), cpuPer(rawJ.cpu.loadgen, rawJ.n)),
			ratio(cpuPer(c.p.cpu.server+c.p.cpu.postgres, c.p.n), rawCPU))
	}
	if acc != nil {
		same := acc.serviceSum == acc.rawSum
		sameText := "same credits"
		if !same {
			sameText = "DIFFERENT credits: " + acc.serviceSum + " vs " + acc.rawSum
		}
		t.add("6", fmt.Sprintf("accrual of one period, %d exchanges (quid accrue --once)", acc.n),
			fmt.Sprintf("%.1f s (%s)", acc.service.Seconds(), sameText),
			fmt.Sprintf("raw set-based SQL %.1f s", acc.raw.Seconds()),
			ratio(acc.service.Seconds(), acc.raw.Seconds()), "≤ 2× raw",
			same && acc.service <= 2*acc.raw)
	}
	if exp != nil {
		exp.report(t)
	}
	if catalogue != nil {
		t.info("9", fmt.Sprintf("catalogue redemptions (one reward, counted stock, keys, %d clients)", o.clients), rateText(*catalogue, true),
			fmt.Sprintf("CPU server %.2f + PostgreSQL %.2f ms each", cpuPer(catalogue.cpu.server, catalogue.n), cpuPer(catalogue.cpu.postgres, catalogue.n)),
			"(no raw baseline)")
	}
	t.add("7", "partner reads with access logging", rateText(partnerPh[0], false),
		"raw SQL select + insert "+perSec(partnerPh[1].rate()), ratio(partnerPh[0].rate(), partnerPh[1].rate()),
		"≥ 5000/s", partnerPh[0].rate() >= 5000 && partnerPh[0].errs == 0)
	for i, r := range reads {
		p := readPh[i]
		t.add("8", r.name+" reads", rateText(p[0], false),
			"minimal fiber handler, same bytes "+perSec(p[1].rate()), ratio(p[0].rate(), p[1].rate()),
			"≥ 30000/s", p[0].rate() >= 30000 && p[0].errs == 0)
	}
	t.add("", "server peak RSS (after every HTTP scenario)", fmt.Sprintf("%.0f MiB", rss),
		fmt.Sprintf("minimal fiber server %.0f MiB", staticRSS), ratio(rss, staticRSS), "< 150 MiB", rss > 0 && rss < 150)
	fmt.Printf("\nquidbench %s UTC, %.1f min; load average %s at the start, %s at the end (the machine may be shared)\n",
		started.Format("2006-01-02 15:04"), time.Since(started).Minutes(), loadBefore, loadAverage())
	t.print(os.Stdout)
	fmt.Printf("\nrows per member who joined v1 and re-consented to v2 (the same work?):\n  service: %s\n  raw SQL: %s\n", serviceRows, rawRows)
	if acc != nil {
		fmt.Printf("\naccrue said: %s\nboth sides after accrual: %s\n", acc.serviceOut, acc.serviceSum)
		fmt.Printf("accrual CPU: quid accrue %.1f s + PostgreSQL %.1f s; raw SQL: PostgreSQL %.1f s\n",
			acc.serviceCPU.loadgen.Seconds(), acc.serviceCPU.postgres.Seconds(), acc.rawCPU.postgres.Seconds())
	}
	if exp != nil {
		exp.notes()
	}
	return nil
}

const partnerName = "Bench Partner"

// publishBenchContract sets up, through the API at base, a brand and a
// partner, the programme's identity and one published contract naming
// both, and returns the contract's and the partner's ids.
func publishBenchContract(hc *http.Client, base string) (contract, partner string, err error) {
	marketer, admin := mint("marketer", "mark"), mint("admin", "root")
	var brandRec, partnerRec struct{ ID string }
	if err := call(hc, "POST", base+"/v1/recipients", admin, map[string]any{"name": "Bench Brand", "kind": "first_party", "country": "NO", "privacy_policy_url": "https://bench.example/p"}, &brandRec); err != nil {
		return "", "", err
	}
	if err := call(hc, "POST", base+"/v1/recipients", admin, map[string]any{"name": partnerName, "kind": "third_party", "country": "SE", "privacy_policy_url": "https://partner.example/p"}, &partnerRec); err != nil {
		return "", "", err
	}
	// A contract is published under the programme's identity and with a
	// value estimate (issue 12).
	if err := call(hc, "PUT", base+"/v1/programme", admin, map[string]any{
		"legal_name": "Bench AS", "address": "Storgata 1, 0155 Oslo, Norway", "contact_email": "privacy@bench.example",
		"dpo_contact":           "dpo@bench.example",
		"supervisory_authority": map[string]any{"name": "Datatilsynet", "complaint_url": "https://www.datatilsynet.no/en/"},
		"point_value":           map[string]any{"currency": "EUR", "amount": "0.01"},
		"jurisdictions":         []string{"NO"}}, nil); err != nil {
		return "", "", err
	}
	var draft struct{ ID string }
	if err := call(hc, "POST", base+"/v1/contracts", marketer, map[string]any{"title": "Bench", "retention": "P30D",
		"items":          []any{map[string]any{"category": "location.city", "purpose": purpose, "recipients": []string{brandRec.ID, partnerRec.ID}}},
		"reward":         map[string]any{"join_bonus": 100, "vesting": "P7D", "points_per_period": 10, "period": "PT1H"},
		"value_estimate": map[string]any{"amount": "4.80", "currency": "EUR", "per": "P1Y"}, "value_method": "revenue_attributable",
		"value_explanation": "Offer revenue per member who shares a city, a year."}, &draft); err != nil {
		return "", "", err
	}
	if err := call(hc, "POST", base+"/v1/contracts/"+draft.ID+"/publish", marketer, nil, nil); err != nil {
		return "", "", err
	}
	return draft.ID, partnerRec.ID, nil
}

// writesPerMember counts the rows written for members lo+1..hi, per member.
func writesPerMember(ctx context.Context, pool *pgxpool.Pool, lo, hi int) (string, error) {
	if hi <= lo {
		return "none", nil
	}
	var ex, ev, led, out, acks float64
	err := pool.QueryRow(ctx, `WITH m AS (SELECT 'm' || g AS id FROM generate_series($1::int + 1, $2::int) g)
	SELECT (SELECT count(*) FROM exchanges e JOIN m ON m.id = e.member_id)::float8 / ($2 - $1),
	       (SELECT count(*) FROM consent_events e JOIN m ON m.id = e.member_id)::float8 / ($2 - $1),
	       (SELECT count(*) FROM ledger_entries e JOIN m ON m.id = e.member_id)::float8 / ($2 - $1),
	       (SELECT count(*) FROM webhook_outbox o JOIN m ON m.id = o.payload->'data'->>'member_id')::float8 / ($2 - $1),
	       (SELECT count(*) FROM deletion_acks d JOIN m ON m.id = d.member_id)::float8 / ($2 - $1)`, lo, hi).Scan(&ex, &ev, &led, &out, &acks)
	return fmt.Sprintf("exchanges %.2f, consent events %.2f, ledger entries %.2f, outbox rows %.2f, deletion acks %.2f", ex, ev, led, out, acks), err
}

// interleave runs each scenario on n operations split in two halves: the
// first halves in order, then the second halves in reverse order.
func (b *bench) interleave(n int, runs []func(off, n int) phase) []phase {
	h := n / 2
	out := make([]phase, len(runs))
	for i, r := range runs {
		out[i] = r(0, h)
	}
	for i := len(runs) - 1; i >= 0; i-- {
		out[i] = out[i].plus(runs[i](h, n-h))
	}
	return out
}

// interleaveFor is interleave for scenarios that run for a time.
func (b *bench) interleaveFor(d time.Duration, runs []func(d time.Duration) phase) []phase {
	out := make([]phase, len(runs))
	for i, r := range runs {
		out[i] = r(d / 2)
	}
	for i := len(runs) - 1; i >= 0; i-- {
		out[i] = out[i].plus(runs[i](d - d/2))
	}
	return out
}

// loadAverage is /proc/loadavg's first three fields.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

func joinKey(member int) string { return "join-" + memberID(member) }

// join sends one join; replay says it must be answered as a replay.
func (b *bench) join(member int, contract, key string, replay bool) error {
	req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(res)
	req.SetRequestURI(b.base + "/v1/me/exchanges")
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.Set("Authorization", "Bearer "+b.tokens[member])
	req.Header.SetContentType("application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	req.SetBodyString(`{"contract_id":"` + contract + `"}`)
	if err := b.fc.Do(req, res); err != nil {
		return err
	}
	if res.StatusCode() != http.StatusCreated {
		return fmt.Errorf("join: %d %.300s", res.StatusCode(), res.Body())
	}
	if got := string(res.Header.Peek("Idempotent-Replayed")); replay != (got == "true") {
		return fmt.Errorf("join: Idempotent-Replayed %q, want replay %v", got, replay)
	}
	return nil
}

type tableRow struct{ num, scenario, measured, baseline, ratio, target, ok string }

type table struct {
	rows []tableRow
	head *tableRow // the column names, when not those of the bench's table
}

func (t *table) add(num, scenario, measured, baseline, ratio, target string, ok bool) {
	okText := "NO"
	if ok {
		okText = "yes"
	}
	t.rows = append(t.rows, tableRow{num, scenario, measured, baseline, ratio, target, okText})
}

func (t *table) info(num, scenario, measured, baseline, ratio string) {
	t.rows = append(t.rows, tableRow{num, scenario, measured, baseline, ratio, "—", "info"})
}

func (t *table) print(w io.Writer) {
	head := tableRow{"#", "scenario", "measured", "raw baseline (same run)", "ratio", "target", "ok"}
	if t.head != nil {
		head = *t.head
	}
	cells := func(r tableRow) []string {
		return []string{r.num, r.scenario, r.measured, r.baseline, r.ratio, r.target, r.ok}
	}
	width := make([]int, 7)
	for _, r := range append([]tableRow{head}, t.rows...) {
		for i, c := range cells(r) {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	line := func(cs []string) {
		fmt.Fprint(w, "|")
		for i, c := range cs {
			fmt.Fprintf(w, " %s%s |", c, strings.Repeat(" ", width[i]-len([]rune(c))))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	line(cells(head))
	fmt.Fprint(w, "|")
	for _, n := range width {
		fmt.Fprint(w, strings.Repeat("-", n+2), "|")
	}
	fmt.Fprintln(w)
	for _, r := range t.rows {
		line(cells(r))
	}
}

func perSec(r float64) string { return fmt.Sprintf("%.0f/s", r) }

func rateText(p phase, withP99 bool) string {
	s := fmt.Sprintf("%.0f/s (%d errors", p.rate(), p.errs)
	if withP99 {
		s += fmt.Sprintf("; p99 %.0f ms", ms(p.percentile(0.99)))
	}
	return s + ")"
}

func ratio(a, b float64) string {
	if b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func cpuPer(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return ms(d) / float64(n)
}

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

// createDatabase makes a database, empty or (template set) a file copy of
// the database at that URL, and returns its URL and how to drop it.
func (b *bench) createDatabase(ctx context.Context, template string) (string, func(), error) {
	name := "quid_bench_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	q := "CREATE DATABASE " + name
	if template != "" {
		t, err := url.Parse(template)
		if err != nil {
			return "", nil, err
		}
		q += " TEMPLATE " + strings.TrimPrefix(t.Path, "/") + " STRATEGY FILE_COPY"
	}
	if _, err := b.admin.Exec(ctx, q); err != nil {
		return "", nil, fmt.Errorf("%s: %w", q, err)
	}
	u, err := url.Parse(b.serverURL)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), func() {
		if os.Getenv("QUIDBENCH_KEEP") != "" { // for looking into a run afterwards
			fmt.Fprintln(os.Stderr, "kept database", name)
			return
		}
		_, _ = b.admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
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
	return fmt.Errorf("%s not ready after 60 s", base)
}
