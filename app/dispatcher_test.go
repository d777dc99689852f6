package app_test

import (
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
