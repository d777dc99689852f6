package browsertest

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/chromedp/chromedp"
)

// The pinned axe-core: package.json names the version, package-lock.json
// its sha512 integrity, which npm ci checks against the tarball.
var (
	//go:embed axe/package.json
	axePackage []byte
	//go:embed axe/package-lock.json
	axeLock []byte
)

// AxeTags are the rule sets every page must pass: WCAG 2.0 and 2.1, levels
// A and AA.
var AxeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa"}

// Violation is one axe rule a page breaks, with every element that breaks it.
type Violation struct {
	ID      string `json:"id"`
	Impact  string `json:"impact"`
	Help    string `json:"help"`
	HelpURL string `json:"helpUrl"`
	Nodes   []struct {
		Target  []string `json:"target"`
		Summary string   `json:"summary"`
		HTML    string   `json:"html"`
	} `json:"nodes"`
}

// Violations print as a list a person can act on: rule, impact, what it
// asks for, then each element's selector and what is wrong with it.
type Violations []Violation

func (vs Violations) String() string {
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "- %s (%s): %s\n  %s\n", v.ID, v.Impact, v.Help, v.HelpURL)
		for _, n := range v.Nodes {
			fmt.Fprintf(&b, "    at %s: %s\n      %s\n", strings.Join(n.Target, " "),
				strings.ReplaceAll(n.Summary, "\n", " "), n.HTML)
		}
	}
	return b.String()
}

// AxeReport is what axe found on a page: the violations, and how many
// rules passed and how many it could not decide (axe's "incomplete").
type AxeReport struct {
	Violations Violations `json:"violations"`
	Passes     int        `json:"passes"`
	Incomplete []string   `json:"incomplete"`
}

// axeRun runs the pinned rule sets on the whole document and keeps what a
// report needs (axe's own results hold whole DOM snapshots).
const axeRun = `axe.run(document, {runOnly: {type: 'tag', values: %s}}).then(r => ({
	violations: r.violations.map(v => ({id: v.id, impact: v.impact || '', help: v.help, helpUrl: v.helpUrl,
		nodes: v.nodes.map(n => ({target: n.target.map(String), summary: n.failureSummary || '', html: n.html}))})),
	passes: r.passes.length,
	incomplete: r.incomplete.map(v => v.id)}))`

// Axe injects axe-core into the tab's page, unless it is there from an
// earlier call since the page loaded, and runs it with AxeTags.
func Axe(ctx context.Context) (AxeReport, error) {
	src, err := AxeSource()
	if err != nil {
		return AxeReport{}, err
	}
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof axe === 'object'`))
	if err != nil {
		return AxeReport{}, fmt.Errorf("reading the page: %w", err)
	}
	if !loaded {
		if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](src)); err != nil {
			return AxeReport{}, fmt.Errorf("loading axe-core into the page: %w", err)
		}
	}
	tags := `['` + strings.Join(AxeTags, `','`) + `']`
	r, err := chromedp.Run(ctx, chromedp.Evaluate[AxeReport](fmt.Sprintf(axeRun, tags), chromedp.EvalAwaitPromise))
	if err != nil {
		return AxeReport{}, fmt.Errorf("running axe-core: %w", err)
	}
	return r, nil
}

var (
	axeOnce sync.Once
	axeSrc  string
	axeErr  error
)

// AxeSource returns axe.min.js of the pinned axe-core, installing it into
// the cache first when it is not there yet.
func AxeSource() (string, error) {
	axeOnce.Do(func() { axeSrc, axeErr = loadAxe() })
	return axeSrc, axeErr
}

// loadAxe installs the pinned package with npm ci into a directory of the
// user's cache named after the lock file's hash, so a new pin installs
// anew and two pins never mix. It installs into a sibling directory and
// renames it into place, so a process that finds the directory finds it
// complete, and two test processes installing at once both succeed.
func loadAxe() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = filepath.Join(os.TempDir(), fmt.Sprintf("quid-cache-%d", os.Getuid()))
	}
	sum := sha256.Sum256(append(append([]byte{}, axePackage...), axeLock...))
	dir := filepath.Join(cache, "quid", "axe-"+hex.EncodeToString(sum[:8]))
	file := filepath.Join(dir, "node_modules", "axe-core", "axe.min.js")
	if src, err := os.ReadFile(file); err == nil {
		return string(src), nil
	}
	const how = "; install Node.js and npm (apt-get install npm), or install axe-core yourself: npm ci in a copy of infra/browsertest/axe, moved to "
	npm, err := exec.LookPath("npm")
	if err != nil {
		if aptInstall("npm") != nil {
			return "", errors.New("browsertest: axe-core is not installed and npm is missing" + how + dir)
		}
		if npm, err = exec.LookPath("npm"); err != nil {
			return "", errors.New("browsertest: the npm package is installed but no npm command is on PATH" + how + dir)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("browsertest: %v%s%s", err, how, dir)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".axe-install-")
	if err != nil {
		return "", fmt.Errorf("browsertest: %v%s%s", err, how, dir)
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "package.json"), axePackage, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, "package-lock.json"), axeLock, 0o644); err != nil {
		return "", err
	}
	cmd := exec.Command(npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("browsertest: npm ci of axe-core failed (%v):\n%s%s%s", err, out, how, dir)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(file); statErr != nil {
			return "", fmt.Errorf("browsertest: %v%s%s", err, how, dir)
		}
		// another process installed it first
	}
	src, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("browsertest: axe-core installed but %v", err)
	}
	return string(src), nil
}
