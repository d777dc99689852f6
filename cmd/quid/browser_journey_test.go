package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/quidpro/quid/infra/browsertest"
	"github.com/quidpro/quid/infra/config"
)

// The journeys of issue 13 in a real browser: headless Chromium (infra/
// browsertest) against an in-process Quid signed in through an in-process
// OpenID Connect provider (github.com/oauth2-proxy/mockoidc). Every page
// the journey reaches is checked where it stands, at a phone's and a
// desktop's size, with axe-core (WCAG 2.1 A and AA) and for sideways
// scrolling, and a full-page screenshot of each is written to
// docs/screenshots (or QUID_SCREENSHOTS), the folder the README names.

// screenshotDir is where the journeys write their screenshots.
func screenshotDir() string {
	if d := os.Getenv("QUID_SCREENSHOTS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "docs", "screenshots")
}

// webWorld is a Quid serving on a real listener, signed in to through a
// mock identity provider, with its workers running (accrual every 200 ms,
// so 1 s periods are credited while the member watches).
type webWorld struct {
	*api
	idp  *mockoidc.MockOIDC
	base string
}

func newWebWorld(t *testing.T) *webWorld {
	t.Helper()
	idp, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Shutdown() })
	// The redirect URI is made of QUID_PUBLIC_URL, so the address must be
	// known before Quid is built: listen first, build, then serve on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	public, _ := url.Parse(base)
	oc := idp.Config()
	a := newAPI(t, func(c *config.Config) {
		c.Web.Issuer, c.Web.ClientID, c.Web.ClientSecret = oc.Issuer, oc.ClientID, oc.ClientSecret
		c.Web.PublicURL, c.Web.RoleClaim = public, "role"
		c.AccrualInterval = 200 * time.Millisecond
	})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.svc.serve(ctx, ln, a.cfg) }()
	t.Cleanup(func() { stop(); <-done })
	a.svc.runWorkers(t)
	return &webWorld{api: a, idp: idp, base: base}
}

// visitor is one browser tab walking through the pages, shown as a phone.
type visitor struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
	// posts counts the forms the browser submitted (POST navigations).
	posts atomic.Int64
	mu    sync.Mutex
	seen  map[string]bool
}

func newVisitor(t *testing.T, b *browsertest.Browser, base string) *visitor {
	t.Helper()
	v := &visitor{t: t, ctx: b.TabWithin(t, browsertest.Phone, 4*time.Minute), base: base, shots: screenshotDir(), seen: map[string]bool{}}
	if err := chromedp.Listen(v.ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok && e.Request != nil && e.Request.Method == "POST" && e.Type == network.ResourceTypeDocument {
			v.posts.Add(1)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(v.shots, 0o755); err != nil {
		t.Logf("screenshots will not be written: %v", err)
	}
	return v
}

// open loads path (GET) in the tab.
func (v *visitor) open(path string) {
	v.t.Helper()
	browsertest.Open(v.t, v.ctx, v.base+path)
}

// path is the tab's current location, path and query.
func (v *visitor) path() string {
	v.t.Helper()
	loc, err := chromedp.Run(v.ctx, chromedp.Location())
	if err != nil {
		v.t.Fatal(err)
	}
	u, err := url.Parse(loc)
	if err != nil {
		v.t.Fatal(err)
	}
	if u.RawQuery != "" {
		return u.Path + "?" + u.RawQuery
	}
	return u.Path
}

// text is the visible text of the page's main content (or its body).
func (v *visitor) text() string {
	v.t.Helper()
	s, err := chromedp.Run(v.ctx, chromedp.Evaluate[string](`(document.querySelector('main') || document.body).innerText`))
	if err != nil {
		v.t.Fatal(err)
	}
	return s
}

// see fails unless the page's main content says each of want.
func (v *visitor) see(want ...string) {
	v.t.Helper()
	got := v.text()
	for _, w := range want {
		if !strings.Contains(got, w) {
			v.t.Fatalf("%s does not say %q; it says:\n%s", v.path(), w, got)
		}
	}
}

// clickJS clicks the one link or button whose visible text is text
// (white space folded; several links of that text to one place are one), after marking the document so that its
// replacement can be told apart; it answers why it did not click.
const clickJS = `(function(kind, text){
	const norm = s => s.replace(/\s+/g, ' ').trim();
	const all = Array.from(document.querySelectorAll({link: 'a[href]', download: 'a[download]', button: 'button, input[type=submit]'}[kind]));
	const hits = all.filter(e => norm(e.innerText || e.value || '') === text);
	const same = hits.length > 1 && hits.every(e => e.tagName === 'A' && e.href === hits[0].href);
	if (hits.length !== 1 && !same) return 'found ' + hits.length + ' ' + kind + 's named "' + text + '"';
	window.__quidJourney = 'old';
	hits[0].click();
	return '';
})(%q, %q)`

// follow clicks the one link named text and waits for the next page.
func (v *visitor) follow(text string) { v.t.Helper(); v.click("link", text) }

// press presses the one button named text (a form is submitted) and waits
// for the next page.
func (v *visitor) press(text string) { v.t.Helper(); v.click("button", text) }

func (v *visitor) click(kind, text string) {
	v.t.Helper()
	from := v.path()
	msg, err := chromedp.Run(v.ctx, chromedp.Evaluate[string](fmt.Sprintf(clickJS, kind, text)))
	if err != nil {
		v.t.Fatalf("clicking %q on %s: %v", text, from, err)
	}
	if msg != "" {
		v.t.Fatalf("on %s: %s", from, msg)
	}
	v.waitLoaded(from, text)
}

// waitLoaded waits until the document the click replaced is gone and the
// new one has loaded.
func (v *visitor) waitLoaded(from, what string) {
	v.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		done, err := chromedp.Run(v.ctx, chromedp.Evaluate[bool](`window.__quidJourney === undefined && document.readyState === 'complete'`))
		if err == nil && done {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	v.t.Fatalf("after clicking %q on %s, no new page loaded within 30 s", what, from)
}

// download clicks the download link named text and answers the file the browser
// downloaded (the pages' policy allows no fetch from script: a download
// is a click, as a person makes it).
func (v *visitor) download(text string) []byte {
	v.t.Helper()
	dir := v.t.TempDir()
	on := true
	if _, err := chromedp.CallBrowser(v.ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &on}); err != nil {
		v.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(v.ctx, 30*time.Second)
	defer cancel()
	progress := chromedp.BrowserEvents(ctx, cdpbrowser.DownloadProgress)
	msg, err := chromedp.Run(v.ctx, chromedp.Evaluate[string](fmt.Sprintf(clickJS, "download", text)))
	if err != nil || msg != "" {
		v.t.Fatalf("clicking %q on %s: %v %s", text, v.path(), err, msg)
	}
	for ev, err := range progress {
		if err != nil {
			v.t.Fatalf("downloading %q: %v", text, err)
		}
		switch ev.State {
		case cdpbrowser.DownloadProgressStateCompleted:
			b, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			if err != nil {
				v.t.Fatal(err)
			}
			return b
		case cdpbrowser.DownloadProgressStateCanceled:
			v.t.Fatalf("the download of %q was cancelled", text)
		}
	}
	v.t.Fatalf("the download of %q did not complete within 30 s", text)
	return nil
}

// check checks the page the tab shows now, where it stands (a page that
// answers a form cannot be loaded again): at every viewport, in the light
// and the dark scheme, no axe-core WCAG 2.1 A/AA violation and no sideways
// scrolling; and it writes a full-page screenshot per viewport named
// <name>-<viewport>.png. The tab is shown as a phone again afterwards.
func (v *visitor) check(name string) {
	v.t.Helper()
	v.mu.Lock()
	if v.seen[name] {
		v.mu.Unlock()
		v.t.Fatalf("two pages checked as %q", name)
	}
	v.seen[name] = true
	v.mu.Unlock()
	where := v.path()
	for _, vp := range browsertest.Viewports {
		if err := chromedp.Do(v.ctx, browsertest.Show(vp)); err != nil {
			v.t.Fatal(err)
		}
		if px, err := browsertest.Overflow(v.ctx); err != nil {
			v.t.Fatal(err)
		} else if px > 0 {
			v.t.Errorf("page %s (%s) on a %s is %d px wider than the screen: it scrolls sideways (WCAG 1.4.10 Reflow)", name, where, vp.Name, px)
		}
		for _, dark := range []bool{false, true} {
			if err := chromedp.Do(v.ctx, browsertest.ColorScheme(dark)); err != nil {
				v.t.Fatal(err)
			}
			r, err := browsertest.Axe(v.ctx)
			if err != nil {
				v.t.Fatal(err)
			}
			scheme := map[bool]string{false: "light", true: "dark"}[dark]
			if len(r.Violations) > 0 {
				v.t.Errorf("page %s (%s) on a %s, %s scheme: %d accessibility violations:\n%s", name, where, vp.Name, scheme, len(r.Violations), r.Violations)
			}
			if r.Passes == 0 {
				v.t.Errorf("page %s (%s) on a %s: axe passed no rule, so it checked nothing", name, where, vp.Name)
			}
		}
		if err := chromedp.Do(v.ctx, browsertest.ColorScheme(false)); err != nil {
			v.t.Fatal(err)
		}
		v.screenshot(name, vp)
	}
	if err := chromedp.Do(v.ctx, browsertest.Show(browsertest.Phone)); err != nil {
		v.t.Fatal(err)
	}
}

// screenshot writes a full-page PNG of the tab at vp, at one device pixel
// per CSS pixel (the pictures stay small enough for the repository).
func (v *visitor) screenshot(name string, vp browsertest.Viewport) {
	v.t.Helper()
	small := vp
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
	if small.Mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	png, err := chromedp.Run(v.ctx, func(ctx context.Context, tab *chromedp.Target) ([]byte, error) {
		if _, err := chromedp.EmulateViewport(small.Width, small.Height, opts...)(ctx, tab); err != nil {
			return nil, err
		}
		return chromedp.FullScreenshot(100)(ctx, tab)
	})
	if err != nil {
		v.t.Fatalf("screenshot of %s: %v", name, err)
	}
	file := filepath.Join(v.shots, name+"-"+vp.Name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		v.t.Logf("screenshot %s not written: %v", file, err)
	}
}

// hasButton is true when the page has a button named text.
func (v *visitor) hasButton(text string) bool {
	v.t.Helper()
	n, err := chromedp.Run(v.ctx, chromedp.Evaluate[int](fmt.Sprintf(
		`Array.from(document.querySelectorAll('button')).filter(b => b.innerText.replace(/\s+/g,' ').trim() === %q).length`, text)))
	if err != nil {
		v.t.Fatal(err)
	}
	return n > 0
}

// sessionCookie is the tab's session cookie (HttpOnly: read through the
// DevTools protocol).
func (v *visitor) sessionCookie() *network.Cookie {
	v.t.Helper()
	r, err := chromedp.Call(v.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{v.base + "/account"}})
	if err != nil {
		v.t.Fatal(err)
	}
	for _, c := range r.Cookies {
		if c.Name == "quid-session" {
			return c
		}
	}
	return nil
}

// fillJS types value into the one form control whose label reads label
// (and, when name is not empty, whose name is name: an address's City and
// the city's have the same label) and answers why it could not.
const fillJS = `(function(label, name, value){
	const norm = s => s.replace(/\s+/g, ' ').trim();
	const hits = Array.from(document.querySelectorAll('label')).filter(l => norm(l.innerText) === label)
		.map(l => l.control).filter(c => c && (name === '' || c.name === name));
	const same = hits.length > 1 && hits.every(e => e.tagName === 'A' && e.href === hits[0].href);
	if (hits.length !== 1 && !same) return 'found ' + hits.length + ' fields labelled "' + label + '"';
	hits[0].value = value;
	return '';
})(%q, %q, %q)`

func (v *visitor) fill(label, name, value string) {
	v.t.Helper()
	msg, err := chromedp.Run(v.ctx, chromedp.Evaluate[string](fmt.Sprintf(fillJS, label, name, value)))
	if err != nil {
		v.t.Fatal(err)
	}
	if msg != "" {
		v.t.Fatalf("on %s: %s", v.path(), msg)
	}
}

// journeyContract shares the member's city with the brand and PartnerCo
// for personalised offers, and pays 10 points a second.
func journeyContract(f fixtures) map[string]any {
	body := contractBody(f)
	body["title"], body["summary"] = "Coffee club", "Your city, for offers at the coffee bars near you."
	body["items"] = []any{map[string]any{"category": "location.city", "purpose": "loyalty.personalised_offers", "recipients": []string{f.brand, f.partnerCo}}}
	body["reward"] = map[string]any{"points_per_period": 10, "period": "PT1S", "max_periods": 1000}
	return body
}

// TestMemberJourneyInARealBrowser walks a member through the pages in
// Chromium, signed in through the identity provider: sign in, browse the
// offers, start a profile, join (the confirmation shows what is shared
// with whom) and get the receipt, watch points arrive, restrict processing
// and see the partner's refused read in the access log, cancel in as many
// form submissions as joining took, see the partner's next read refused in
// the access log,
// download the export, erase the account, and find the old session gone
// and a new sign-in empty. Every page on the way is checked with axe at a
// phone's and a desktop's size and photographed.
func TestMemberJourneyInARealBrowser(t *testing.T) {
	t.Parallel()
	start := time.Now()
	w := newWebWorld(t)
	f := w.fixtures()
	w.publishContract(f, journeyContract(f))
	b := browsertest.Start(t)
	v := newVisitor(t, b, w.base)
	const sub = "journey-member"
	member := idpUser{sub: sub}
	partnerRead := func() response {
		return w.do(req{Method: "GET", Path: "/v1/partner/members/" + sub + "/data?purpose=loyalty.personalised_offers", Token: f.partner})
	}

	// Signed out, a page sends the browser to sign in; the provider signs
	// it in as the queued user and sends it back.
	v.open("/account")
	v.check("signin")
	w.idp.QueueUser(member)
	v.follow("Sign in with your account")
	if p := v.path(); p != "/account" {
		t.Fatalf("after signing in the browser is at %s, want /account", p)
	}
	v.see("Your data and rewards")
	v.check("home")

	// A profile first: joining shares what it holds.
	v.follow("My profile")
	v.see("You have no profile yet")
	v.check("profile-new")
	v.fill("City", "location.city", "Oslo")
	v.fill("Date of birth", "", "1990-05-01") // the contract's age rule reads it
	v.press("Start my profile")
	v.see("Your profile is saved", "Oslo")
	v.check("profile")

	// Browse, then join: the steps are counted from the list of offers.
	v.follow("Offers")
	v.see("Coffee club", "City")
	v.check("offers")
	joinFrom := v.posts.Load()
	v.follow("Read and join “Coffee club”")
	v.see("What you share, with whom, and why")
	v.check("offer")
	v.press("Join")
	v.see("Confirm: Coffee club", "To Brand", "To PartnerCo", "Oslo")
	v.check("join-confirm")
	v.press("Confirm and join")
	joinPosts := v.posts.Load() - joinFrom
	v.see("You joined", "Download your signed consent receipt")
	v.check("exchange-joined")
	exchange := strings.TrimPrefix(v.path(), "/account/exchanges/")
	if i := strings.IndexAny(exchange, "?#"); i >= 0 {
		exchange = exchange[:i]
	}
	if receipt := string(v.download("Download your signed consent receipt")); strings.Count(receipt, ".") != 2 {
		t.Fatalf("the receipt downloaded is %.80q, want a compact JWS", receipt)
	}
	// The browser's session is the provider's sub: the API sees the exchange.
	var mine struct{ Items []struct{ ID, Status string } }
	expect(t, w.do(req{Method: "GET", Path: "/v1/me/exchanges", Token: token(t, "member", sub)}), 200).decode(t, &mine)
	if len(mine.Items) != 1 || mine.Items[0].ID != exchange || mine.Items[0].Status != "active" {
		t.Fatalf("the API's member %s has %+v, want the exchange %s joined in the browser", sub, mine.Items, exchange)
	}

	// Points arrive while the member watches (1 s periods, accrual every
	// 200 ms): the points page is reloaded until the balance is above 0.
	v.follow("Points and rewards")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(v.text(), "Available to spend\n") || strings.Contains(v.text(), "Available to spend\n0 points") {
		if time.Now().After(deadline) {
			t.Fatalf("no points arrived within 20 s:\n%s", v.text())
		}
		time.Sleep(300 * time.Millisecond)
		v.open("/account/points")
	}
	v.see("Points for a full period of sharing")
	v.check("points")

	// A partner reads the city while the exchange is active; then the member
	// restricts processing, and the partner's next read is refused and
	// logged where the member sees it.
	expect(t, partnerRead(), 200)
	v.follow("My rights")
	v.check("rights")
	v.press("Restrict the use of my data")
	v.see("The use of your data is restricted")
	v.check("rights-restricted")
	refusedWith(t, partnerRead(), 403, "processing-restricted")
	v.follow("Who read my data")
	v.see("Refused PartnerCo", "Allowed PartnerCo")
	v.check("access-log")
	v.follow("My rights")
	v.press("Lift the restriction")
	v.see("The use of your data is not restricted")

	// Cancel, from the list of exchanges, as joining started from the list of offers.
	v.follow("My exchanges")
	v.see("Coffee club", "Active")
	v.check("exchanges")
	cancelFrom := v.posts.Load()
	v.follow("Coffee club")
	v.press("Cancel")
	v.see("Cancel: Coffee club", "What stops", "What is kept")
	v.check("cancel-confirm")
	v.press("Confirm and cancel")
	cancelPosts := v.posts.Load() - cancelFrom
	v.see("Cancelled")
	v.check("exchange-cancelled")
	if joinPosts != cancelPosts || joinPosts == 0 {
		t.Errorf("joining took %d form submissions and cancelling %d: cancel must take as many steps as join", joinPosts, cancelPosts)
	}

	// After the cancellation the partner is refused, and the member sees the
	// refused attempt in the access log: the consent had ended.
	refusedWith(t, partnerRead(), 403, "no-consent")
	v.follow("Who read my data")
	v.see("Refused PartnerCo", "your consent had ended")
	v.check("access-log-after-cancel")
	v.follow("Who holds my data")
	v.see("PartnerCo")
	v.check("recipients")

	// Export: the download a browser gets, with what Quid holds.
	v.follow("My rights")
	var export map[string]any
	if err := json.Unmarshal(v.download("Download my data"), &export); err != nil {
		t.Fatalf("the export downloaded is no JSON: %v", err)
	}
	if raw, _ := json.Marshal(export); !strings.Contains(string(raw), exchange) || !strings.Contains(string(raw), "Oslo") {
		t.Fatalf("the export downloaded holds neither the exchange nor the profile: %.300s", raw)
	}

	// Erase, with its confirmation; the browser is signed out.
	old := v.sessionCookie()
	if old == nil {
		t.Fatal("no session cookie before erasure")
	}
	v.press("Erase my account…")
	v.see("Erase my account?", "What is kept, and why")
	v.check("erase-confirm")
	v.press("Yes, erase my account")
	v.see("Your account is erased")
	v.check("erased")
	if v.hasButton("Sign out") {
		t.Error("the erased page still shows a signed-in browser")
	}

	// The old session cookie is worth nothing: it gets the sign-in page.
	if _, err := chromedp.Call(v.ctx, network.SetCookie, network.SetCookieParams{Name: old.Name, Value: old.Value, URL: w.base + "/"}); err != nil {
		t.Fatal(err)
	}
	v.open("/account/exchanges")
	if p := v.path(); !strings.HasPrefix(p, "/account/signin?") {
		t.Fatalf("with the erased member's session cookie, /account/exchanges shows %s, want the sign-in page", p)
	}
	// Signing in again as the same person finds an empty account.
	w.idp.QueueUser(member)
	v.follow("Sign in with your account")
	if p := v.path(); p != "/account/exchanges" {
		t.Fatalf("after signing in again the browser is at %s, want /account/exchanges", p)
	}
	v.see("you have no profile")
	v.follow("Points and rewards")
	v.see("Available to spend\n0 points")

	v.press("Sign out")
	v.see("You are signed out")
	v.check("signed-out")
	t.Logf("member journey: join %d and cancel %d form submissions; %d pages checked; %.1f s",
		joinPosts, cancelPosts, len(v.seen), time.Since(start).Seconds())
}

// oidcMarketer is a marketer at the identity provider (idpUser,
// web_signin_test.go): the role claim says so.
var oidcMarketer = idpUser{sub: "mark", role: "marketer"}

// TestMarketerJourneyInARealBrowser signs a marketer in through the
// identity provider (role claim marketer), lists the contracts, opens
// one's statistics with its SVG chart and the confirmation of retiring it
// (left without acting); every page checked and photographed.
func TestMarketerJourneyInARealBrowser(t *testing.T) {
	t.Parallel()
	start := time.Now()
	w := newWebWorld(t)
	f := w.fixtures()
	contract := w.publishContract(f, contractBody(f))
	// Twelve members join: more than k = 10, so the chart has a line.
	for i := range 12 {
		tok := token(t, "member", fmt.Sprintf("stats-member-%02d", i))
		w.enrol(tok)
		w.joinContract(tok, contract)
	}
	b := browsertest.Start(t)
	v := newVisitor(t, b, w.base)

	v.open("/account")
	w.idp.QueueUser(oidcMarketer)
	v.follow("Sign in with your account")
	if p := v.path(); p != "/account/contracts" {
		t.Fatalf("a marketer signed in lands on %s, want /account/contracts", p)
	}
	v.see("Contracts", "Coffee club")
	v.check("marketer-contracts")
	v.follow("Version 1: Coffee club")
	v.see("Statistics", "Joins, active exchanges and endings over time")
	n, err := chromedp.Run(v.ctx, chromedp.Evaluate[int](`document.querySelectorAll('main svg').length`))
	if err != nil || n == 0 {
		t.Fatalf("the contract's page has no SVG chart (%d, %v)", n, err)
	}
	v.check("marketer-contract-stats")
	// An action's confirmation page, left without acting.
	v.follow("Retire version 1")
	v.check("marketer-retire-confirm")
	v.follow("Go back without changing anything")
	v.see("published")
	v.press("Sign out")
	v.see("You are signed out")
	t.Logf("marketer journey: %d pages checked; %.1f s", len(v.seen), time.Since(start).Seconds())
}
