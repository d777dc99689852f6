package postgres

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// memberLock says how inMemberTx holds the member's row and what it answers
// when there is no member to hold.
type memberLock struct {
	// share takes the row FOR SHARE instead of FOR UPDATE: for a
	// transaction that must see no change to the member commit halfway
	// through, yet need not keep other readers out.
	share bool
	// absent is the answer when no member has the id or it was erased;
	// nil means errNotEnrolled.
	absent error
}

// inMemberTx is the one way a write under a member's lock runs: it opens a
// transaction, locks the member's row (the lock every change to a member's
// exchanges, ledger and balances holds, so what fn reads after it nobody
// else can change), runs fn with the locked row, commits, and translates
// what comes out: a database that went away, even at commit, is
// app.ErrUnavailable; fn's own errors come back as fn returned them.
func (s *Store) inMemberTx(ctx context.Context, memberID string, lock memberLock, fn func(tx *gorm.DB, m memberRecord) error) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		m, err := lockMemberRow(tx, memberID, lock)
		if err != nil {
			return err
		}
		return fn(tx, m)
	})
	return markUnreachable(err)
}

// lockMemberRow reads and locks one member row inside tx; a missing or
// erased member is lock.absent (errNotEnrolled by default).
func lockMemberRow(tx *gorm.DB, memberID string, lock memberLock) (memberRecord, error) {
	strength, absent := "UPDATE", lock.absent
	if lock.share {
		strength = "SHARE"
	}
	if absent == nil {
		absent = errNotEnrolled
	}
	var m memberRecord
	err := tx.Clauses(clause.Locking{Strength: strength}).First(&m, "id = ?", memberID).Error
	if errors.Is(err, gorm.ErrRecordNotFound) || (err == nil && m.ErasedAt != nil) {
		return m, absent
	}
	if err != nil {
		return m, fmt.Errorf("lock member: %w", err)
	}
	return m, nil
}
