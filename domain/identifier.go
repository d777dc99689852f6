package domain

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxIdentifierLength is the most characters an identifier from outside may
// hold: a member id (the token subject an identity provider issues) or a
// recipient id. Longer ones could not be indexed and are refused at the edge.
const MaxIdentifierLength = 255

// IdentifierProblem says why s cannot be an identifier, or "" when it can.
// Any text an identity provider issues is accepted (punctuation, spaces,
// non-ASCII letters, URLs, e-mail addresses) as long as it is valid UTF-8,
// 1 to MaxIdentifierLength characters, not only white space and free of
// control characters (NUL, CR, LF, …), which no issuer uses and which would
// corrupt logs, headers and the database.
func IdentifierProblem(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case utf8.RuneCountInString(s) > MaxIdentifierLength:
		return "must be at most 255 characters"
	case strings.TrimSpace(s) == "":
		return "must not be only white space"
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "must not contain control characters (NUL, CR, LF, …)"
	case strings.ContainsRune(s, utf8.RuneError):
		// JSON decoders turn an escaped lone surrogate ("\ud800") into
		// U+FFFD, so "a\ud800" and "a\udfff" would both become "a\ufffd"
		// and name one member; no identity provider issues U+FFFD itself.
		return "must not contain U+FFFD or a lone surrogate escape"
	}
	return ""
}
