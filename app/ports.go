package app

import (
	"context"
	"time"
)

// Page asks for one page of a list; Cursor is opaque, from a previous page.
// Feed asks an incremental list (audit, access log, webhook deliveries) for
// commit order instead of newest first: oldest first, only rows whose
// transaction has finished before every still-running one began, so
// following the cursor never skips a committed row and never repeats one.
type Page struct {
	Cursor string
	Limit  int
	Feed   bool
}

// Normalised clamps the limit to 1..100, default 20.
func (p Page) Normalised() Page {
	if p.Limit <= 0 {
		p.Limit = 20
	}
	if p.Limit > 100 {
		p.Limit = 100
	}
	return p
}

// Clock tells the time; tests and the database may supply their own.
type Clock interface {
	Now() time.Time
}

// IDs mints new identifiers.
type IDs interface {
	NewID() string
}

// Enrolment tells whether a member exists and is not erased, so that the
// member's own lists answer "not enrolled" instead of an empty page.
type Enrolment interface {
	RequireEnrolled(ctx context.Context, memberID string) error
}
