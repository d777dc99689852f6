package webhook_test

import (
	"context"
	"testing"

	"github.com/quidpro/quid/infra/webhook"
)

func TestGuardRefusesInternalAddressesUnlessAllowed(t *testing.T) {
	t.Parallel()
	strict, lax := webhook.Guard{}, webhook.Guard{AllowPrivate: true}
	tests := []struct {
		url          string
		strictOK     bool
		permissiveOK bool
	}{
		{"https://8.8.8.8/hook", true, true},
		{"http://127.0.0.1:8080/hook", false, true},
		{"http://localhost/hook", false, true},
		{"http://192.168.1.10/hook", false, true},
		{"http://169.254.169.254/latest/meta-data", false, true},
		{"http://[fd00::1]/hook", false, true},
		{"http://100.64.0.1/hook", false, true},
		{"ftp://8.8.8.8/hook", false, false},
		{"https://user:pw@8.8.8.8/hook", false, false},
		{"not a url", false, false},
	}
	for _, tt := range tests {
		if err := strict.Check(context.Background(), tt.url); (err == nil) != tt.strictOK {
			t.Errorf("strict %s: %v", tt.url, err)
		}
		if err := lax.Check(context.Background(), tt.url); (err == nil) != tt.permissiveOK {
			t.Errorf("permissive %s: %v", tt.url, err)
		}
	}
}

func TestSecretsAreStandardWebhooksSecrets(t *testing.T) {
	t.Parallel()
	s := webhook.Secrets{}
	gen, err := s.Generate()
	if err != nil || s.Validate(gen) != nil {
		t.Fatalf("generated %q: %v", gen, err)
	}
	for _, bad := range []string{"", "secret", "whsec_", "whsec_!!!", "whsec_c2hvcnQ="} {
		if s.Validate(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
