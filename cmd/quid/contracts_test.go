package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/config"
)

type fixtures struct {
	admin, marketer, member, partner string
	brand, partnerCo, adCo           string // recipient ids
}

func (a *api) fixtures() fixtures {
	a.t.Helper()
	f := a.fixturesWithoutProgramme()
	// Contracts are published under a programme identity.
	expect(a.t, a.do(req{Method: "PUT", Path: "/v1/programme", Token: f.admin, Body: programmeBody("EUR", "0.01")}), 200)
	return f
}

// fixturesWithoutProgramme are the fixtures of a deployment whose admin has
// not set the programme identity yet.
func (a *api) fixturesWithoutProgramme() fixtures {
	a.t.Helper()
	f := fixtures{
		admin:    token(a.t, app.RoleAdmin, "root"),
		marketer: token(a.t, app.RoleMarketer, "mark"),
		member:   token(a.t, app.RoleMember, "alice"),
	}
	mk := func(name, kind, country string) string {
		r := expect(a.t, a.do(req{Method: "POST", Path: "/v1/recipients", Token: f.admin, Body: map[string]any{
			"name": name, "kind": kind, "country": country, "privacy_policy_url": "https://" + strings.ToLower(name) + ".example/privacy"}}), 201)
		return r.json(a.t)["id"].(string)
	}
	f.brand, f.partnerCo, f.adCo = mk("Brand", "first_party", "NO"), mk("PartnerCo", "third_party", "SE"), mk("AdCo", "third_party", "US")
	f.partner = token(a.t, app.RolePartner, f.partnerCo)
	return f
}

// programmeBody is a programme identity whose points are worth amount of currency.
func programmeBody(currency, amount string) map[string]any {
	return map[string]any{
		"legal_name": "Brand AS", "address": "Storgata 1, 0155 Oslo, Norway", "contact_email": "privacy@brand.example",
		"dpo_contact":           "dpo@brand.example",
		"supervisory_authority": map[string]any{"name": "Datatilsynet", "complaint_url": "https://www.datatilsynet.no/en/"},
		"point_value":           map[string]any{"currency": currency, "amount": amount},
		"jurisdictions":         []string{"NO", "SE", "US-CA"},
	}
}

func contractBody(f fixtures) map[string]any {
	return map[string]any{
		"title": "Coffee club", "summary": "City and purchases for coffee.",
		"items": []any{
			map[string]any{"category": "location.city", "purpose": "loyalty.personalised_offers", "recipients": []string{f.brand, f.partnerCo}},
			map[string]any{"category": "commerce.purchase_history", "purpose": "loyalty.personalised_offers", "recipients": []string{f.brand}},
			map[string]any{"category": "demographic.age_over_18", "purpose": "loyalty.programme_operation", "recipients": []string{f.partnerCo}},
		},
		"retention": "P30D", "duration": "P12M",
		"reward":         map[string]any{"join_bonus": 200, "vesting": "P14D", "points_per_period": 50, "period": "P1M", "max_periods": 12},
		"value_estimate": map[string]any{"amount": "4.80", "currency": "EUR", "per": "P1Y"},
		"value_method":   "revenue_attributable", "value_explanation": "Revenue from personalised offers per member and year.",
	}
}

// publishContract creates and publishes a contract and returns its id.
func (a *api) publishContract(f fixtures, body map[string]any) string {
	a.t.Helper()
	id := expect(a.t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: body}), 201).json(a.t)["id"].(string)
	expect(a.t, a.do(req{Method: "POST", Path: "/v1/contracts/" + id + "/publish", Token: f.marketer}), 200)
	return id
}

func TestCatalogueShipsCategoriesAndPurposesWithMappings(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	var cats struct {
		Items []struct {
			Key, Type, Fideslang, DPV string
			Sensitive                 bool
			Derived                   *struct{ From string }
		}
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/catalog/categories"}), 200).decode(t, &cats)
	if len(cats.Items) < 25 {
		t.Fatalf("%d categories, want at least 25", len(cats.Items))
	}
	derived := map[string]string{}
	for _, c := range cats.Items {
		if c.Fideslang == "" || c.DPV == "" {
			t.Errorf("%s lacks a fideslang or DPV mapping", c.Key)
		}
		if strings.HasPrefix(c.Key, "health.") && !c.Sensitive {
			t.Errorf("%s is not marked sensitive", c.Key)
		}
		if c.Derived != nil {
			derived[c.Key] = c.Derived.From
		}
	}
	for key, from := range map[string]string{"demographic.age_over_18": "demographic.birthdate", "demographic.age_over_21": "demographic.birthdate", "location.country": "location.address"} {
		if derived[key] != from {
			t.Errorf("%s derives from %q, want %q", key, derived[key], from)
		}
	}
	var purposes struct{ Items []struct{ Key string } }
	expect(t, a.do(req{Method: "GET", Path: "/v1/catalog/purposes"}), 200).decode(t, &purposes)
	if len(purposes.Items) < 10 {
		t.Fatalf("%d purposes, want at least 10", len(purposes.Items))
	}
}

func TestContractLifecycleAndForbiddenTransitions(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	draft := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: contractBody(f)}), 201).json(t)
	id := draft["id"].(string)
	if draft["status"] != "draft" || draft["version"] != float64(1) || draft["terms_hash"] != nil {
		t.Fatalf("draft: %v", draft)
	}
	path := "/v1/contracts/" + id
	// Drafts are editable and hidden from the public.
	edited := expect(t, a.do(req{Method: "PATCH", Path: path, Token: f.marketer, Body: map[string]any{"title": "Coffee club+", "duration": nil}}), 200).json(t)
	if edited["title"] != "Coffee club+" || edited["duration"] != nil {
		t.Fatalf("patch: %v", edited)
	}
	expect(t, a.do(req{Method: "GET", Path: path}), 404)
	expect(t, a.do(req{Method: "GET", Path: path, Token: f.member}), 404)
	a.enrol(f.member)
	// Joining a draft answers exactly as joining no contract at all.
	join := func(contractID string) string {
		r := a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: f.member, Body: map[string]any{"contract_id": contractID}})
		problemAt(t, r, 422, "/contract_id")
		return r.json(t)["errors"].([]any)[0].(map[string]any)["detail"].(string)
	}
	if draft, none := join(id), join("00000000-0000-0000-0000-000000000000"); draft != none {
		t.Fatalf("joining a draft reveals it: %q vs %q", draft, none)
	}
	expect(t, a.do(req{Method: "POST", Path: path + "/retire", Token: f.marketer}), 409)
	expect(t, a.do(req{Method: "POST", Path: path + "/versions", Token: f.marketer}), 409)

	pub := expect(t, a.do(req{Method: "POST", Path: path + "/publish", Token: f.marketer}), 200).json(t)
	hash, _ := pub["terms_hash"].(string)
	if pub["status"] != "published" || !strings.HasPrefix(hash, "sha256:") || pub["published_at"] == nil {
		t.Fatalf("publish: %v", pub)
	}
	expect(t, a.do(req{Method: "GET", Path: path}), 200)
	expect(t, a.do(req{Method: "PATCH", Path: path, Token: f.marketer, Body: map[string]any{"title": "sneaky"}}), 409)
	expect(t, a.do(req{Method: "POST", Path: path + "/publish", Token: f.marketer}), 409)

	offers := expect(t, a.do(req{Method: "GET", Path: "/v1/offers"}), 200).json(t)
	if items := offers["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != id {
		t.Fatalf("offers: %v", offers)
	}
	retired := expect(t, a.do(req{Method: "POST", Path: path + "/retire", Token: f.marketer}), 200).json(t)
	if retired["status"] != "retired" || retired["terms_hash"] != hash {
		t.Fatalf("retire: %v", retired)
	}
	expect(t, a.do(req{Method: "POST", Path: path + "/retire", Token: f.marketer}), 409)
	if items := expect(t, a.do(req{Method: "GET", Path: "/v1/offers"}), 200).json(t)["items"].([]any); len(items) != 0 {
		t.Fatalf("a retired version is still offered: %v", items)
	}
	list := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts?status=retired", Token: f.marketer}), 200).json(t)
	if len(list["items"].([]any)) != 1 {
		t.Fatalf("list by status: %v", list)
	}
	problemAt(t, a.do(req{Method: "GET", Path: "/v1/contracts?status=lost", Token: f.marketer}), 422, "/query/status")
	problemAt(t, a.do(req{Method: "GET", Path: "/v1/contracts?status=", Token: f.marketer}), 422, "/query/status")
}

func TestTermsHashIsStableAcrossRestartsAndRecomputable(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	first := a.publishContract(f, contractBody(f))
	twin := a.publishContract(f, contractBody(f))
	get := func(a *api, id string) map[string]any {
		return expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/transparency"}), 200).json(t)
	}
	st := get(a, first)
	if get(a, twin)["terms_hash"] != st["terms_hash"] {
		t.Fatal("identical terms have different hashes")
	}
	// A restarted process on the same database serves the same hash.
	restarted, err := build(context.Background(), a.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer restarted.close()
	if again := get(&api{t: t, svc: restarted, cfg: a.cfg}, first); again["terms_hash"] != st["terms_hash"] {
		t.Fatalf("hash changed after restart: %v vs %v", again["terms_hash"], st["terms_hash"])
	}
	// Anyone can recompute the hash from the statement's canonical terms.
	raw := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + first + "/transparency"}), 200).Body
	start := strings.Index(string(raw), `"terms":`) + len(`"terms":`)
	end := strings.Index(string(raw), `,"published_at"`)
	sum := sha256.Sum256(raw[start:end])
	if "sha256:"+hex.EncodeToString(sum[:]) != st["terms_hash"] {
		t.Fatalf("sha256 of the served canonical terms is not the terms hash")
	}
}

func TestContractValidationNamesEachField(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	tests := []struct {
		name    string
		mutate  func(map[string]any)
		pointer string
	}{
		{"unknown category", func(b map[string]any) { item(b, 0)["category"] = "contact.shoe_size" }, "/items/0/category"},
		{"unknown purpose", func(b map[string]any) { item(b, 0)["purpose"] = "selling.everything" }, "/items/0/purpose"},
		{"unknown recipient", func(b map[string]any) {
			item(b, 1)["recipients"] = []string{"00000000-0000-0000-0000-000000000000"}
		}, "/items/1/recipients/0"},
		{"empty items", func(b map[string]any) { b["items"] = []any{} }, "/items"},
		{"duplicate item", func(b map[string]any) { b["items"] = append(b["items"].([]any), item(b, 0)) }, "/items/3"},
		{"negative points", func(b map[string]any) { reward(b)["join_bonus"] = -5 }, "/reward/join_bonus"},
		{"absurd points", func(b map[string]any) { reward(b)["points_per_period"] = 5_000_000_000 }, "/reward/points_per_period"},
		{"period below the minimum", func(b map[string]any) { reward(b)["period"] = "PT0S" }, "/reward/period"},
		{"bad retention", func(b map[string]any) { b["retention"] = "30 days" }, "/retention"},
		{"bad duration", func(b map[string]any) { b["duration"] = "P1X" }, "/duration"},
		{"bad vesting", func(b map[string]any) { reward(b)["vesting"] = "soon" }, "/reward/vesting"},
		{"no title", func(b map[string]any) { b["title"] = "" }, "/title"},
		{"title over 200 characters", func(b map[string]any) { b["title"] = strings.Repeat("é", 201) }, "/title"},
		{"summary over 2000 characters", func(b map[string]any) { b["summary"] = strings.Repeat("ø", 2001) }, "/summary"},
		{"no reward", func(b map[string]any) { delete(b, "reward") }, "/reward"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := contractBody(f)
			tt.mutate(body)
			problemAt(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: body}), 422, tt.pointer)
		})
	}
	list := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts", Token: f.marketer}), 200).json(t)
	if n := len(list["items"].([]any)); n != 0 {
		t.Fatalf("failed creates left %d contracts", n)
	}
}

func TestLengthsAreCountedInCharactersNotBytes(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	body := contractBody(f)
	body["title"] = strings.Repeat("é", 200) // 400 bytes, 200 characters
	body["summary"] = strings.Repeat("ø", 2000)
	got := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: body}), 201).json(t)
	if got["title"] != body["title"] {
		t.Fatal("title was altered")
	}
}

func TestPatchRefusesNullWhereAFieldCannotBeEmpty(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	id := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: contractBody(f)}), 201).json(t)["id"].(string)
	patch := func(body string) response {
		return a.do(req{Method: "PATCH", Path: "/v1/contracts/" + id, Token: f.marketer, Body: body})
	}
	for _, tt := range []struct{ body, pointer string }{
		{`{"title": null}`, "/title"},
		{`{"summary": null}`, "/summary"},
		{`{"items": null}`, "/items"},
		{`{"retention": null}`, "/retention"},
		{`{"reward": null}`, "/reward"},
		{`{"reward": {"join_bonus": null}}`, "/reward/join_bonus"},
		{`{"reward": {"points_per_period": null}}`, "/reward/points_per_period"},
		{`{"Title": null}`, "/Title"}, // field names are case-sensitive: another case is an unknown field
		{`{"Reward": {"Join_Bonus": null}}`, "/Reward"},
	} {
		problemAt(t, patch(tt.body), 422, tt.pointer)
	}
	stored := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id, Token: f.marketer}), 200).json(t)
	if stored["title"] != "Coffee club" || reward(stored)["join_bonus"] != float64(200) {
		t.Fatalf("a refused patch changed the draft: %v", stored)
	}
	// Null still clears what may be absent.
	cleared := expect(t, patch(`{"duration": null, "reward": {"max_periods": null}}`), 200).json(t)
	if cleared["duration"] != nil || reward(cleared)["max_periods"] != nil || reward(cleared)["join_bonus"] != float64(200) {
		t.Fatalf("null did not clear only the optional fields: %v", cleared)
	}
}

func TestShortPeriodIsRefusedBelowTheConfiguredMinimum(t *testing.T) {
	t.Parallel()
	a := newAPI(t, func(c *config.Config) { c.MinRewardPeriod = time.Hour })
	f := a.fixtures()
	body := contractBody(f)
	reward(body)["period"] = "PT30M"
	problemAt(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: body}), 422, "/reward/period")
}

func item(b map[string]any, i int) map[string]any { return b["items"].([]any)[i].(map[string]any) }
func reward(b map[string]any) map[string]any      { return b["reward"].(map[string]any) }

func TestRolesGuardContractOperations(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	id := a.publishContract(f, contractBody(f))
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.member, Body: contractBody(f)}), 403)
	expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/stats", Token: f.partner}), 403)
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + id + "/retire", Token: f.admin}), 403)
	expect(t, a.do(req{Method: "POST", Path: "/v1/recipients", Token: f.marketer, Body: map[string]any{"name": "X", "kind": "first_party", "country": "NO", "privacy_policy_url": "https://x.example"}}), 403)
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Body: contractBody(f)}), 401)
	stats := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/stats", Token: f.marketer}), 200).json(t)
	if stats["joins"] != nil || stats["suppressed"].([]any)[0] != "joins" {
		t.Fatalf("stats: %v (no joins is fewer than k)", stats)
	}
}

func TestVersionsReportWhatChangedAndWhetherItIsMaterial(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	v1 := a.publishContract(f, contractBody(f))
	newVersion := func(from string, patch map[string]any) string {
		d := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + from + "/versions", Token: f.marketer}), 201).json(t)
		if patch != nil {
			expect(t, a.do(req{Method: "PATCH", Path: "/v1/contracts/" + d["id"].(string), Token: f.marketer, Body: patch}), 200)
		}
		expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + d["id"].(string) + "/publish", Token: f.marketer}), 200)
		return d["id"].(string)
	}
	// v2 rewords and pays more: not material.
	v2 := newVersion(v1, map[string]any{"title": "Coffee club 2", "reward": map[string]any{"points_per_period": 80}})
	// v3 shares the city with AdCo for third-party ads and keeps data longer: material.
	body := contractBody(f)
	body["items"] = append(body["items"].([]any), map[string]any{"category": "location.city", "purpose": "advertising.third_party", "recipients": []string{f.adCo}})
	v3 := newVersion(v2, map[string]any{"items": body["items"], "retention": "P90D"})

	st := func(id string) map[string]any {
		return expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/transparency"}), 200).json(t)
	}
	if st(v1)["changes_since_previous"] != nil {
		t.Fatal("version 1 has changes")
	}
	ch2 := st(v2)["changes_since_previous"].(map[string]any)
	if ch2["material"] != false || len(ch2["reward"].([]any)) != 1 || len(ch2["wording"].([]any)) != 1 {
		t.Fatalf("v2 changes: %v", ch2)
	}
	ch3 := st(v3)["changes_since_previous"].(map[string]any)
	if ch3["material"] != true || ch3["previous_version"] != float64(2) ||
		!contains(ch3["purposes_added"], "advertising.third_party") || !contains(ch3["recipients_added"], "AdCo") ||
		len(ch3["durations"].([]any)) != 1 || !contains(ch3["material_reasons"], "adds recipient AdCo") {
		t.Fatalf("v3 changes: %v", ch3)
	}
	// v4 drops AdCo again: not material, and the dropped recipient is named too.
	v4 := newVersion(v3, map[string]any{"items": contractBody(f)["items"]})
	if ch4 := st(v4)["changes_since_previous"].(map[string]any); ch4["material"] != false || !contains(ch4["recipients_removed"], "AdCo") {
		t.Fatalf("v4 changes: %v", ch4)
	}
	// Publishing a new version closed the older ones to new joins.
	for id, want := range map[string]string{v1: "retired", v2: "retired", v3: "retired", v4: "published"} {
		if got := st(id)["status"]; got != want {
			t.Errorf("%s is %v, want %s", id, got, want)
		}
	}
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v1 + "/versions", Token: f.marketer}), 409)
}

func contains(list any, want string) bool {
	for _, v := range list.([]any) {
		if v == want {
			return true
		}
	}
	return false
}

func TestTransparencyIsCacheableAndReadableAsHTML(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	id := a.publishContract(f, contractBody(f))
	path := "/v1/contracts/" + id + "/transparency"
	first := expect(t, a.do(req{Method: "GET", Path: path}), 200)
	etag := first.Header.Get("ETag")
	if etag == "" || strings.HasPrefix(etag, "W/") || !strings.Contains(first.Header.Get("Cache-Control"), "max-age") {
		t.Fatalf("headers: %v", first.Header)
	}
	expect(t, a.do(req{Method: "GET", Path: path, Headers: map[string]string{"If-None-Match": etag}}), 304)

	page := expect(t, a.do(req{Method: "GET", Path: path, Headers: map[string]string{"Accept": "text/html,application/xhtml+xml"}}), 200)
	if !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("content type %s", page.Header.Get("Content-Type"))
	}
	html := string(page.Body)
	for _, want := range []string{"Brand", "PartnerCo", "City", "Purchase history", "Is an adult", `lang="en"`, "sha256:"} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(html, "<script") || strings.Contains(html, "src=\"http") {
		t.Error("page loads scripts or external assets")
	}
	if page.Header.Get("ETag") == etag {
		t.Error("HTML and JSON share an ETag")
	}
	st := first.json(t)
	if !strings.Contains(st["on_cancellation"].(string), "stop") || len(st["recipients"].([]any)) != 2 {
		t.Fatalf("statement: %v", st)
	}
}

func TestOffersArePaginatedNewestFirst(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, a.publishContract(f, contractBody(f)))
	}
	seen := []string{}
	cursor := ""
	for {
		path := "/v1/offers?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		page := expect(t, a.do(req{Method: "GET", Path: path}), 200).json(t)
		for _, it := range page["items"].([]any) {
			seen = append(seen, it.(map[string]any)["id"].(string))
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if strings.Join(seen, ",") != strings.Join([]string{ids[2], ids[1], ids[0]}, ",") {
		t.Fatalf("offers %v, want newest first %v", seen, ids)
	}
	problemAt(t, a.do(req{Method: "GET", Path: "/v1/offers?cursor=garbage"}), 422, "/query/cursor")
}

// TestNoDurationWrapsPastItsBound runs over every duration of a contract's
// terms: values so long that a 64-bit nanosecond count would wrap negative
// (P100000Y, P1000Y, P99999M, PT100000H) are refused at their own field
// like any other too-long value, never accepted as short or as negative.
func TestNoDurationWrapsPastItsBound(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	fields := map[string]func(body map[string]any, v string){
		"/retention":      func(b map[string]any, v string) { b["retention"] = v },
		"/duration":       func(b map[string]any, v string) { b["duration"] = v },
		"/renewal_notice": func(b map[string]any, v string) { b["renewal_notice"] = v },
		"/reward/period":  func(b map[string]any, v string) { b["reward"].(map[string]any)["period"] = v },
		"/reward/vesting": func(b map[string]any, v string) { b["reward"].(map[string]any)["vesting"] = v },
	}
	for pointer, set := range fields {
		for _, v := range []string{"P100000Y", "P1000Y", "P99999M", "PT100000H", "P3660D", "P121M", "P120M1D", "P10YT1S"} {
			body := contractBody(f)
			set(body, v)
			var r response
			a.unchangedBy(pointer+" = "+v, func() { r = a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: body}) })
			problemAt(t, r, 422, pointer)
		}
	}
	// Ten years on the calendar, however it is spelt, is within the bound.
	for _, v := range []string{"P10Y", "P120M", "P3653D", "P520W"} {
		body := contractBody(f)
		body["duration"] = v
		expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: body}), 201)
	}
}

// TestVersionDiffShowsMinAgeAndRenewalNoticeChanges: the attacker's case —
// a new version that only raises min_age, or only shortens the renewal
// notice, changes the terms hash, so changes_since_previous must say so
// (eligibility, durations) and call it material; lowering min_age or
// lengthening the notice is shown and not material.
func TestVersionDiffShowsMinAgeAndRenewalNoticeChanges(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	body := contractBody(f)
	body["duration"], body["renewal_notice"], body["min_age"] = "P30D", "P10D", 18
	v1 := a.publishContract(f, body)
	newVersion := func(from string, patch map[string]any) (string, map[string]any) {
		d := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + from + "/versions", Token: f.marketer}), 201).json(t)
		expect(t, a.do(req{Method: "PATCH", Path: "/v1/contracts/" + d["id"].(string), Token: f.marketer, Body: patch}), 200)
		expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + d["id"].(string) + "/publish", Token: f.marketer}), 200)
		st := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + d["id"].(string) + "/transparency"}), 200).json(t)
		return d["id"].(string), st["changes_since_previous"].(map[string]any)
	}
	field := func(list any, name, from, to string) bool {
		for _, c := range list.([]any) {
			if m := c.(map[string]any); m["field"] == name && m["from"] == from && m["to"] == to {
				return true
			}
		}
		return false
	}
	v2, ch := newVersion(v1, map[string]any{"min_age": 21})
	if ch["material"] != true || !field(ch["eligibility"], "min_age", "18", "21") {
		t.Fatalf("raising min_age: %v", ch)
	}
	v3, ch := newVersion(v2, map[string]any{"min_age": nil})
	if ch["material"] != false || !field(ch["eligibility"], "min_age", "21", "none") {
		t.Fatalf("removing min_age: %v", ch)
	}
	v4, ch := newVersion(v3, map[string]any{"renewal_notice": "P1D"})
	if ch["material"] != true || !field(ch["durations"], "renewal_notice", "P10D", "P1D") {
		t.Fatalf("shortening the notice: %v", ch)
	}
	if _, ch = newVersion(v4, map[string]any{"renewal_notice": nil}); ch["material"] != false || !field(ch["durations"], "renewal_notice", "P1D", "P14D") {
		t.Fatalf("returning to the default notice: %v", ch)
	}
}

// TestAnUnreadableDurationIsReportedOnceAtItsField: a value that cannot be
// read is one error at its own field, not also "is required" there, nor an
// error at a field whose rule reads it (the notice reads the duration).
func TestAnUnreadableDurationIsReportedOnceAtItsField(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	for pointer, set := range map[string]func(map[string]any){
		"/retention":      func(b map[string]any) { b["retention"] = "one month" },
		"/duration":       func(b map[string]any) { b["duration"] = "P1.5Y" },
		"/reward/period":  func(b map[string]any) { b["reward"].(map[string]any)["period"] = "monthly" },
		"/reward/vesting": func(b map[string]any) { b["reward"].(map[string]any)["vesting"] = "P-1D" },
	} {
		body := contractBody(f)
		set(body)
		r := a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: body})
		if p := problemOf(t, r); r.Status != 422 || len(p.Errors) != 1 || p.Errors[0].Pointer != pointer {
			t.Errorf("%s unreadable: %d %s", pointer, r.Status, r.Body)
		}
	}
}
