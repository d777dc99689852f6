package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// StreamEvent is one outbox event claimed for the event stream: the same
// event, with the same id and the same payload bytes, that the webhook
// worker posts to its recipient.
type StreamEvent struct {
	ID          string
	RecipientID string
	EventType   string
	Payload     []byte
	Attempts    int
	CreatedAt   time.Time
}

// StreamOutbox hands out outbox events not yet published to the event
// stream. Its state is apart from webhook delivery state: publishing never
// changes whether or when an event is posted to its recipient.
type StreamOutbox interface {
	// ClaimUnpublished leases up to limit due events (pushing their next
	// attempt past lease), oldest due first, skipping those another worker
	// holds, so a crashed worker's events come back after the lease.
	ClaimUnpublished(ctx context.Context, limit int, lease time.Duration) ([]StreamEvent, error)
	// MarkPublished records that the stream stored each event (seq[i] is
	// the stream sequence of ids[i]).
	MarkPublished(ctx context.Context, ids []string, seqs []uint64) error
	// MarkPublishFailed records a failed attempt and when to try again, or,
	// with giveUp, that the event can never be published.
	MarkPublishFailed(ctx context.Context, id, reason string, next time.Time, giveUp bool) error
	// OldestUnpublished is the creation time of the oldest event still
	// waiting, or zero when none is.
	OldestUnpublished(ctx context.Context) (time.Time, error)
}

// EventPublisher publishes events to the stream.
type EventPublisher interface {
	// Ready reports whether publishing can be tried now: connected, and the
	// stream is there. While it is not, nothing is claimed, so an outage
	// spends no attempts and leaves every event waiting in the outbox.
	Ready(ctx context.Context) error
	// Publish publishes each event to StreamSubject(its type) with its id
	// as the de-duplication id and waits for the stream's acknowledgements:
	// errs[i] is nil when the stream holds events[i] (seqs[i] its sequence),
	// also when it already held it (a duplicate).
	Publish(ctx context.Context, events []StreamEvent) (seqs []uint64, errs []error)
}

// StreamMetrics observes the relay; every method must be cheap.
type StreamMetrics interface {
	Published(n int)
	Failed(n int)
	// Lag is the age of the oldest event still waiting (0 when none is).
	Lag(d time.Duration)
}

// StreamSubjectPrefix is the subject every event stream subject starts with.
const StreamSubjectPrefix = "quid.events."

// ErrNotASubject is returned by StreamSubject for an event type that
// cannot be a subject; such an event is given up, not retried.
var ErrNotASubject = errors.New("event type is not a valid subject")

// StreamSubject is the NATS subject of an event type:
// "quid.events." + eventType. Dots in the type separate subject tokens
// (points.expiring is quid.events.points.expiring); every token must be 1
// or more of A–Z, a–z, 0–9, '_' and '-', and the type at most 200 bytes, so
// no type makes an empty token, a wildcard ('*' or '>') or white space. The
// database holds every outbox event type to the same rule (migration 00030).
func StreamSubject(eventType string) (string, error) {
	if eventType == "" || len(eventType) > 200 {
		return "", fmt.Errorf("%w: length %d", ErrNotASubject, len(eventType))
	}
	for tok := range strings.SplitSeq(eventType, ".") {
		if tok == "" {
			return "", fmt.Errorf("%w: empty token", ErrNotASubject)
		}
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
				return "", fmt.Errorf("%w: byte 0x%02x", ErrNotASubject, c)
			}
		}
	}
	return StreamSubjectPrefix + eventType, nil
}

// StreamRelay publishes every recorded outbox event to the event stream at
// least once, retrying failures with exponential back-off and never giving
// up on a transient failure: an outage only makes events wait. Any number of
// relays (one per replica) may run at once: each claims different events
// (SKIP LOCKED), and an event published twice (a relay died after the stream
// stored it and before it was marked) is dropped by the stream's
// de-duplication by event id within its duplicate window.
type StreamRelay struct {
	outbox    StreamOutbox
	publisher EventPublisher
	clock     Clock
	log       *slog.Logger
	// Metrics, when set, observes every round.
	Metrics StreamMetrics
	// Batch is how many events one round claims.
	Batch int
	// BaseBackoff is the wait after an event's first failed attempt; each
	// further failure doubles it, up to MaxBackoff.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// Lease is how long a claimed event stays with this relay; it must be
	// shorter than the stream's duplicate window.
	Lease time.Duration

	notReady bool // the last round found the publisher not ready (logs changes only)
}

// NewStreamRelay wires the event stream: outbox hands out events, publisher
// publishes them, clock times the retries and log receives state changes.
// It starts at 100 events a round, 1 s doubling up to 1 min, and a lease of
// 30 s; set the fields to change them.
func NewStreamRelay(outbox StreamOutbox, publisher EventPublisher, clock Clock, log *slog.Logger) *StreamRelay {
	return &StreamRelay{outbox: outbox, publisher: publisher, clock: clock, log: log,
		Batch: 100, BaseBackoff: time.Second, MaxBackoff: time.Minute, Lease: 30 * time.Second}
}

// Backoff is the wait after the n-th failed attempt (n ≥ 1).
func (r *StreamRelay) Backoff(n int) time.Duration {
	wait := r.BaseBackoff
	for i := 1; i < n && wait < r.MaxBackoff; i++ {
		wait *= 2
	}
	return min(wait, r.MaxBackoff)
}

// RunOnce publishes what is due now, batch after batch until none is left
// or a batch fails, and reports how many events were published and failed.
func (r *StreamRelay) RunOnce(ctx context.Context) (published, failed int, err error) {
	defer r.observeLag(ctx)
	if err := r.publisher.Ready(ctx); err != nil {
		if !r.notReady {
			r.log.Warn("event stream unavailable; events wait in the outbox", "error", err)
		}
		r.notReady = true
		return 0, 0, nil
	}
	if r.notReady {
		r.log.Info("event stream available again")
		r.notReady = false
	}
	for ctx.Err() == nil {
		p, f, err := r.runBatch(ctx)
		published, failed = published+p, failed+f
		if err != nil || f > 0 || p < r.Batch {
			return published, failed, err
		}
	}
	return published, failed, nil
}

func (r *StreamRelay) runBatch(ctx context.Context) (published, failed int, err error) {
	events, err := r.outbox.ClaimUnpublished(ctx, r.Batch, r.Lease)
	if err != nil {
		return 0, 0, fmt.Errorf("claim unpublished events: %w", err)
	}
	if len(events) == 0 {
		return 0, 0, nil
	}
	seqs, errs := r.publisher.Publish(ctx, events)
	var ids []string
	var stored []uint64
	for i, e := range events {
		if errs[i] == nil {
			ids, stored = append(ids, e.ID), append(stored, seqs[i])
			continue
		}
		failed++
		attempt := e.Attempts + 1
		giveUp := errors.Is(errs[i], ErrNotASubject)
		next := r.clock.Now().Add(r.Backoff(attempt))
		// The error names the event type at most, never the payload.
		r.log.Warn("event stream publish failed", "event_id", e.ID, "event_type", e.EventType, "attempt", attempt,
			"give_up", giveUp, "error", errs[i])
		if err := r.outbox.MarkPublishFailed(ctx, e.ID, errs[i].Error(), next, giveUp); err != nil {
			r.log.Error("mark publish failed", "event_id", e.ID, "error", err)
		}
	}
	if len(ids) > 0 {
		// Should this fail, the events come back after the lease and the
		// stream drops the repeats by id.
		if err := r.outbox.MarkPublished(ctx, ids, stored); err != nil {
			return 0, failed, fmt.Errorf("mark published: %w", err)
		}
	}
	if r.Metrics != nil {
		r.Metrics.Published(len(ids))
		r.Metrics.Failed(failed)
	}
	return len(ids), failed, nil
}

func (r *StreamRelay) observeLag(ctx context.Context) {
	if r.Metrics == nil || ctx.Err() != nil {
		return
	}
	oldest, err := r.outbox.OldestUnpublished(ctx)
	if err != nil {
		return
	}
	if oldest.IsZero() {
		r.Metrics.Lag(0)
		return
	}
	r.Metrics.Lag(max(r.clock.Now().Sub(oldest), 0))
}

// Run publishes every interval until ctx ends.
func (r *StreamRelay) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, _, err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("event stream relay", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
