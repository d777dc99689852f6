// Package migrations holds Quid's schema as goose SQL files, embedded in the
// binary. A file that has landed on main is never edited; add a new one.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
