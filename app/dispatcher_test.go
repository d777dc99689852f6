package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
)

func TestWebhookBackoffDoublesUpToTheCap(t *testing.T) {
	t.Parallel()
	d := app.NewDispatcher(nil, nil, nil, nil)
	d.BaseBackoff, d.MaxBackoff = 5*time.Second, time.Hour
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second}
	for i, w := range want {
		if got := d.Backoff(i + 1); got != w {
			t.Errorf("attempt %d: %s, want %s", i+1, got, w)
		}
	}
	if got := d.Backoff(30); got != time.Hour {
		t.Errorf("attempt 30: %s, want the cap", got)
	}
}

// backlog is an outbox of n due events, each claimable until delivered.
type backlog struct {
	mu        sync.Mutex
	due       []app.OutboxMessage
	delivered map[string]int
}

func newBacklog(n int) *backlog {
	b := &backlog{delivered: map[string]int{}}
	for i := range n {
		b.due = append(b.due, app.OutboxMessage{ID: fmt.Sprintf("ev-%d", i), RecipientID: "r", EventType: "exchange.joined"})
	}
	return b
}

func (b *backlog) ClaimDue(_ context.Context, limit int, _ time.Duration) ([]app.OutboxMessage, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(limit, len(b.due))
	out := append([]app.OutboxMessage{}, b.due[:n]...)
	b.due = b.due[n:]
	return out, nil
}

func (b *backlog) MarkDelivered(_ context.Context, id string, _ int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.delivered[id]++
	return nil
}

func (b *backlog) MarkAttemptFailed(context.Context, string, int, string, time.Time, bool) error {
	return nil
}

func (b *backlog) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.delivered)
}

type okSender struct{}

func (okSender) Send(context.Context, app.OutboxMessage) (int, error) { return 204, nil }

type noonClock struct{}

func (noonClock) Now() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) }

// A backlog of several batches is delivered in one poll, not one batch a
// poll: with an hour between polls, 130 events must all arrive at once.
func TestWebhookBacklogDrainsWithoutWaitingForTheNextPoll(t *testing.T) {
	t.Parallel()
	out := newBacklog(2*app.DispatchBatch + 30)
	d := app.NewDispatcher(out, okSender{}, noonClock{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx, time.Hour); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for out.count() < 2*app.DispatchBatch+30 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got := out.count(); got != 2*app.DispatchBatch+30 {
		t.Fatalf("%d of %d events delivered before the next poll", got, 2*app.DispatchBatch+30)
	}
	for id, n := range out.delivered {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
}
