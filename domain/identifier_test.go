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
