package main

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	quid "github.com/quidpro/quid"
)

var (
	webhookDocOnce sync.Once
	webhookDoc     *openapi3.T
	webhookDocErr  error
)

// checkWebhookPayload validates a webhook payload against the request body
// schema of openapi.yaml's webhooks.<event>.
func checkWebhookPayload(t testing.TB, event string, payload []byte) {
	t.Helper()
	webhookDocOnce.Do(func() {
		webhookDoc, webhookDocErr = openapi3.NewLoader().LoadFromData(quid.OpenAPI)
		if webhookDocErr == nil {
			webhookDocErr = webhookDoc.Validate(context.Background())
		}
	})
	if webhookDocErr != nil {
		t.Fatalf("openapi.yaml: %v", webhookDocErr)
	}
	item := webhookDoc.Webhooks[event]
	if item == nil || item.Post == nil || item.Post.RequestBody == nil {
		t.Fatalf("openapi.yaml describes no webhook %s", event)
	}
	media := item.Post.RequestBody.Value.Content.Get("application/json")
	if media == nil || media.Schema == nil {
		t.Fatalf("webhook %s has no JSON schema", event)
	}
	var v any
	if err := json.Unmarshal(payload, &v); err != nil {
		t.Fatalf("webhook %s payload is not JSON: %v", event, err)
	}
	if err := media.Schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.EnableFormatValidation()); err != nil {
		t.Fatalf("webhook %s payload does not match openapi.yaml: %v\n%s", event, err, payload)
	}
}
