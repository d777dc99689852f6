package main

import (
	"testing"

	"github.com/quidpro/quid/infra/browsertest"
)

// everythingContract is a contract whose statement shows every kind of
// content: several recipients, first and third party, in three countries;
// a sensitive category, a derived one; direct marketing, profiling and an
// automated decision; a join bonus with vesting, periods and a cap; a
// value estimate with its method; its own, shorter points expiry.
func everythingContract(f fixtures) map[string]any {
	body := contractBody(f)
	body["items"] = []any{
		map[string]any{"category": "location.city", "purpose": "loyalty.personalised_offers", "recipients": []string{f.brand, f.partnerCo}},
		map[string]any{"category": "commerce.purchase_history", "purpose": "security.fraud_prevention", "recipients": []string{f.brand}},
		map[string]any{"category": "demographic.age_over_18", "purpose": "loyalty.programme_operation", "recipients": []string{f.partnerCo}},
		map[string]any{"category": "health.dietary_preferences", "purpose": "service.personalisation", "recipients": []string{f.brand}},
	}
	body["points_expire_after"] = "P6M"
	return body
}

// TestPublicPagesPassWCAG21AAInARealBrowser: every HTML page Quid serves
// without sign-in has no WCAG 2.1 A or AA violation that axe-core finds, in
// headless Chromium, on a phone and a desktop, in light and dark mode. The
// statement is checked for a first version and for a second whose material
// changes add a section.
func TestPublicPagesPassWCAG21AAInARealBrowser(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	v1 := a.publishContract(f, everythingContract(f))
	d := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v1 + "/versions", Token: f.marketer}), 201).json(t)
	v2 := d["id"].(string)
	changed := everythingContract(f)
	changed["items"] = append(changed["items"].([]any),
		map[string]any{"category": "location.city", "purpose": "advertising.third_party", "recipients": []string{f.adCo}})
	changed["retention"] = "P90D"
	changed["title"] = "Coffee club, second edition"
	expect(t, a.do(req{Method: "PATCH", Path: "/v1/contracts/" + v2, Token: f.marketer,
		Body: map[string]any{"items": changed["items"], "retention": "P90D", "title": changed["title"]}}), 200)
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v2 + "/publish", Token: f.marketer}), 200)

	st := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + v2 + "/transparency"}), 200).json(t)
	if ch, _ := st["changes_since_previous"].(map[string]any); ch == nil || ch["material"] != true {
		t.Fatalf("the second version's statement has no material changes to show: %v", st["changes_since_previous"])
	}

	// The pages to check, one a line.
	pages := []struct{ name, path string }{
		{"statement", "/v1/contracts/" + v1 + "/transparency"},
		{"statement-with-changes", "/v1/contracts/" + v2 + "/transparency"},
		{"notice", "/v1/contracts/" + v1 + "/notice"},
		{"notice-of-second-version", "/v1/contracts/" + v2 + "/notice"},
	}

	base := "http://" + a.listen(t)
	b := browsertest.Start(t)
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) { b.CheckAccessible(t, base+p.path) })
	}
}
