package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Requests that another parser on the path (a proxy, a load balancer) could
// frame differently from fasthttp are refused with a 400 problem, and the
// connection is closed, so nothing left on it is read as a next request.
// Sent over a raw TCP socket: Go's client would refuse to send them.
// nextRequestSecret stands for the bearer token of a request pipelined
// behind a malformed one.
const nextRequestSecret = "SECRET-OF-THE-NEXT-REQUEST"

func TestAmbiguousFramingIsRefusedOverRawTCP(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	addr := a.listen(t)
	const body = `{"name":"x"}`
	cases := map[string]string{
		"two Content-Length": "POST /v1/recipients HTTP/1.1\r\nHost: q\r\nContent-Type: application/json\r\n" +
			"Content-Length: 3\r\nContent-Length: 12\r\n\r\n" + body,
		"two equal Content-Length": "POST /v1/recipients HTTP/1.1\r\nHost: q\r\nContent-Length: 12\r\nContent-Length: 12\r\n\r\n" + body,
		"Transfer-Encoding and Content-Length": "POST /v1/recipients HTTP/1.1\r\nHost: q\r\nContent-Length: 12\r\n" +
			"Transfer-Encoding: chunked\r\n\r\nc\r\n" + body + "\r\n0\r\n\r\n",
		"Content-Length after Transfer-Encoding": "POST /v1/recipients HTTP/1.1\r\nHost: q\r\nTransfer-Encoding: chunked\r\n" +
			"Content-Length: 12\r\n\r\nc\r\n" + body + "\r\n0\r\n\r\n",
		"Transfer-Encoding not chunked": "POST /v1/recipients HTTP/1.1\r\nHost: q\r\nTransfer-Encoding: gzip, chunked\r\n\r\nc\r\n" + body + "\r\n0\r\n\r\n",
		"bare CR in a value":            "GET /v1/offers HTTP/1.1\r\nHost: q\r\nX-Note: a\rb\r\n\r\n",
		"bare CR in Idempotency-Key":    "GET /v1/offers HTTP/1.1\r\nHost: q\r\nIdempotency-Key: a\rContent-Length: 5\r\n\r\n",
		"NUL in a value":                "GET /v1/offers HTTP/1.1\r\nHost: q\r\nAccept: a\x00b\r\n\r\n",
		"bare LF line end":              "GET /v1/offers HTTP/1.1\r\nHost: q\nAccept: */*\r\n\r\n",
		"folded line":                   "GET /v1/offers HTTP/1.1\r\nHost: q\r\nAccept: text/html,\r\n application/json\r\n\r\n",
		"two Host headers":              "GET /v1/offers HTTP/1.1\r\nHost: q\r\nHost: evil\r\n\r\n",
		"unknown method":                "PURGE /v1/offers HTTP/1.1\r\nHost: q\r\n\r\n",
		// Headers Quid reads once: which copy counts would be the parser's guess.
		"two Authorization":   "GET /v1/audit HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n",
		"two Idempotency-Key": "POST /v1/me/exchanges HTTP/1.1\r\nHost: q\r\nIdempotency-Key: a\r\nidempotency-key: b\r\nContent-Length: 2\r\n\r\n{}",
		"two Content-Type":    "PUT /v1/me HTTP/1.1\r\nHost: q\r\nContent-Type: text/plain\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
		"two X-Request-ID":    "GET /healthz HTTP/1.1\r\nHost: q\r\nX-Request-ID: a\r\nX-Request-ID: b\r\n\r\n",
		"empty header name":   "GET /v1/offers HTTP/1.1\r\nHost: q\r\n: v\r\n\r\n",
		// Request lines another parser would read differently (RFC 9112 §3).
		"no Host in HTTP/1.1":        "GET /v1/offers HTTP/1.1\r\nAccept: */*\r\n\r\n",
		"HTTP/2.0 on the wire":       "GET /v1/offers HTTP/2.0\r\nHost: q\r\n\r\n",
		"unknown version":            "GET /v1/offers HTTP/x.y\r\nHost: q\r\n\r\n",
		"fragment in the target":     "GET /healthz#x HTTP/1.1\r\nHost: q\r\n\r\n",
		"space in the target":        "GET /healthz x HTTP/1.1\r\nHost: q\r\n\r\n",
		"chunked in HTTP/1.0":        "POST /v1/recipients HTTP/1.0\r\nHost: q\r\nTransfer-Encoding: chunked\r\n\r\nc\r\n" + body + "\r\n0\r\n\r\n",
		"Content-Length not decimal": "GET /v1/offers HTTP/1.1\r\nHost: q\r\nContent-Length: 0x1\r\n\r\n",
		"Content-Length negative":    "GET /v1/offers HTTP/1.1\r\nHost: q\r\nContent-Length: -1\r\n\r\n",
		"Content-Length list":        "GET /v1/offers HTTP/1.1\r\nHost: q\r\nContent-Length: 3, 3\r\n\r\n",
		"absolute form, not http":    "GET ftp://x/v1/offers HTTP/1.1\r\n\r\n",
		"relative target":            "GET v1/offers HTTP/1.1\r\nHost: q\r\n\r\n",
		"asterisk target":            "GET * HTTP/1.1\r\nHost: q\r\n\r\n",
		"control byte in the target": "GET /v1/off\x01ers HTTP/1.1\r\nHost: q\r\n\r\n",
	}
	for name, raw := range cases {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		// A well-formed request follows on the same connection: it must not
		// be answered, since the first one's end is in doubt.
		if _, err := io.WriteString(conn, raw+"GET /healthz HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer "+nextRequestSecret+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			conn.Close()
			continue
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s %s, want a 400 problem", name, res.StatusCode, res.Header.Get("Content-Type"), b)
		}
		// The answer never quotes what was read off the connection: the
		// bytes after a malformed header can be another request's token.
		if bytes.Contains(b, []byte(nextRequestSecret)) || bytes.Contains(b, []byte("Bearer")) || bytes.Contains(b, []byte(`"instance"`)) {
			t.Errorf("%s: the problem quotes the raw request: %s", name, b)
		}
		if next, err := http.ReadResponse(br, nil); err == nil {
			t.Errorf("%s: the connection stayed open and answered %d to the next request", name, next.StatusCode)
		}
		conn.Close()
	}

	// Trailer fields of a chunked body are merged into the headers after
	// framing was checked: a NUL there is refused as well.
	w := dialWire(t, addr)
	r := w.raw("POST", "POST /v1/recipients HTTP/1.1\r\nHost: q\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"c\r\n"+body+"\r\n0\r\nIdempotency-Key: a\x00b\r\n\r\n")
	if r.StatusCode != http.StatusBadRequest || !r.isProblem(t) || !strings.Contains(string(r.Body), "/headers/Idempotency-Key") {
		t.Fatalf("NUL in a trailer field: %d %s", r.StatusCode, r.Body)
	}

	// Well-formed requests on a keep-alive connection still work, chunked too.
	w = dialWire(t, addr)
	if r := w.raw("POST", "POST /v1/recipients HTTP/1.1\r\nHost: q\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nc\r\n"+body+"\r\n0\r\n\r\n"); r.StatusCode != 401 {
		t.Fatalf("chunked request: %d %s", r.StatusCode, r.Body)
	}
	if r := w.do("GET", "/v1/offers", "", "Accept: application/json", "X-Tab: a\tb"); r.StatusCode != 200 || strings.Contains(r.Header.Get("Connection"), "close") {
		t.Fatalf("plain request after it: %d %s", r.StatusCode, r.Body)
	}
}
