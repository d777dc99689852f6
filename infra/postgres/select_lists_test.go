package postgres

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// No statement selects or returns "*" (kind: rolling deploys). PostgreSQL
// refuses to run a cached statement whose result type changed ("cached plan
// must not change result type"), and a column added by the next release's
// migration changes the result type of every "SELECT *", "t.*" and
// "RETURNING *". gorm's own SELECTs list columns (QueryFields); this guards
// the SQL written by hand, including the workers'.
func TestNoStatementSelectsStar(t *testing.T) {
	star := regexp.MustCompile(`(?i)\bselect\s+(distinct\s+)?\*|\breturning\s+\*|\b[a-z_][a-z0-9_]*\.\*`)
	// Stars whose rows never leave the statement: the outer SELECT lists
	// its columns.
	allowed := []string{"SELECT d.*, k, d.joined_at + k * d.reward_period AS period_start"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
	lines:
		for i, line := range strings.Split(string(b), "\n") {
			if !star.MatchString(line) || strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue
			}
			for _, a := range allowed {
				if strings.Contains(line, a) {
					continue lines
				}
			}
			t.Errorf("%s:%d selects *: %s", f, i+1, strings.TrimSpace(line))
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("only %d files checked", checked)
	}
}
