package main

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/quidpro/quid/app"
)

// Member pages A of the web preference centre (issue 13): offers, join,
// exchanges, points. A browser is simulated: a session made through the
// store, pages read as HTML, forms submitted as a browser would (their
// hidden fields, their action), each submission counted.

func init() {
	// The receipt download is a compact JWS; the validator reads it as text.
	openapi3filter.RegisterBodyDecoder("application/jose", openapi3filter.PlainBodyDecoder)
}

// browser is one signed-in member's browser.
type browser struct {
	a       *api
	cookie  string
	subject string
	// posts counts the forms submitted.
	posts int
}

// signedInBrowser signs subject in as a member, through the session store
// as the sign-in pages would (a.webSession).
func signedInBrowser(a *api, subject string) *browser {
	a.t.Helper()
	return &browser{a: a, cookie: a.webSession(app.RoleMember, subject), subject: subject}
}

// page sends a request with the session and checks the answer against
// openapi.yaml. Unlike a.do it takes an HTML page for a 4xx: past the
// pages' middleware, errors are pages.
func (b *browser) page(method, path string, form url.Values) response {
	b.a.t.Helper()
	r := req{Method: method, Path: path, Headers: map[string]string{"Cookie": b.cookie}}
	if form != nil {
		r.Body = form.Encode()
		r.Headers["Content-Type"] = "application/x-www-form-urlencoded"
	}
	resp := b.a.send(r)
	b.a.checkSpec(r, r.raw(), resp)
	if resp.Status >= 500 {
		b.a.t.Fatalf("%s %s → %d:\n%s", method, path, resp.Status, resp.Body)
	}
	return resp
}

func (b *browser) get(path string) response {
	b.a.t.Helper()
	return b.page("GET", path, nil)
}

// post submits a form, counting the submission.
func (b *browser) post(path string, form url.Values) response {
	b.a.t.Helper()
	b.posts++
	if form == nil {
		form = url.Values{}
	}
	return b.page("POST", path, form)
}

var (
	formRe   = regexp.MustCompile(`(?s)<form method="post" action="([^"]+)">(.*?)</form>`)
	hiddenRe = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	buttonRe = regexp.MustCompile(`(?s)<button type="submit"[^>]*>(.*?)</button>`)
)

// click submits the form of page whose button says label, with its
// hidden fields and extra fields, as a browser would.
func (b *browser) click(page response, label string, extra url.Values) response {
	b.a.t.Helper()
	for _, m := range formRe.FindAllStringSubmatch(string(page.Body), -1) {
		btn := buttonRe.FindStringSubmatch(m[2])
		if btn == nil || html.UnescapeString(btn[1]) != label {
			continue
		}
		form := url.Values{}
		for _, h := range hiddenRe.FindAllStringSubmatch(m[2], -1) {
			form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
		}
		for k, v := range extra {
			form[k] = v
		}
		return b.post(html.UnescapeString(m[1]), form)
	}
	b.a.t.Fatalf("no form with a %q button on the page:\n%s", label, page.Body)
	return response{}
}

// follow reads the page a 303 points to.
func (b *browser) follow(r response) response {
	b.a.t.Helper()
	expectPage(b.a.t, r, http.StatusSeeOther)
	to, _, _ := strings.Cut(r.Header.Get("Location"), "#") // a browser keeps the fragment to itself
	return expectPage(b.a.t, b.get(to), http.StatusOK)
}

// hiddenValue is the value of the page's hidden field name.
func hiddenValue(t testing.TB, page response, name string) string {
	t.Helper()
	for _, m := range hiddenRe.FindAllStringSubmatch(string(page.Body), -1) {
		if m[1] == name {
			return html.UnescapeString(m[2])
		}
	}
	t.Fatalf("no hidden field %s on the page", name)
	return ""
}

// csrf is the session's CSRF token, read from a page's sign-out form.
func (b *browser) csrf() string {
	b.a.t.Helper()
	m := hiddenRe.FindStringSubmatch(string(expectPage(b.a.t, b.get("/account"), 200).Body))
	if m == nil || m[1] != "csrf" {
		b.a.t.Fatal("no CSRF token on the start page")
	}
	return html.UnescapeString(m[2])
}

// expectPage fails unless r has the status; a 2xx or 4xx must be HTML.
func expectPage(t testing.TB, r response, status int) response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if status != http.StatusSeeOther && !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("Content-Type %q, want an HTML page", r.Header.Get("Content-Type"))
	}
	return r
}

func mustContain(t testing.TB, r response, words ...string) {
	t.Helper()
	for _, w := range words {
		if !strings.Contains(string(r.Body), w) {
			t.Fatalf("the page does not say %q:\n%s", w, r.Body)
		}
	}
}

// myExchanges is the member's exchanges as the API lists them.
func (a *api) myExchanges(tok string) []map[string]any {
	a.t.Helper()
	var l struct{ Items []map[string]any }
	expect(a.t, a.do(req{Method: "GET", Path: "/v1/me/exchanges", Token: tok}), 200).decode(a.t, &l)
	return l.Items
}

func TestWebMemberPagesRenderWithAndWithoutData(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()

	// A member with nothing: no profile, no offers, no rewards.
	empty := signedInBrowser(a, "nobody")
	mustContain(t, expectPage(t, empty.get("/account/offers"), 200), "There are no offers right now")
	mustContain(t, expectPage(t, empty.get("/account/exchanges"), 200), "you have no profile", `href="/account/profile"`)
	mustContain(t, expectPage(t, empty.get("/account/points"), 200), "You have no points yet", "no rewards in the catalogue")

	// A member with data.
	id := a.publishContract(f, contractBody(f))
	a.enrol(f.member)
	joined := a.joinContract(f.member, id)
	ex := joined["id"].(string)
	a.createReward(f, nil)
	alice := signedInBrowser(a, "alice")
	mustContain(t, expectPage(t, alice.get("/account/offers"), 200), "Coffee club", "PartnerCo", "another company", "Sweden",
		"the brand itself", "Norway", "200 points when you join", "EUR", "/v1/contracts/"+id+"/transparency", "/v1/contracts/"+id+"/notice",
		`href="/account/offers/`+id+`"`)
	mustContain(t, expectPage(t, alice.get("/account/offers/"+id), 200), "Who is responsible", "Brand AS", "What you share, with whom, and why",
		"What you get", "How long", "If you cancel", ">Join</button>")
	mustContain(t, expectPage(t, alice.get("/account/exchanges"), 200), "Coffee club", "Active", "PartnerCo")
	mustContain(t, expectPage(t, alice.get("/account/exchanges/"+ex), 200), "Coffee club", "Active", "Since", "PartnerCo",
		"/account/exchanges/"+ex+"/receipt", "/account/exchanges/"+ex+"/record", ">Cancel</button>", "a join bonus of 200 points is pending")
	mustContain(t, expectPage(t, alice.get("/account/points"), 200), "Pending", "200 points, worth 2.00 EUR", "Cinema ticket",
		"Join bonus (pending until it vests)", "You do not have enough available points")

	receipt := alice.get("/account/exchanges/" + ex + "/receipt")
	if receipt.Status != 200 || receipt.Header.Get("Content-Type") != "application/jose" ||
		!strings.HasPrefix(receipt.Header.Get("Content-Disposition"), "attachment;") || string(receipt.Body) != joined["receipt"] {
		t.Fatalf("receipt download: %d %v %q", receipt.Status, receipt.Header, receipt.Body)
	}
	record := alice.get("/account/exchanges/" + ex + "/record")
	api := expect(t, a.do(req{Method: "GET", Path: "/v1/me/exchanges/" + ex + "/record", Token: f.member}), 200).json(t)
	if record.Status != 200 || record.Header.Get("Content-Type") != "application/ld+json" ||
		!strings.HasPrefix(record.Header.Get("Content-Disposition"), "attachment;") || !strings.Contains(string(record.Body), api["@id"].(string)) {
		t.Fatalf("record download: %d %v %s", record.Status, record.Header, record.Body)
	}
}

// joinAndCancel joins contract id from its statement page by clicking
// through the forms, then cancels from the exchange page, and returns the
// submissions each took and the exchange id.
func joinAndCancel(t *testing.T, a *api, b *browser, id string) (joinSteps, cancelSteps int, exchange string) {
	t.Helper()
	statement := expectPage(t, b.get("/account/offers/"+id), 200)
	b.posts = 0
	confirm := expectPage(t, b.click(statement, "Join", nil), 200)
	mustContain(t, confirm, "To PartnerCo", "To Brand", "Oslo", "espresso, croissant", "yes", "Confirm and join")
	done := b.click(confirm, "Confirm and join", nil)
	expectPage(t, done, http.StatusSeeOther)
	exchange = strings.TrimPrefix(strings.Split(done.Header.Get("Location"), "?")[0], "/account/exchanges/")
	page := b.follow(done)
	mustContain(t, page, "You joined", "Download your signed consent receipt", "Active")
	joinSteps = b.posts

	b.posts = 0
	whatStops := expectPage(t, b.click(page, "Cancel", nil), 200)
	mustContain(t, whatStops, "What stops", "What is kept", "voided", "PartnerCo")
	cancelled := b.follow(b.click(whatStops, "Confirm and cancel", nil))
	mustContain(t, cancelled, "Cancelled")
	cancelSteps = b.posts
	return joinSteps, cancelSteps, exchange
}

func TestWebJoinAndCancelWorkEndToEndInTheSameNumberOfSteps(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	id := a.publishContract(f, contractBody(f))
	a.enrol(f.member)
	alice := signedInBrowser(a, "alice")

	joinSteps, cancelSteps, ex := joinAndCancel(t, a, alice, id)
	if joinSteps != 2 || cancelSteps != joinSteps {
		t.Fatalf("joining took %d form submissions and cancelling %d: they must be equal (2)", joinSteps, cancelSteps)
	}
	xs := a.myExchanges(f.member)
	if len(xs) != 1 || xs[0]["id"] != ex || xs[0]["status"] != "cancelled" {
		t.Fatalf("the API shows %v, want exchange %s cancelled", xs, ex)
	}
	// A second confirmation of the cancel changes nothing, as DELETE does.
	again := alice.post("/account/exchanges/"+ex+"/cancel/confirm", url.Values{"csrf": {alice.csrf()}})
	mustContain(t, alice.follow(again), "Cancelled")
	// The cancel step of an ended exchange goes back to its page.
	if r := alice.post("/account/exchanges/"+ex+"/cancel", url.Values{"csrf": {alice.csrf()}}); r.Status != http.StatusSeeOther {
		t.Fatalf("cancel step of an ended exchange: %d", r.Status)
	}
}

func TestWebDoubleSubmittedJoinConfirmationJoinsOnce(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	id := a.publishContract(f, contractBody(f))
	a.enrol(f.member)
	alice := signedInBrowser(a, "alice")
	confirm := expectPage(t, alice.click(expectPage(t, alice.get("/account/offers/"+id), 200), "Join", nil), 200)
	first := expectPage(t, alice.click(confirm, "Confirm and join", nil), http.StatusSeeOther)
	second := expectPage(t, alice.click(confirm, "Confirm and join", nil), http.StatusSeeOther)
	if first.Header.Get("Location") != second.Header.Get("Location") {
		t.Fatalf("the two submissions lead to %s and %s", first.Header.Get("Location"), second.Header.Get("Location"))
	}
	if xs := a.myExchanges(f.member); len(xs) != 1 {
		t.Fatalf("%d exchanges after a double submission, want 1", len(xs))
	}
	var bonuses int64
	if err := a.svc.db.Raw(`SELECT count(*) FROM ledger_entries WHERE member_id = ? AND kind = 'bonus_pending'`, "alice").Row().Scan(&bonuses); err != nil {
		t.Fatal(err)
	}
	if bonuses != 1 {
		t.Fatalf("%d join bonuses, want 1", bonuses)
	}
	// Two submissions at once (a double click) join once too.
	a.enrol(token(t, app.RoleMember, "bob"))
	bob := signedInBrowser(a, "bob")
	confirm = expectPage(t, bob.click(expectPage(t, bob.get("/account/offers/"+id), 200), "Join", nil), 200)
	form := url.Values{"csrf": {bob.csrf()}, "key": {hiddenValue(t, confirm, "key")}}
	concurrently(t, 2, func() error {
		if r := bob.page("POST", "/account/offers/"+id+"/join/confirm", form); r.Status != http.StatusSeeOther {
			return fmt.Errorf("concurrent confirmation: %d %s", r.Status, r.Body)
		}
		return nil
	})
	if xs := a.myExchanges(token(t, app.RoleMember, "bob")); len(xs) != 1 {
		t.Fatalf("%d exchanges after two concurrent submissions, want 1", len(xs))
	}
	// A confirmation form without its key joins nothing.
	form = url.Values{"csrf": {alice.csrf()}}
	if r := alice.post("/account/offers/"+id+"/join/confirm", form); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("confirm without key: %d %s", r.Status, r.Body)
	}
}

func TestWebJoinRefusalsSayWhatToDo(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	id := a.publishContract(f, contractBody(f))

	// Not enrolled: the confirmation step sends the member to their profile.
	nobody := signedInBrowser(a, "nobody")
	r := nobody.click(expectPage(t, nobody.get("/account/offers/"+id), 200), "Join", nil)
	mustContain(t, expectPage(t, r, http.StatusNotFound), "You have no profile yet", `href="/account/profile"`, "Nothing was shared")

	// Missing data: the refusal names it by its label.
	bob := token(t, app.RoleMember, "bob")
	a.enrolWith(bob, map[string]any{"location.city": "Oslo", "demographic.birthdate": "1990-05-01"})
	b := signedInBrowser(a, "bob")
	confirm := expectPage(t, b.click(expectPage(t, b.get("/account/offers/"+id), 200), "Join", nil), 200)
	mustContain(t, confirm, "Not in your profile")
	refused := expectPage(t, b.click(confirm, "Confirm and join", nil), http.StatusUnprocessableEntity)
	mustContain(t, refused, "does not hold", `href="/account/profile"`)
	if strings.Contains(string(refused.Body), "PUT /v1/me") {
		t.Fatalf("the refusal page tells a person to call the API:\n%s", refused.Body)
	}
	if xs := a.myExchanges(bob); len(xs) != 0 {
		t.Fatalf("a refused join left %d exchanges", len(xs))
	}

	// Already joined: the refusal points to the exchanges.
	a.enrol(f.member)
	a.joinContract(f.member, id)
	alice := signedInBrowser(a, "alice")
	confirm = expectPage(t, alice.click(expectPage(t, alice.get("/account/offers/"+id), 200), "Join", nil), 200)
	mustContain(t, expectPage(t, alice.click(confirm, "Confirm and join", nil), http.StatusConflict), "already joined", `href="/account/exchanges"`)
}

// memberPostRoutes are every POST of these pages, for ids that exist.
func memberPostRoutes(contract, exchange, reward, redemption string) []string {
	return []string{"/account/offers/" + contract + "/join", "/account/offers/" + contract + "/join/confirm",
		"/account/exchanges/" + exchange + "/renew", "/account/exchanges/" + exchange + "/cancel",
		"/account/exchanges/" + exchange + "/cancel/confirm", "/account/rewards/" + reward + "/redeem",
		"/account/redemptions/" + redemption + "/cancel"}
}

func TestWebMemberPostsWithoutTheRightCSRFTokenAreRefusedAndWriteNothing(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	toks := a.fundedMembers(f, "alice")
	reward := a.createReward(f, nil)
	redeemed := expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: toks[0], Body: map[string]any{"reward_id": reward}}), 201).json(t)
	redemption := redeemed["redemption"].(map[string]any)["id"].(string)
	other := a.publishContract(f, contractBody(f))
	ex := a.myExchanges(toks[0])[0]["id"].(string)
	a.openRenewalWindow(ex)
	before := a.available(toks[0])

	alice := signedInBrowser(a, "alice")
	for _, path := range memberPostRoutes(other, ex, reward, redemption) {
		for name, form := range map[string]url.Values{
			"without a token":        {"key": {"k-" + path}},
			"with a wrong one":       {"csrf": {"not-the-token"}, "key": {"k-" + path}},
			"with another session's": {"csrf": {signedInBrowser(a, "alice").csrf()}, "key": {"k-" + path}},
		} {
			r := alice.post(path, form)
			if r.Status != http.StatusForbidden {
				t.Fatalf("POST %s %s: %d, want 403\n%s", path, name, r.Status, r.Body)
			}
			mustContain(t, r, "this form has expired")
		}
	}
	xs := a.myExchanges(toks[0])
	if len(xs) != 1 || xs[0]["status"] != "active" || xs[0]["expires_at"] == nil {
		t.Fatalf("exchanges after refused posts: %v", xs)
	}
	if got := a.available(toks[0]); got != before {
		t.Fatalf("available %d after refused posts, want %d", got, before)
	}
	var l struct{ Items []struct{ Status string } }
	expect(t, a.do(req{Method: "GET", Path: "/v1/me/redemptions", Token: toks[0]}), 200).decode(t, &l)
	if len(l.Items) != 1 || l.Items[0].Status == "cancelled" {
		t.Fatalf("redemptions after refused posts: %+v", l.Items)
	}
	// Signed out, a post is refused too and a page sends to sign in.
	out := &browser{a: a, cookie: "quid-session=nothing"}
	if r := out.post("/account/exchanges/"+ex+"/cancel/confirm", url.Values{"csrf": {"x"}}); r.Status != http.StatusUnauthorized {
		t.Fatalf("signed-out post: %d", r.Status)
	}
	if r := out.get("/account/exchanges"); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/account/signin") {
		t.Fatalf("signed-out page: %d %s", r.Status, r.Header.Get("Location"))
	}
}

func TestWebAnotherMembersExchangeIsANotFoundPage(t *testing.T) {
	t.Parallel()
	a, f, _, joined := withJoinedMember(t)
	ex := joined["id"].(string)
	bob := signedInBrowser(a, "bob")
	a.enrol(token(t, app.RoleMember, "bob"))
	for _, path := range []string{"/account/exchanges/" + ex, "/account/exchanges/" + ex + "/receipt", "/account/exchanges/" + ex + "/record"} {
		mustContain(t, expectPage(t, bob.get(path), http.StatusNotFound), "no exchange")
	}
	csrf := bob.csrf()
	for _, path := range []string{"/account/exchanges/" + ex + "/cancel", "/account/exchanges/" + ex + "/cancel/confirm", "/account/exchanges/" + ex + "/renew"} {
		expectPage(t, bob.post(path, url.Values{"csrf": {csrf}}), http.StatusNotFound)
	}
	if xs := a.myExchanges(f.member); xs[0]["status"] != "active" {
		t.Fatalf("another member's posts changed the exchange: %v", xs[0])
	}
}

func TestWebHostileIdsInPathsAreNotFoundPages(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	a.fixtures()
	alice := signedInBrowser(a, "alice")
	csrf := alice.csrf()
	hostile := []string{"not-a-uuid", "%00", "%25ZZ", "a%2Fb", "..%2F..%2Fetc", "%E2%80%AE", "00000000-0000-0000-0000-0000000000000",
		"00000000-0000-0000-0000-000000000000", "%3Cscript%3E", strings.Repeat("9", 300), "%C0%AF", "1%20OR%201%3D1"}
	for _, id := range hostile {
		for _, path := range []string{"/account/offers/" + id, "/account/exchanges/" + id, "/account/exchanges/" + id + "/receipt",
			"/account/exchanges/" + id + "/record"} {
			expectPage(t, alice.get(path), http.StatusNotFound)
		}
		for _, path := range memberPostRoutes(id, id, id, id) {
			expectPage(t, alice.post(path, url.Values{"csrf": {csrf}, "key": {"k"}}), http.StatusNotFound)
		}
	}
	// A cursor that no list handed out is refused as a page naming it.
	a.enrol(token(t, app.RoleMember, "alice"))
	for _, path := range []string{"/account/offers", "/account/exchanges", "/account/points"} {
		mustContain(t, expectPage(t, alice.get(path+"?cursor=forged"), http.StatusUnprocessableEntity), "is not a cursor this list handed out")
	}
}

func TestWebRewardsRedeemOnceAndCancelFromThePointsPage(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	toks := a.fundedMembers(f, "alice")
	a.createReward(f, map[string]any{"name": "Cinema ticket"})
	alice := signedInBrowser(a, "alice")
	points := expectPage(t, alice.get("/account/points"), 200)
	mustContain(t, points, "500 points, worth 5.00 EUR", "Cinema ticket", "Costs 100 points (worth 1.00 EUR)")

	first := expectPage(t, alice.click(points, "Redeem “Cinema ticket”", nil), http.StatusSeeOther)
	expectPage(t, alice.click(points, "Redeem “Cinema ticket”", nil), http.StatusSeeOther) // the same form again
	if got := a.available(toks[0]); got != 400 {
		t.Fatalf("available %d after a double-submitted redemption, want 400", got)
	}
	after := alice.follow(first)
	mustContain(t, after, "Your code:", "400 points, worth 4.00 EUR")
	back := alice.follow(alice.click(after, "Cancel “Cinema ticket” and get the points back", nil))
	mustContain(t, back, "Cancelled: the points were given back", "500 points")
	if got := a.available(toks[0]); got != 500 {
		t.Fatalf("available %d after cancelling, want 500", got)
	}
}

func TestWebRenewalFromTheExchangePage(t *testing.T) {
	t.Parallel()
	a, f, _, joined := withJoinedMember(t)
	ex := joined["id"].(string)
	alice := signedInBrowser(a, "alice")
	page := expectPage(t, alice.get("/account/exchanges/"+ex), 200)
	if strings.Contains(string(page.Body), ">Renew</button>") {
		t.Fatal("a Renew button while renewal is not open")
	}
	a.openRenewalWindow(ex)
	before := a.myExchanges(f.member)[0]["expires_at"]
	page = expectPage(t, alice.get("/account/exchanges/"+ex), 200)
	mustContain(t, alice.follow(alice.click(page, "Renew", nil)), "Active")
	if after := a.myExchanges(f.member)[0]["expires_at"]; after == before {
		t.Fatalf("expiry %v unchanged by the renewal", after)
	}
}
