package domain_test

import (
	"strings"
	"testing"

	"github.com/quidpro/quid/domain"
)

func TestIdentifierProblem(t *testing.T) {
	t.Parallel()
	ok := []string{"auth0|abc", "a&b", "o'brien", `x"y`, `back\slash`, "with space", "josé", "a/b", "{brace}", "comma,id",
		"jane@example.com", "https://idp.example/u?x=1&y=2#f", "%41", "a+b", "a;b", "🦊", " padded ", strings.Repeat("😀", 255)}
	for _, s := range ok {
		if p := domain.IdentifierProblem(s); p != "" {
			t.Errorf("%q refused: %s", s, p)
		}
	}
	bad := []string{"a\ufffdb", "", " ", "\u00a0\u2003", "a\x00b", "a\rb", "a\nb", "a\tb", "\x7f", "a\u0085b", "a\xffb", "\xc3\x28",
		strings.Repeat("x", 256), strings.Repeat("😀", 256), strings.Repeat("x", 3000)}
	for _, s := range bad {
		if domain.IdentifierProblem(s) == "" {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestPseudonymsAreNoSubjects(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		p, err := domain.NewPseudonym()
		if err != nil {
			t.Fatal(err)
		}
		if !domain.IsPseudonym(p) || seen[p] {
			t.Fatalf("%q: not a fresh pseudonym", p)
		}
		seen[p] = true
		if domain.SubjectProblem(p) == "" {
			t.Fatalf("%q accepted as a token subject", p)
		}
		if p := domain.IdentifierProblem(p); p != "" {
			t.Fatalf("a pseudonym refused as a path or query id: %s", p)
		}
	}
	for _, s := range []string{"erased:x", "Erased:0b9c7f6e-3f1a-4c2d-9e8f-1a2b3c4d5e6f", "erased:0B9C7F6E-3F1A-4C2D-9E8F-1A2B3C4D5E6F",
		"erased:0b9c7f6e3f1a4c2d9e8f1a2b3c4d5e6f", " erased:0b9c7f6e-3f1a-4c2d-9e8f-1a2b3c4d5e6f", "erased:0b9c7f6e-3f1a-4c2d-9e8f-1a2b3c4d5e6f ",
		"erased:", "erased", "auth0|abc"} {
		if domain.IsPseudonym(s) {
			t.Errorf("%q taken for a pseudonym", s)
		}
		if p := domain.SubjectProblem(s); p != "" {
			t.Errorf("%q refused as a subject: %s", s, p)
		}
	}
	if domain.SubjectProblem("") == "" || domain.SubjectProblem("a\nb") == "" {
		t.Error("SubjectProblem lets through what IdentifierProblem refuses")
	}
}
