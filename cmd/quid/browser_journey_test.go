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

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"
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

// oidcUser is a mockoidc user whose ID token also carries a role claim
// (QUID_OIDC_ROLE_CLAIM, "role"); an empty role leaves the claim out.
type oidcUser struct {
	sub, role string
}

func (u oidcUser) ID() string { return u.sub }

func (u oidcUser) Userinfo([]string) ([]byte, error) {
	return json.Marshal(map[string]string{"sub": u.sub})
}

type roleClaims struct {
	*mockoidc.IDTokenClaims
	Role string `json:"role,omitempty"`
}

func (u oidcUser) Claims(_ []string, c *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return roleClaims{IDTokenClaims: c, Role: u.role}, nil
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
	v := &visitor{t: t, ctx: b.Tab(t, browsertest.Phone), base: base, shots: screenshotDir(), seen: map[string]bool{}}
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
// (white space folded), after marking the document so that its
// replacement can be told apart; it answers why it did not click.
const clickJS = `(function(text){
	const norm = s => s.replace(/\s+/g, ' ').trim();
	const all = Array.from(document.querySelectorAll('a, button, input[type=submit]'));
	const hits = all.filter(e => norm(e.innerText || e.value || '') === text);
	if (hits.length !== 1) return 'found ' + hits.length + ' links or buttons named "' + text + '"';
	window.__quidJourney = 'old';
	hits[0].click();
	return '';
})(%q)`

// follow clicks the one link or button named text and waits for the next
// page to load.
func (v *visitor) follow(text string) {
	v.t.Helper()
	from := v.path()
	msg, err := chromedp.Run(v.ctx, chromedp.Evaluate[string](fmt.Sprintf(clickJS, text)))
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

// fetch downloads path with the tab's cookies (as a download link does)
// and answers its status, media type and body.
func (v *visitor) fetch(path string) (int, string, string) {
	v.t.Helper()
	type answer struct {
		Status int    `json:"status"`
		Type   string `json:"type"`
		Body   string `json:"body"`
	}
	r, err := chromedp.Run(v.ctx, chromedp.Evaluate[answer](fmt.Sprintf(
		`fetch(%q, {credentials: 'same-origin'}).then(async r => ({status: r.status, type: r.headers.get('content-type') || '', body: await r.text()}))`, path),
		chromedp.EvalAwaitPromise))
	if err != nil {
		v.t.Fatalf("fetching %s: %v", path, err)
	}
	return r.Status, r.Type, r.Body
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

// signIn signs the tab in through the identity provider as user: the
// sign-in page's button, the provider, and back.
func (v *visitor) signIn(w *webWorld, user oidcUser, returnTo string) {
	v.t.Helper()
	v.open(returnTo)
	if p := v.path(); !strings.HasPrefix(p, "/account/signin?") {
		v.t.Fatalf("signed out, %s shows %s, want the sign-in page", returnTo, p)
	}
	w.idp.QueueUser(user)
	v.follow("Sign in with your account")
	v.see() // a page, not an error
	if v.hasButton("Sign out") == false {
		v.t.Fatalf("after signing in, %s has no Sign out button:\n%s", v.path(), v.text())
	}
}

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

// TestMemberJourneyInARealBrowser walks a member through the pages in
// Chromium, signed in through the identity provider.
func TestMemberJourneyInARealBrowser(t *testing.T) {
	t.Parallel()
	start := time.Now()
	w := newWebWorld(t)
	b := browsertest.Start(t)
	v := newVisitor(t, b, w.base)
	const sub = "journey-member"
	member := oidcUser{sub: sub}

	// Signed out, a page sends the browser to sign in; that page is checked too.
	v.open("/account")
	v.check("signin")
	w.idp.QueueUser(member)
	v.follow("Sign in with your account")
	if p := v.path(); p != "/account" {
		t.Fatalf("after signing in the browser is at %s, want /account", p)
	}
	v.see("Your data and rewards")
	v.check("home")

	v.follow("Sign out")
	v.see("You are signed out")
	v.check("signed-out")
	t.Logf("member journey: %d forms submitted, %.1f s", v.posts.Load(), time.Since(start).Seconds())
}
