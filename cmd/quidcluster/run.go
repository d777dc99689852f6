package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
)

const secret = "cluster-secret-cluster-secret-cluster!!"

const purpose = "loyalty.personalised_offers"

// offersBound is how soon a publish must show in every replica's offers
// (README, Production topology): the public-change notification empties
// every replica's cache at commit; QUID_PUBLIC_CACHE_TTL (1 s) bounds it
// while a replica's listener reconnects.
const offersBound = 2 * time.Second

// members is how many members the load may join, one join each.
const members = 200000

func mint(role, sub string) string {
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "role": role,
		"exp": time.Now().Add(2 * time.Hour).Unix()}).SignedString([]byte(secret))
	return tok
}

// replica is one `quid serve`.
type replica struct {
	n    int
	port int
	env  []string
	bin  string
	dir  string
	cmd  *exec.Cmd
}

func (r *replica) start() error {
	r.cmd = exec.Command(r.bin, "serve")
	r.cmd.Env = r.env
	f, err := os.OpenFile(filepath.Join(r.dir, fmt.Sprintf("quid%d.log", r.n)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	r.cmd.Stdout, r.cmd.Stderr = f, f
	if err := r.cmd.Start(); err != nil {
		f.Close()
		return err
	}
	go func() { _ = r.cmd.Wait(); f.Close() }()
	return nil
}

func (r *replica) base() string { return "http://127.0.0.1:" + strconv.Itoa(r.port) }

func waitReady(base string, d time.Duration) error {
	deadline := time.Now().Add(d)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		if res, err := c.Get(base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s", base, d)
}

// call sends a JSON request and decodes a 2xx answer into out.
func call(c *http.Client, method, url, tok string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, r)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
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
		return fmt.Errorf("%s %s: %d %.300s", method, url, res.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// receiver is the partner's webhook endpoint: it counts deliveries by
// webhook-id.
type receiver struct {
	mu    sync.Mutex
	ids   map[string]int
	first map[string]time.Time // when each webhook-id came first
	srv   *http.Server
	url   string
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{ids: map[string]int{}, first: map[string]time.Time{}, url: "http://" + ln.Addr().String() + "/hook"}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		id := req.Header.Get("webhook-id")
		if r.ids[id]++; r.ids[id] == 1 {
			r.first[id] = time.Now()
		}
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// stats counts requests and errors by kind in one phase.
type stats struct {
	requests atomic.Int64
	mu       sync.Mutex
	errs     map[string]int
	sample   map[string]string // one error of each kind, for the diagnosis
}

func (s *stats) fail(kind, sample string) {
	s.mu.Lock()
	s.errs[kind]++
	if s.sample[kind] == "" {
		if len(sample) > 160 {
			sample = sample[:160]
		}
		s.sample[kind] = sample
	}
	s.mu.Unlock()
}

// ack is a join a client saw acknowledged.
type ack struct{ member, key, exchange string }

// load is the steady mixed traffic through HAProxy.
type load struct {
	base       string
	hc         *http.Client
	contract   atomic.Value // string: the version joins go to
	partnerTok string
	next       atomic.Int64 // the next member to join
	phase      atomic.Pointer[stats]
	mu         sync.Mutex
	acks       []ack
	watch      atomic.Int64 // unix nanos: firstAfter is the first join begun after it
	firstAfter atomic.Int64 // unix nanos of that join's acknowledgement
	retried    atomic.Int64 // joins re-sent with the same key after a failure or as a replay
	mismatched atomic.Int64 // a retried key answered with another exchange
	tokens     sync.Map
	cancels    atomic.Int64 // cancels answered 200
	reads      atomic.Int64 // partner reads answered 200
	redeemed   atomic.Int64 // redemptions answered 201
}

func (l *load) token(member string) string {
	if t, ok := l.tokens.Load(member); ok {
		return t.(string)
	}
	t := mint("member", member)
	l.tokens.Store(member, t)
	return t
}

// do sends one request and classifies its outcome: "" for a wanted
// status, else the kind of error.
func (l *load) do(method, path, tok, key string, body []byte, want ...int) (int, []byte, string) {
	l.phase.Load().requests.Add(1)
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, l.base+path, r)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := l.hc.Do(req)
	// An error counts in the phase it ends in: a request begun just
	// before a fault and failed by it belongs to the fault.
	st := l.phase.Load()
	if err != nil {
		kind := "transport"
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			kind = "timeout"
		}
		st.fail(kind, method+" "+strings.SplitN(path, "?", 2)[0]+": "+err.Error())
		return 0, nil, kind
	}
	data, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, w := range want {
		if res.StatusCode == w {
			return res.StatusCode, data, ""
		}
	}
	kind := "http " + strconv.Itoa(res.StatusCode)
	st.fail(kind, method+" "+strings.SplitN(path, "?", 2)[0]+" via "+res.Header.Get("X-Replica")+": "+string(data))
	return res.StatusCode, data, kind
}

// join joins a new member with a key, re-sending the same key after any
// failure (as a client that cannot know whether its join committed), and
// once more as a replay for every fifth member.
func (l *load) join() {
	member := "m" + strconv.FormatInt(l.next.Add(1), 10)
	key := "join-" + member
	var first string
	for try := 0; try < 40; try++ {
		if try > 0 {
			l.retried.Add(1)
		}
		contract := l.contract.Load().(string)
		body := []byte(`{"contract_id":"` + contract + `"}`)
		begun := time.Now().UnixNano()
		code, data, kind := l.do("POST", "/v1/me/exchanges", l.token(member), key, body, 201, 409)
		if code == 409 {
			// The publish that retired this version may not have been
			// taken up by the load yet.
			time.Sleep(100 * time.Millisecond)
			if contract != l.contract.Load().(string) {
				key += "-next" // sent as the version it named was superseded: a new request
				continue
			}
			l.phase.Load().fail("http 409", string(data))
			return
		}
		if kind != "" {
			if code == 429 || code >= 500 || code == 0 {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return
		}
		var ex struct{ ID string }
		if json.Unmarshal(data, &ex) != nil || ex.ID == "" {
			l.phase.Load().fail("bad body", string(data))
			return
		}
		if first == "" {
			first = ex.ID
			l.mu.Lock()
			l.acks = append(l.acks, ack{member, key, ex.ID})
			l.mu.Unlock()
			if w := l.watch.Load(); w != 0 && begun > w {
				l.firstAfter.CompareAndSwap(0, time.Now().UnixNano())
			}
			if l.next.Load()%5 != 0 {
				return
			}
			continue // replay the key once
		}
		if ex.ID != first {
			l.mismatched.Add(1)
		}
		return
	}
}

func (l *load) someAck() (ack, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.acks) == 0 {
		return ack{}, false
	}
	return l.acks[int(time.Now().UnixNano()/7)%len(l.acks)], true
}

func (l *load) worker(ctx context.Context, w int) {
	for i := 0; ctx.Err() == nil; i++ {
		switch op := (i + w) % 10; {
		case op < 4:
			l.join()
		case op == 4:
			if a, ok := l.someAck(); ok {
				// A cancel may meet an exchange cancelled already (200 all the same).
				if _, _, kind := l.do("DELETE", "/v1/me/exchanges/"+a.exchange, l.token(a.member), "", nil, 200); kind == "" {
					l.cancels.Add(1)
				}
			}
		case op < 7:
			if a, ok := l.someAck(); ok {
				// 403/404 for a member who cancelled: refused, as it should be.
				if code, _, _ := l.do("GET", "/v1/partner/members/"+a.member+"/data?purpose="+purpose, l.partnerTok, "", nil, 200, 403, 404); code == 200 {
					l.reads.Add(1)
				}
			}
		case op == 7:
			if a, ok := l.someAck(); ok {
				// 1 point: granted once accrual paid a period, else insufficient.
				if code, _, _ := l.do("POST", "/v1/me/redemptions", l.token(a.member), "redeem-"+a.member+"-"+strconv.Itoa(i),
					[]byte(`{"points":1,"reference":"cluster"}`), 201, 422); code == 201 {
					l.redeemed.Add(1)
				}
			}
		default:
			l.do("GET", "/v1/offers", "", "", nil, 200)
		}
	}
}

type phaseRow struct {
	name string
	d    time.Duration
	st   *stats
}

type check struct {
	name, detail string
	ok           bool
}

// run brings the cluster up, drives it through the faults and checks it.
func run(ctx context.Context, quidBin string, keep bool) (bool, error) {
	began := time.Now()
	bin, err := filepath.Abs(quidBin)
	if err != nil || !isFile(bin) {
		return false, fmt.Errorf("%s not found; run make cluster-test (it builds bin/quid)", quidBin)
	}
	c := &cluster{}
	if err := c.ensureTools(); err != nil {
		return false, err
	}
	if err := c.setup(); err != nil {
		return false, err
	}
	passed := false
	defer func() {
		c.stopAll()
		if passed && !keep {
			os.RemoveAll(c.dir)
		} else {
			logf("logs and data kept in %s", c.dir)
		}
	}()
	logf("PostgreSQL primary and synchronous standby in %s…", c.dir)
	if err := c.startPostgres(ctx); err != nil {
		return false, err
	}
	if err := c.startBouncer(); err != nil {
		return false, fmt.Errorf("pgbouncer: %w", err)
	}
	rcv, err := startReceiver()
	if err != nil {
		return false, err
	}
	defer rcv.srv.Close()
	ports, err := freePorts(3)
	if err != nil {
		return false, err
	}
	pooled := c.url("quid", c.bouncerPort)
	direct := c.url("quid", c.primary.port, c.standby.port)
	var replicas []*replica
	for i, p := range ports {
		r := &replica{n: i + 1, port: p, bin: bin, dir: c.dir, env: append(os.Environ(),
			"DATABASE_URL="+pooled, "QUID_DATABASE_DIRECT_URL="+direct, "QUID_ADDR=127.0.0.1:"+strconv.Itoa(p),
			"QUID_JWT_SECRET="+secret, "QUID_MIN_REWARD_PERIOD=1s", "QUID_ACCRUAL_INTERVAL=1s", "QUID_WEBHOOK_INTERVAL=500ms", "QUID_WEBHOOK_LEASE=10s",
			"QUID_WEBHOOK_ALLOW_PRIVATE=true", "QUID_RATE_LIMIT_PRINCIPAL=0", "QUID_RATE_LIMIT_ADDRESS=0",
			"QUID_LOG_FORMAT=text", "QUID_LOG_LEVEL=warn", "QUID_SHUTDOWN_TIMEOUT=2s")}
		replicas = append(replicas, r)
	}
	defer func() {
		for _, r := range replicas {
			if r.cmd != nil && r.cmd.Process != nil {
				_ = r.cmd.Process.Signal(syscall.SIGTERM)
			}
		}
		time.Sleep(500 * time.Millisecond)
		for _, r := range replicas {
			if r.cmd != nil && r.cmd.Process != nil {
				_ = r.cmd.Process.Kill()
			}
		}
	}()
	logf("three replicas, PgBouncer on %d, HAProxy…", c.bouncerPort)
	for _, r := range replicas {
		if err := r.start(); err != nil {
			return false, err
		}
	}
	for _, r := range replicas {
		if err := waitReady(r.base(), 60*time.Second); err != nil {
			return false, fmt.Errorf("replica %d: %w (see %s)", r.n, err, filepath.Join(c.dir, fmt.Sprintf("quid%d.log", r.n)))
		}
	}
	if err := c.startHAProxy(ports); err != nil {
		return false, fmt.Errorf("haproxy: %w", err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(c.haproxyPort)
	if err := waitReady(base, 20*time.Second); err != nil {
		return false, err
	}

	// Fixtures, through HAProxy: programme, brand, partner with its
	// webhook, a contract paying a point a second, members.
	hc := &http.Client{Timeout: 10 * time.Second}
	admin, marketer := mint("admin", "root"), mint("marketer", "mark")
	var brand, partner struct{ ID string }
	if err := call(hc, "PUT", base+"/v1/programme", admin, map[string]any{
		"legal_name": "Cluster AS", "address": "Storgata 1, 0155 Oslo, Norway", "contact_email": "privacy@cluster.example",
		"dpo_contact":           "dpo@cluster.example",
		"supervisory_authority": map[string]any{"name": "Datatilsynet", "complaint_url": "https://www.datatilsynet.no/en/"},
		"point_value":           map[string]any{"currency": "EUR", "amount": "0.01"},
		"jurisdictions":         []string{"NO"}}, nil); err != nil {
		return false, err
	}
	if err := call(hc, "POST", base+"/v1/recipients", admin, map[string]any{"name": "Cluster Brand", "kind": "first_party", "country": "NO", "privacy_policy_url": "https://brand.example/p"}, &brand); err != nil {
		return false, err
	}
	if err := call(hc, "POST", base+"/v1/recipients", admin, map[string]any{"name": "Cluster Partner", "kind": "third_party", "country": "SE", "privacy_policy_url": "https://partner.example/p"}, &partner); err != nil {
		return false, err
	}
	partnerTok := mint("partner", partner.ID)
	if err := call(hc, "PUT", base+"/v1/partner/webhook", partnerTok, map[string]any{"url": rcv.url}, nil); err != nil {
		return false, err
	}
	var draft struct{ ID string }
	if err := call(hc, "POST", base+"/v1/contracts", marketer, map[string]any{"title": "Cluster", "retention": "P30D",
		"items":          []any{map[string]any{"category": "location.city", "purpose": purpose, "recipients": []string{brand.ID, partner.ID}}},
		"reward":         map[string]any{"join_bonus": 0, "points_per_period": 1, "period": "PT1S"},
		"value_estimate": map[string]any{"amount": "4.80", "currency": "EUR", "per": "P1Y"}, "value_method": "revenue_attributable",
		"value_explanation": "Offer revenue per member who shares a city, a year."}, &draft); err != nil {
		return false, err
	}
	if err := call(hc, "POST", base+"/v1/contracts/"+draft.ID+"/publish", marketer, nil, nil); err != nil {
		return false, err
	}
	seed, err := pgx.Connect(ctx, c.url("quid", c.primary.port))
	if err != nil {
		return false, err
	}
	_, err = seed.Exec(ctx, `INSERT INTO members (id, attributes, created_at, updated_at)
		SELECT 'm' || g, '{"location.city":"Oslo","demographic.birthdate":"1990-05-01"}', now(), now() FROM generate_series(1, $1) g`, members)
	seed.Close(ctx)
	if err != nil {
		return false, fmt.Errorf("members: %w", err)
	}
	logf("cluster up in %s; load through HAProxy on %d", time.Since(began).Round(100*time.Millisecond), c.haproxyPort)

	// The load: workers until the end, counted per phase.
	l := &load{base: base, partnerTok: partnerTok,
		hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	l.contract.Store(draft.ID)
	var phases []phaseRow
	startPhase := func(name string) func() {
		st := &stats{errs: map[string]int{}, sample: map[string]string{}}
		l.phase.Store(st)
		t0 := time.Now()
		return func() { phases = append(phases, phaseRow{name, time.Since(t0), st}) }
	}
	end := startPhase("steady")
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := 0; w < 12; w++ {
		wg.Add(1)
		go func() { defer wg.Done(); l.worker(loadCtx, w) }()
	}
	stopped := false
	defer func() {
		if !stopped {
			stopLoad()
			wg.Wait()
		}
	}()
	sleep := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	if err := sleep(4 * time.Second); err != nil {
		return false, err
	}
	end()

	// Fault 1: SIGKILL a replica, restart it.
	end = startPhase("replica SIGKILL")
	victim := replicas[1]
	t0 := time.Now()
	_ = victim.cmd.Process.Signal(syscall.SIGKILL)
	logf("SIGKILL replica %d", victim.n)
	if err := sleep(time.Second); err != nil {
		return false, err
	}
	if err := victim.start(); err != nil {
		return false, err
	}
	if err := waitReady(victim.base(), 30*time.Second); err != nil {
		return false, err
	}
	replicaRecovery := time.Since(t0)
	killedAt := t0
	logf("replica %d back in %s", victim.n, replicaRecovery.Round(time.Millisecond))
	if err := sleep(2 * time.Second); err != nil {
		return false, err
	}
	end()

	// Fault 2: fail over while traffic runs.
	end = startPhase("failover")
	t0 = time.Now()
	l.watch.Store(t0.UnixNano())
	if err := c.pg("pg_ctl", "-D", c.primary.data, "-m", "immediate", "-w", "stop"); err != nil {
		return false, err
	}
	logf("primary stopped; promoting the standby")
	if err := c.pg("pg_ctl", "-D", c.standby.data, "-w", "promote"); err != nil {
		return false, err
	}
	if err := c.repoint(c.standby.port); err != nil {
		return false, err
	}
	logf("standby promoted and PgBouncer re-pointed in %s", time.Since(t0).Round(time.Millisecond))
	var failoverRecovery time.Duration
	for time.Since(t0) < 60*time.Second {
		if at := l.firstAfter.Load(); at != 0 {
			failoverRecovery = time.Duration(at - t0.UnixNano())
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	failedAt := t0
	if failoverRecovery == 0 {
		return false, errors.New("no join acknowledged within 60 s of the failover")
	}
	logf("first join acknowledged %s after the primary stopped", failoverRecovery.Round(time.Millisecond))
	if err := sleep(2 * time.Second); err != nil {
		return false, err
	}
	end()

	// After: a publish under load must reach every replica's offers.
	end = startPhase("after")
	var v2 struct{ ID string }
	if err := call(hc, "POST", base+"/v1/contracts/"+draft.ID+"/versions", marketer, nil, &v2); err != nil {
		return false, err
	}
	if err := call(hc, "POST", base+"/v1/contracts/"+v2.ID+"/publish", marketer, nil, nil); err != nil {
		return false, err
	}
	published := time.Now()
	l.contract.Store(v2.ID) // v1 is superseded: joins go to v2
	var offersLag time.Duration
	offersOK := true
	for _, r := range replicas {
		for {
			res, err := http.Get(r.base() + "/v1/offers")
			if err == nil {
				data, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if bytes.Contains(data, []byte(v2.ID)) {
					break
				}
			}
			if time.Since(published) > 10*time.Second {
				offersOK = false
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	offersLag = time.Since(published)
	if err := sleep(3 * time.Second); err != nil {
		return false, err
	}
	stopLoad()
	wg.Wait()
	stopped = true
	end()

	// Checks, against the new primary.
	logf("load stopped; checking")
	var checks []check
	db, err := pgx.Connect(ctx, c.url("quid", c.standby.port))
	if err != nil {
		return false, err
	}
	defer db.Close(ctx)
	var ids, mems []string
	want := map[string]string{}
	for _, a := range l.acks {
		ids, mems = append(ids, a.exchange), append(mems, a.member)
		want[a.member] = a.exchange
	}
	var found int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM exchanges WHERE id = ANY($1)`, ids).Scan(&found); err != nil {
		return false, err
	}
	checks = append(checks, check{"every acknowledged join exists", fmt.Sprintf("%d of %d", found, len(ids)), found == len(ids)})
	var dup int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM (SELECT member_id FROM exchanges WHERE member_id = ANY($1)
		GROUP BY member_id HAVING count(*) > 1) d`, mems).Scan(&dup); err != nil {
		return false, err
	}
	checks = append(checks, check{"no duplicate from retried keys", fmt.Sprintf("%d members with two exchanges, %d replays answered another exchange (%d re-sends)",
		dup, l.mismatched.Load(), l.retried.Load()), dup == 0 && l.mismatched.Load() == 0})

	verify := exec.CommandContext(ctx, bin, "verify")
	// Through PgBouncer, now in front of the new primary: verify must work
	// through a transaction pooler too.
	verify.Env = append(os.Environ(), "DATABASE_URL="+pooled)
	out, err := verify.CombinedOutput()
	checks = append(checks, check{"quid verify clean", lastLine(out), err == nil})

	// Every event for the partner delivered: wait for the outbox to drain
	// (a replica killed holding a lease leaves its rows to the others
	// once the lease, QUID_WEBHOOK_LEASE, is over).
	var pending int
	drainStart := time.Now()
	deadline := time.Now().Add(40 * time.Second)
	for {
		if err := db.QueryRow(ctx, `SELECT count(*) FROM webhook_outbox WHERE recipient_id = $1 AND delivered_at IS NULL`, partner.ID).Scan(&pending); err != nil {
			return false, err
		}
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	drained := time.Since(drainStart)
	rows, err := db.Query(ctx, `SELECT id::text FROM webhook_outbox WHERE recipient_id = $1`, partner.ID)
	if err != nil {
		return false, err
	}
	outbox, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, err
	}
	rcv.mu.Lock()
	// A replica that dies between sending and recording a delivery has it
	// sent again (at least once): only a second delivery of an event first
	// sent near a fault is explained.
	inFault := func(t time.Time) bool {
		return (t.After(killedAt.Add(-2*time.Second)) && t.Before(killedAt.Add(replicaRecovery))) ||
			(t.After(failedAt.Add(-2*time.Second)) && t.Before(failedAt.Add(failoverRecovery+2*time.Second)))
	}
	missing, twice, unexplained := 0, 0, 0
	for _, id := range outbox {
		switch n := rcv.ids[id]; {
		case n == 0:
			missing++
		case n > 1:
			twice++
			if !inFault(rcv.first[id]) {
				unexplained++
			}
		}
	}
	rcv.mu.Unlock()
	checks = append(checks, check{"every webhook event delivered at least once",
		fmt.Sprintf("%d events, %d undelivered (outbox drained %s after the load)", len(outbox), missing, drained.Round(100*time.Millisecond)),
		missing == 0 && len(outbox) > 0})
	checks = append(checks, check{"no webhook sent twice but across a fault",
		fmt.Sprintf("%d sent twice, first sent within 2 s of a fault; %d otherwise", twice-unexplained, unexplained), unexplained == 0})

	var jwks []string
	for _, r := range replicas {
		res, err := http.Get(r.base() + "/.well-known/jwks.json")
		if err != nil {
			jwks = append(jwks, err.Error())
			continue
		}
		data, _ := io.ReadAll(res.Body)
		res.Body.Close()
		jwks = append(jwks, string(data))
	}
	sameJWKS := len(jwks) == 3 && jwks[0] == jwks[1] && jwks[1] == jwks[2] && strings.Contains(jwks[0], `"kid"`)
	checks = append(checks, check{"every replica serves the same JWKS", fmt.Sprintf("%d replicas", len(jwks)), sameJWKS})
	checks = append(checks, check{"a publish reaches every replica's offers", fmt.Sprintf("%s, bound %s", offersLag.Round(time.Millisecond), offersBound),
		offersOK && offersLag <= offersBound})

	// The table.
	fmt.Printf("\nquidcluster %s UTC: primary + synchronous standby, PgBouncer (transaction), 3 replicas, HAProxy; %d load workers\n\n",
		began.UTC().Format("2006-01-02 15:04"), 12)
	fmt.Printf("%-16s %8s %9s %7s  %s\n", "phase", "length", "requests", "errors", "errors by kind")
	var total, totalErr int64
	for _, p := range phases {
		var kinds []string
		var n int
		for k, v := range p.st.errs {
			kinds = append(kinds, fmt.Sprintf("%s: %d", k, v))
			n += v
		}
		sort.Strings(kinds)
		total += p.st.requests.Load()
		totalErr += int64(n)
		fmt.Printf("%-16s %7.1fs %9d %7d  %s\n", p.name, p.d.Seconds(), p.st.requests.Load(), n, strings.Join(kinds, ", "))
	}
	fmt.Printf("%-16s %8s %9d %7d\n", "total", "", total, totalErr)
	for _, p := range phases {
		for k, v := range p.st.sample {
			fmt.Printf("  %s, %s: %s\n", p.name, k, strings.ReplaceAll(v, "\n", " "))
		}
	}
	fmt.Println()
	fmt.Printf("%-34s %s\n", "fault", "time to recover")
	fmt.Printf("%-34s %s (SIGKILL to /readyz 200 after restart, 1 s down)\n", "replica SIGKILL + restart", replicaRecovery.Round(time.Millisecond))
	fmt.Printf("%-34s %s (primary stopped to the next acknowledged join)\n\n", "failover to the standby", failoverRecovery.Round(time.Millisecond))
	var credits, points int64
	if err := db.QueryRow(ctx, `SELECT count(*), coalesce(sum(points), 0) FROM ledger_entries WHERE kind = 'period_credit'`).Scan(&credits, &points); err != nil {
		return false, err
	}
	fmt.Printf("work: %d joins acknowledged, %d cancels, %d partner reads granted, %d redemptions, %d periods paid by accrual (%d points), %d webhook events\n",
		len(l.acks), l.cancels.Load(), l.reads.Load(), l.redeemed.Load(), credits, points, len(outbox))
	passed = true
	for _, ch := range checks {
		mark := "ok  "
		if !ch.ok {
			mark = "FAIL"
			passed = false
		}
		fmt.Printf("%s %-44s %s\n", mark, ch.name, ch.detail)
	}
	fmt.Printf("\nwall time %s\n", time.Since(began).Round(100*time.Millisecond))
	return passed, nil
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
