package browsertest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The checker is only worth something if it fails: a page with the classic
// faults (no language, an image without a text alternative, grey on white,
// a field without a label) gives each of them as a violation naming the
// element, and the same page fixed gives none, at every viewport.
func TestAxeFindsTheViolationsOfABrokenPageAndNoneInItsFix(t *testing.T) {
	t.Parallel()
	pages := map[string]string{
		"/broken": `<!doctype html><html><head><title>Broken</title></head><body><main><h1>Broken</h1>
<img src="/x.png"><p style="color:#bbb;background:#fff">Faint text</p><input id="q"></main></body></html>`,
		"/fixed": `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Fixed</title></head>
<body><main><h1>Fixed</h1><img src="/x.png" alt="A cup of coffee"><p style="color:#555;background:#fff">Readable text</p>
<label for="q">Search</label> <input id="q"></main></body></html>`,
		"/wide": `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Wide</title></head>
<body><main><h1>Wide</h1><p>sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789</p></main></body></html>`,
		"/dark": `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Dark</title>
<style>p{color:#222;background:#fff}@media (prefers-color-scheme:dark){p{background:#000}}</style></head>
<body><main><h1>Dark</h1><p>Unreadable in the dark</p></main></body></html>`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	}))
	defer srv.Close()

	b := Start(t)
	ctx := b.Tab(t, Phone)
	Open(t, ctx, srv.URL+"/broken")
	r, err := Axe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, v := range r.Violations {
		for _, n := range v.Nodes {
			found[v.ID] += strings.Join(n.Target, " ")
		}
	}
	for rule, target := range map[string]string{"html-has-lang": "html", "image-alt": "img", "color-contrast": "p", "label": "#q"} {
		if !strings.Contains(found[rule], target) {
			t.Errorf("axe did not report %s at %s; it reported:\n%s", rule, target, r.Violations)
		}
	}
	if s := r.Violations.String(); !strings.Contains(s, "image-alt (critical)") || !strings.Contains(s, "dequeuniversity.com") {
		t.Errorf("the violations do not read as a list of rule, impact and help:\n%s", s)
	}
	b.CheckAccessible(t, srv.URL+"/fixed")

	// An unbroken word wider than a phone makes the page scroll sideways,
	// which axe does not see.
	ctx = b.Tab(t, Phone)
	Open(t, ctx, srv.URL+"/wide")
	if px, err := Overflow(ctx); err != nil || px == 0 {
		t.Errorf("a page with a 78-character word is not found wider than a phone: %d px, %v", px, err)
	}

	// A fault of the dark scheme alone is found once the page is dark.
	ctx = b.Tab(t, Desktop)
	Open(t, ctx, srv.URL+"/dark")
	for _, dark := range []bool{false, true} {
		if err := chromedp.Do(ctx, ColorScheme(dark)); err != nil {
			t.Fatal(err)
		}
		r, err := Axe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(r.Violations) > 0 && r.Violations[0].ID == "color-contrast"; got != dark {
			t.Errorf("dark %v: violations %s", dark, r.Violations)
		}
	}
}

// A test's browser leaves no process behind: every Chromium started for a
// test is gone when the test's cleanup has run.
func TestBrowserLeavesNoProcessBehind(t *testing.T) {
	t.Parallel()
	dir := ""
	t.Run("browse", func(t *testing.T) {
		dir = t.TempDir() // the profile directory sits beside it
		dir = dir[:strings.LastIndex(dir, "/")]
		b := Start(t)
		ctx := b.Tab(t, Desktop)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte(`<!doctype html><title>x</title>`))
		}))
		defer srv.Close()
		Open(t, ctx, srv.URL)
	})
	if t.Failed() {
		return
	}
	// The profile directory is on every process's command line.
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := processesMentioning(dir)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes of the test's browser (profile under %s) are still running:\n%s", dir, strings.Join(left, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// processesMentioning lists the command lines (from /proc) that contain s.
func processesMentioning(s string) []string {
	var out []string
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err == nil && strings.Contains(string(raw), s) {
			out = append(out, strings.ReplaceAll(string(raw), "\x00", " "))
		}
	}
	return out
}
