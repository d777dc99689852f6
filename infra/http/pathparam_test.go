package http_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHandlersReadPathParametersOnlyThroughPathParam fails when any code of
// the HTTP layer reads a path parameter from fiber other than through
// pathParam, the one place that decodes it exactly once and checks it.
func TestHandlersReadPathParametersOnlyThroughPathParam(t *testing.T) {
	readers := map[string]bool{"Params": true, "AllParams": true, "ParamsInt": true, "ParamsParser": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || !readers[sel.Sel.Name] {
					return true
				}
				checked++
				if fn.Name.Name != "pathParam" {
					t.Errorf("%s: %s calls %s; read path parameters with pathParam", fset.Position(call.Pos()), fn.Name.Name, sel.Sel.Name)
				}
				return true
			})
		}
	}
	if checked == 0 {
		t.Fatal("found no path parameter read at all: is pathParam gone?")
	}
}
