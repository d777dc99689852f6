package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/config"
	"github.com/quidpro/quid/infra/eventstream"
	"github.com/quidpro/quid/infra/eventstream/natstest"
)

const testStream = "QUID_EVENTS"

// withNATS points the service at a private nats-server.
func withNATS(url string) func(*config.Config) {
	return func(c *config.Config) {
		c.NATS = config.NATS{URL: url, Stream: testStream, Duplicates: time.Minute, MaxAge: time.Hour, Replicas: 1}
	}
}

// bodyReceiver records every webhook body by webhook-id.
type bodyReceiver struct {
	addr string
	mu   sync.Mutex
	got  map[string][][]byte
}

func newBodyReceiver(t testing.TB) *bodyReceiver {
	r := &bodyReceiver{got: map[string][][]byte{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got[req.Header.Get("webhook-id")] = append(r.got[req.Header.Get("webhook-id")], body)
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

// streamed is every message the stream holds.
func streamed(t testing.TB, url string) []*jetstream.RawStreamMsg {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, testStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

type streamOutboxEvent struct {
	id, recipient, eventType string
	payload                  []byte
	published                bool
	attempts                 int
}

// streamOutboxEvents reads every outbox event with its stream state.
func streamOutboxEvents(t testing.TB, db *sql.DB) map[string]streamOutboxEvent {
	t.Helper()
	rows, err := db.Query(`SELECT o.id::text, o.recipient_id::text, o.event_type, o.payload::text,
		COALESCE(p.published_at IS NOT NULL, false), COALESCE(p.attempts, -1)
		FROM webhook_outbox o LEFT JOIN event_stream_outbox p ON p.event_id = o.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]streamOutboxEvent{}
	for rows.Next() {
		var e streamOutboxEvent
		var payload string
		if err := rows.Scan(&e.id, &e.recipient, &e.eventType, &payload, &e.published, &e.attempts); err != nil {
			t.Fatal(err)
		}
		e.payload = []byte(payload)
		out[e.id] = e
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// relayUntilDone runs the relay until every recorded event is published.
func relayUntilDone(t testing.TB, r *app.StreamRelay, db *sql.DB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if _, _, err := r.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		var waiting int
		if err := db.QueryRow(`SELECT count(*) FROM event_stream_outbox WHERE published_at IS NULL`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events still unpublished after %s", waiting, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkStreamHoldsOutboxOnce checks that the stream holds every outbox event
// exactly once, under quid.events.<type>, with the event id as its message
// id, the recipient in a header and the outbox payload as its body.
func checkStreamHoldsOutboxOnce(t testing.TB, msgs []*jetstream.RawStreamMsg, events map[string]streamOutboxEvent) {
	t.Helper()
	seen := map[string]int{}
	for _, m := range msgs {
		id := m.Header.Get(jetstream.MsgIDHeader)
		seen[id]++
		e, ok := events[id]
		if !ok {
			t.Errorf("stream message %d (%s) is no outbox event", m.Sequence, id)
			continue
		}
		if want := "quid.events." + e.eventType; m.Subject != want {
			t.Errorf("event %s on %s, want %s", id, m.Subject, want)
		}
		if got := m.Header.Get(eventstream.HeaderRecipientID); got != e.recipient {
			t.Errorf("event %s names recipient %q, want %q", id, got, e.recipient)
		}
		if !jsonEqual(t, m.Data, e.payload) {
			t.Errorf("event %s body %s, outbox payload %s", id, m.Data, e.payload)
		}
	}
	for id, e := range events {
		if seen[id] != 1 {
			t.Errorf("event %s (%s) is %d times in the stream, want once", id, e.eventType, seen[id])
		}
	}
}

func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	return bytes.Equal(compactForTest(t, a), compactForTest(t, b))
}

func compactForTest(t testing.TB, b []byte) []byte {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %s", b)
	}
	out, _ := json.Marshal(v)
	return out
}

// TestEveryOutboxEventReachesTheStreamOnceUnderItsType joins and cancels
// through the API, with one recipient's webhook endpoint taking deliveries
// and another recipient having none, and checks that every outbox event
// (of every recipient, delivered by webhook or not) is in the stream once,
// on quid.events.<type>, with the very body its webhook carried; then
// publishes every event again, as a relay that died before recording its
// publication would, and finds the stream unchanged (de-duplication by id).
func TestEveryOutboxEventReachesTheStreamOnceUnderItsType(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	a := newAPI(t, withNATS(srv.URL()))
	f := a.fixtures()
	rcv := newBodyReceiver(t)
	expect(t, a.do(req{Method: "PUT", Path: "/v1/partner/webhook", Token: f.partner,
		Body: map[string]any{"url": "http://" + rcv.addr + "/hook", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}), 200)
	contract := a.publishContract(f, contractBody(f))
	for i := range 4 {
		tok := token(t, app.RoleMember, fmt.Sprintf("streamer-%d", i))
		expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: tok, Body: map[string]any{"attributes": joinableProfile()}}), 201)
		id := expect(t, a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: tok, Body: map[string]any{"contract_id": contract}}), 201).json(t)["id"].(string)
		if i%2 == 0 {
			expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + id, Token: tok}), 200)
		}
	}
	db := openDB(t, a.cfg.DatabaseURL)
	if _, _, err := a.svc.dispatcher.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	relayUntilDone(t, a.svc.relay, db, 10*time.Second)

	events := streamOutboxEvents(t, db)
	types, recipients := map[string]bool{}, map[string]bool{}
	for _, e := range events {
		types[e.eventType], recipients[e.recipient] = true, true
	}
	if !types["exchange.joined"] || !types["exchange.cancelled"] || len(recipients) < 2 {
		t.Fatalf("want joins and cancellations for two recipients or more, got types %v, %d recipients", types, len(recipients))
	}
	msgs := streamed(t, srv.URL())
	checkStreamHoldsOutboxOnce(t, msgs, events)
	// The body is byte for byte what the webhook endpoint was posted.
	rcv.mu.Lock()
	webhooked := 0
	for _, m := range msgs {
		for _, body := range rcv.got[m.Header.Get(jetstream.MsgIDHeader)] {
			webhooked++
			if !bytes.Equal(body, m.Data) {
				t.Errorf("event %s: stream body %s, webhook body %s", m.Header.Get(jetstream.MsgIDHeader), m.Data, body)
			}
		}
	}
	rcv.mu.Unlock()
	if webhooked == 0 {
		t.Fatal("no event was delivered by webhook to compare with")
	}

	// A relay that died after publishing and before recording it: every
	// event comes back and is published again.
	if _, err := db.Exec(`UPDATE event_stream_outbox SET published_at = NULL, stream_seq = NULL, next_attempt_at = now()`); err != nil {
		t.Fatal(err)
	}
	relayUntilDone(t, a.svc.relay, db, 10*time.Second)
	again := streamed(t, srv.URL())
	if len(again) != len(msgs) {
		t.Fatalf("publishing every event twice made the stream hold %d messages, want %d", len(again), len(msgs))
	}
	checkStreamHoldsOutboxOnce(t, again, events)
	var wrongSeq int
	if err := db.QueryRow(`SELECT count(*) FROM event_stream_outbox WHERE stream_seq IS NULL OR stream_seq < 1 OR stream_seq > $1`, len(msgs)).Scan(&wrongSeq); err != nil {
		t.Fatal(err)
	}
	if wrongSeq > 0 {
		t.Fatalf("%d events recorded no stream sequence of the stream's own", wrongSeq)
	}
}

// TestNATSOutageHoldsBackOnlyTheStream takes NATS away while members join
// and cancel: webhooks are delivered as ever, the replica stays ready, no
// publish attempt is spent, and once NATS is back every event arrives in the
// stream exactly once, without one more webhook delivery.
func TestNATSOutageHoldsBackOnlyTheStream(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	a := newAPI(t, withNATS(srv.URL()))
	relay := a.svc.relay
	relay.BaseBackoff, relay.MaxBackoff = 50*time.Millisecond, 200*time.Millisecond
	f := a.fixtures()
	rcv := newBodyReceiver(t)
	expect(t, a.do(req{Method: "PUT", Path: "/v1/partner/webhook", Token: f.partner,
		Body: map[string]any{"url": "http://" + rcv.addr + "/hook", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}), 200)
	contract := a.publishContract(f, contractBody(f))
	db := openDB(t, a.cfg.DatabaseURL)
	ctx := context.Background()
	// The stream exists before the outage (made on the first round).
	relayUntilDone(t, relay, db, 10*time.Second)

	srv.Stop()
	for i := range 6 {
		tok := token(t, app.RoleMember, fmt.Sprintf("outage-%d", i))
		expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: tok, Body: map[string]any{"attributes": joinableProfile()}}), 201)
		id := expect(t, a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: tok, Body: map[string]any{"contract_id": contract}}), 201).json(t)["id"].(string)
		expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + id, Token: tok}), 200)
	}
	expect(t, a.do(req{Method: "GET", Path: "/readyz"}), 200)
	for range 3 {
		if _, _, err := a.svc.dispatcher.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if p, _, err := relay.RunOnce(ctx); err != nil || p != 0 {
			t.Fatalf("relay published %d with NATS down (error %v)", p, err)
		}
	}
	var undelivered, spent int
	if err := db.QueryRow(`SELECT count(*) FROM webhook_outbox o JOIN webhook_endpoints w ON w.recipient_id = o.recipient_id
		WHERE o.delivered_at IS NULL`).Scan(&undelivered); err != nil {
		t.Fatal(err)
	}
	if undelivered > 0 {
		t.Fatalf("%d webhooks held back by the NATS outage", undelivered)
	}
	if err := db.QueryRow(`SELECT count(*) FROM event_stream_outbox WHERE attempts > 0 AND published_at IS NULL`).Scan(&spent); err != nil {
		t.Fatal(err)
	}
	if spent > 0 {
		t.Fatalf("%d events spent attempts while NATS was down", spent)
	}
	rcv.mu.Lock()
	deliveries := 0
	for _, b := range rcv.got {
		deliveries += len(b)
	}
	rcv.mu.Unlock()

	srv.Start()
	relayUntilDone(t, relay, db, 15*time.Second)
	events := streamOutboxEvents(t, db)
	checkStreamHoldsOutboxOnce(t, streamed(t, srv.URL()), events)
	if _, _, err := a.svc.dispatcher.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	after := 0
	for _, b := range rcv.got {
		after += len(b)
	}
	rcv.mu.Unlock()
	if after != deliveries {
		t.Fatalf("publishing to the stream after the outage sent %d more webhooks", after-deliveries)
	}
}

// TestTwoRelaysShareTheOutboxWithoutLossOrRepeat runs two relays, each with
// its own NATS connection as two replicas would have, over 600 events of
// three types (one a type a later release adds): every event is in the
// stream once, on its type's subject, and no event was published twice.
func TestTwoRelaysShareTheOutboxWithoutLossOrRepeat(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	a := newAPI(t, withNATS(srv.URL()))
	f := a.fixtures()
	db := openDB(t, a.cfg.DatabaseURL)
	for _, typ := range []string{"exchange.joined", "points.expiring", "member.tier_changed"} {
		if _, err := db.Exec(`INSERT INTO webhook_outbox (id, recipient_id, event_type, payload, created_at, next_attempt_at)
			SELECT gen_random_uuid(), $1, $2::text, jsonb_build_object('type', $2::text, 'data', jsonb_build_object('n', n)), now(), now() + interval '1 day'
			FROM generate_series(1, 200) n`, f.brand, typ); err != nil {
			t.Fatal(err)
		}
	}
	relays := []*app.StreamRelay{a.svc.relay}
	pub, err := eventstream.Open(eventstream.Options{URL: srv.URL(), Stream: testStream, Duplicates: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	relays = append(relays, app.NewStreamRelay(a.svc.store, pub, systemClock{}, slog.New(slog.NewTextHandler(io.Discard, nil))))
	var mu sync.Mutex
	published := map[int]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for i, r := range relays {
		r.Batch = 25
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(15 * time.Second)
			for time.Now().Before(deadline) {
				p, _, err := r.RunOnce(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				published[i] += p
				mu.Unlock()
				var waiting int
				if err := db.QueryRow(`SELECT count(*) FROM event_stream_outbox WHERE published_at IS NULL`).Scan(&waiting); err != nil {
					t.Error(err)
					return
				}
				if waiting == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	events := streamOutboxEvents(t, db)
	if len(events) != 600 {
		t.Fatalf("%d outbox events, want 600", len(events))
	}
	msgs := streamed(t, srv.URL())
	checkStreamHoldsOutboxOnce(t, msgs, events)
	if published[0]+published[1] != 600 {
		t.Fatalf("the relays published %d and %d events: %d in all, want each of the 600 once", published[0], published[1], published[0]+published[1])
	}
	bySubject := map[string]int{}
	for _, m := range msgs {
		bySubject[m.Subject]++
	}
	for _, s := range []string{"quid.events.exchange.joined", "quid.events.points.expiring", "quid.events.member.tier_changed"} {
		if bySubject[s] != 200 {
			t.Errorf("%s holds %d events, want 200", s, bySubject[s])
		}
	}
	t.Logf("relay shares: %d and %d; 600 events in %s (%.0f events/s)", published[0], published[1],
		took.Round(time.Millisecond), 600/took.Seconds())
}

// TestOnlyEventTypesThatAreSubjectsEnterTheOutbox: an event type becomes
// the subject quid.events.<type>, so the database refuses types that would
// make an empty token, a wildcard or white space.
func TestOnlyEventTypesThatAreSubjectsEnterTheOutbox(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	db := openDB(t, a.cfg.DatabaseURL)
	for _, typ := range []string{"", "exchange..joined", ".joined", "joined.", "points *", "points.*", "points.>", ">", "a b", "tab\tbed",
		"nul\x00", "émoji.🎉", strings.Repeat("a", 201)} {
		_, err := db.Exec(`INSERT INTO webhook_outbox (id, recipient_id, event_type, payload, created_at, next_attempt_at)
			VALUES (gen_random_uuid(), $1, $2, '{}', now(), now())`, f.brand, typ)
		if err == nil || !strings.Contains(err.Error(), "SQLSTATE 23514") && !strings.Contains(err.Error(), "SQLSTATE 22021") {
			t.Errorf("event type %q: got %v, want a check violation", typ, err)
		}
	}
	for _, typ := range []string{"member.tier_changed", "points.expiring", "reward-redeemed", "x"} {
		if _, err := db.Exec(`INSERT INTO webhook_outbox (id, recipient_id, event_type, payload, created_at, next_attempt_at)
			VALUES (gen_random_uuid(), $1, $2, '{}', now(), now())`, f.brand, typ); err != nil {
			t.Errorf("event type %q refused: %v", typ, err)
		}
	}
}

// TestWithoutNATSNoEventIsRecordedUntilAReplicaHasIt: a deployment that
// never sets QUID_NATS_URL records nothing for the stream; a replica that
// sets it switches recording on for every replica (events written by one
// without it wait for one with it), and `quid stream off` switches it off.
func TestWithoutNATSNoEventIsRecordedUntilAReplicaHasIt(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	db := openDB(t, a.cfg.DatabaseURL)
	insert := func(typ string) {
		t.Helper()
		if _, err := db.Exec(`INSERT INTO webhook_outbox (id, recipient_id, event_type, payload, created_at, next_attempt_at)
			VALUES (gen_random_uuid(), $1, $2, '{}', now(), now())`, f.brand, typ); err != nil {
			t.Fatal(err)
		}
	}
	recorded := func() (n int) {
		t.Helper()
		if err := db.QueryRow(`SELECT count(*) FROM event_stream_outbox`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	insert("exchange.joined")
	if n := recorded(); n != 0 {
		t.Fatalf("%d events recorded for a stream nobody configured", n)
	}
	srv := natstest.Start(t)
	withStream := testConfig(t, withNATS(srv.URL()))
	withStream.DatabaseURL = a.cfg.DatabaseURL
	svc, err := build(context.Background(), withStream, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.close)
	insert("exchange.cancelled") // by the replica without NATS
	if n := recorded(); n != 1 {
		t.Fatalf("%d events recorded once a replica has NATS, want 1", n)
	}
	env := map[string]string{"DATABASE_URL": a.cfg.DatabaseURL, "QUID_JWT_SECRET": testSecret}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"stream", "off"}, func(k string) string { return env[k] }, &out, &errOut); err != nil {
		t.Fatalf("quid stream off: %v\n%s", err, errOut.String())
	}
	insert("exchange.expired")
	if n := recorded(); n != 1 {
		t.Fatalf("%d events recorded after quid stream off, want 1", n)
	}
	out.Reset()
	if err := run(context.Background(), []string{"stream", "status"}, func(k string) string { return env[k] }, &out, &errOut); err != nil {
		t.Fatalf("quid stream status: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "recording false") || !strings.Contains(out.String(), "waiting   1") {
		t.Fatalf("quid stream status says:\n%s", out.String())
	}
}
