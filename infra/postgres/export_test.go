package postgres

import (
	"time"

	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
)

// Hooks for the parity tests. They need a fresh database from pgtest,
// which imports this package, so they live in package postgres_test and
// reach the set-based statements they pin to domain through these names,
// which exist only in test builds.

// ActiveAt is activeAt: the SQL condition, on exchange e, for consent
// holding at the time expression at.
func ActiveAt(at string) string { return activeAt(at) }

// EntryEffects is `quid verify`'s SQL for each entry's effect on the
// balances (a CTE fx over ledger_entries).
const EntryEffects = entryEffects

// EndExchanges runs endExchanges and then, when event is not empty, what
// every ending owes its recipients (afterEnded), returning the ids it ended.
func (s *Store) EndExchanges(tx *gorm.DB, cond string, args []any, status, endExpr, actor, event string) ([]string, error) {
	ended, err := endExchanges(tx, cond, args, status, endExpr, actor)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(ended))
	for i, e := range ended {
		ids[i] = e.ID
	}
	if event == "" {
		return ids, nil
	}
	return ids, s.afterEnded(tx, ended, event)
}

// LapsedAt is lapsedAt.
func LapsedAt(at string) string { return lapsedAt(at) }

// AccrueMembersAt runs the accrual worker's statements for members as of now.
func (s *Store) AccrueMembersAt(tx *gorm.DB, members []string, now time.Time) (app.AccrualResult, error) {
	return s.accrueMembers(tx, textArray(members), now)
}

// OverdueAt is overdueAt.
func OverdueAt(at string) string { return overdueAt(at) }

// ClaimDueSQL is what ClaimDue sends, for looking at its plan.
const ClaimDueSQL = claimDueSQL

// AnnounceTierChangesSQL is the tier job's statement, without the
// advisory lock AnnounceTierChanges runs it under.
var AnnounceTierChangesSQL = announceTierChangesSQL
