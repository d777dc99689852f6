package postgres

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// No statement anywhere in the repository takes a star select list or a
// star returning list (DESIGN rule 14: a rolling deploy never answers 500).
// PostgreSQL refuses to run a cached statement whose result type changed
// ("cached plan must not change result type"), and a column added by the
// next release's migration changes the result type of every star list.
// gorm's own queries list their columns (QueryFields); this guards the SQL
// written by hand, in Go (workers included) and in migrations (functions
// and triggers run the same plan cache).
func TestNoStatementUsesAStarList(t *testing.T) {
	star := regexp.MustCompile(`(?i)\b(select|returning)\s+(distinct\s+)?\*|\b[a-z_][a-z0-9_]*\.\*`)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root {
			return filepath.SkipDir
		}
		sqlFile := strings.HasSuffix(path, ".sql")
		goFile := strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go")
		if d.IsDir() || !sqlFile && !goFile {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		comment := "//"
		if sqlFile {
			comment = "--"
		}
		for i, line := range strings.Split(string(b), "\n") {
			if star.MatchString(line) && !strings.HasPrefix(strings.TrimSpace(line), comment) {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s:%d uses a star list: %s", rel, i+1, strings.TrimSpace(line))
			}
		}
		checked++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d files checked", checked)
	}
}
