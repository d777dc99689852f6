package postgres

import (
	"sync"
	"sync/atomic"

	"gorm.io/gorm"
)

// Store implements Quid's repositories on one gorm handle. Each port of app
// it implements has its file, named after it:
//
//	recipients.go   app.RecipientRepository
//	contracts.go    app.ContractRepository (endings shared with others in ending.go)
//	members.go      app.MemberRepository, app.Enrolment
//	exchanges.go    app.ExchangeRepository (the join in join.go)
//	enforcement.go  app.EnforcementRepository
//	erasure.go      app.ErasureRepository, app.ErasureRequestRetention
//	accrual.go      app.AccrualStore
//	idempotency.go  app.IdempotencyExpiry
//	outbox.go       app.OutboxStore, and the events endings write
//	keys.go         the receipt signing keys
//
// Every write under a member's lock runs through inMemberTx (tx.go), but
// for the two hot paths pipelined on one connection: the join (join.go)
// and the partner read (ReadMember, enforcement.go). They take the same
// lock as their first statement, in their first round trip.
type Store struct {
	db *gorm.DB
	// frozen caches published contracts, whose terms never change; their
	// status is always read again from the database.
	frozen sync.Map
	// recipients caches the registry; the change listener clears it when
	// any replica writes a recipient.
	recipients sync.Map
	// cursorSecret signs list cursors (see errors.go); loaded once.
	cursorSecret atomic.Pointer[[]byte]
}

// NewStore wraps an open database.
func NewStore(db *gorm.DB) *Store { return &Store{db: withSnapshots(db)} }
