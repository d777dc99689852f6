package postgres

import (
	"strings"

	"github.com/google/uuid"
)

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

// isRecipientID is isUUID in the one spelling the API hands out (lowercase,
// hyphenated). A partner's token subject is compared as a string (RFC 7519
// §4.1.2), so "{…}", uppercase or "urn:uuid:…" spellings, which uuid.Parse
// and PostgreSQL's uuid type would read as the same recipient, name none.
func isRecipientID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

func fmtSQL(format, arg string) string { return strings.ReplaceAll(format, "%s", arg) }
