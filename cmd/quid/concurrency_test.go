package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/config"
)

// liveClient talks to a listening Quid over its own TCP connection, so
// several clients released together reach the server in parallel.
type liveClient struct {
	base string
	hc   *http.Client
}

func newLiveClient(addr string, conns int) *liveClient {
	return &liveClient{base: "http://" + addr, hc: &http.Client{Timeout: 15 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: conns, DisableCompression: true}}}
}

// send is safe to call from any goroutine: it reports failures instead of
// failing the test, which only the test's goroutine may do.
func (c *liveClient) send(r req) (response, error) {
	var body io.Reader
	raw := r.raw()
	if raw != nil {
		body = bytes.NewReader(raw)
	}
	hr, err := http.NewRequest(r.Method, c.base+r.Path, body)
	if err != nil {
		return response{}, err
	}
	if raw != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.Token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, v := range r.Headers {
		hr.Header.Set(k, v)
	}
	res, err := c.hc.Do(hr)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	return response{Status: res.StatusCode, Header: res.Header, Body: out}, err
}

// reportingTo is the same API failing t instead of the test that made it,
// for use inside a subtest.
func (a *api) reportingTo(t testing.TB) *api {
	c := *a
	c.t = t
	return &c
}

// outcome is one request sent by a goroutine, with when it left and when
// its answer came back.
type outcome struct {
	req      req
	resp     response
	err      error
	sent     time.Time
	received time.Time
}

// releasedTogether sends build(i) for i in [0, n) from n goroutines, each on
// its own connection opened beforehand, all released by one barrier. Every
// answer is checked against openapi.yaml before it is returned.
func releasedTogether(t *testing.T, a *api, addr string, n int, build func(i int) req) []outcome {
	t.Helper()
	out := make([]outcome, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			c := newLiveClient(addr, 1)
			defer c.hc.CloseIdleConnections()
			_, warm := c.send(req{Method: "GET", Path: "/healthz"})
			ready.Done()
			<-start
			if warm != nil {
				out[i].err = warm
				return
			}
			out[i].req = build(i)
			out[i].sent = time.Now()
			out[i].resp, out[i].err = c.send(out[i].req)
			out[i].received = time.Now()
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	for _, o := range out {
		if o.err != nil {
			t.Fatalf("%s %s: %v", o.req.Method, o.req.Path, o.err)
		}
		a.checkSpec(o.req, o.req.raw(), o.resp)
	}
	return out
}

// statuses counts outcomes by HTTP status, for the figures and the checks.
func statuses(out []outcome) map[int]int {
	m := map[int]int{}
	for _, o := range out {
		m[o.resp.Status]++
	}
	return m
}

// problemCode is the `code` of a problem+json body.
func problemCode(t *testing.T, r response) string {
	t.Helper()
	code, _ := r.json(t)["code"].(string)
	return code
}

// buildQuid builds cmd/quid into dir, so accrual can run as separate OS
// processes, as cron runs it. It may run beside the test's own setup.
func buildQuid(dir string) (string, error) {
	bin := filepath.Join(dir, "quid")
	if out, err := exec.Command("go", "build", "-ldflags=-s -w", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// accrueProcesses runs `quid accrue --once` over and over in parallel
// slots until stopped, counting runs and the credits each reports.
type accrueProcesses struct {
	bin, databaseURL string
	stopping         atomic.Bool
	wg               sync.WaitGroup
	mu               sync.Mutex
	runs, credits    int
	failures         []string
}

var accrueReport = regexp.MustCompile(`credits=(\d+)`)

func (p *accrueProcesses) once() (int, error) {
	cmd := exec.Command(p.bin, "accrue", "--once")
	cmd.Env = []string{"DATABASE_URL=" + p.databaseURL, "QUID_JWT_SECRET=" + testSecret,
		"QUID_MIN_REWARD_PERIOD=1s", "QUID_LOG_LEVEL=warn", "QUID_LOG_FORMAT=text"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, stderr.Bytes())
	}
	m := accrueReport.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no report in %q", out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n, nil
}

func (p *accrueProcesses) start(slots int) {
	for range slots {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for !p.stopping.Load() {
				n, err := p.once()
				p.mu.Lock()
				p.runs++
				p.credits += n
				if err != nil {
					p.failures = append(p.failures, err.Error())
				}
				p.mu.Unlock()
			}
		}()
	}
}

// stop lets every running process finish its pass, then returns.
func (p *accrueProcesses) stop() {
	p.stopping.Store(true)
	p.wg.Wait()
}

// cancellation is one DELETE /v1/me/exchanges/{id} sent at a chosen instant.
type cancellation struct {
	member, contract string
	aim              string        // "never", "anywhere" or "boundary"
	after            time.Duration // from the join
	join             req
	joined           response
	exchange         string
	outcome
}

// DESIGN.md, rule 1 ("a racing accrual never pays a period that ends after
// the cancellation") and rule 2 ("each (exchange, period) is credited at
// most once, whatever the number of workers"): members cancel at random
// instants — some anywhere, some within milliseconds of a period boundary —
// while several `quid accrue` processes and the server's own worker credit
// one-second periods. Afterwards each exchange holds exactly the periods
// that ended inside its consent window, none twice, its bonus vested or
// voided by the same instant, and the ledger verifies.
func TestCancellationsRacingAccrueProcessesAndTheWorkerNeverPayAPeriodAfterTheCancellation(t *testing.T) {
	t.Parallel()
	built, buildErr, began := make(chan string, 1), make(chan error, 1), time.Now()
	go func(dir string) {
		bin, err := buildQuid(dir)
		buildErr <- err
		built <- bin
	}(t.TempDir())
	a := newAPI(t, func(c *config.Config) { c.AccrualInterval = 50 * time.Millisecond })
	addr := a.listen(t) // serving also runs the workers, accrual among them
	f := a.fixtures()

	// Contract "open": a bonus vesting after 2 s and 5 points a second, with
	// no end. Contract "short": 3 points a second for at most 2 periods and
	// consent that lapses after 3 s, so expiry and the cap race too.
	open := contractBody(f)
	open["reward"] = map[string]any{"join_bonus": 20, "vesting": "PT2S", "points_per_period": 5, "period": "PT1S"}
	delete(open, "duration")
	short := contractBody(f)
	short["duration"] = "PT3S"
	short["reward"] = map[string]any{"join_bonus": 0, "points_per_period": 3, "period": "PT1S", "max_periods": 2}
	contracts := []string{a.publishContract(f, open), a.publishContract(f, short)}

	const members = 30
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	t.Logf("seed %d", seed)
	// Each exchange is left active, or cancelled at a random instant of its
	// first 3.5 s, or within ±15 ms of the end of one of its first 3 periods;
	// the instants are drawn here and taken from the join's own joined_at.
	var plan []*cancellation
	tokens := make([]string, members)
	for i := range members {
		tokens[i] = token(t, app.RoleMember, fmt.Sprintf("racer-%02d", i))
		a.enrol(tokens[i])
		for _, contract := range contracts {
			c := &cancellation{member: tokens[i], contract: contract}
			switch r := rng.Float64(); {
			case r < 0.15:
				c.aim = "never"
			case r < 0.6:
				c.aim, c.after = "anywhere", time.Duration(rng.Int64N(int64(3500*time.Millisecond)))
			default:
				c.aim = "boundary"
				c.after = time.Duration(1+rng.IntN(3))*time.Second + time.Duration(rng.Int64N(int64(30*time.Millisecond))) - 15*time.Millisecond
			}
			plan = append(plan, c)
		}
	}

	if err := <-buildErr; err != nil {
		t.Fatal(err)
	}
	bin := <-built
	t.Logf("built quid beside the setup; both took %v", time.Since(began).Round(time.Millisecond))
	procs := &accrueProcesses{bin: bin, databaseURL: a.cfg.DatabaseURL}
	procs.start(3)
	client := newLiveClient(addr, len(plan))
	defer client.hc.CloseIdleConnections()
	raceStart := time.Now()
	var wg sync.WaitGroup
	for _, c := range plan {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.join = req{Method: "POST", Path: "/v1/me/exchanges", Token: c.member, Body: map[string]any{"contract_id": c.contract}}
			if c.joined, c.err = client.send(c.join); c.err != nil || c.joined.Status != 201 {
				return
			}
			var ex struct {
				ID       string
				JoinedAt time.Time `json:"joined_at"`
			}
			if c.err = json.Unmarshal(c.joined.Body, &ex); c.err != nil {
				return
			}
			c.exchange = ex.ID
			if c.aim == "never" {
				return
			}
			time.Sleep(time.Until(ex.JoinedAt.Add(c.after)))
			c.req = req{Method: "DELETE", Path: "/v1/me/exchanges/" + c.exchange, Token: c.member}
			c.sent = time.Now()
			c.resp, c.err = client.send(c.req)
			c.received = time.Now()
		}()
	}
	wg.Wait()
	// Let the uncancelled exchanges earn a little longer under the race.
	time.Sleep(time.Until(raceStart.Add(4500 * time.Millisecond)))
	procs.stop()
	if len(procs.failures) > 0 {
		t.Fatalf("%d of %d accrue processes failed, first: %s", len(procs.failures), procs.runs, procs.failures[0])
	}
	// One last pass pays whatever came due while the racers stopped.
	settled := time.Now()
	final, err := procs.once()
	if err != nil {
		t.Fatalf("final accrue: %v", err)
	}

	cancelledAt := map[string]cancellation{}
	var afterExpiry int
	for _, c := range plan {
		if c.err != nil {
			t.Fatalf("join or cancel %s: %v", c.exchange, c.err)
		}
		a.checkSpec(c.join, c.join.raw(), c.joined)
		expect(t, c.joined, 201)
		if c.aim == "never" {
			continue
		}
		a.checkSpec(c.req, nil, c.resp)
		expect(t, c.resp, 200)
		body := c.resp.json(t)
		if body["cancelled_at"] == nil {
			afterExpiry++ // the consent had lapsed before the cancellation arrived
			if body["status"] != "expired" {
				t.Fatalf("cancel answered %s without cancelled_at", c.resp.Body)
			}
			continue
		}
		cancelledAt[c.exchange] = *c
	}

	type exchangeRow struct {
		ID           string
		JoinedAt     time.Time
		EndedAt      *time.Time
		ExpiresAt    *time.Time
		BonusVestsAt *time.Time
		Status       string
		MaxPeriods   *int
	}
	var rows []exchangeRow
	if err := a.svc.db.Raw(`SELECT e.id, e.joined_at, e.ended_at, e.expires_at, e.bonus_vests_at, e.status, c.max_periods
		FROM exchanges e JOIN contracts c ON c.id = e.contract_id`).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	type entryRow struct {
		ExchangeID             string
		Kind                   string
		PeriodStart, PeriodEnd *time.Time
	}
	var entries []entryRow
	if err := a.svc.db.Raw(`SELECT exchange_id, kind, period_start, period_end FROM ledger_entries
		WHERE exchange_id IS NOT NULL ORDER BY exchange_id, period_start NULLS FIRST`).Scan(&entries).Error; err != nil {
		t.Fatal(err)
	}
	// The server's worker keeps paying: nothing read above was earned later.
	after := time.Now()
	byExchange := map[string][]entryRow{}
	for _, e := range entries {
		byExchange[e.ExchangeID] = append(byExchange[e.ExchangeID], e)
	}

	// Clocks: the database's clock_timestamp() and the test's time.Now()
	// read the same host clock; PostgreSQL keeps microseconds.
	const slack = time.Millisecond
	var credits, nearMisses, vested, voided int
	for _, x := range rows {
		var periods []entryRow
		kinds := map[string]int{}
		for _, e := range byExchange[x.ID] {
			kinds[e.Kind]++
			if e.Kind == "period_credit" {
				periods = append(periods, e)
			}
		}
		credits += len(periods)
		for k, p := range periods {
			start, end := x.JoinedAt.Add(time.Duration(k)*time.Second), x.JoinedAt.Add(time.Duration(k+1)*time.Second)
			if !p.PeriodStart.Equal(start) || !p.PeriodEnd.Equal(end) {
				t.Errorf("exchange %s: credit %d covers [%v, %v), want [%v, %v): a period skipped or paid twice",
					x.ID, k, p.PeriodStart, p.PeriodEnd, start, end)
			}
		}
		until := after
		if x.EndedAt != nil {
			until = *x.EndedAt
		}
		if c, ok := cancelledAt[x.ID]; ok {
			if x.Status != "cancelled" || x.EndedAt == nil {
				t.Fatalf("exchange %s: the client saw a cancellation, the database says %s", x.ID, x.Status)
			}
			seen, _ := time.Parse(time.RFC3339Nano, c.resp.json(t)["cancelled_at"].(string))
			if !seen.Equal(*x.EndedAt) || x.EndedAt.Before(c.sent.Add(-slack)) || x.EndedAt.After(c.received.Add(slack)) {
				t.Errorf("exchange %s: cancelled at %v (answer %v), outside the request [%v, %v]", x.ID, *x.EndedAt, seen, c.sent, c.received)
			}
			for _, p := range periods {
				// The rule, and the weaker form the client can check alone.
				if p.PeriodEnd.After(seen) || !p.PeriodStart.Before(c.received) {
					t.Errorf("exchange %s: paid [%v, %v) though the member cancelled at %v (answer received %v)",
						x.ID, *p.PeriodStart, *p.PeriodEnd, seen, c.received)
				}
			}
			if n := len(periods); n > 0 && seen.Sub(*periods[n-1].PeriodEnd) < 50*time.Millisecond {
				nearMisses++
			}
		}
		// Rule 2, "pays every period that was earned, and nothing more".
		earned := int(until.Sub(x.JoinedAt) / time.Second)
		if x.MaxPeriods != nil {
			earned = min(earned, *x.MaxPeriods)
		}
		if x.EndedAt != nil && len(periods) != earned {
			t.Errorf("exchange %s (%s at %v): %d credits, %d periods were earned", x.ID, x.Status, *x.EndedAt, len(periods), earned)
		}
		if x.EndedAt == nil {
			due := int(settled.Sub(x.JoinedAt) / time.Second)
			if x.MaxPeriods != nil {
				due = min(due, *x.MaxPeriods)
			}
			if len(periods) < due || len(periods) > earned {
				t.Errorf("exchange %s (active): %d credits, between %d and %d were earned", x.ID, len(periods), due, earned)
			}
		}
		// The join bonus follows the same instant: voided by a cancellation
		// before it vested, vested otherwise.
		if x.BonusVestsAt != nil {
			cancelledFirst := x.EndedAt != nil && x.EndedAt.Before(*x.BonusVestsAt)
			switch {
			case cancelledFirst && (kinds["bonus_voided"] != 1 || kinds["bonus_vested"] != 0):
				t.Errorf("exchange %s ended %v before its bonus vested at %v, entries %v", x.ID, *x.EndedAt, *x.BonusVestsAt, kinds)
			case !cancelledFirst && (kinds["bonus_vested"] != 1 || kinds["bonus_voided"] != 0):
				t.Errorf("exchange %s: bonus due at %v was not vested exactly once, entries %v", x.ID, *x.BonusVestsAt, kinds)
			}
			vested += kinds["bonus_vested"]
			voided += kinds["bonus_voided"]
		}
	}
	var duplicates int
	if err := a.svc.db.Raw(`SELECT count(*) FROM (SELECT 1 FROM ledger_entries WHERE kind = 'period_credit'
		GROUP BY exchange_id, period_start HAVING count(*) > 1) d`).Scan(&duplicates).Error; err != nil {
		t.Fatal(err)
	}
	if duplicates > 0 {
		t.Errorf("%d periods were credited more than once", duplicates)
	}
	aims := map[string]int{}
	for _, c := range plan {
		aims[c.aim]++
	}
	report := mustVerify(t, a.cfg.DatabaseURL)
	t.Logf("%d members, %d exchanges joined at once; %d cancellations (%d anywhere, %d at a period boundary ±15 ms; %d after the consent lapsed), %d left active",
		members, len(rows), aims["anywhere"]+aims["boundary"], aims["anywhere"], aims["boundary"], afterExpiry, aims["never"])
	t.Logf("3 accrue slots ran %d processes crediting %d periods, the final process %d, the server's worker the other %d; %d credits in all, %d duplicates",
		procs.runs, procs.credits, final, credits-procs.credits-final, credits, duplicates)
	t.Logf("%d cancellations came less than 50 ms after the last period they were paid; bonuses %d vested, %d voided", nearMisses, vested, voided)
	t.Log(report)
}

// DESIGN.md, rule 3 ("no balance goes negative; redemptions and credits are
// atomic"): many redemptions released at one instant by the same member
// spend at most what the member has, every refusal is the documented 422,
// and no reader ever sees a negative balance.
func TestConcurrentRedemptionsNeverSpendMoreThanTheBalance(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	addr := a.listen(t)
	f := a.fixtures()
	body := contractBody(f)
	body["reward"] = map[string]any{"join_bonus": 500, "points_per_period": 0} // available at once
	contract := a.publishContract(f, body)
	const n, balance = 50, 500
	richMember := func(t *testing.T, name string) string {
		a := a.reportingTo(t)
		tok := token(t, app.RoleMember, name)
		a.enrol(tok)
		a.joinContract(tok, contract)
		checkBalances(t, a, tok, balance, 0)
		return tok
	}
	// watch polls the member's balance until stopped and returns the lowest
	// it saw.
	watch := func(t *testing.T, tok string) func() (lowest int64, reads int) {
		stop := make(chan struct{})
		done := make(chan struct{})
		lowest, reads := int64(balance), 0
		var failure error
		go func() {
			defer close(done)
			c := newLiveClient(addr, 1)
			defer c.hc.CloseIdleConnections()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := c.send(req{Method: "GET", Path: "/v1/me", Token: tok})
				if err != nil || r.Status != 200 {
					failure = fmt.Errorf("GET /v1/me: %v %d %s", err, r.Status, r.Body)
					return
				}
				var me struct{ Balance struct{ Available int64 } }
				if err := json.Unmarshal(r.Body, &me); err != nil {
					failure = err
					return
				}
				lowest = min(lowest, me.Balance.Available)
				reads++
			}
		}()
		return func() (int64, int) {
			close(stop)
			<-done
			if failure != nil {
				t.Fatal(failure)
			}
			return lowest, reads
		}
	}
	t.Run("the whole balance, fifty times at once", func(t *testing.T) {
		a := a.reportingTo(t)
		tok := richMember(t, "whole")
		stop := watch(t, tok)
		out := releasedTogether(t, a, addr, n, func(i int) req {
			return req{Method: "POST", Path: "/v1/me/redemptions", Token: tok,
				Body: map[string]any{"points": balance, "reference": fmt.Sprintf("all of it #%d", i)}}
		})
		lowest, r := stop()
		got := statuses(out)
		if got[201] != 1 || got[422] != n-1 {
			t.Fatalf("outcomes %v, want one 201 and %d × 422", got, n-1)
		}
		for _, o := range out {
			if o.resp.Status == 422 {
				problemAt(t, o.resp, 422, "/points")
				if code := problemCode(t, o.resp); code != "insufficient-points" {
					t.Fatalf("refusal code %q", code)
				}
			}
		}
		if lowest < 0 {
			t.Fatalf("a reader saw a balance of %d", lowest)
		}
		checkBalances(t, a, tok, 0, 0)
		t.Logf("outcomes %v; %d balance reads during the storm, lowest %d", got, r, lowest)
	})

	t.Run("amounts that cannot all fit", func(t *testing.T) {
		a := a.reportingTo(t)
		tok := richMember(t, "mixed")
		stop := watch(t, tok)
		amounts := make([]int64, n)
		for i := range amounts {
			amounts[i] = int64(10 + (i*37)%31) // 10..40: together far more than the balance
		}
		out := releasedTogether(t, a, addr, n, func(i int) req {
			return req{Method: "POST", Path: "/v1/me/redemptions", Token: tok,
				Body: map[string]any{"points": amounts[i], "reference": fmt.Sprintf("part #%d", i)}}
		})
		lowest, r := stop()
		var spent int64
		smallestRefused := int64(balance + 1)
		for i, o := range out {
			switch o.resp.Status {
			case 201:
				spent += amounts[i]
			case 422:
				problemAt(t, o.resp, 422, "/points")
				smallestRefused = min(smallestRefused, amounts[i])
			default:
				t.Fatalf("redemption of %d answered %d: %s", amounts[i], o.resp.Status, o.resp.Body)
			}
		}
		if spent > balance || lowest < 0 {
			t.Fatalf("spent %d of %d; lowest balance seen %d", spent, balance, lowest)
		}
		// The balance only falls, so a refusal means even the final balance
		// could not pay it: nothing was refused for any other reason.
		if left := balance - spent; left >= smallestRefused {
			t.Fatalf("%d points left, yet a redemption of %d was refused", left, smallestRefused)
		}
		checkBalances(t, a, tok, balance-spent, 0)
		t.Logf("outcomes %v; spent %d of %d; %d balance reads, lowest %d", statuses(out), spent, balance, r, lowest)
	})

	t.Run("one Idempotency-Key retried fifty times at once", func(t *testing.T) {
		a := a.reportingTo(t)
		tok := richMember(t, "retrier")
		out := releasedTogether(t, a, addr, n, func(int) req {
			return req{Method: "POST", Path: "/v1/me/redemptions", Token: tok, Headers: map[string]string{"Idempotency-Key": "spend-once"},
				Body: map[string]any{"points": balance, "reference": "the same request"}}
		})
		var replays int
		for _, o := range out {
			expect(t, o.resp, 201)
			if string(o.resp.Body) != string(out[0].resp.Body) {
				t.Fatalf("answers differ:\n%s\n%s", o.resp.Body, out[0].resp.Body)
			}
			if o.resp.Header.Get("Idempotent-Replayed") == "true" {
				replays++
			}
		}
		if replays != n-1 {
			t.Fatalf("%d replays, want %d", replays, n-1)
		}
		var redemptions int
		a.svc.db.Raw(`SELECT count(*) FROM ledger_entries WHERE member_id = 'retrier' AND kind = 'redemption'`).Scan(&redemptions)
		if redemptions != 1 {
			t.Fatalf("%d redemptions written", redemptions)
		}
		checkBalances(t, a, tok, 0, 0)
		t.Logf("outcomes %v, %d replayed, %d redemption written", statuses(out), replays, redemptions)
	})
	t.Log(mustVerify(t, a.cfg.DatabaseURL))
}

// DESIGN.md: "the bonus is paid at most once per member per contract", and
// the schema's one active exchange per member and family: the same join
// released fifty times at once, without a key, with one key and with fifty
// keys, makes one exchange and one bonus; the others get what openapi.yaml
// declares (409, or the first answer replayed).
func TestConcurrentDuplicateJoinsMakeOneExchangeAndPayOneBonus(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	addr := a.listen(t)
	f := a.fixtures()
	contract := a.publishContract(f, contractBody(f)) // 200 points pending for 14 days
	// A first join caches the contract, so the storms find it cached, as
	// in production.
	warm := token(t, app.RoleMember, "warm")
	a.enrol(warm)
	a.joinContract(warm, contract)

	const n = 50
	variants := []struct {
		name, member string
		key          func(i int) string
	}{
		{"without an Idempotency-Key", "dup-nokey", func(int) string { return "" }},
		{"with one Idempotency-Key", "dup-samekey", func(int) string { return "join-once" }},
		{"with a different Idempotency-Key each", "dup-keys", func(i int) string { return fmt.Sprintf("join-%d", i) }},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			a := a.reportingTo(t)
			tok := token(t, app.RoleMember, v.member)
			a.enrol(tok)
			out := releasedTogether(t, a, addr, n, func(i int) req {
				r := req{Method: "POST", Path: "/v1/me/exchanges", Token: tok, Body: map[string]any{"contract_id": contract}}
				if k := v.key(i); k != "" {
					r.Headers = map[string]string{"Idempotency-Key": k}
				}
				return r
			})
			got := statuses(out)
			// One join is answered as new; with one key, every other is its
			// answer replayed byte for byte, otherwise a 409.
			var first response
			var fresh, replayed int
			for _, o := range out {
				switch {
				case o.resp.Status == 201 && o.resp.Header.Get("Idempotent-Replayed") == "true":
					replayed++
				case o.resp.Status == 201:
					first = o.resp
					fresh++
				}
			}
			if want409 := n - 1; v.member == "dup-samekey" {
				want409 = 0
				if got[201] != n || replayed != n-1 {
					t.Fatalf("outcomes %v, %d replayed; want %d × 201, %d of them replayed", got, replayed, n, n-1)
				}
			} else if got[201] != 1 || got[409] != want409 {
				t.Fatalf("outcomes %v, want one 201 and %d × 409", got, want409)
			}
			if fresh != 1 {
				t.Fatalf("%d joins answered as new, want 1", fresh)
			}
			for _, o := range out {
				if o.resp.Status == 201 && string(o.resp.Body) != string(first.Body) {
					t.Fatalf("a replay differs from the first answer:\n%s\n%s", o.resp.Body, first.Body)
				}
				if o.resp.Status == 409 && problemCode(t, o.resp) != "already-joined" {
					t.Fatalf("conflict: %s", o.resp.Body)
				}
			}
			var counts struct{ Exchanges, Joined, Bonuses, Events int }
			if err := a.svc.db.Raw(`SELECT
				(SELECT count(*) FROM exchanges WHERE member_id = @m) AS exchanges,
				(SELECT count(*) FROM consent_events WHERE member_id = @m AND kind = 'joined') AS joined,
				(SELECT count(*) FROM ledger_entries WHERE member_id = @m AND kind = 'bonus_pending') AS bonuses,
				(SELECT count(*) FROM webhook_outbox WHERE event_type = 'exchange.joined' AND payload->'data'->>'member_id' = @m) AS events`,
				map[string]any{"m": v.member}).Scan(&counts).Error; err != nil {
				t.Fatal(err)
			}
			// The contract names two recipients, each told once.
			if counts.Exchanges != 1 || counts.Joined != 1 || counts.Bonuses != 1 || counts.Events != 2 {
				t.Fatalf("after %d joins: %+v, want one exchange, one joined event, one bonus and 2 webhook events", n, counts)
			}
			checkBalances(t, a, tok, 0, 200)
			t.Logf("outcomes %v (%d new, %d replayed); written %+v", got, fresh, replayed, counts)
		})
	}
	t.Log(mustVerify(t, a.cfg.DatabaseURL))
}
