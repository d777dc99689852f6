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
	// versionOf names one of the member's exchanges whose contract version
	// must hold still while fn runs (a renewal reads the version's status
	// and extends consent on its terms): that version's lock is taken in
	// shared mode, as a join takes it, before the member's row.
	versionOf string
}

// The lock order. Every transaction that writes a member's exchanges takes
// its locks in this order and never waits for an earlier one while holding
// a later one, so PostgreSQL never has to abort one of two of them as a
// deadlock:
//
//  1. contract versions: a version's advisory lock (joins and renewals
//     shared; retiring it, or publishing the next version, exclusive) and,
//     in a marketer's change only, contract rows;
//  2. member rows, in id order when there are several (lockMembers);
//  3. exchange rows (endExchanges, lockOwnExchange).
//
// A join takes 1 and 2 in one statement (joinLockSQL evaluates the advisory
// lock below the row lock); a renewal names its exchange in
// memberLock.versionOf; a retirement that terminates takes the version
// exclusively, then its row, then the members, then their exchanges.
// Cancels, objections, erasure, restriction, rectification, deletion
// confirmations and the accrual worker take no lock of level 1 at all
// (nothing they write has a foreign key to contracts; only a join's new
// exchange does, under its version's lock), so they start at 2 and cannot
// wait for a retirement while holding a member it needs. Taking a version's
// lock after a member's row — as renewal once did — deadlocks against a
// retirement that holds the version and waits for that member. (Workers
// that lock exchange rows without a member, such as the expiry reminder,
// use SKIP LOCKED and never wait.)

// inMemberTx is the one way a write under a member's lock runs: it opens a
// transaction, takes the version lock lock.versionOf asks for (level 1 of
// the lock order, so before the member), locks the member's row (the lock
// every change to a member's exchanges, ledger and balances holds, so what
// fn reads after it nobody else can change), runs fn with the locked row,
// commits, and translates what comes out: a database that went away, even
// at commit, is app.ErrUnavailable; fn's own errors come back as fn
// returned them.
func (s *Store) inMemberTx(ctx context.Context, memberID string, lock memberLock, fn func(tx *gorm.DB, m memberRecord) error) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if lock.versionOf != "" {
			if err := lockVersionOf(tx, memberID, lock.versionOf); err != nil {
				return fmt.Errorf("lock the exchange's version: %w", err)
			}
		}
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

// lockVersionOf takes, in shared mode, the advisory lock of the contract
// version that one of the member's exchanges is on, before the member's
// row is locked (the exchange's version never changes, so reading it
// without that lock is safe). An id that names none of the member's
// exchanges takes no lock; the caller answers it as not found.
func lockVersionOf(tx *gorm.DB, memberID, exchangeID string) error {
	if !isUUID(exchangeID) {
		return nil
	}
	return tx.Exec(`SELECT pg_advisory_xact_lock_shared(hashtextextended(CAST(e.contract_id AS text), 0))
FROM exchanges e WHERE e.id = ? AND e.member_id = ?`, exchangeID, memberID).Error
}
