package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/config"
)

// outageReceiver is two partners' webhook endpoints on one address that can
// go away (connection refused) and come back on the same address.
type outageReceiver struct {
	t       testing.TB
	addr    string
	secrets map[string]string // path → secret
	mu      sync.Mutex
	srv     *http.Server
	got     []delivery
	bad     []string
}

type delivery struct {
	path, id, eventType string
	at                  time.Time
}

func newOutageReceiver(t testing.TB, secrets map[string]string) *outageReceiver {
	r := &outageReceiver{t: t, secrets: secrets}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(r.down)
	return r
}

func (r *outageReceiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (r *outageReceiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (r *outageReceiver) up() {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.serve(ln)
}

// ServeHTTP checks the Standard Webhooks signature with the endpoint's
// secret and records the delivery.
func (r *outageReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	wh, err := standardwebhooks.NewWebhook(r.secrets[req.URL.Path])
	if err == nil {
		err = wh.Verify(body, req.Header)
	}
	var payload struct{ Type string }
	if err == nil {
		err = json.Unmarshal(body, &payload)
	}
	if err != nil {
		r.bad = append(r.bad, fmt.Sprintf("%s %s: %v", req.URL.Path, req.Header.Get("webhook-id"), err))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.got = append(r.got, delivery{path: req.URL.Path, id: req.Header.Get("webhook-id"), eventType: payload.Type, at: time.Now()})
	w.WriteHeader(http.StatusNoContent)
}

// TestWebhookReceiverOutageLosesNoEvent takes two partners' webhook
// endpoint away (connection refused) while members join and cancel, brings
// it back, and checks with the server's own workers running that every
// event of the outbox arrives with a valid Standard Webhooks signature,
// duplicates only as at-least-once allows, within a bound set by the retry
// back-off.
func TestWebhookReceiverOutageLosesNoEvent(t *testing.T) {
	t.Parallel()
	a := newAPI(t, func(c *config.Config) { c.WebhookInterval = 50 * time.Millisecond })
	d := a.svc.dispatcher
	d.BaseBackoff, d.MaxBackoff, d.MaxAttempts = 100*time.Millisecond, 400*time.Millisecond, 100
	f := a.fixtures()
	secrets := map[string]string{
		"/hooks/partnerco": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"/hooks/brand":     "whsec_dGVzdC1zZWNyZXQtYnJhbmQtMDEyMzQ1Njc4OWFi",
	}
	rcv := newOutageReceiver(t, secrets)
	for path, tok := range map[string]string{"/hooks/partnerco": f.partner, "/hooks/brand": token(t, app.RolePartner, f.brand)} {
		expect(t, a.do(req{Method: "PUT", Path: "/v1/partner/webhook", Token: tok,
			Body: map[string]any{"url": "http://" + rcv.addr + path, "secret": secrets[path]}}), 200)
	}
	contract := a.publishContract(f, contractBody(f))
	a.svc.runWorkers(t)

	joinAndCancel := func(prefix string, n int, cancel bool) {
		for i := range n {
			tok := token(t, app.RoleMember, fmt.Sprintf("%s-%02d", prefix, i))
			expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: tok, Body: map[string]any{"attributes": joinableProfile()}}), 201)
			id := expect(t, a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: tok, Body: map[string]any{"contract_id": contract}}), 201).json(t)["id"].(string)
			if cancel {
				expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + id, Token: tok}), 200)
			}
		}
	}
	joinAndCancel("before", 5, false)
	rcv.down()
	downAt := time.Now()
	joinAndCancel("during", 15, true)
	db := openDB(t, a.cfg.DatabaseURL)
	ctx := context.Background()
	// The receiver stays away at least 1.5 s, and until every event has
	// failed at least once, so that each one made during the outage needs a
	// retry however slowly the machine runs.
	for {
		var untried int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM webhook_outbox o JOIN webhook_endpoints w ON w.recipient_id = o.recipient_id
			WHERE o.delivered_at IS NULL AND o.attempts = 0`).Scan(&untried); err != nil {
			t.Fatal(err)
		}
		if untried == 0 && time.Since(downAt) >= 1500*time.Millisecond {
			break
		}
		if time.Since(downAt) > 20*time.Second {
			t.Fatalf("%d events not attempted 20 s into the outage", untried)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rcv.up()
	upAt := time.Now()
	joinAndCancel("after", 5, true)

	type event struct {
		id, eventType string
		attempts      int
		delivered     bool
		createdDown   bool
	}
	outbox := func() map[string]event {
		rows, err := db.QueryContext(ctx, `
SELECT o.id::text, o.event_type, o.attempts, o.delivered_at IS NOT NULL, o.created_at BETWEEN $1 AND $2
FROM webhook_outbox o JOIN webhook_endpoints w ON w.recipient_id = o.recipient_id`, downAt, upAt)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]event{}
		for rows.Next() {
			var e event
			if err := rows.Scan(&e.id, &e.eventType, &e.attempts, &e.delivered, &e.createdDown); err != nil {
				t.Fatal(err)
			}
			out[e.id] = e
		}
		return out
	}
	// Every event is delivered within a bound: the longest back-off, a
	// poll interval and the time to send them.
	const bound = 10 * time.Second
	var events map[string]event
	for {
		events = outbox()
		pending := 0
		for _, e := range events {
			if !e.delivered {
				pending++
			}
		}
		if pending == 0 {
			break
		}
		if time.Since(upAt) > bound {
			t.Fatalf("%d of %d events still undelivered %s after the receiver came back", pending, len(events), bound)
		}
		time.Sleep(50 * time.Millisecond)
	}
	allDelivered := time.Since(upAt)

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.bad) > 0 {
		t.Fatalf("%d deliveries failed the signature check, first: %s", len(rcv.bad), rcv.bad[0])
	}
	arrived := map[string]int{}
	for _, g := range rcv.got {
		arrived[g.id]++
		if e, ok := events[g.id]; !ok {
			t.Errorf("delivery %s is no event of the outbox", g.id)
		} else if e.eventType != g.eventType {
			t.Errorf("delivery %s says %s, the outbox %s", g.id, g.eventType, e.eventType)
		}
	}
	retried, duringOutage := 0, 0
	for id, e := range events {
		if arrived[id] == 0 {
			t.Errorf("event %s (%s) was marked delivered but never arrived", id, e.eventType)
		}
		if e.createdDown {
			duringOutage++
			if e.attempts < 2 {
				t.Errorf("event %s created while the receiver was down was delivered at the first attempt", id)
			}
		}
		if e.attempts > 1 {
			retried++
		}
	}
	if duringOutage == 0 {
		t.Fatal("no event was created while the receiver was down")
	}
	figures := map[string]any{"events": len(events), "created_while_down": duringOutage, "retried": retried,
		"deliveries": len(rcv.got), "duplicates": len(rcv.got) - len(arrived), "down_ms": upAt.Sub(downAt).Milliseconds(),
		"all_delivered_ms_after_up": allDelivered.Milliseconds()}
	verifyNote(t, a.cfg.DatabaseURL, figures)
	noteFigures(t, "webhook-receiver-outage", figures)
}
