package app_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
)

// Dots in an event type separate subject tokens; nothing an event type
// holds may make an empty token, a wildcard or white space.
func TestEventTypesBecomeSubjectsOnlyWhenTheyAreValidOnes(t *testing.T) {
	t.Parallel()
	for typ, want := range map[string]string{
		"exchange.joined":     "quid.events.exchange.joined",
		"points.expiring":     "quid.events.points.expiring",
		"member.tier_changed": "quid.events.member.tier_changed",
		"reward-redeemed":     "quid.events.reward-redeemed",
	} {
		if got, err := app.StreamSubject(typ); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", typ, got, err, want)
		}
	}
	for _, typ := range []string{"", ".", "a..b", ".a", "a.", "a b", "a\tb", "a\r\nb", "*", "a.*", ">", "a.>", "a\x00",
		"\xff", "é", "a\u202eb", strings.Repeat("a", 201)} {
		if got, err := app.StreamSubject(typ); !errors.Is(err, app.ErrNotASubject) {
			t.Errorf("%q: %q, %v; want ErrNotASubject", typ, got, err)
		}
	}
}

func TestStreamBackoffDoublesUpToTheCap(t *testing.T) {
	t.Parallel()
	r := app.NewStreamRelay(nil, nil, nil, nil)
	r.BaseBackoff, r.MaxBackoff = time.Second, time.Minute
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 6: 32 * time.Second, 7: time.Minute, 50: time.Minute} {
		if got := r.Backoff(n); got != want {
			t.Errorf("attempt %d: %s, want %s", n, got, want)
		}
	}
}

type fakeStreamOutbox struct {
	due       []app.StreamEvent
	published []string
	failed    map[string]bool // id → given up
}

func (f *fakeStreamOutbox) ClaimUnpublished(_ context.Context, limit int, _ time.Duration) ([]app.StreamEvent, error) {
	n := min(limit, len(f.due))
	out := f.due[:n]
	f.due = f.due[n:]
	return out, nil
}

func (f *fakeStreamOutbox) MarkPublished(_ context.Context, ids []string, _ []uint64) error {
	f.published = append(f.published, ids...)
	return nil
}

func (f *fakeStreamOutbox) MarkPublishFailed(_ context.Context, id, _ string, _ time.Time, giveUp bool) error {
	f.failed[id] = giveUp
	return nil
}

func (f *fakeStreamOutbox) OldestUnpublished(context.Context) (time.Time, error) {
	return time.Time{}, nil
}

type fakePublisher struct {
	ready error
	fail  map[string]error
}

func (p fakePublisher) Ready(context.Context) error { return p.ready }

func (p fakePublisher) Publish(_ context.Context, events []app.StreamEvent) ([]uint64, []error) {
	seqs, errs := make([]uint64, len(events)), make([]error, len(events))
	for i, e := range events {
		if _, err := app.StreamSubject(e.EventType); err != nil {
			errs[i] = err
		} else {
			errs[i] = p.fail[e.ID]
		}
		seqs[i] = uint64(i + 1)
	}
	return seqs, errs
}

type fixedClock struct{}

func (fixedClock) Now() time.Time { return time.Unix(0, 0) }

// A transient failure is retried later; an event whose type is no subject
// is given up at once (it never can be published); the rest are marked.
// While the publisher is not ready nothing is claimed.
func TestStreamRelayRetriesFailuresAndGivesUpOnlyOnNonSubjects(t *testing.T) {
	t.Parallel()
	out := &fakeStreamOutbox{failed: map[string]bool{}, due: []app.StreamEvent{
		{ID: "1", EventType: "exchange.joined"}, {ID: "2", EventType: "exchange.joined"}, {ID: "3", EventType: "bad type"}}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	down := app.NewStreamRelay(out, fakePublisher{ready: errors.New("down")}, fixedClock{}, log)
	if p, f, err := down.RunOnce(context.Background()); p+f != 0 || err != nil || len(out.due) != 3 {
		t.Fatalf("not ready: published %d, failed %d, %v; %d left of 3", p, f, err, len(out.due))
	}
	r := app.NewStreamRelay(out, fakePublisher{fail: map[string]error{"2": errors.New("timeout")}}, fixedClock{}, log)
	p, f, err := r.RunOnce(context.Background())
	if err != nil || p != 1 || f != 2 {
		t.Fatalf("published %d, failed %d, %v; want 1, 2", p, f, err)
	}
	if len(out.published) != 1 || out.published[0] != "1" {
		t.Errorf("marked published %v, want [1]", out.published)
	}
	if giveUp, ok := out.failed["2"]; !ok || giveUp {
		t.Errorf("a timeout: failed %v, given up %v; want retried", ok, giveUp)
	}
	if giveUp := out.failed["3"]; !giveUp {
		t.Error("an event type that is no subject was not given up")
	}
}
