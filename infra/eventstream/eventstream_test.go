package eventstream_test

import (
	"strings"
	"testing"

	"github.com/quidpro/quid/infra/eventstream"
)

// An existing stream is used only when one of its subjects takes every
// quid.events.<type> subject.
func TestAStreamCoversQuidEventsOnlyWithAWideEnoughSubject(t *testing.T) {
	t.Parallel()
	for filter, want := range map[string]bool{
		"quid.events.>": true, "quid.>": true, ">": true, "*.events.>": true, "*.*.>": true,
		"quid.events.*": false, "quid.events": false, "quid.*": false, "quid.events.exchange.>": false, "other.>": false,
	} {
		if got := eventstream.Covers(filter, eventstream.Subjects); got != want {
			t.Errorf("Covers(%q, %q) = %v, want %v", filter, eventstream.Subjects, got, want)
		}
	}
}

// NATS client errors may name the server URL, whose user information may
// hold a password or token: logs never see it.
func TestRedactHidesNATSCredentials(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"dial nats://alice:s3cret@nats.example:4222: refused",
		`connect "tls://s3cret@a.example:4222", nats://bob:s3cret@b.example`,
	} {
		got := eventstream.Redact(s)
		if strings.Contains(got, "s3cret") || strings.Contains(got, "alice") || strings.Contains(got, "bob") {
			t.Errorf("Redact(%q) = %q", s, got)
		}
		if !strings.Contains(got, ".example") {
			t.Errorf("Redact(%q) = %q lost the host", s, got)
		}
	}
}
