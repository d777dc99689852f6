package main

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/config"
)

func compress(t testing.TB, coding string, plain io.Reader) []byte {
	t.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip":
		w, _ = gzip.NewWriterLevel(&b, gzip.BestCompression)
	case "deflate":
		w, _ = zlib.NewWriterLevel(&b, zlib.BestCompression)
	}
	if _, err := io.Copy(w, plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// zeros reads n spaces: after a valid JSON start, a bomb that expands to
// far more than the body limit.
type zeros struct{ n int }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, io.EOF
	}
	n := min(len(p), z.n)
	for i := range p[:n] {
		p[i] = ' '
	}
	z.n -= n
	return n, nil
}

// Compressed bodies are decoded once, at the edge, and the body limit holds
// after decompression: a bomb for every route that takes a body, in every
// coding the server accepts, is refused with 413 without the server ever
// allocating what it would expand to. Codings it does not accept are 415.
// Not parallel: it measures the process's allocations.
func TestCompressedBodiesAreBoundedAfterDecompression(t *testing.T) {
	a := newAPI(t)
	routes := bodyRoutes(t, a)
	const expanded = 200 << 20
	bombs := map[string][]byte{}
	for _, coding := range []string{"gzip", "deflate"} {
		bombs[coding] = compress(t, coding, io.MultiReader(strings.NewReader(`{"a":1}`), &zeros{expanded}))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, r := range routes {
		for coding, bomb := range bombs {
			res := a.do(req{Method: r.method, Path: r.path, Token: r.token, Body: string(bomb),
				Headers: map[string]string{"Content-Encoding": coding}})
			if res.Status != http.StatusRequestEntityTooLarge {
				t.Errorf("%s %s with a %s bomb: %d, want 413: %s", r.method, r.path, coding, res.Status, res.Body)
			}
		}
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	perRequest := allocated / uint64(len(routes)*len(bombs))
	t.Logf("%d bombs of %d MiB each: %d MiB allocated in all", len(routes)*len(bombs), expanded>>20, allocated>>20)
	if perRequest > 16<<20 {
		t.Fatalf("each bomb cost %d MiB of allocations: decompression is not bounded", perRequest>>20)
	}

	// A well-formed compressed body is read as the plain one would be.
	for _, r := range routes {
		plain, _ := jsonText(r.sample)
		for _, coding := range []string{"gzip", "deflate", "GZIP", "identity, gzip"} {
			c := strings.ToLower(strings.TrimPrefix(coding, "identity, "))
			res := a.do(req{Method: r.method, Path: r.path, Token: r.token, Body: string(compress(t, c, strings.NewReader(plain))),
				Headers: map[string]string{"Content-Encoding": coding}})
			if res.Status >= 500 || res.Status == 400 || res.Status == 413 || res.Status == 415 {
				t.Errorf("%s %s with %s: %d %s", r.method, r.path, coding, res.Status, res.Body)
			}
		}
		for _, coding := range []string{"br", "zstd", "compress", "x-unknown", "gzip, gzip, gzip"} {
			res := a.do(req{Method: r.method, Path: r.path, Token: r.token, Body: plain, Headers: map[string]string{"Content-Encoding": coding}})
			if res.Status != http.StatusUnsupportedMediaType || res.Header.Get("Accept-Encoding") == "" {
				t.Errorf("%s %s with %s: %d (Accept-Encoding %q), want 415 naming what is accepted: %s",
					r.method, r.path, coding, res.Status, res.Header.Get("Accept-Encoding"), res.Body)
			}
		}
		res := a.do(req{Method: r.method, Path: r.path, Token: r.token, Body: "not gzip at all", Headers: map[string]string{"Content-Encoding": "gzip"}})
		expect(t, res, http.StatusBadRequest)
	}
}

func jsonText(v any) (string, error) {
	var b bytes.Buffer
	encodeWith(v, "", mutation{at: "-"}, &b)
	return b.String(), nil
}

// bigToken is a valid member token padded with group claims, as identity
// providers issue them.
func bigToken(t testing.TB, sub string, size int) string {
	t.Helper()
	var groups []string
	for n := 0; n < size; n += 40 {
		groups = append(groups, "group-"+strconv.Itoa(n)+"-"+strings.Repeat("g", 24))
	}
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "role": string(app.RoleMember), "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"groups": groups,
	}).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Header size is bounded (431 problem beyond it) and configurable upward:
// the default takes identity-provider tokens of 6–8 KB, and
// QUID_MAX_HEADER_BYTES raises the bound.
func TestHeaderSizeIsBoundedAndConfigurable(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	w := dialWire(t, a.listen(t)).checked(a)
	for _, size := range []int{6 << 10, 8 << 10} {
		tok := bigToken(t, "big-token-"+strconv.Itoa(size), size)
		r := w.do("PUT", "/v1/me", `{"attributes":{"location.city":"Oslo"}}`, "Authorization: Bearer "+tok, "Content-Type: application/json")
		if r.StatusCode != 201 {
			t.Fatalf("%d-byte token: %d %s", len(tok), r.StatusCode, r.Body)
		}
	}
	r := w.do("GET", "/v1/offers", "", "X-Padding: "+strings.Repeat("p", 40<<10))
	if r.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !r.isProblem(t) {
		t.Fatalf("40 KiB of headers: %d %s %s", r.StatusCode, r.Header.Get("Content-Type"), r.Body)
	}

	raised := newAPI(t, func(c *config.Config) { c.MaxHeaderBytes = 64 << 10 })
	w = dialWire(t, raised.listen(t))
	tok := bigToken(t, "huge-token", 40<<10)
	if r := w.do("GET", "/v1/offers", "", "Authorization: Bearer "+tok); r.StatusCode != 200 {
		t.Fatalf("40 KiB token with QUID_MAX_HEADER_BYTES=65536: %d %s", r.StatusCode, r.Body)
	}
}

// Query parameters are bounded and checked once, at the edge, on every
// route: NUL, invalid UTF-8, a parameter given twice, an overlong value or
// too many parameters are a 422 naming the parameter — never a 5xx, and
// never a value that reaches the database.
func TestEveryRouteRefusesHostileQueryParameters(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	w := dialWire(t, a.listen(t)).checked(a)
	admin := "Authorization: Bearer " + token(t, app.RoleAdmin, "root")
	many := make([]string, 40)
	for i := range many {
		many[i] = "p" + strconv.Itoa(i) + "=1"
	}
	cases := []struct{ query, pointer string }{
		{"cursor=a%00b", "/query/cursor"},
		{"member_id=%FF%FE", "/query/member_id"},
		{"purpose=x%ED%A0%80", "/query/purpose"},
		{"limit=1&limit=2", "/query/limit"},
		{"status=" + strings.Repeat("s", 2000), "/query/status"},
		{strings.Join(many, "&"), "/query"},
		{"a%00b=1", "/query"},
	}
	seen := map[string]bool{}
	for _, rt := range a.svc.app.GetRoutes(true) {
		if rt.Method != "GET" || seen[rt.Path] {
			continue
		}
		seen[rt.Path] = true
		path := rt.Path
		for _, p := range rt.Params {
			path = strings.Replace(path, ":"+p, zeroUUID, 1)
		}
		for _, c := range cases {
			r := w.do("GET", path+"?"+c.query, "", admin)
			if r.StatusCode != http.StatusUnprocessableEntity || !r.isProblem(t) ||
				!bytes.Contains(r.Body, []byte(`"pointer":"`+c.pointer+`"`)) {
				t.Errorf("GET %s?%.40s: %d %s, want 422 naming %s", path, c.query, r.StatusCode, r.Body, c.pointer)
			}
		}
	}
	if len(seen) < 20 {
		t.Fatalf("only %d GET routes", len(seen))
	}
	// The same names, well-formed, still work.
	if r := w.do("GET", "/v1/audit?member_id="+url.QueryEscape("josé|a&b")+"&limit=5", "", admin); r.StatusCode != 200 {
		t.Fatalf("well-formed query: %d %s", r.StatusCode, r.Body)
	}
}

// Header values Quid stores or acts on are checked at the edge: invalid
// UTF-8 is a 422 naming the header, and a control character (NUL, CR) is a
// 400 — on the idempotent writes as everywhere. A caller's X-Request-ID that
// is not a short safe token is replaced, never stored.
func TestHeadersWeReadAreValidatedAtTheEdge(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	ex := setupExchangeWorld(t, a)
	w := dialWire(t, a.listen(t)).checked(a)
	member := "Authorization: Bearer " + ex.memberToken
	json := "Content-Type: application/json"
	for _, call := range []struct{ method, path, body string }{
		{"POST", "/v1/me/exchanges", `{"contract_id":"` + ex.contractID + `"}`},
		{"POST", "/v1/me/redemptions", `{"points":1,"reference":"x"}`},
	} {
		r := w.do(call.method, call.path, call.body, member, json, "Idempotency-Key: k\xff\xfe")
		if r.StatusCode != 422 || !bytes.Contains(r.Body, []byte(`"pointer":"/headers/Idempotency-Key"`)) {
			t.Errorf("%s %s with an invalid UTF-8 key: %d %s", call.method, call.path, r.StatusCode, r.Body)
		}
		// Sent but empty, or only white space (which HTTP strips): an
		// invalid key, not an absent one (openapi.yaml: minLength 1).
		for _, empty := range []string{"Idempotency-Key:", "Idempotency-Key: ", "Idempotency-Key: \t "} {
			r = w.do(call.method, call.path, call.body, member, json, empty)
			if r.StatusCode != 422 || !bytes.Contains(r.Body, []byte(`"pointer":"/headers/Idempotency-Key"`)) {
				t.Errorf("%s %s with %q: %d %s", call.method, call.path, empty, r.StatusCode, r.Body)
			}
		}
		// 200 characters, not bytes (openapi.yaml maxLength counts characters).
		if r = w.do(call.method, call.path, call.body, member, json, "Idempotency-Key: "+strings.Repeat("é", 200)); r.StatusCode >= 300 && r.StatusCode != 409 {
			t.Errorf("%s %s with a 200-character key of 400 bytes: %d %s", call.method, call.path, r.StatusCode, r.Body)
		}
		if r = w.do(call.method, call.path, call.body, member, json, "Idempotency-Key: "+strings.Repeat("é", 201)); r.StatusCode != 422 {
			t.Errorf("%s %s with a 201-character key: %d %s", call.method, call.path, r.StatusCode, r.Body)
		}
		r = w.do(call.method, call.path, call.body, member, json, "Idempotency-Key: k\x00k")
		if r.StatusCode != 400 || !r.isProblem(t) || !bytes.Contains(r.Body, []byte("Idempotency-Key")) {
			t.Errorf("%s %s with NUL in the key: %d %s", call.method, call.path, r.StatusCode, r.Body)
		}
	}
	for _, h := range [][]string{{fiberAccept + ": text/html\xff"}, {"If-None-Match: \"\xc3\x28\""}, {"Content-Type: application/json; charset=\xff"},
		{"Sec-GPC: 1\xff"}, {"Sec-GPC: 0", "Sec-GPC: \xc3\x28"}, {fiberAccept + ": application/json", fiberAccept + ": \xff"}} {
		r := w.do("GET", "/v1/offers", "", h...)
		name, _, _ := strings.Cut(h[len(h)-1], ":")
		if r.StatusCode != 422 || !bytes.Contains(r.Body, []byte(`"pointer":"/headers/`+name+`"`)) {
			t.Errorf("GET /v1/offers with %q: %d %s", h, r.StatusCode, r.Body)
		}
	}
	for _, id := range []string{"a b", strings.Repeat("r", 300), "x\xffy", "<script>"} {
		r := w.do("GET", "/healthz", "", "X-Request-ID: "+id)
		if r.StatusCode != 200 || r.Header.Get("X-Request-Id") == id || !safeID(r.Header.Get("X-Request-Id")) {
			t.Errorf("X-Request-ID %q: %d, echoed %q", id, r.StatusCode, r.Header.Get("X-Request-Id"))
		}
	}
	if r := w.do("GET", "/healthz", "", "X-Request-ID: trace-1234.abc"); r.Header.Get("X-Request-Id") != "trace-1234.abc" {
		t.Errorf("a safe X-Request-ID is not kept: %q", r.Header.Get("X-Request-Id"))
	}
}

const fiberAccept = "Accept"

func safeID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.:", c)) {
			return false
		}
	}
	return true
}

// The edge refusals that come before routing — an unsupported
// Content-Encoding, an oversized body — answer the same on every route and
// method, openapi.yaml declares them there, and none of them writes.
func TestEveryRouteDeclaresTheEdgeRefusalsItGives(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	w := dialWire(t, a.listen(t)).checked(a)
	admin := "Authorization: Bearer " + token(t, app.RoleAdmin, "root")
	const big = 1<<20 + 1
	seen := map[string]bool{}
	before := a.dbFingerprint()
	for _, rt := range a.svc.app.GetRoutes(true) {
		if rt.Method == "HEAD" || rt.Method == "CONNECT" || rt.Method == "TRACE" || rt.Method == "OPTIONS" || seen[rt.Method+rt.Path] {
			continue
		}
		seen[rt.Method+rt.Path] = true
		path := rt.Path
		for _, p := range rt.Params {
			path = strings.Replace(path, ":"+p, zeroUUID, 1)
		}
		if r := w.do(rt.Method, path, "{}", admin, "Content-Type: application/json", "Content-Encoding: br"); r.StatusCode != http.StatusUnsupportedMediaType || !r.isProblem(t) {
			t.Errorf("%s %s with Content-Encoding br: %d %s", rt.Method, path, r.StatusCode, r.Body)
		}
		// Only the headers are sent: the server answers from Content-Length
		// alone, before reading (or accepting) the body.
		r := w.raw(rt.Method, rt.Method+" "+path+" HTTP/1.1\r\nHost: q\r\n"+admin+"\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(big)+"\r\n\r\n")
		a.checkSpec(req{Method: rt.Method, Path: path}, nil, response{Status: r.StatusCode, Header: r.Header, Body: r.Body})
		if r.StatusCode != http.StatusRequestEntityTooLarge || !r.isProblem(t) {
			t.Errorf("%s %s with a 1 MiB + 1 body: %d %.200s", rt.Method, path, r.StatusCode, r.Body)
		}
	}
	if len(seen) < 35 {
		t.Fatalf("only %d routes", len(seen))
	}
	if changed := before.diff(a.dbFingerprint()); len(changed) > 0 {
		t.Errorf("edge refusals changed tables %v", changed)
	}
}
