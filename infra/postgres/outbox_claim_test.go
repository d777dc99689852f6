package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/postgres"
)

// The webhook worker's claim reads the due events of recipients that have
// an endpoint, not the events waiting for recipients that have none: those
// pile up (they wait until an endpoint is registered), and a claim that
// read them all on every poll cost a second of database time at 74,000 of
// them. The plan of the claim, as executed, says how many outbox rows it
// touched.
func TestWebhookClaimsReadNoEventOfRecipientsWithoutEndpoint(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	partner, err := w.contracts.CreateRecipient(ctx, admin, app.RecipientInput{Name: "Partner", Kind: "third_party", Country: "NO",
		PrivacyPolicyURL: "https://partner.example/privacy"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.store.SaveWebhook(ctx, app.Webhook{RecipientID: partner.ID, URL: "https://partner.example/hook",
		Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}); err != nil {
		t.Fatal(err)
	}
	// 3,000 due events for the brand, which has no endpoint, older than the
	// partner's 3.
	for _, seed := range []struct {
		recipient string
		n         int
		age       string
	}{{w.brand.ID, 3000, "2 hours"}, {partner.ID, 3, "1 hour"}} {
		if err := w.db.Exec(`INSERT INTO webhook_outbox (id, recipient_id, event_type, payload, created_at, next_attempt_at)
			SELECT gen_random_uuid(), ?, 'exchange.joined', '{}', now() - CAST(? AS interval), now() - CAST(? AS interval)
			FROM generate_series(1, ?)`, seed.recipient, seed.age, seed.age, seed.n).Error; err != nil {
			t.Fatal(err)
		}
	}
	if err := w.db.Exec(`ANALYZE webhook_outbox`).Error; err != nil {
		t.Fatal(err)
	}

	var plan string
	errRollback := errors.New("rollback")
	err = w.db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Raw(`EXPLAIN (ANALYZE, FORMAT JSON) `+postgres.ClaimDueSQL,
			map[string]any{"limit": 50, "lease": time.Minute}).Row().Scan(&plan); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	var doc []struct{ Plan map[string]any }
	if err := json.Unmarshal([]byte(plan), &doc); err != nil || len(doc) != 1 {
		t.Fatalf("plan: %v", err)
	}
	if read := outboxRowsRead(doc[0].Plan, false); read > 10 {
		t.Errorf("claiming the partner's 3 due events read %v outbox rows; the brand's 3,000 (no endpoint) must not be read\n%s", read, plan)
	}

	msgs, err := w.store.ClaimDue(ctx, 50, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("claimed %d events, want the partner's 3", len(msgs))
	}
	for _, m := range msgs {
		if m.RecipientID != partner.ID {
			t.Errorf("claimed an event of %s, which has no endpoint", m.RecipientID)
		}
	}
	if again, err := w.store.ClaimDue(ctx, 50, time.Minute); err != nil || len(again) != 0 {
		t.Errorf("leased events claimed again: %d (%v)", len(again), err)
	}
}

// outboxRowsRead adds up, over the nodes of the claim (the CTE due) that
// scan webhook_outbox, the rows they returned and the rows their filters
// removed, every loop. (The UPDATE that follows finds the claimed rows by
// id; on a table this small the planner may scan it instead, which says
// nothing about the claim.)
func outboxRowsRead(node map[string]any, inClaim bool) float64 {
	inClaim = inClaim || node["Subplan Name"] == "CTE due"
	var n float64
	if inClaim && node["Relation Name"] == "webhook_outbox" {
		loops, _ := node["Actual Loops"].(float64)
		rows, _ := node["Actual Rows"].(float64)
		removed, _ := node["Rows Removed by Filter"].(float64)
		n += loops * (rows + removed)
	}
	children, _ := node["Plans"].([]any)
	for _, c := range children {
		if m, ok := c.(map[string]any); ok {
			n += outboxRowsRead(m, inClaim)
		}
	}
	return n
}
