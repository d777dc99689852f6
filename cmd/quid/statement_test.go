package main

import (
	"encoding/json"
	"fmt"
	"html"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/domain"
)

// Issue 12: the statement complete, the Notice of Financial Incentive, and
// what the member received beside what their data is worth.

var htmlAccept = map[string]string{"Accept": "text/html"}

// machineDate finds what a person should never read on a page: an ISO 8601
// / RFC 3339 date or time, with or without fractional seconds.
var machineDate = regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}\b|\d{2}:\d{2}:\d{2}|\dT\d{2}|\b\d{2}:\d{2}\b`)

// pageText is an HTML page as the reader gets it: entities decoded, so a
// quote html/template escaped as &#34; counts as a quote.
func pageText(body []byte) string { return html.UnescapeString(string(body)) }

// catalogueKeys are every category and purpose key the catalogue serves.
func catalogueKeys(t *testing.T, a *api) (cats, purs []string) {
	t.Helper()
	var list struct{ Items []struct{ Key string } }
	expect(t, a.do(req{Method: "GET", Path: "/v1/catalog/categories"}), 200).decode(t, &list)
	for _, c := range list.Items {
		cats = append(cats, c.Key)
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/catalog/purposes"}), 200).decode(t, &list)
	for _, p := range list.Items {
		purs = append(purs, p.Key)
	}
	if len(cats) < 25 || len(purs) < 10 {
		t.Fatalf("catalogue: %d categories, %d purposes", len(cats), len(purs))
	}
	return cats, purs
}

// internalReference finds a reference to Quid's own design documents
// (DESIGN.md, its rules, STYLE.md): they mean nothing to a member.
var internalReference = regexp.MustCompile(`\bDESIGN\b|\bSTYLE\.md\b`)

// checkNoInternalReference fails when a member-facing document (HTML, JSON
// or JSON-LD) cites an internal design document.
func checkNoInternalReference(t *testing.T, where string, body []byte) {
	t.Helper()
	text := pageText(body)
	for _, m := range internalReference.FindAllStringIndex(text, 5) {
		t.Errorf("%s cites an internal document: …%s…", where, text[max(0, m[0]-60):min(len(text), m[1]+40)])
	}
}

// checkReadable fails when a page shows an internal key, an internal
// document reference, a machine date or JSON.
func checkReadable(t *testing.T, where string, body []byte, keys []string) {
	t.Helper()
	checkNoInternalReference(t, where, body)
	text := pageText(body)
	for _, k := range keys {
		if strings.Contains(text, k) {
			t.Errorf("%s shows the internal key %q", where, k)
		}
	}
	for _, m := range machineDate.FindAllStringIndex(text, 5) {
		t.Errorf("%s shows a machine date or time: …%s…", where, text[max(0, m[0]-40):min(len(text), m[1]+40)])
	}
	for _, j := range []string{`{"`, `["`, `":`} {
		if i := strings.Index(text, j); i >= 0 {
			t.Errorf("%s shows JSON (%q): …%s…", where, j, text[max(0, i-60):min(len(text), i+60)])
		}
	}
	if !strings.Contains(text, `<html lang="en">`) || !strings.Contains(text, "<main>") {
		t.Errorf("%s lacks its language or main landmark", where)
	}
}

// The HTML statement and notice show no catalogue key (every category and
// every purpose the catalogue has, shared in some published contract, and
// named in a version's changes), no raw timestamp and no JSON.
func TestHTMLStatementAndNoticeShowNoInternalKeyTimestampOrJSON(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	cats, purs := catalogueKeys(t, a)
	keys := append(slices.Clone(cats), purs...)
	item := func(cat, pur string) map[string]any {
		return map[string]any{"category": cat, "purpose": pur, "recipients": []string{f.brand}}
	}
	// Every category (for one purpose) and every purpose (for one
	// category), at most domain.MaxItems items a contract.
	var all []any
	for _, c := range cats {
		all = append(all, item(c, "loyalty.programme_operation"))
	}
	for _, p := range purs {
		if p != "loyalty.programme_operation" {
			all = append(all, item("contact.email", p))
		}
	}
	var batches [][]any
	for len(all) > 0 {
		n := min(len(all), domain.MaxItems)
		batches, all = append(batches, all[:n]), all[n:]
	}
	var ids []string
	for _, items := range batches {
		body := contractBody(f)
		body["items"] = items
		ids = append(ids, a.publishContract(f, body))
	}
	// A second version that drops and adds categories and purposes, so the
	// changes name them.
	d := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + ids[len(ids)-1] + "/versions", Token: f.marketer}), 201).json(t)["id"].(string)
	expect(t, a.do(req{Method: "PATCH", Path: "/v1/contracts/" + d, Token: f.marketer, Body: map[string]any{"items": []any{
		item("location.city", "loyalty.programme_operation"), item("health.allergies", "loyalty.rewards_fulfilment"),
		item("contact.email", "communications.newsletter")}, "retention": "P60D"}}), 200)
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + d + "/publish", Token: f.marketer}), 200)
	ids = append(ids, d)

	shown := map[string]bool{}
	for _, id := range ids {
		st := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/transparency", Headers: htmlAccept}), 200).Body
		checkReadable(t, "statement "+id, st, keys)
		checkReadable(t, "notice "+id, expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/notice", Headers: htmlAccept}), 200).Body, keys)
		var js struct {
			Items []struct {
				Category struct{ Key, Label string }
				Purpose  struct{ Key, Label string }
			}
			ChangesSincePrevious *struct {
				CategoriesAdded []string `json:"categories_added"`
			} `json:"changes_since_previous"`
		}
		jsBody := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/transparency"}), 200).Body
		checkNoInternalReference(t, "statement JSON "+id, jsBody)
		checkNoInternalReference(t, "notice JSON "+id, expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/notice"}), 200).Body)
		checkNoInternalReference(t, "statement JSON-LD "+id, expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/transparency",
			Headers: map[string]string{"Accept": "application/ld+json"}}), 200).Body)
		if err := json.Unmarshal(jsBody, &js); err != nil {
			t.Fatal(err)
		}
		for _, it := range js.Items {
			shown[it.Category.Key], shown[it.Purpose.Key] = true, true
			if !strings.Contains(pageText(st), it.Category.Label) || !strings.Contains(pageText(st), it.Purpose.Label) {
				t.Errorf("statement %s lacks the labels %q / %q", id, it.Category.Label, it.Purpose.Label)
			}
		}
		if c := js.ChangesSincePrevious; c != nil && !strings.Contains(pageText(st), "Added data: Allergies") {
			t.Errorf("the changes of %s do not name the added category by label (added %v)", id, c.CategoriesAdded)
		}
	}
	for _, k := range keys {
		if !shown[k] {
			t.Errorf("no statement shared %s: the check did not cover it", k)
		}
	}
}

// leaves collects the string leaves of a JSON document with their paths,
// skipping the subtrees skip names.
func leaves(v any, path string, skip func(path, key string) bool, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if !skip(path, k) {
				leaves(c, path+"/"+k, skip, out)
			}
		}
	case []any:
		for i, c := range x {
			leaves(c, fmt.Sprintf("%s/%d", path, i), skip, out)
		}
	case string:
		out[path] = x
	case float64:
		out[path] = strings.TrimSuffix(fmt.Sprintf("%.0f", x), ".0")
	}
}

// machineKeys are the JSON fields that carry machine values (keys, codes,
// ISO durations and instants, ids), shown in the HTML by their words.
var machineKeys = map[string]bool{"key": true, "category": true, "purpose": true, "id": true, "kind": true, "country": true,
	"status": true, "retention": true, "duration": true, "vesting": true, "period": true, "per": true, "published_at": true,
	"contract_id": true, "family_id": true, "value_method": true, "method": true, "automated_processing": true, "terms": true,
	"example": true, "categories_added": true, "categories_removed": true, "purposes_added": true, "purposes_removed": true,
	"min_age": true, "previous_version": true, "version": true, "programme_version": true, "field": true, "from": true, "to": true,
	"notice_url": true, "statement_url": true, "explicit_consent": true, "sensitive": true, "derived": true, "advertising": true,
	"direct_marketing": true, "material": true, "max_periods": true, "points_per_period": true}

// The statement and the notice carry the same content in JSON and HTML:
// every user-facing string and number of the JSON appears in the page.
func TestStatementAndNoticeCarryTheSameContentInJSONAndHTML(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	body := contractBody(f)
	body["items"] = append(body["items"].([]any), map[string]any{"category": "health.allergies", "purpose": "loyalty.rewards_fulfilment", "recipients": []string{f.brand}})
	id := a.publishContract(f, body)
	v2 := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + id + "/versions", Token: f.marketer}), 201).json(t)["id"].(string)
	expect(t, a.do(req{Method: "PATCH", Path: "/v1/contracts/" + v2, Token: f.marketer, Body: map[string]any{"title": "Coffee club plus",
		"reward": map[string]any{"join_bonus": 300, "vesting": "P14D", "points_per_period": 50, "period": "P1M", "max_periods": 12}}}), 200)
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v2 + "/publish", Token: f.marketer}), 200)

	for _, route := range []string{"/transparency", "/notice"} {
		var doc any
		if err := json.Unmarshal(expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + v2 + route}), 200).Body, &doc); err != nil {
			t.Fatal(err)
		}
		page := pageText(expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + v2 + route, Headers: htmlAccept}), 200).Body)
		got := map[string]string{}
		leaves(doc, "", func(_, k string) bool { return machineKeys[k] }, got)
		if len(got) < 40 {
			t.Fatalf("%s: only %d user-facing leaves: %v", route, len(got), got)
		}
		for path, v := range got {
			if v != "" && !strings.Contains(page, v) {
				t.Errorf("%s: %s = %q is in the JSON but not in the HTML", route, path, v)
			}
		}
	}
	// The statement names who answers, the legal basis (explicit, since
	// allergies are sensitive), the country by name and the notice.
	st := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/transparency"}), 200).json(t)
	lb := st["legal_basis"].(map[string]any)
	if lb["explicit_consent"] != true || !slices.Contains(lb["articles"].([]any), any("GDPR Art. 9(2)(a)")) {
		t.Errorf("a sensitive category shared without explicit consent as the basis: %v", lb)
	}
	if c := st["controller"].(map[string]any); c["legal_name"] != "Brand AS" || c["supervisory_authority"].(map[string]any)["complaint_url"] == "" {
		t.Errorf("controller: %v", c)
	}
	if st["notice_url"] != "/v1/contracts/"+id+"/notice" {
		t.Errorf("notice_url %v", st["notice_url"])
	}
	offers := expect(t, a.do(req{Method: "GET", Path: "/v1/offers"}), 200).json(t)["items"].([]any)
	for _, o := range offers {
		o := o.(map[string]any)
		if o["notice_url"] != "/v1/contracts/"+o["id"].(string)+"/notice" {
			t.Errorf("offer %v: notice_url %v", o["id"], o["notice_url"])
		}
	}
	page := pageText(expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/transparency", Headers: htmlAccept}), 200).Body)
	for _, w := range []string{"Norway", "Sweden", "GDPR Art. 6(1)(a)", "GDPR Art. 9(2)(a)", "Datatilsynet", `href="/v1/contracts/` + id + `/notice"`,
		"Brand AS", "privacy@brand.example", "dpo@brand.example", "4.80 EUR", "revenue the business makes", "SHA-256", "espresso beans, oat milk"} {
		if !strings.Contains(page, w) {
			t.Errorf("statement page lacks %q", w)
		}
	}
	if draft := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: contractBody(f)}), 201).json(t); draft["notice_url"] != nil {
		t.Errorf("a draft links a notice: %v", draft["notice_url"])
	}
}

// The notice has each part Cal. Code Regs. tit. 11 §7016(b) requires, in
// JSON and HTML.
func TestNoticeOfFinancialIncentiveHasEachPartOf7016b(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	id := a.publishContract(f, contractBody(f))
	var n struct {
		Summary       struct{ Plain string }
		MaterialTerms struct {
			Categories []struct{ Label string }
			Reward     struct{ Plain string }
		} `json:"material_terms"`
		OptIn      struct{ Plain, Call string } `json:"opt_in"`
		Withdrawal struct{ Plain, Call string }
		Value      struct {
			Plain       string
			Estimate    *struct{ Amount, Currency, Per string }
			MethodLabel *string `json:"method_label"`
			Explanation *string
		}
	}
	r := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/notice"}), 200)
	r.decode(t, &n)
	if !strings.Contains(n.Summary.Plain, "200 points when you join") || !strings.Contains(n.Summary.Plain, "Brand AS") {
		t.Errorf("(b)(1) summary: %q", n.Summary.Plain)
	}
	var labels []string
	for _, c := range n.MaterialTerms.Categories {
		labels = append(labels, c.Label)
	}
	if !slices.Equal(labels, []string{"City", "Purchase history", "Is an adult (18+)"}) || n.MaterialTerms.Reward.Plain == "" {
		t.Errorf("(b)(2) material terms: categories %v, reward %q", labels, n.MaterialTerms.Reward.Plain)
	}
	if n.OptIn.Plain == "" || !strings.HasPrefix(n.OptIn.Call, "POST /v1/me/exchanges") {
		t.Errorf("(b)(3) opt in: %+v", n.OptIn)
	}
	if !strings.Contains(n.Withdrawal.Plain, "at any time") || n.Withdrawal.Call != "DELETE /v1/me/exchanges/{id}" {
		t.Errorf("(b)(4) withdrawal: %+v", n.Withdrawal)
	}
	if e := n.Value.Estimate; e == nil || e.Amount != "4.80" || n.Value.MethodLabel == nil || n.Value.Explanation == nil ||
		!strings.Contains(n.Value.Plain, "4.80 EUR") || !strings.Contains(n.Value.Plain, "8.00 EUR") {
		t.Errorf("(b)(5) value: %+v", n.Value)
	}
	page := pageText(expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/notice", Headers: htmlAccept}), 200).Body)
	for _, w := range []string{"<h1>Notice of Financial Incentive", "1. Summary of the incentive", "2. Material terms", "Personal information it implicates",
		"3. How to opt in", "4. Your right to withdraw at any time", "5. What your data is worth", "Good-faith estimate: 4.80 EUR for every year",
		"Method used to calculate it: the revenue the business makes", "Revenue from personalised offers per member and year.",
		n.Summary.Plain, "<th scope=\"row\">Most in total</th><td>8.00 EUR</td>"} {
		if !strings.Contains(page, w) {
			t.Errorf("notice page lacks %q", w)
		}
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/notice", Headers: map[string]string{"If-None-Match": r.Header.Get("ETag")}}), 304)
}

// A published notice changes with the terms and only with them: a new
// programme identity, a new draft (created, edited), identical terms
// published again as a new version, and the version's retirement leave its
// notice byte for byte as it was (publishing the next version retires it:
// a status change, not a change of terms); the new version's notice follows
// its own terms.
func TestNoticeChangesWithTheTermsAndOnlyWithThem(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	id := a.publishContract(f, contractBody(f))
	get := func(id string) (js, page []byte) {
		t.Helper()
		js = expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/notice"}), 200).Body
		page = expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/notice", Headers: htmlAccept}), 200).Body
		return js, page
	}
	js1, page1 := get(id)
	unchanged := func(after string) {
		t.Helper()
		if js, page := get(id); string(js) != string(js1) || string(page) != string(page1) {
			t.Errorf("the published notice changed after %s", after)
		}
	}
	expect(t, a.do(req{Method: "PUT", Path: "/v1/programme", Token: f.admin, Body: programmeBody("EUR", "0.003")}), 200)
	unchanged("a new programme identity")
	again := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + id + "/versions", Token: f.marketer}), 201).json(t)["id"].(string)
	unchanged("a new draft version")
	expect(t, a.do(req{Method: "PATCH", Path: "/v1/contracts/" + again, Token: f.marketer, Body: map[string]any{
		"value_estimate": map[string]any{"amount": "9.60", "currency": "EUR", "per": "P1Y"}}}), 200)
	unchanged("editing the draft")
	expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + again + "/notice", Token: f.marketer}), 404)
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + again + "/publish", Token: f.marketer}), 200)
	unchanged("publishing the next version")
	js2, page2 := get(again)
	var n1, n2 map[string]any
	_ = json.Unmarshal(js1, &n1)
	_ = json.Unmarshal(js2, &n2)
	if est := n2["value"].(map[string]any)["estimate"].(map[string]any); est["amount"] != "9.60" || !strings.Contains(string(page2), "9.60 EUR") {
		t.Errorf("the new version's notice does not follow its terms: %v", est)
	}
	if rv := n2["material_terms"].(map[string]any)["reward_value"].(map[string]any); rv["point_value"] != "0.003" || rv["join_bonus"] != "0.60" {
		t.Errorf("the new version's notice values points at its own programme identity: %v", rv)
	}
	if n1["value"].(map[string]any)["estimate"].(map[string]any)["amount"] != "4.80" {
		t.Errorf("the first notice: %v", n1["value"])
	}
	// The same terms published once more (a version with nothing changed)
	// are a new notice; the old one stays.
	same := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + again + "/versions", Token: f.marketer}), 201).json(t)["id"].(string)
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + same + "/publish", Token: f.marketer}), 200)
	unchanged("republishing identical terms")
	if js3, _ := get(again); string(js3) != string(js2) {
		t.Error("republishing identical terms changed the notice of the version they repeat")
	}
	if st := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id}), 200).json(t)["status"]; st != "retired" {
		t.Errorf("the first version is %v; the check above was meant to cover its retirement", st)
	}
}

// Money in the notice and in what the member received is exact for awkward
// point values: 0.003 EUR a point, and JPY, which has no minor unit; the
// estimate is prorated exactly to the time consent has lasted.
func TestReceivedAndNoticeMoneyIsExactForAwkwardPointValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		currency, point, estimate string
		digits                    int
		bonus                     int64
		wantBonus, wantWorth      string
	}{
		{"EUR", "0.003", "99999999.99", 2, 333, "1.00", "1.00"},
		{"JPY", "1.5", "100000000000000", 0, 1001, "1502", "1502"}, // 1501.5 to even
	} {
		t.Run(tc.currency, func(t *testing.T) {
			t.Parallel()
			a := newAPI(t)
			f := a.fixtures()
			expect(t, a.do(req{Method: "PUT", Path: "/v1/programme", Token: f.admin, Body: programmeBody(tc.currency, tc.point)}), 200)
			body := contractBody(f)
			reward(body)["join_bonus"], reward(body)["vesting"] = tc.bonus, "PT0S"
			body["value_estimate"] = map[string]any{"amount": tc.estimate, "currency": tc.currency, "per": "P1Y"}
			id := a.publishContract(f, body)
			n := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/notice"}), 200).json(t)
			if rv := n["material_terms"].(map[string]any)["reward_value"].(map[string]any); rv["join_bonus"] != tc.wantBonus {
				t.Errorf("notice join bonus %v, want %s", rv["join_bonus"], tc.wantBonus)
			}
			a.enrol(f.member)
			ex := a.joinContract(f.member, id)["id"].(string)
			time.Sleep(20 * time.Millisecond) // some consent time, so the estimate is not zero
			check := func(where string, got any) {
				t.Helper()
				r, _ := got.(map[string]any)
				if r == nil || r["points"] != float64(tc.bonus) || r["points_value"] != tc.wantWorth || r["currency"] != tc.currency {
					t.Fatalf("%s: received %v, want %d points worth %s %s", where, r, tc.bonus, tc.wantWorth, tc.currency)
				}
				from, err1 := time.Parse(time.RFC3339Nano, r["from"].(string))
				to, err2 := time.Parse(time.RFC3339Nano, r["to"].(string))
				if err1 != nil || err2 != nil || !to.After(from) {
					t.Fatalf("%s: from %v to %v", where, r["from"], r["to"])
				}
				want, _ := domain.ValueEstimate{Amount: tc.estimate, Currency: tc.currency, Per: domain.MustParseDuration("P1Y")}.Over(from, to, tc.digits)
				if r["estimated_value"] != want || want == "0" || want == "0.00" {
					t.Errorf("%s: estimated_value %v, want %s (exact, from %s to %s)", where, r["estimated_value"], want, from, to)
				}
				if plain := r["plain"].(string); !strings.Contains(plain, tc.wantWorth+" "+tc.currency) || !strings.Contains(plain, want+" "+tc.currency) {
					t.Errorf("%s: plain %q does not set both side by side", where, plain)
				}
			}
			check("exchange", expect(t, a.do(req{Method: "GET", Path: "/v1/me/exchanges/" + ex, Token: f.member}), 200).json(t)["received"])
			check("exchange list", expect(t, a.do(req{Method: "GET", Path: "/v1/me/exchanges", Token: f.member}), 200).json(t)["items"].([]any)[0].(map[string]any)["received"])
			check("member statement", expect(t, a.do(req{Method: "GET", Path: "/v1/me/transparency", Token: f.member}), 200).json(t)["exchanges"].([]any)[0].(map[string]any)["received"])
			// After cancelling, the time stops at the end of consent.
			expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + ex, Token: f.member}), 200)
			r1 := expect(t, a.do(req{Method: "GET", Path: "/v1/me/exchanges/" + ex, Token: f.member}), 200).json(t)
			time.Sleep(20 * time.Millisecond)
			r2 := expect(t, a.do(req{Method: "GET", Path: "/v1/me/exchanges/" + ex, Token: f.member}), 200).json(t)
			if got1, got2 := r1["received"].(map[string]any), r2["received"].(map[string]any); got1["to"] != r1["ended_at"] || got1["estimated_value"] != got2["estimated_value"] {
				t.Errorf("after cancelling: to %v (ended %v), estimate %v then %v", got1["to"], r1["ended_at"], got1["estimated_value"], got2["estimated_value"])
			}
		})
	}
}
