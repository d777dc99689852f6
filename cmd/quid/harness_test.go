package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	quid "github.com/quidpro/quid"
	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/auth"
	"github.com/quidpro/quid/infra/config"
	"github.com/quidpro/quid/infra/postgres/pgtest"
)

const testSecret = "test-secret-test-secret-test-secret-0123"

var (
	specOnce   sync.Once
	specRouter routers.Router
	specErr    error
)

func spec(t testing.TB) routers.Router {
	t.Helper()
	specOnce.Do(func() {
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
		openapi3filter.RegisterBodyDecoder("text/css", openapi3filter.PlainBodyDecoder)
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(quid.OpenAPI)
		if err != nil {
			specErr = err
			return
		}
		if err = doc.Validate(context.Background()); err != nil {
			specErr = err
			return
		}
		doc.Servers = openapi3.Servers{{URL: "http://quid.test"}}
		specRouter, specErr = gorillamux.NewRouter(doc)
	})
	if specErr != nil {
		t.Fatalf("openapi.yaml: %v", specErr)
	}
	return specRouter
}

// runWorkers runs the service's background workers (accrual, webhooks,
// change listener) until the test ends.
func (s *service) runWorkers(t testing.TB) {
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	for _, w := range s.workers {
		go w(ctx)
	}
}

// testConfig is a valid configuration on a fresh database.
func testConfig(t testing.TB, mod ...func(*config.Config)) config.Config {
	t.Helper()
	env := map[string]string{
		"DATABASE_URL":               pgtest.NewDatabase(t),
		"QUID_JWT_SECRET":            testSecret,
		"QUID_MIN_REWARD_PERIOD":     "1s",
		"QUID_ACCRUAL_INTERVAL":      "1h",
		"QUID_WEBHOOK_ALLOW_PRIVATE": "true",
		"QUID_LOG_LEVEL":             "warn",
		"QUID_PUBLIC_CACHE_TTL":      "1ns",
		// Tests and fuzz targets send many writes with one token from one
		// address; the limits are tested on their own (hardening_ratelimit_test.go).
		"QUID_RATE_LIMIT_ADDRESS":   "0",
		"QUID_RATE_LIMIT_PRINCIPAL": "0",
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mod {
		m(&cfg)
	}
	return cfg
}

// api is an in-process Quid on its own database; every response it returns
// is checked against openapi.yaml.
type api struct {
	t   testing.TB
	svc *service
	cfg config.Config
}

func newAPI(t testing.TB, mod ...func(*config.Config)) *api {
	t.Helper()
	cfg := testConfig(t, mod...)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	svc, err := build(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.close)
	return &api{t: t, svc: svc, cfg: cfg}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func token(t testing.TB, role app.Role, sub string) string {
	t.Helper()
	tok, err := auth.Mint(testSecret, app.Principal{Subject: sub, Role: role}, time.Hour, "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode: %v\n%s", err, r.Body)
	}
}

// req describes one call; Body may be a string (sent raw) or any value (sent as JSON).
type req struct {
	Method  string
	Path    string
	Body    any
	Token   string
	Headers map[string]string
}

func (a *api) do(r req) response {
	a.t.Helper()
	resp := a.send(r)
	a.checkSpec(r, r.raw(), resp)
	return resp
}

// raw is the request body as sent: a string as is, anything else as JSON.
func (r req) raw() []byte {
	switch b := r.Body.(type) {
	case nil:
		return nil
	case string:
		return []byte(b)
	default:
		raw, _ := json.Marshal(b)
		return raw
	}
}

// httpRequest is the request as sent: the body raw, JSON content type when
// there is one, the token as a bearer, then the extra headers.
func (r req) httpRequest() *http.Request {
	var body io.Reader
	raw := r.raw()
	if raw != nil {
		body = bytes.NewReader(raw)
	}
	hr := httptest.NewRequest(r.Method, "http://quid.test"+r.Path, body)
	if raw != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.Token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, v := range r.Headers {
		hr.Header.Set(k, v)
	}
	return hr
}

// send is do without the openapi check, for tests about something else
// (the logs) that send requests other kinds of fault still answer oddly.
// Its responses are still checked for leaked internals.
func (a *api) send(r req) response {
	a.t.Helper()
	res, err := a.svc.app.Test(r.httpRequest(), -1)
	if err != nil {
		a.t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	out, _ := io.ReadAll(res.Body)
	res.Body.Close()
	resp := response{Status: res.StatusCode, Header: res.Header, Body: out}
	a.checkNoInternals(r, resp)
	return resp
}

// checkNoInternals fails the test when a response shows the server's
// internals; send and checkSpec both call it, so no response a test reads,
// in-process or off the wire, escapes it.
func (a *api) checkNoInternals(r req, resp response) {
	a.t.Helper()
	if leak := internalsIn(resp); leak != "" {
		a.t.Fatalf("%s %s → %d shows the server's internals (%s):\n%s", r.Method, r.Path, resp.Status, leak, resp.Body)
	}
}

// checkSpec fails the test when a response is not what openapi.yaml says,
// and when any 4xx/5xx is not problem+json.
func (a *api) checkSpec(r req, raw []byte, resp response) {
	a.t.Helper()
	a.checkNoInternals(r, resp)
	// The web pages answer their refusals with a page (web.go) once past
	// the edge; openapi.yaml says which (WebError).
	webPage := isWebPath(r.Path) && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html")
	if resp.Status >= 400 && r.Path != "/readyz" && !webPage && resp.Header.Get("Content-Type") != "application/problem+json" {
		a.t.Fatalf("%s %s → %d with Content-Type %q, want application/problem+json", r.Method, r.Path, resp.Status, resp.Header.Get("Content-Type"))
	}
	hr := httptest.NewRequest(r.Method, "http://quid.test"+r.Path, bytes.NewReader(raw))
	for k, v := range r.Headers {
		hr.Header.Set(k, v)
	}
	route, params, err := spec(a.t).FindRoute(hr)
	if err != nil {
		if resp.Status == http.StatusNotFound || resp.Status == http.StatusMethodNotAllowed {
			return // unknown routes are not in the spec by design
		}
		a.t.Fatalf("%s %s is not in openapi.yaml: %v", r.Method, r.Path, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: hr, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status:  resp.Status,
		Header:  resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(resp.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		a.t.Fatalf("%s %s → %d does not match openapi.yaml: %v\nbody: %s", r.Method, r.Path, resp.Status, err, resp.Body)
	}
}

// internals are what a stack trace, a Go error from the runtime or the
// database driver, or an SQL statement look like. No response may carry
// one: it tells an attacker the code, the schema and how to break them.
// SQL is matched as statements (keywords in their order, upper case as
// Quid's queries write them), so a contract that mentions "delete" or
// "update" in prose does not trip it. Each pattern runs only where one of
// its hints (plain substrings, found fast) occurs: every response of every
// test passes through here, /openapi.yaml among them.
var internals = []struct {
	what  string
	hints []string
	re    *regexp.Regexp
}{
	{"a goroutine dump", []string{"goroutine "}, regexp.MustCompile(`goroutine \d+ \[`)},
	{"a Go source position", []string{".go:"}, regexp.MustCompile(`\.go:\d+`)},
	{"a panic", []string{"panic", "[recovered]"}, regexp.MustCompile(`\bpanic(\(|: )|\[recovered\]`)},
	{"a Go runtime error", []string{"runtime error:"}, regexp.MustCompile(`runtime error:`)},
	{"a PostgreSQL error code", []string{"SQLSTATE"}, regexp.MustCompile(`SQLSTATE`)},
	{"a PostgreSQL error", []string{"syntax error at or near", "invalid input syntax for", "constraint", "does not exist",
		"current transaction is aborted", "deadlock detected", "canceling statement due to"},
		regexp.MustCompile(`syntax error at or near|invalid input syntax for|violates (unique|foreign key|check|not-null|exclusion) constraint|relation "[^"]*" does not exist|current transaction is aborted|deadlock detected|canceling statement due to`)},
	{"the database driver's name", []string{"pgx", "pgconn", "gorm", "pq", "database/sql"},
		regexp.MustCompile(`\b(pgx|pgconn|gorm|pq|lib/pq|database/sql)\b[:.]`)},
	{"an SQL statement", []string{"SELECT", "INSERT INTO", "UPDATE ", "DELETE FROM", "ON CONFLICT", "RETURNING"},
		regexp.MustCompile(`\bSELECT\b[^"]{0,200}\bFROM\b|\bINSERT INTO\b|\bUPDATE \S+ SET\b|\bDELETE FROM\b|\bON CONFLICT\b|\bRETURNING\b`)},
}

// internalsIn names the first internal a response shows, in its body or in
// any header, or is "".
func internalsIn(resp response) string {
	texts := []string{string(resp.Body)}
	for name, vs := range resp.Header {
		for _, v := range vs {
			texts = append(texts, name+": "+v)
		}
	}
	for _, in := range internals {
		for _, s := range texts {
			for _, h := range in.hints {
				if !strings.Contains(s, h) {
					continue
				}
				if m := in.re.FindString(s); m != "" {
					return in.what + ": " + strconv.Quote(m)
				}
				break
			}
		}
	}
	return ""
}

// expect fails unless the response has the wanted status.
func expect(t testing.TB, r response, status int) response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	return r
}

// problemAt asserts a problem naming the JSON pointer.
func problemAt(t testing.TB, r response, status int, pointer string) {
	t.Helper()
	expect(t, r, status)
	var p struct {
		Errors []struct{ Pointer, Detail string }
	}
	r.decode(t, &p)
	for _, e := range p.Errors {
		if e.Pointer == pointer {
			return
		}
	}
	t.Fatalf("no error at %s: %s", pointer, r.Body)
}

// concurrently runs fn n times at once, as that many replicas would, and
// fails the test on the first error any of them returns.
func concurrently(t testing.TB, n int, fn func() error) {
	t.Helper()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- fn()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
