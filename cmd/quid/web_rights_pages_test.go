package main

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/browsertest"
)

// The member's pages of who read and who holds their data, the profile
// and the rights (issue 13; infra/http/web_member_b.go).

// rpBrowser is a signed-in browser of one member: its session cookie
// (created through the store, as a sign-in would) and its CSRF token (read
// from a page, as a browser's form carries it).
type rpBrowser struct {
	a      *api
	token  string
	cookie string
	csrf   string
}

func (a *api) rpSignIn(subject string) *rpBrowser {
	a.t.Helper()
	cookie := a.webSession(app.RoleMember, subject)
	tok := strings.TrimPrefix(strings.Split(cookie, ";")[0], "__Host-quid-session=")
	b := &rpBrowser{a: a, token: tok, cookie: cookie}
	page := b.get("/account/rights")
	expect(a.t, page, 200)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page.Body)
	if m == nil {
		a.t.Fatalf("no CSRF token on /account/rights:\n%s", page.Body)
	}
	b.csrf = html.UnescapeString(string(m[1]))
	return b
}

// rpDo sends a page request and checks the answer against openapi.yaml
// (an HTML error page included: pages answer errors in HTML).
func (a *api) rpDo(r req) response {
	a.t.Helper()
	resp := a.send(r)
	if resp.Status >= 500 {
		a.t.Fatalf("%s %s → %d:\n%s", r.Method, r.Path, resp.Status, resp.Body)
	}
	a.checkSpec(r, r.raw(), resp)
	return resp
}

func (b *rpBrowser) get(path string) response {
	b.a.t.Helper()
	return b.a.rpDo(req{Method: "GET", Path: path, Headers: map[string]string{"Cookie": b.cookie}})
}

// postRaw posts body as a form, exactly as given.
func (b *rpBrowser) postRaw(path, body string) response {
	b.a.t.Helper()
	return b.a.rpDo(req{Method: "POST", Path: path, Body: body,
		Headers: map[string]string{"Cookie": b.cookie, "Content-Type": "application/x-www-form-urlencoded"}})
}

// post posts the form with the session's CSRF token.
func (b *rpBrowser) post(path string, form url.Values) response {
	b.a.t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	f.Set("csrf", b.csrf)
	return b.postRaw(path, f.Encode())
}

// text is a page's body with its markup and entities gone, spaces folded.
func rpText(r response) string {
	s := regexp.MustCompile(`(?s)<[^>]*>`).ReplaceAllString(string(r.Body), " ")
	return strings.Join(strings.Fields(html.UnescapeString(s)), " ")
}

func rpContains(t *testing.T, r response, wants ...string) {
	t.Helper()
	text := rpText(r)
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Fatalf("page lacks %q:\n%s", w, text)
		}
	}
}

func rpLacks(t *testing.T, r response, unwanted ...string) {
	t.Helper()
	text := rpText(r)
	for _, w := range unwanted {
		if strings.Contains(text, w) {
			t.Fatalf("page shows %q:\n%s", w, text)
		}
	}
}

func rpRedirect(t *testing.T, r response, prefix string) {
	t.Helper()
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), prefix) {
		t.Fatalf("status %d Location %q, want 303 to %s…:\n%s", r.Status, r.Header.Get("Location"), prefix, rpText(r))
	}
}

func (a *api) partnerRead(tok, member, purpose string) response {
	a.t.Helper()
	return a.do(req{Method: "GET", Path: "/v1/partner/members/" + member + "/data?purpose=" + purpose, Token: tok})
}

func TestWebAccessLogPageShowsReadsNewestFirstRefusedReadsAndPages(t *testing.T) {
	t.Parallel()
	a, f, _, _ := withJoinedMember(t)
	alice := a.rpSignIn("alice")
	bob := a.rpSignIn("bob")
	// Empty: nothing read yet; bob has no profile at all.
	rpContains(t, expect(t, alice.get("/account/access-log"), 200), "Nobody has read your data yet")
	rpContains(t, expect(t, bob.get("/account/access-log"), 200), "You have no profile yet")

	for range 21 {
		expect(t, a.partnerRead(f.partner, "alice", "loyalty.personalised_offers"), 200)
	}
	expect(t, a.do(req{Method: "PUT", Path: "/v1/me/restriction", Token: f.member, Body: map[string]any{"restricted": true}}), 200)
	expect(t, a.partnerRead(f.partner, "alice", "loyalty.personalised_offers"), 403)

	first := expect(t, alice.get("/account/access-log"), 200)
	rpContains(t, first, "PartnerCo", "Personalised offers", "City", "Allowed", "Refused",
		"Refused: you had restricted the use of your data, so nothing was disclosed.")
	text := rpText(first)
	if strings.Index(text, "Refused PartnerCo") > strings.Index(text, "Allowed PartnerCo") {
		t.Fatalf("the refused read (the newest) is not first:\n%s", text)
	}
	// The page is the API's page: its older link carries the API's cursor.
	var api struct {
		NextCursor string `json:"next_cursor"`
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/me/access-log", Token: f.member}), 200).decode(t, &api)
	if api.NextCursor == "" || !strings.Contains(string(first.Body), `/account/access-log?cursor=`+url.QueryEscape(api.NextCursor)) {
		t.Fatalf("no Older reads link with the API's cursor %q:\n%s", api.NextCursor, first.Body)
	}
	older := expect(t, alice.get("/account/access-log?cursor="+url.QueryEscape(api.NextCursor)), 200)
	rpContains(t, older, "PartnerCo", "Newest reads")
	rpLacks(t, older, "Refused PartnerCo", "Older reads")
	// A forged cursor is the API's 4xx, never a 5xx.
	if r := alice.get("/account/access-log?cursor=forged"); r.Status != 422 && r.Status != 400 {
		t.Fatalf("forged cursor: %d", r.Status)
	}
	// Another member never sees alice's reads.
	a.enrolWith(token(t, app.RoleMember, "bob"), map[string]any{"location.city": "Bergen"})
	rpContains(t, expect(t, bob.get("/account/access-log"), 200), "Nobody has read your data yet")
	rpLacks(t, bob.get("/account/access-log"), "PartnerCo")
}

func TestWebRecipientsPageShowsWhoHoldsTheDataAndDeletionStates(t *testing.T) {
	t.Parallel()
	a, f, _, ex := withJoinedMember(t)
	alice := a.rpSignIn("alice")
	bob := a.rpSignIn("bob")
	a.enrolWith(token(t, app.RoleMember, "bob"), map[string]any{"location.city": "Bergen"})
	rpContains(t, expect(t, bob.get("/account/recipients"), 200), "No company has received your data")

	page := expect(t, alice.get("/account/recipients"), 200)
	rpContains(t, page, "Brand", "The brand itself (first party)", "Norway", "PartnerCo", "Another company (third party)", "Sweden",
		"Coffee club", "City", "Purchase history", "Personalised offers", "an exchange is active")
	if !strings.Contains(string(page.Body), `href="https://partnerco.example/privacy"`) {
		t.Fatal("no link to PartnerCo's privacy policy")
	}
	if !strings.Contains(string(page.Body), `href="/account/exchanges/`+ex["id"].(string)+`"`) {
		t.Fatal("no link to the exchange")
	}
	rpLacks(t, page, "AdCo")

	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + ex["id"].(string), Token: f.member}), 200)
	rpContains(t, expect(t, alice.get("/account/recipients"), 200), "Deletion due by", "0 of 1 deletions confirmed")
	expect(t, a.do(req{Method: "POST", Path: "/v1/partner/deletions", Token: f.partner, Body: map[string]any{"exchange_id": ex["id"]}}), 200)
	rpContains(t, expect(t, alice.get("/account/recipients"), 200), "Deletion confirmed on "+time.Now().UTC().Format("2 January 2006"))
	if err := a.svc.db.Exec(`UPDATE deletion_acks SET due_at = now() - interval '1 day' WHERE exchange_id = ? AND recipient_id = ?`,
		ex["id"], f.brand).Error; err != nil {
		t.Fatal(err)
	}
	rpContains(t, expect(t, alice.get("/account/recipients"), 200), "Deletion overdue: it was due by", "1 overdue")
	rpLacks(t, bob.get("/account/recipients"), "Coffee club", "PartnerCo")
}

func TestWebProfilePageShowsAttributesWithTheExchangesSharingThem(t *testing.T) {
	t.Parallel()
	a, _, _, ex := withJoinedMember(t)
	alice := a.rpSignIn("alice")
	page := expect(t, alice.get("/account/profile"), 200)
	rpContains(t, page, "City", "Oslo", "Purchase history", "espresso, croissant", "Date of birth", "1 May 1990",
		"Email address", "alice@example.com", "Shared by: Coffee club", "No active exchange shares it.")
	body := string(page.Body)
	for _, want := range []string{`href="/account/exchanges/` + ex["id"].(string) + `"`, `type="date"`, `type="email"`,
		`<textarea id="attr-commerce.purchase_history" name="commerce.purchase_history"`, "espresso\ncroissant</textarea>"} {
		if !strings.Contains(body, want) {
			t.Fatalf("profile lacks %s:\n%s", want, body)
		}
	}
	// Another member sees none of it.
	bob := a.rpSignIn("bob")
	a.enrolWith(token(t, app.RoleMember, "bob"), map[string]any{"location.city": "Bergen"})
	rpLacks(t, expect(t, bob.get("/account/profile"), 200), "alice@example.com", "espresso", "Coffee club", "1 May 1990")
}

func rpAttributes(t *testing.T, a *api, tok string) map[string]any {
	t.Helper()
	var me struct{ Attributes map[string]any }
	expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: tok}), 200).decode(t, &me)
	return me.Attributes
}

func TestWebProfileRectifiesAddsAndRemovesThroughTheUseCase(t *testing.T) {
	t.Parallel()
	a, f, _, ex := withJoinedMember(t)
	alice := a.rpSignIn("alice")

	// A value the use case refuses: its words next to the field, nothing saved.
	r := alice.post("/account/profile", url.Values{"key": {"contact.email"}, "contact.email": {"not-an-email"}})
	expect(t, r, 422)
	body := string(r.Body)
	if !strings.Contains(body, `id="attr-contact.email-error">must be an email address`) ||
		!strings.Contains(body, `id="attr-contact.email" name="contact.email" value="not-an-email"`) ||
		!strings.Contains(body, `href="#attr-contact.email"`) {
		t.Fatalf("the email error is not at its field:\n%s", body)
	}
	if rpAttributes(t, a, f.member)["contact.email"] != "alice@example.com" {
		t.Fatal("a refused correction was saved")
	}
	// Each structured type gets its error at its own input.
	for key, form := range map[string]url.Values{
		"demographic.birthdate":      {"demographic.birthdate": {"01/05/1990"}},
		"demographic.household_size": {"demographic.household_size": {"three"}},
		"health.allergies":           {"health.allergies": {"\n \n"}},
		"location.address":           {"location.address/city": {"Oslo"}, "location.address/country": {"ZZ"}},
	} {
		form.Set("key", key)
		form.Set("add", "1")
		r := expect(t, alice.post("/account/profile", form), 422)
		if !strings.Contains(string(r.Body), `id="attr-`+key+`-error"`) {
			t.Fatalf("%s: no error at the field:\n%s", key, r.Body)
		}
	}

	// Corrections and additions of every input kind, as PUT /v1/me stores them.
	rpRedirect(t, alice.post("/account/profile", url.Values{"key": {"contact.email"}, "contact.email": {"alice@new.example"}}), "/account/profile")
	rpRedirect(t, alice.post("/account/profile", url.Values{"key": {"health.allergies"}, "add": {"1"}, "health.allergies": {"nuts\r\n\r\n peanuts \r\n"}}), "/account/profile")
	rpRedirect(t, alice.post("/account/profile", url.Values{"key": {"demographic.household_size"}, "demographic.household_size": {"3"}}), "/account/profile")
	rpRedirect(t, alice.post("/account/profile", url.Values{"key": {"location.address"}, "location.address/street": {"Storgata 1"},
		"location.address/postal_code": {""}, "location.address/city": {"Oslo"}, "location.address/country": {"NO"}}), "/account/profile")
	got := rpAttributes(t, a, f.member)
	want := map[string]any{"contact.email": "alice@new.example", "health.allergies": []any{"nuts", "peanuts"},
		"demographic.household_size": float64(3), "location.address": map[string]any{"street": "Storgata 1", "city": "Oslo", "country": "NO"}}
	for k, v := range want {
		gj, _ := json.Marshal(got[k])
		wj, _ := json.Marshal(v)
		if string(gj) != string(wj) {
			t.Fatalf("%s = %s, want %s", k, gj, wj)
		}
	}
	rpContains(t, expect(t, alice.get("/account/profile?saved=1"), 200), "Your profile is saved", "Storgata 1, Oslo, Norway", "nuts, peanuts")
	// The add form offers the catalogue's categories by label, and the chosen one's input.
	add := expect(t, alice.get("/account/profile?add=contact.phone"), 200)
	if !strings.Contains(string(add.Body), `<option value="contact.phone" selected>Phone number</option>`) ||
		!strings.Contains(string(add.Body), `id="attr-contact.phone" name="contact.phone" value="" type="tel"`) {
		t.Fatalf("no phone input in the add form:\n%s", add.Body)
	}

	// Removing a shared attribute is refused, naming the exchange to cancel.
	r = expect(t, alice.post("/account/profile/remove", url.Values{"key": {"location.city"}}), 409)
	rpContains(t, r, "location.city cannot be removed while an active exchange shares it", "Cancel these exchanges first", "Coffee club")
	if !strings.Contains(string(r.Body), `href="/account/exchanges/`+ex["id"].(string)+`"`) {
		t.Fatalf("the refusal does not link the exchange:\n%s", r.Body)
	}
	if rpAttributes(t, a, f.member)["location.city"] != "Oslo" {
		t.Fatal("a refused removal removed")
	}
	rpRedirect(t, alice.post("/account/profile/remove", url.Values{"key": {"contact.email"}}), "/account/profile")
	if _, ok := rpAttributes(t, a, f.member)["contact.email"]; ok {
		t.Fatal("the removal did not remove")
	}
}

func TestWebProfileEnrolsAMemberWhoNeverEnrolled(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	a.fixtures()
	carol := a.rpSignIn("carol")
	page := expect(t, carol.get("/account/profile"), 200)
	rpContains(t, page, "You have no profile yet", "Start my profile", "First name", "Home address")
	// An invalid field is shown at its input, and nothing is enrolled.
	r := expect(t, carol.postRaw("/account/profile", "csrf="+url.QueryEscape(carol.csrf)+"&identity.first_name=Carol&contact.email=nope&location.city="), 422)
	if !strings.Contains(string(r.Body), `id="attr-contact.email-error"`) || !strings.Contains(string(r.Body), `value="Carol"`) {
		t.Fatalf("enrol error not at the field:\n%s", r.Body)
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: token(t, app.RoleMember, "carol")}), 404)
	rpRedirect(t, carol.postRaw("/account/profile", "csrf="+url.QueryEscape(carol.csrf)+"&identity.first_name=Carol&contact.email=&location.city="), "/account/profile")
	got := rpAttributes(t, a, token(t, app.RoleMember, "carol"))
	if len(got) != 1 || got["identity.first_name"] != "Carol" {
		t.Fatalf("enrolled with %v, want only the first name", got)
	}
}

func TestWebRightsPageRestrictsObjectsAndExportsThroughTheUseCases(t *testing.T) {
	t.Parallel()
	a, f, _, ex := withJoinedMember(t)
	alice := a.rpSignIn("alice")
	page := expect(t, alice.get("/account/rights"), 200)
	rpContains(t, page, "You can download everything held about you in one file.", "GDPR Art. 18", "is not restricted", "You object to no purpose.")

	// Restriction toggle.
	rpRedirect(t, alice.post("/account/rights/restriction", url.Values{"restricted": {"true"}}), "/account/rights")
	var st struct{ Restricted bool }
	expect(t, a.do(req{Method: "GET", Path: "/v1/me/restriction", Token: f.member}), 200).decode(t, &st)
	if !st.Restricted {
		t.Fatal("the page did not restrict")
	}
	rpContains(t, expect(t, alice.get("/account/rights"), 200), "The use of your data is restricted since", "Lift the restriction")
	expect(t, a.partnerRead(f.partner, "alice", "loyalty.personalised_offers"), 403)
	rpRedirect(t, alice.post("/account/rights/restriction", url.Values{"restricted": {"false"}}), "/account/rights")
	expect(t, a.do(req{Method: "GET", Path: "/v1/me/restriction", Token: f.member}), 200).decode(t, &st)
	if st.Restricted {
		t.Fatal("the page did not lift")
	}
	expect(t, alice.post("/account/rights/restriction", url.Values{"restricted": {"maybe"}}), 422)

	// Objections: object ends the exchange; lift.
	rpRedirect(t, alice.post("/account/rights/objections", url.Values{"purpose": {"loyalty.personalised_offers"}}), "/account/rights")
	var exch struct{ Status string }
	expect(t, a.do(req{Method: "GET", Path: "/v1/me/exchanges/" + ex["id"].(string), Token: f.member}), 200).decode(t, &exch)
	if exch.Status != "cancelled" {
		t.Fatalf("the objection left the exchange %s", exch.Status)
	}
	page = expect(t, alice.get("/account/rights"), 200)
	rpContains(t, page, "Personalised offers, since", "Lift my objection to Personalised offers")
	if strings.Contains(string(page.Body), `<option value="loyalty.personalised_offers">`) {
		t.Fatal("a purpose objected to is offered again")
	}
	expect(t, alice.post("/account/rights/objections", url.Values{"purpose": {"no.such_purpose"}}), 422)
	rpRedirect(t, alice.post("/account/rights/objections/lift", url.Values{"purpose": {"loyalty.personalised_offers"}}), "/account/rights")
	expect(t, alice.post("/account/rights/objections/lift", url.Values{"purpose": {"loyalty.personalised_offers"}}), 404)
	rpContains(t, expect(t, alice.get("/account/rights"), 200), "You object to no purpose.")

	// Export: the same JSON as the API's, as a download.
	dl := expect(t, alice.get("/account/rights/export"), 200)
	if dl.Header.Get("Content-Disposition") != `attachment; filename="quid-export.json"` {
		t.Fatalf("Content-Disposition %q", dl.Header.Get("Content-Disposition"))
	}
	apiExport := expect(t, a.do(req{Method: "GET", Path: "/v1/me/export", Token: f.member}), 200)
	var fromPage, fromAPI map[string]any
	dl.decode(t, &fromPage)
	apiExport.decode(t, &fromAPI)
	delete(fromPage, "exported_at")
	delete(fromAPI, "exported_at")
	pj, _ := json.Marshal(fromPage)
	aj, _ := json.Marshal(fromAPI)
	if string(pj) != string(aj) {
		t.Fatalf("the download differs from GET /v1/me/export:\n%s\n%s", pj, aj)
	}
	// Another member's rights page shows none of alice's.
	bob := a.rpSignIn("bob")
	rpContains(t, expect(t, bob.get("/account/rights"), 200), "You have no profile yet")
}

func TestWebEraseConfirmsThenErasesAndSignsOut(t *testing.T) {
	t.Parallel()
	a, f, _, _ := withJoinedMember(t)
	alice := a.rpSignIn("alice")
	// The confirmation step says what is erased and kept, and writes nothing.
	confirm := expect(t, alice.post("/account/rights/erase", nil), 200)
	rpContains(t, confirm, "This cannot be undone", "0 available and 200 pending", "Your 1 active exchange ends",
		"Each of the 2 companies that received your data is asked to delete it within 30 days",
		"consent log", "replaced by a random one", "keyed hash")
	expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: f.member}), 200)

	done := alice.post("/account/rights/erase/confirm", nil)
	rpRedirect(t, done, "/account/erased")
	if sc := strings.Join(done.Header.Values("Set-Cookie"), "\n"); !strings.Contains(sc, "quid-session=;") {
		t.Fatalf("the session cookie is not cleared: %s", sc)
	}
	rpContains(t, expect(t, a.rpDo(req{Method: "GET", Path: "/account/erased"}), 200), "Your account is erased")
	expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: f.member}), 404)
	// The old cookie no longer signs anyone in.
	rpRedirect(t, alice.get("/account/profile"), "/account/signin")
	expect(t, alice.post("/account/rights/erase/confirm", nil), 401)
}

// rpPosts are the pages' forms with a valid body besides the CSRF token.
var rpPosts = []struct{ path, form string }{
	{"/account/profile", "key=contact.email&contact.email=eve%40example.com"},
	{"/account/profile", "identity.first_name=Eve"},
	{"/account/profile/remove", "key=contact.email"},
	{"/account/rights/restriction", "restricted=true"},
	{"/account/rights/objections", "purpose=loyalty.personalised_offers"},
	{"/account/rights/objections/lift", "purpose=loyalty.personalised_offers"},
	{"/account/rights/erase", ""},
	{"/account/rights/erase/confirm", ""},
}

// rpState is what the posts could change, to show that nothing did.
func rpState(t *testing.T, a *api, tok string) string {
	t.Helper()
	me := a.do(req{Method: "GET", Path: "/v1/me", Token: tok})
	ob := a.do(req{Method: "GET", Path: "/v1/me/objections", Token: tok})
	var m map[string]any
	me.decode(t, &m)
	delete(m, "expiring")
	mj, _ := json.Marshal(m)
	return string(mj) + string(ob.Body)
}

func TestWebRightsPagesRefuseEveryPostWithoutTheSessionsCSRFToken(t *testing.T) {
	t.Parallel()
	a, f, _, _ := withJoinedMember(t)
	alice := a.rpSignIn("alice")
	before := rpState(t, a, f.member)
	for _, p := range rpPosts {
		for name, csrf := range map[string]string{"none": "", "wrong": "&csrf=" + strings.Repeat("A", 43), "empty": "&csrf="} {
			r := alice.postRaw(p.path, p.form+csrf)
			if r.Status != 403 {
				t.Fatalf("POST %s with %s CSRF token: %d, want 403", p.path, name, r.Status)
			}
		}
	}
	if after := rpState(t, a, f.member); after != before {
		t.Fatalf("a refused post wrote:\n%s\n%s", before, after)
	}
	expect(t, alice.get("/account/profile"), 200)
}

func TestWebRightsPagesAnswerHostileFormsWith4xx(t *testing.T) {
	t.Parallel()
	a, f, _, _ := withJoinedMember(t)
	alice := a.rpSignIn("alice")
	before := rpState(t, a, f.member)
	csrf := "csrf=" + url.QueryEscape(alice.csrf)
	huge := strings.Repeat("x", 200_000)
	for _, p := range rpPosts {
		if strings.HasSuffix(p.path, "/confirm") {
			continue
		}
		bodies := map[string]string{
			"NUL":             csrf + "&key=contact.email%00&contact.email=a%00b&purpose=a%00b&restricted=tr%00ue",
			"invalid UTF-8":   csrf + "&key=%ff&contact.email=%ff%fe&purpose=%c3%28&restricted=%ff",
			"duplicate field": csrf + "&" + p.form + "&" + p.form + "&key=a&key=b",
			"duplicate csrf":  csrf + "&" + csrf + "&" + p.form,
			"bad escape":      csrf + "&key=%zz&purpose=%",
			"huge value":      csrf + "&key=" + huge + "&contact.email=" + huge + "&purpose=" + huge + "&restricted=" + huge,
			"odd key":         csrf + "&key=" + url.QueryEscape("a/b~c") + "&purpose=" + url.QueryEscape("auth0|123"),
		}
		if p.path == "/account/profile" {
			bodies["huge list"] = csrf + "&key=health.allergies&health.allergies=" + strings.Repeat("a%0A", 5000)
			bodies["huge email"] = csrf + "&key=contact.email&contact.email=" + huge
			// Numbers JSON cannot carry (PostgreSQL's jsonb neither).
			for i, n := range []string{"NaN", "Infinity", "-Inf", "1e400", "0x10", "1_000", "-1"} {
				bodies["number "+strconv.Itoa(i)] = csrf + "&key=demographic.household_size&demographic.household_size=" + url.QueryEscape(n)
			}
		}
		for name, body := range bodies {
			r := alice.postRaw(p.path, body)
			if (r.Status < 400 || r.Status >= 500) && !(p.path == "/account/rights/erase" && r.Status == 200) {
				t.Fatalf("POST %s with %s: %d, want 4xx:\n%s", p.path, name, r.Status, rpText(r))
			}
		}
	}
	for _, path := range []string{"/account/access-log?cursor=%ff", "/account/access-log?limit=0", "/account/recipients?cursor=x%00",
		"/account/profile?add=%ff", "/account/profile?add=" + url.QueryEscape(huge[:4000]), "/account/rights?done=%00"} {
		if r := alice.get(path); r.Status >= 500 {
			t.Fatalf("GET %s: %d", path, r.Status)
		}
	}
	if after := rpState(t, a, f.member); after != before {
		t.Fatalf("a hostile post wrote:\n%s\n%s", before, after)
	}
}

// TestMemberRightsPagesPassWCAG21AAInARealBrowser: the access log, the
// recipients, the profile (with an address being added, and the enrol
// form) and the rights pages have no WCAG 2.1 A or AA violation axe-core
// finds, and reflow, on a phone and a desktop, light and dark.
func TestMemberRightsPagesPassWCAG21AAInARealBrowser(t *testing.T) {
	t.Parallel()
	a, f, _, ex := withJoinedMember(t)
	expect(t, a.partnerRead(f.partner, "alice", "loyalty.personalised_offers"), 200)
	expect(t, a.do(req{Method: "PUT", Path: "/v1/me/restriction", Token: f.member, Body: map[string]any{"restricted": true}}), 200)
	expect(t, a.partnerRead(f.partner, "alice", "loyalty.personalised_offers"), 403)
	expect(t, a.do(req{Method: "POST", Path: "/v1/me/objections", Token: f.member, Body: map[string]any{"purpose": "research.market"}}), 201)
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + ex["id"].(string), Token: f.member}), 200)
	alice, carol := a.rpSignIn("alice"), a.rpSignIn("carol")
	base := "http://" + a.listen(t)
	b := browsertest.Start(t)
	signIn := func(t *testing.T, who *rpBrowser) {
		ctx := b.Tab(t, browsertest.Viewports[0])
		if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: "quid-session", Value: who.token, URL: base, Path: "/"}); err != nil {
			t.Fatal(err)
		}
		// The browser is signed in: the page is not the sign-in page it
		// would be sent to otherwise.
		browsertest.Open(t, ctx, base+"/account/rights")
		if at, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname`)); err != nil || at != "/account/rights" {
			t.Fatalf("the browser is at %q (%v), not signed in", at, err)
		}
	}
	signIn(t, alice)
	for _, p := range []string{"/account/access-log", "/account/recipients", "/account/profile", "/account/profile?add=location.address", "/account/rights"} {
		t.Run(strings.TrimPrefix(p, "/account/"), func(t *testing.T) { b.CheckAccessible(t, base+p) })
	}
	signIn(t, carol)
	t.Run("enrol", func(t *testing.T) { b.CheckAccessible(t, base+"/account/profile") })
}

// A birthdate corrected on the profile page below an exchange's age rule
// ends the exchange (rule 10), and the page says so: the member is never
// left to find an exchange ended without being told why.
func TestWebProfileSaysWhichCorrectionEndedAnExchange(t *testing.T) {
	t.Parallel()
	a, _, _, _ := withJoinedMember(t) // shares with a third party: 16 or older
	alice := a.rpSignIn("alice")
	r := alice.post("/account/profile", url.Values{"key": {"demographic.birthdate"}, "demographic.birthdate": {bornYearsAgo(15)}})
	rpRedirect(t, r, "/account/profile")
	page := string(alice.get(r.Header.Get("Location")).Body)
	if !strings.Contains(page, "one exchange no longer meets its terms") || !strings.Contains(page, `href="/account/exchanges"`) {
		t.Fatalf("the profile page does not say the correction ended an exchange:\n%s", page)
	}
	// A correction that ends nothing says only that it was saved.
	r = alice.post("/account/profile", url.Values{"key": {"contact.email"}, "contact.email": {"alice@new.example"}})
	rpRedirect(t, r, "/account/profile")
	if page := string(alice.get(r.Header.Get("Location")).Body); strings.Contains(page, "no longer meet") {
		t.Fatalf("a correction that ended nothing says exchanges ended:\n%s", page)
	}
}

// A form in another charset than UTF-8 is refused (415), never read as
// UTF-8 as if it had been understood; UTF-8 named or implied is read.
func TestWebFormsInAnotherCharsetAreRefused(t *testing.T) {
	t.Parallel()
	a, _, _, _ := withJoinedMember(t)
	alice := a.rpSignIn("alice")
	body := url.Values{"csrf": {alice.csrf}, "restricted": {"true"}}.Encode()
	send := func(contentType string) response {
		return a.rpDo(req{Method: "POST", Path: "/account/rights/restriction", Body: body,
			Headers: map[string]string{"Cookie": alice.cookie, "Content-Type": contentType}})
	}
	for _, ct := range []string{"application/x-www-form-urlencoded; charset=utf-16", "application/x-www-form-urlencoded; charset=latin1",
		"application/x-www-form-urlencoded; charset", "text/plain"} {
		if r := send(ct); r.Status != 415 {
			t.Errorf("Content-Type %q: %d, want 415", ct, r.Status)
		}
	}
	for _, ct := range []string{"application/x-www-form-urlencoded; charset=UTF-8", "application/x-www-form-urlencoded"} {
		if r := send(ct); r.Status != 303 {
			t.Errorf("Content-Type %q: %d, want 303:\n%s", ct, r.Status, r.Body)
		}
	}
}
