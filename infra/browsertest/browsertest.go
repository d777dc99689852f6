// Package browsertest runs tests in a real browser: a headless Chromium
// driven over the DevTools protocol (github.com/chromedp/chromedp), with
// axe-core to check pages against WCAG 2.1 AA. It is for tests only; no
// production code imports it.
//
// Browser tests are never skipped. Chromium is the system's package: when
// it is missing and the test runs as root with apt-get (a CI machine), the
// harness installs Debian's chromium package, once per machine, as
// cmd/devdb does for PostgreSQL; otherwise the test fails, saying what to
// install. axe-core comes from the npm registry, pinned with its integrity
// hash in axe/package-lock.json, and is installed with `npm ci` into the
// user's cache directory (never into the checkout, which may be read-only
// or closed to others), once per version.
//
// One browser serves a whole test: Start launches it, Tab opens a page
// with a viewport, and the test's cleanup closes both and kills the
// browser's processes.
package browsertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// Viewport is a window the page is shown in: its CSS size, and whether
// the browser presents itself as a phone (mobile viewport meta, touch).
type Viewport struct {
	Name          string
	Width, Height int64
	Mobile        bool
}

var (
	// Phone is a phone held upright (390×844 CSS pixels, an iPhone 12 to
	// 14), in mobile emulation.
	Phone = Viewport{Name: "phone", Width: 390, Height: 844, Mobile: true}
	// Desktop is a laptop's browser window.
	Desktop = Viewport{Name: "desktop", Width: 1280, Height: 800}
	// Viewports are those every page is checked at.
	Viewports = []Viewport{Phone, Desktop}
)

// Browser is one headless Chromium, shared by a test and its subtests.
type Browser struct {
	ctx context.Context // the browser's first tab; new tabs derive from it
}

// chromiumFlags are the flags the browser starts with: headless, no
// sandbox (root in a container has no user namespaces), and none of the
// background traffic (updates, sync, metrics, crash reports) a test
// machine must not make.
var chromiumFlags = []string{"headless", "no-sandbox", "disable-gpu", "disable-quic", "no-first-run",
	"no-default-browser-check", "disable-background-networking", "disable-component-update", "disable-sync",
	"disable-breakpad", "disable-crash-reporter", "disable-default-apps", "disable-extensions",
	"mute-audio", "hide-scrollbars", "password-store=basic", "use-mock-keychain"}

// Start launches a headless Chromium with a fresh profile in a temporary
// directory; the test's cleanup closes it. It fails the test (never skips
// it) when Chromium is missing and cannot be installed.
func Start(t testing.TB) *Browser {
	t.Helper()
	path, err := Chromium()
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.UserDataDir(t.TempDir())}
	for _, f := range chromiumFlags {
		name, value, ok := strings.Cut(f, "=")
		if ok {
			opts = append(opts, chromedp.Flag(name, value))
		} else {
			opts = append(opts, chromedp.Flag(name, true))
		}
	}
	out := &syncBuffer{}
	opts = append(opts, chromedp.CombinedOutput(out))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	// chromedp reports protocol events newer than its bindings as errors;
	// they are harmless, and a test's log is no place for them.
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(string, ...any) {}))
	t.Cleanup(func() {
		cancel()      // closes the browser
		cancelAlloc() // kills what is left and waits for it
	})
	// The first call starts the browser, for as long as ctx lives: it
	// takes no timeout of its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v\n%s", path, err, out.String())
	}
	return &Browser{ctx: ctx}
}

// Tab opens a new tab shown at v, in the light colour scheme; its context
// is cancelled (the tab closed) when the test ends, and every call made
// with it times out after a minute.
func (b *Browser) Tab(t testing.TB, v Viewport) context.Context {
	t.Helper()
	return b.TabWithin(t, v, time.Minute)
}

// TabWithin is Tab whose calls time out after d: a journey through many
// pages needs more than a minute on a machine busy with the whole suite.
func (b *Browser) TabWithin(t testing.TB, v Viewport, d time.Duration) context.Context {
	t.Helper()
	tab, closeTab := chromedp.NewContext(b.ctx)
	ctx, stop := context.WithTimeout(tab, d)
	t.Cleanup(func() { stop(); closeTab() })
	if err := chromedp.Do(ctx, Show(v), ColorScheme(false)); err != nil {
		t.Fatalf("opening a %s tab: %v", v.Name, err)
	}
	return ctx
}

// Show is an action that shows the tab's page at v, reflowing it in place.
func Show(v Viewport) chromedp.Action[chromedp.Void] {
	if v.Mobile {
		return chromedp.EmulateViewport(v.Width, v.Height, chromedp.EmulateScale(3), chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	return chromedp.EmulateViewport(v.Width, v.Height, chromedp.EmulateScale(1))
}

// ColorScheme is an action that makes the page's prefers-color-scheme
// dark, or light; the page restyles at once, without reloading.
func ColorScheme(dark bool) chromedp.Action[chromedp.Void] {
	scheme := "light"
	if dark {
		scheme = "dark"
	}
	media := emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}}
	return chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
		_, err := cdp.Call(ctx, tab, emulation.SetEmulatedMedia, media)
		return err
	})
}

// Open loads url in the tab and fails the test unless it answers 200 with
// an HTML page.
func Open(t testing.TB, ctx context.Context, url string) {
	t.Helper()
	res, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if res == nil || res.Status != http.StatusOK || res.MimeType != "text/html" {
		status, mime := int64(0), ""
		if res != nil {
			status, mime = res.Status, res.MimeType
		}
		t.Fatalf("GET %s: %d %s, want 200 text/html", url, status, mime)
	}
}

// Overflow is how many CSS pixels the page is wider than its viewport (0
// when it fits). WCAG 2.1 SC 1.4.10 (Reflow) asks for content that needs
// no horizontal scrolling at a phone's width, and axe-core does not test
// it: an unbroken fingerprint or a long number pushes a page sideways.
func Overflow(ctx context.Context) (int, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[int](
		`Math.max(0, document.documentElement.scrollWidth - document.documentElement.clientWidth)`))
}

// CheckAccessible loads url once, in a tab of its own, and checks it at
// every viewport of Viewports, in the light and the dark colour scheme,
// with axe, and that it reflows to the viewport's width (Overflow); each
// viewport is a subtest, failed with the list of the WCAG 2.1 A and AA
// violations found. The page is loaded once and the viewport
// changed under it, as a browser window is resized: axe-core takes
// seconds to load into a page on a busy machine, and runs in milliseconds.
func (b *Browser) CheckAccessible(t *testing.T, url string) {
	t.Helper()
	ctx := b.Tab(t, Viewports[0])
	Open(t, ctx, url)
	for _, v := range Viewports {
		t.Run(v.Name, func(t *testing.T) {
			if err := chromedp.Do(ctx, Show(v)); err != nil {
				t.Fatal(err)
			}
			if px, err := Overflow(ctx); err != nil {
				t.Fatal(err)
			} else if px > 0 {
				t.Errorf("%s on a %s (%dx%d) is %d px wider than the screen: it scrolls sideways (WCAG 1.4.10 Reflow)", url, v.Name, v.Width, v.Height, px)
			}
			for _, dark := range []bool{false, true} {
				scheme := map[bool]string{false: "light", true: "dark"}[dark]
				if err := chromedp.Do(ctx, ColorScheme(dark)); err != nil {
					t.Fatal(err)
				}
				r, err := Axe(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Violations) > 0 {
					t.Errorf("%s on a %s (%dx%d), %s scheme: %d accessibility violations:\n%s",
						url, v.Name, v.Width, v.Height, scheme, len(r.Violations), r.Violations)
				}
				if len(r.Incomplete) > 0 {
					t.Logf("%s on a %s, %s scheme: axe could not decide %v (check those by hand)", url, v.Name, scheme, r.Incomplete)
				}
				if r.Passes == 0 {
					t.Errorf("%s on a %s, %s scheme: axe passed no rule, so it checked nothing", url, v.Name, scheme)
				}
			}
		})
	}
}

// syncBuffer is a bytes.Buffer the browser's output goroutine and the
// test may use at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 64<<10 {
		return len(p), nil // enough to say why it failed to start
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var (
	chromiumOnce sync.Once
	chromiumPath string
	chromiumErr  error
)

// chromiumNames are the commands a Chromium is found as, in order.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"}

// Chromium returns the path of the browser: QUID_CHROMIUM when set, else
// the first of chromiumNames on PATH. When there is none and the process
// runs as root with apt-get, it installs Debian's chromium package (once
// per process; apt-get waits for another's lock) and looks again.
func Chromium() (string, error) {
	chromiumOnce.Do(func() { chromiumPath, chromiumErr = findOrInstallChromium() })
	return chromiumPath, chromiumErr
}

func findChromium() string {
	if p := os.Getenv("QUID_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range chromiumNames {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func findOrInstallChromium() (string, error) {
	if p := findChromium(); p != "" {
		return p, nil
	}
	const how = "install it (sudo apt-get install chromium) or set QUID_CHROMIUM to a Chromium or Chrome binary; browser tests are never skipped"
	if err := aptInstall("chromium"); err != nil {
		return "", fmt.Errorf("browsertest: no Chromium found (%s) and %v; %s", strings.Join(chromiumNames, ", "), err, how)
	}
	if p := findChromium(); p != "" {
		return p, nil
	}
	return "", errors.New("browsertest: the chromium package is installed but no chromium command is on PATH; " + how)
}

// aptInstall installs Debian packages when the process may: as root, with
// apt-get. Its output goes to stderr, since installing takes a while.
func aptInstall(pkgs ...string) error {
	if os.Geteuid() != 0 {
		return errors.New("only root may install it")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return errors.New("apt-get is missing to install it")
	}
	fmt.Fprintf(os.Stderr, "browsertest: installing %s with apt-get (one time)…\n", strings.Join(pkgs, " "))
	install := append([]string{"-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends"}, pkgs...)
	for _, args := range [][]string{{"-o", "DPkg::Lock::Timeout=600", "update"}, install} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s failed (%v, output above)", args[2], err)
		}
	}
	return nil
}
