package postgres

import (
	"strings"

	"github.com/google/uuid"
)

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

func fmtSQL(format, arg string) string { return strings.ReplaceAll(format, "%s", arg) }
