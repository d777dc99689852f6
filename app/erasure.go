package app

import (
	"context"
	"time"
)

// Erasure is what erasing a member did.
type Erasure struct {
	ErasedAt           time.Time
	ExchangesEnded     int
	RecipientsNotified int
	// BonusFamilies is how many contract families' join bonus the subject
	// was paid (under this or an earlier erased identity) and so will not
	// be paid again after enrolling anew: only a keyed hash of (family,
	// subject) is kept for each.
	BonusFamilies int
}

// ErasureRepository erases a member in one transaction.
type ErasureRepository interface {
	EraseMember(ctx context.Context, memberID string) (Erasure, error)
}

// Erase is the right to erasure: every active exchange ends, attributes are
// wiped, and every recipient that received the member's data is asked to
// delete it. The ledger and the logs keep only the pseudonymous member id.
func (s *Enforcement) Erase(ctx context.Context, p Principal) (Erasure, error) {
	if err := p.Require(RoleMember); err != nil {
		return Erasure{}, err
	}
	return s.erasures.EraseMember(ctx, p.Subject)
}
