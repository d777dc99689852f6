package postgres

import (
	"context"
	"database/sql"

	"gorm.io/gorm"
)

// Responses that present totals with their details (balances and the
// ledger, an export, a statement, contract stats) must come from one
// consistent snapshot, or a concurrent accrual shows a balance its entries
// do not add up to. ReadSnapshot runs fn in one REPEATABLE READ READ ONLY
// transaction carried by the context: every Store read made with that
// context, through any method, is routed to it by snapshotPool, so use
// cases and handlers compose reads freely and still see one snapshot.

type snapshotKey struct{}

// ReadSnapshot runs fn with a context whose Store reads all see one
// snapshot. Writes inside it fail (the transaction is read only). Nested
// calls join the outer snapshot.
func (s *Store) ReadSnapshot(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Value(snapshotKey{}).(*sql.Tx); ok {
		return fn(ctx)
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	// BEGIN and COMMIT go through database/sql, not gorm, so their errors
	// are marked here: a server shutting down between the last read and
	// the COMMIT (57P01) is a 503 like any other lost connection, not a 500.
	tx, err := sqlDB.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return markUnreachable(err)
	}
	if err := fn(context.WithValue(ctx, snapshotKey{}, tx)); err != nil {
		_ = tx.Rollback()
		return err
	}
	return markUnreachable(tx.Commit())
}

// snapshotPool is the Store's connection pool: statements go to the
// context's snapshot transaction when there is one, else to the pool gorm
// was opened with (whatever it is: plain, or with prepared statements).
type snapshotPool struct {
	inner gorm.ConnPool
	db    *sql.DB
}

func withSnapshots(db *gorm.DB) *gorm.DB {
	sqlDB, err := db.DB()
	if err != nil || db.Statement.ConnPool == nil {
		return db // not a database/sql pool: snapshots are unavailable, reads still work
	}
	// A session with a context gets its own copy of the statement; a bare
	// Session shares the caller's, and setting the pool on it would change
	// the handle every other user of db holds (a data race when stores are
	// made while another one is in use).
	out := db.WithContext(context.Background())
	out.Statement.ConnPool = snapshotPool{inner: db.Statement.ConnPool, db: sqlDB}
	return out
}

func (p snapshotPool) pool(ctx context.Context) gorm.ConnPool {
	if tx, ok := ctx.Value(snapshotKey{}).(*sql.Tx); ok {
		return tx
	}
	return p.inner
}

func (p snapshotPool) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return p.pool(ctx).PrepareContext(ctx, query)
}

func (p snapshotPool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return p.pool(ctx).ExecContext(ctx, query, args...)
}

func (p snapshotPool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return p.pool(ctx).QueryContext(ctx, query, args...)
}

func (p snapshotPool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return p.pool(ctx).QueryRowContext(ctx, query, args...)
}

// BeginTx opens a transaction on the inner pool, or inside a snapshot
// joins it.
func (p snapshotPool) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	if tx, ok := ctx.Value(snapshotKey{}).(*sql.Tx); ok {
		return joinedTx{tx}, nil
	}
	switch b := p.inner.(type) {
	case gorm.TxBeginner:
		return b.BeginTx(ctx, opts)
	case gorm.ConnPoolBeginner:
		return b.BeginTx(ctx, opts)
	}
	return p.db.BeginTx(ctx, opts)
}

func (p snapshotPool) GetDBConn() (*sql.DB, error) { return p.db, nil }

// joinedTx is a transaction opened inside a snapshot: it is the snapshot,
// which its owner commits.
type joinedTx struct{ *sql.Tx }

func (joinedTx) Commit() error   { return nil }
func (joinedTx) Rollback() error { return nil }
