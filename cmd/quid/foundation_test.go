package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/config"
)

func TestOperationsEndpointsAnswer(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	expect(t, a.do(req{Method: "GET", Path: "/healthz"}), 200)
	expect(t, a.do(req{Method: "GET", Path: "/readyz"}), 200)
	spec := expect(t, a.do(req{Method: "GET", Path: "/openapi.yaml"}), 200)
	if !strings.HasPrefix(string(spec.Body), "openapi: 3.1") {
		t.Fatalf("spec: %.40s", spec.Body)
	}
	m := expect(t, a.do(req{Method: "GET", Path: "/metrics"}), 200)
	for _, want := range []string{`quid_http_requests_total{method="GET",route="/healthz",status="200"} 1`, "quid_http_request_duration_seconds_bucket", "go_sql_open_connections"} {
		if !strings.Contains(string(m.Body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestBadRequestsGetProblemDetails(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	admin := token(t, app.RoleAdmin, "root")
	valid := `{"name":"Brand","kind":"first_party","country":"NO","privacy_policy_url":"https://b.example/p"}`
	tests := []struct {
		name    string
		r       req
		status  int
		pointer string
	}{
		{"malformed JSON", req{Method: "POST", Path: "/v1/recipients", Body: `{"name":`, Token: admin}, 400, ""},
		{"trailing data", req{Method: "POST", Path: "/v1/recipients", Body: valid + `{}`, Token: admin}, 400, ""},
		{"empty body", req{Method: "POST", Path: "/v1/recipients", Body: ` `, Token: admin}, 400, ""},
		{"unknown field", req{Method: "POST", Path: "/v1/recipients", Body: strings.Replace(valid, `"name"`, `"nickname":"x","name"`, 1), Token: admin}, 422, "/nickname"},
		{"wrong type", req{Method: "POST", Path: "/v1/recipients", Body: strings.Replace(valid, `"Brand"`, `7`, 1), Token: admin}, 422, "/name"},
		{"missing field", req{Method: "POST", Path: "/v1/recipients", Body: `{"kind":"first_party","country":"NO","privacy_policy_url":"https://b.example/p"}`, Token: admin}, 422, "/name"},
		{"bad enum", req{Method: "POST", Path: "/v1/recipients", Body: strings.Replace(valid, "first_party", "fourth_party", 1), Token: admin}, 422, "/kind"},
		{"unknown route", req{Method: "GET", Path: "/v1/nothing-here"}, 404, ""},
		{"wrong method", req{Method: "DELETE", Path: "/v1/offers"}, 405, ""},
		// The member routes' gate must not answer for paths that do not exist.
		{"unknown member route without a token", req{Method: "GET", Path: "/v1/me/nothing-here"}, 404, ""},
		{"wrong method on a member route without a token", req{Method: "DELETE", Path: "/v1/me/points"}, 405, ""},
		{"a JSON look-alike media type", req{Method: "POST", Path: "/v1/recipients", Body: valid, Token: admin,
			Headers: map[string]string{"Content-Type": "application/jsonp"}}, 415, ""},
		{"JSON in another charset", req{Method: "POST", Path: "/v1/recipients", Body: valid, Token: admin,
			Headers: map[string]string{"Content-Type": "application/json; charset=iso-8859-1"}}, 415, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.do(tt.r)
			if tt.pointer != "" {
				problemAt(t, r, tt.status, tt.pointer)
				return
			}
			expect(t, r, tt.status)
			p := r.json(t)
			if p["status"] != float64(tt.status) || p["type"] == "" || p["title"] == "" {
				t.Fatalf("not a problem body: %s", r.Body)
			}
		})
	}
	// Not JSON at all is refused before decoding.
	r := a.do(req{Method: "POST", Path: "/v1/recipients", Token: admin, Headers: map[string]string{"Content-Type": "text/plain"}})
	expect(t, r, 415)
	// Media type parameters are read, not matched as text.
	utf8JSON := req{Method: "POST", Path: "/v1/recipients", Body: valid, Token: admin, Headers: map[string]string{"Content-Type": "Application/JSON; charset=UTF-8"}}
	expect(t, a.do(utf8JSON), 201)
	// None of the failed requests wrote anything.
	list := expect(t, a.do(req{Method: "GET", Path: "/v1/recipients", Token: admin}), 200).json(t)
	if n := len(list["items"].([]any)); n != 1 {
		t.Fatalf("failed requests left %d recipients besides the valid one", n-1)
	}
}

func TestAuthenticationAndRolesOverHTTP(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	tests := []struct {
		name   string
		header string
		status int
	}{
		{"no token", "", 401},
		{"not bearer", "Basic YWxpY2U6c2VjcmV0", 401},
		{"garbage token", "Bearer abc.def.ghi", 401},
		{"member on an admin route", "Bearer " + token(t, app.RoleMember, "alice"), 403},
		{"marketer may list recipients", "Bearer " + token(t, app.RoleMarketer, "mark"), 200},
		{"admin", "Bearer " + token(t, app.RoleAdmin, "root"), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.do(req{Method: "GET", Path: "/v1/recipients", Headers: map[string]string{"Authorization": tt.header}})
			expect(t, r, tt.status)
			if tt.status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
}

// flakyProxy forwards TCP to PostgreSQL and can be cut off, slowed down and
// restored, to show how the service behaves when its database is not there.
type flakyProxy struct {
	t        testing.TB
	addr     string
	upstream string
	mu       sync.Mutex
	ln       net.Listener
	conns    []net.Conn
	delay    atomic.Int64
}

func newFlakyProxy(t testing.TB, upstream string) *flakyProxy {
	p := &flakyProxy{t: t, upstream: upstream}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *flakyProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := u.Read(buf)
					if n > 0 {
						time.Sleep(time.Duration(p.delay.Load()))
						if _, werr := c.Write(buf[:n]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				c.Close()
			}()
		}
	}()
}

func (p *flakyProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *flakyProxy) up() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}

func throughProxy(t testing.TB, cfg *config.Config) *flakyProxy {
	u, err := url.Parse(cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	p := newFlakyProxy(t, u.Host)
	u.Host = p.addr
	cfg.DatabaseURL = u.String()
	return p
}

func TestReadinessFollowsTheDatabase(t *testing.T) {
	t.Parallel()
	var proxy *flakyProxy
	a := newAPI(t, func(c *config.Config) { proxy = throughProxy(t, c) })
	expect(t, a.do(req{Method: "GET", Path: "/readyz"}), 200)
	proxy.down()
	r := expect(t, a.do(req{Method: "GET", Path: "/readyz"}), 503)
	if !strings.Contains(string(r.Body), "database unreachable") {
		t.Fatalf("503 body: %s", r.Body)
	}
	expect(t, a.do(req{Method: "GET", Path: "/healthz"}), 200)
	proxy.up()
	deadline := time.Now().Add(10 * time.Second)
	for a.do(req{Method: "GET", Path: "/readyz"}).Status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("readiness did not come back after the database did")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	t.Parallel()
	var proxy *flakyProxy
	a := newAPI(t, func(c *config.Config) { proxy = throughProxy(t, c) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.svc.serve(ctx, ln, a.cfg) }()

	expect(t, a.do(req{Method: "GET", Path: "/readyz"}), 200) // warm the pool: no handshakes through the slow proxy
	proxy.delay.Store(int64(150 * time.Millisecond))          // every database answer now takes 0.15 s
	got := make(chan int, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/readyz")
		if err != nil {
			got <- -1
			return
		}
		res.Body.Close()
		got <- res.StatusCode
	}()
	time.Sleep(200 * time.Millisecond) // the request is now waiting on the database
	stop()
	if status := <-got; status != 200 {
		t.Fatalf("in-flight request got %d during shutdown, want 200", status)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Fatal("server still accepts connections after shutdown")
	}
}

// Every route the server registers is described in openapi.yaml, so the
// spec cannot lag behind the code even for routes no test calls.
func TestEveryRouteIsInTheSpec(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	router := spec(t)
	seen := map[string]bool{}
	for _, r := range a.svc.app.GetRoutes(true) {
		if r.Method == "HEAD" || r.Method == "USE" || r.Path == "/" {
			continue
		}
		path := r.Path
		for _, p := range r.Params {
			path = strings.Replace(path, ":"+p, "00000000-0000-0000-0000-000000000000", 1)
		}
		key := r.Method + " " + path
		if seen[key] {
			continue
		}
		seen[key] = true
		hr, _ := http.NewRequest(r.Method, "http://quid.test"+path, nil)
		if _, _, err := router.FindRoute(hr); err != nil {
			t.Errorf("%s %s is served but not in openapi.yaml: %v", r.Method, r.Path, err)
		}
	}
	if len(seen) < 35 {
		t.Fatalf("only %d routes found", len(seen))
	}
}

func TestOversizedBodiesAreRefusedWithAProblem(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.svc.serve(ctx, ln, a.cfg) }()
	defer func() { stop(); <-done }()
	// The server answers once it has read the declared length, so the body is
	// never sent: writing it would race the server closing the connection.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	head := "POST /v1/recipients HTTP/1.1\r\nHost: quid.test\r\nContent-Type: application/json\r\n" +
		"Content-Length: " + strconv.Itoa(2<<20) + "\r\n\r\n{\"name\":\""
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge || res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("got %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var p struct {
		Code      string `json:"code"`
		RequestID string `json:"request_id"`
	}
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil || p.Code != "request-entity-too-large" || p.RequestID == "" {
		t.Fatalf("problem %+v, %v", p, err)
	}
}
