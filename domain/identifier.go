package domain

import (
	"crypto/rand"
	"encoding/hex"
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

// pseudonymPrefix starts every pseudonym; see Pseudonym.
const pseudonymPrefix = "erased:"

// NewPseudonym returns a fresh pseudonym: "erased:" and a random (version 4)
// UUID in canonical lower-case form. Erasure replaces a member id with one
// in every row it keeps, so that the ledger and the consent record stay but
// no longer name the person. It is the only way pseudonyms are made, so
// IsPseudonym recognises exactly what it makes.
func NewPseudonym() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return pseudonymPrefix + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], nil
}

// IsPseudonym says whether s has the exact shape NewPseudonym makes:
// "erased:" and 36 characters of canonical lower-case UUID.
func IsPseudonym(s string) bool {
	u, ok := strings.CutPrefix(s, pseudonymPrefix)
	if !ok || len(u) != 36 {
		return false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// SubjectProblem says why s cannot be a token's subject, or "" when it
// can: the IdentifierProblem rule, and not a pseudonym's shape. Pseudonyms
// share the member id column with identity-provider subjects, so a subject
// that looked like one could collide with an erased member's records (PUT
// /v1/me would answer 409 while GET /v1/me said to PUT first) or enrol and
// pass for an erased member in the audit. Only the exact shape is reserved:
// "erased:x" or "Erased:<uuid>" are ordinary subjects. Ids in paths and
// queries follow IdentifierProblem alone, since they may name an erased
// member's records on purpose (an admin filtering the audit by pseudonym).
func SubjectProblem(s string) string {
	if problem := IdentifierProblem(s); problem != "" {
		return problem
	}
	if IsPseudonym(s) {
		return "is reserved: \"erased:\" followed by a UUID names an erased member's records"
	}
	return ""
}
