package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// phase is what one timed run measured: how many operations, how long they
// took in all, the CPU the processes spent meanwhile and the latencies.
type phase struct {
	n       int
	elapsed time.Duration
	cpu     cpuTimes
	errs    int64
	lat     []time.Duration
}

func (p phase) rate() float64 {
	if p.elapsed <= 0 {
		return 0
	}
	return float64(p.n) / p.elapsed.Seconds()
}

// plus joins two halves of one scenario (run apart to cancel drift).
func (p phase) plus(q phase) phase {
	return phase{n: p.n + q.n, elapsed: p.elapsed + q.elapsed, cpu: p.cpu.add(q.cpu), errs: p.errs + q.errs,
		lat: append(append([]time.Duration{}, p.lat...), q.lat...)}
}

func (p phase) percentile(q float64) time.Duration {
	if len(p.lat) == 0 {
		return 0
	}
	s := append([]time.Duration{}, p.lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*q)]
}

// saturate runs n operations over `workers` goroutines as fast as they go.
func (b *bench) saturate(n, workers int, op func(i int) error) phase {
	lat := make([]time.Duration, n)
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	before := b.cpuNow()
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
				if err := op(i); err != nil && failed.Add(1) <= 3 {
					fmt.Fprintln(os.Stderr, "  error:", err)
				}
				lat[i] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	return phase{n: n, elapsed: elapsed, cpu: b.cpuNow().sub(before), errs: failed.Load(), lat: lat}
}

// paced offers n operations at a fixed rate from `workers` goroutines and
// measures latency from each operation's scheduled start, so time spent
// waiting for a free worker counts (no coordinated omission).
func (b *bench) paced(n, rate, workers int, op func(i int) error) phase {
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
				if err := op(j.i); err != nil && failed.Add(1) <= 3 {
					fmt.Fprintln(os.Stderr, "  error:", err)
				}
				lat[j.i] = time.Since(j.due)
			}
		}()
	}
	before := b.cpuNow()
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	for i := 0; i < n; i++ {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		jobs <- job{i, due}
	}
	close(jobs)
	wg.Wait()
	return phase{n: n, elapsed: time.Since(start), cpu: b.cpuNow().sub(before), errs: failed.Load(), lat: lat}
}

// during runs op from `workers` goroutines for d and counts successes.
func (b *bench) during(d time.Duration, workers int, op func(w, i int) error) phase {
	var ok, failed atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	before := b.cpuNow()
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				if err := op(w, i); err != nil {
					if failed.Add(1) <= 3 {
						fmt.Fprintln(os.Stderr, "  error:", err)
					}
					continue
				}
				ok.Add(1)
			}
		}(w)
	}
	wg.Wait()
	return phase{n: int(ok.Load()), elapsed: time.Since(start), cpu: b.cpuNow().sub(before), errs: failed.Load()}
}

// get fetches url with fasthttp (the load generator shares the two cores
// with the server and PostgreSQL; net/http's client cost about twice the
// CPU per request) and checks the status.
func get(c *fasthttp.Client, url, token string, want int) error {
	req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(res)
	req.SetRequestURI(url)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if err := c.Do(req, res); err != nil {
		return err
	}
	if res.StatusCode() != want {
		return fmt.Errorf("GET %s: %d %.200s", strings.SplitN(url, "?", 2)[0], res.StatusCode(), res.Body())
	}
	return nil
}

// cpuTimes is CPU time used so far by the server, by this run's PostgreSQL
// cluster (its postmaster, with the backends it has reaped, and its live
// children: other helpers' clusters on the machine are not counted) and by
// this load generator, which also runs the raw SQL baselines. Unlike
// throughput, CPU per operation barely moves when the machine is busy with
// something else.
type cpuTimes struct{ server, postgres, loadgen time.Duration }

func (b *bench) cpuNow() cpuTimes {
	t := cpuTimes{loadgen: procCPU("self")}
	if b.serverPID > 0 {
		t.server = procCPU(strconv.Itoa(b.serverPID))
	}
	if b.postmaster > 0 {
		pm := strconv.Itoa(b.postmaster)
		t.postgres = procCPU(pm)
		dirs, _ := os.ReadDir("/proc")
		for _, d := range dirs {
			if d.Name()[0] < '0' || d.Name()[0] > '9' {
				continue
			}
			if ppid(d.Name()) == pm {
				t.postgres += procCPU(d.Name())
			}
		}
	}
	return t
}

// statFields are the fields of /proc/<pid>/stat after the command name.
func statFields(pid string) []string {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 > len(b) {
		return nil
	}
	return strings.Fields(string(b[i+2:]))
}

func ppid(pid string) string {
	if f := statFields(pid); len(f) > 1 {
		return f[1]
	}
	return ""
}

// procCPU is user plus system time of /proc/<pid>, with its waited-for children.
func procCPU(pid string) time.Duration {
	f := statFields(pid)
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
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

func (a cpuTimes) add(b cpuTimes) cpuTimes {
	return cpuTimes{a.server + b.server, a.postgres + b.postgres, a.loadgen + b.loadgen}
}

// peakRSS is the process's high-water resident set, in MiB.
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

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
