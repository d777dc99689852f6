package main

import (
	"encoding/base64"
	"io"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// listRoute is one list endpoint (with its filters) and who may read it.
type listRoute struct {
	path  string // with any filters, without cursor and limit
	token string
}

// cursorWorld is an API where every list has at least two items, so that
// limit=1 hands out a real cursor for each.
func cursorWorld(t testing.TB) (*api, []listRoute) {
	a := newAPI(t)
	f := a.fixtures()
	body := contractBody(f)
	body["retention"] = "PT1S"
	c1 := a.publishContract(f, body)
	c2 := a.publishContract(f, body)
	a.enrol(f.member)
	e1 := a.joinContract(f.member, c1)["id"].(string)
	e2 := a.joinContract(f.member, c2)["id"].(string)
	for i := 0; i < 2; i++ {
		expect(t, a.do(req{Method: "GET", Path: "/v1/partner/members/alice/data?purpose=loyalty.personalised_offers", Token: f.partner}), 200)
	}
	for _, e := range []string{e1, e2} {
		expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + e, Token: f.member}), 200)
	}
	time.Sleep(1100 * time.Millisecond) // the retention runs out: deletions become overdue
	return a, []listRoute{
		{"/v1/offers", ""},
		{"/v1/recipients", f.admin},
		{"/v1/contracts", f.marketer},
		{"/v1/contracts?status=published", f.marketer},
		{"/v1/me/exchanges", f.member},
		{"/v1/me/points", f.member},
		{"/v1/me/access-log", f.member},
		{"/v1/me/access-log?order=commit", f.member},
		{"/v1/audit", f.admin},
		{"/v1/audit?member_id=alice", f.admin},
		{"/v1/audit?order=commit", f.admin},
		{"/v1/audit/overdue-deletions", f.admin},
		{"/v1/audit/webhook-deliveries", f.admin},
		{"/v1/audit/webhook-deliveries?order=commit", f.admin},
	}
}

func withQuery(path, extra string) string {
	if strings.Contains(path, "?") {
		return path + "&" + extra
	}
	return path + "?" + extra
}

// firstCursor reads the first page with limit=1 and returns its next_cursor.
func firstCursor(t testing.TB, a *api, r listRoute) string {
	t.Helper()
	page := expect(t, a.do(req{Method: "GET", Path: withQuery(r.path, "limit=1"), Token: r.token}), 200).json(t)
	next, _ := page["next_cursor"].(string)
	if next == "" {
		t.Fatalf("%s: no next_cursor on the first page of one: %v", r.path, page)
	}
	return next
}

// Every list refuses any cursor it did not hand out for the same filters
// with a 422 naming the cursor parameter, and follows its own.
func TestEveryListRefusesAlteredForgedAndForeignCursors(t *testing.T) {
	t.Parallel()
	a, routes := cursorWorld(t)
	cursors := make([]string, len(routes))
	for i, r := range routes {
		cursors[i] = firstCursor(t, a, r)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	forged := []string{
		"garbage",
		b64([]byte("2026-11-30T00:00:00Z|not-a-uuid")),
		b64([]byte("2026-11-30T00:00:00Z|00000000-0000-0000-0000-000000000000")),
		b64([]byte("2026-11-30T00:00:00Z|not-a-uuid")) + "." + b64(make([]byte, 16)),
		"." + b64(make([]byte, 16)),
		strings.Repeat("A", 1000),
		"%00", "\u00e9", "a.b.c",
	}
	for i, r := range routes {
		own := cursors[i]
		expect(t, a.do(req{Method: "GET", Path: withQuery(r.path, "limit=1&cursor="+url.QueryEscape(own)), Token: r.token}), 200)
		payload, mac, _ := strings.Cut(own, ".")
		bad := append([]string{}, forged...)
		bad = append(bad,
			own[:len(own)-1], // truncated
			payload,          // signature dropped
			flip(payload)+"."+mac,
			payload+"."+flip(mac),
			b64([]byte("2030-01-01T00:00:00Z|00000000-0000-0000-0000-000000000000"))+"."+mac, // another position, same signature
		)
		for j, other := range cursors { // foreign: from another list or other filters
			if j != i {
				bad = append(bad, other)
			}
		}
		for _, c := range bad {
			res := a.do(req{Method: "GET", Path: withQuery(r.path, "cursor="+url.QueryEscape(c)), Token: r.token})
			problemAt(t, res, 422, "/query/cursor")
		}
	}
}

// flip changes one character of a base64url string.
func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

// FuzzListCursors sends arbitrary cursors (and orders) to every list: no
// input may produce a 5xx.
func FuzzListCursors(f *testing.F) {
	a, routes := cursorWorld(f)
	for i, r := range routes {
		own := firstCursor(f, a, r)
		f.Add(uint8(i), own)
		f.Add(uint8(i), own[:len(own)-2])
		f.Add(uint8(i), flip(own))
	}
	f.Add(uint8(0), base64.RawURLEncoding.EncodeToString([]byte("2026-11-30T00:00:00Z|not-a-uuid")))
	f.Add(uint8(1), "")
	f.Add(uint8(2), "\x00\xff")
	f.Fuzz(func(t *testing.T, route uint8, cursor string) {
		r := routes[int(route)%len(routes)]
		hr := httptest.NewRequest("GET", "http://quid.test"+withQuery(r.path, "cursor="+url.QueryEscape(cursor)), nil)
		if r.token != "" {
			hr.Header.Set("Authorization", "Bearer "+r.token)
		}
		res, err := a.svc.app.Test(hr, -1)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 500 {
			t.Fatalf("%s with cursor %q → %d: %s", r.path, cursor, res.StatusCode, body)
		}
	})
}
