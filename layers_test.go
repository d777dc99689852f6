package quid_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayers enforces the dependency rule of STYLE.md on production code:
// domain → standard library; app → domain; infra/X → app, domain, never
// another infra/Y.
func TestLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/quidpro/quid"
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := strings.TrimPrefix(fields[0], mod+"/"), fields[1:]
		for _, imp := range imports {
			own := strings.HasPrefix(imp, mod)
			rel := strings.TrimPrefix(imp, mod+"/")
			switch {
			case pkg == "domain":
				if strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
					t.Errorf("domain imports %s: domain may use the standard library only", imp)
				}
			case pkg == "app":
				if own && rel != "domain" {
					t.Errorf("app imports %s: app may import only domain", imp)
				}
			case strings.HasPrefix(pkg, "infra/"):
				layer := strings.Join(strings.SplitN(pkg, "/", 3)[:2], "/")
				if own && strings.HasPrefix(rel, "infra/") && !strings.HasPrefix(rel, layer) {
					t.Errorf("%s imports %s: an adapter never imports another adapter", pkg, imp)
				}
			}
		}
	}
}
