package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen serves a on a real TCP listener until the test ends.
func (a *api) listen(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.svc.serve(ctx, ln, a.cfg) }()
	t.Cleanup(func() { stop(); <-done })
	return ln.Addr().String()
}

// wire is one keep-alive HTTP/1.1 connection driven byte by byte, so tests
// can send what Go's client would refuse to send and reuse the connection
// the way real clients do.
type wire struct {
	t    testing.TB
	addr string
	conn net.Conn
	r    *bufio.Reader
	// spec, when set, checks every response of do against openapi.yaml, as
	// the in-process harness does: refusals made before routing (431, 400,
	// 422 for a query or header) must be declared too.
	spec *api
}

// checked makes every later do validate its response against openapi.yaml.
func (w *wire) checked(a *api) *wire { w.spec = a; return w }

func dialWire(t testing.TB, addr string) *wire {
	t.Helper()
	w := &wire{t: t, addr: addr}
	w.redial()
	t.Cleanup(func() { w.conn.Close() })
	return w
}

func (w *wire) redial() {
	w.t.Helper()
	if w.conn != nil {
		w.conn.Close()
	}
	c, err := net.Dial("tcp", w.addr)
	if err != nil {
		w.t.Fatal(err)
	}
	w.conn, w.r = c, bufio.NewReader(c)
}

// wireResponse is a response read off the wire, with its body.
type wireResponse struct {
	*http.Response
	Body []byte
}

// raw writes the bytes as they are and reads one response; method tells
// the reader whether a body follows (HEAD).
func (w *wire) raw(method, request string) wireResponse {
	w.t.Helper()
	_ = w.conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(w.conn, request); err != nil {
		w.t.Fatalf("write: %v", err)
	}
	res, err := http.ReadResponse(w.r, &http.Request{Method: method})
	if err != nil {
		w.t.Fatalf("read response to %q: %v", firstLine(request), err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		w.t.Fatalf("read body: %v", err)
	}
	if res.Close {
		w.redial()
	}
	return wireResponse{res, body}
}

// do sends one well-framed request; headers are written in order as given
// ("Name: value" lines).
func (w *wire) do(method, path string, body string, headers ...string) wireResponse {
	w.t.Helper()
	var b strings.Builder
	b.WriteString(method + " " + path + " HTTP/1.1\r\nHost: quid.test\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if body != "" {
		b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n" + body)
	r := w.raw(method, b.String())
	if w.spec != nil {
		w.spec.checkSpec(req{Method: method, Path: path}, []byte(body), response{Status: r.StatusCode, Header: r.Header, Body: r.Body})
	}
	return r
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	if len(line) > 120 {
		line = line[:120] + "…"
	}
	return line
}

// isProblem reports whether the response is an RFC 9457 problem with the
// status in its body.
func (r wireResponse) isProblem(t testing.TB) bool {
	t.Helper()
	if r.Header.Get("Content-Type") != "application/problem+json" {
		return false
	}
	return strings.Contains(string(r.Body), `"status":`+strconv.Itoa(r.StatusCode))
}
