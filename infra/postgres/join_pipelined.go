package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// errGeneralPath sends a join back to the general (gorm) path: the member
// re-consents, the request carries an Idempotency-Key, or the contract or
// its recipients are not cached yet. Nothing has been written when it is
// returned.
var errGeneralPath = errors.New("join needs the general path")

// joinPipelined is the common join in two round trips: BEGIN, the locks and
// the read are pipelined in one, the write and COMMIT in the other. The
// statements and their order are those of the general path, so the locking
// argument is the same; only the waiting for the network is not.
func (s *Store) joinPipelined(ctx context.Context, memberID, contractID string,
	plan func(app.JoinContext) (app.JoinPlan, error)) (domain.Exchange, error) {
	sqlDB, err := s.db.DB()
	if err != nil {
		return domain.Exchange{}, err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return domain.Exchange{}, err
	}
	defer conn.Close()
	var out domain.Exchange
	err = conn.Raw(func(driverConn any) error {
		pc := driverConn.(*stdlib.Conn).Conn()
		ex, err := s.joinOn(ctx, pc, memberID, contractID, plan)
		if err != nil {
			// The transaction may be open or aborted; either way end it.
			_, _ = pc.Exec(context.WithoutCancel(ctx), "ROLLBACK")
			return err
		}
		out = ex
		return nil
	})
	return out, err
}

// positionalQuery is a query with @named parameters rewritten once, by pgx's
// own rewriter, into $n form: letting pgx rewrite it on every call re-lexed
// the join's SQL each time, a tenth of the server's CPU at saturation.
type positionalQuery struct {
	sql   string
	names []string // names[i] is the parameter $i+1
}

func positional(namedSQL string, names ...string) positionalQuery {
	self := pgx.StrictNamedArgs{}
	for _, n := range names {
		self[n] = n
	}
	sql, ordered, err := self.RewriteQuery(context.Background(), nil, namedSQL, nil)
	if err != nil {
		panic(err) // a programming error in a constant query
	}
	q := positionalQuery{sql: sql}
	for _, o := range ordered {
		q.names = append(q.names, o.(string))
	}
	return q
}

func (q positionalQuery) args(named map[string]any) []any {
	out := make([]any, len(q.names))
	for i, n := range q.names {
		out[i] = named[n]
	}
	return out
}

var (
	joinLockQuery  = positional(JoinLockSQL, "contract", "member")
	joinReadQuery  = positional(JoinReadSQL, "contract", "member")
	joinWriteQuery = positional(JoinWriteSQL, "id", "member", "contract", "family", "hash", "status", "joined", "expires",
		"bonus_points", "bonus_state", "vests", "next", "receipt_id", "receipt", "now", "bonus", "vest", "events")
)

func (s *Store) joinOn(ctx context.Context, pc *pgx.Conn, memberID, contractID string,
	plan func(app.JoinContext) (app.JoinPlan, error)) (domain.Exchange, error) {
	args := map[string]any{"contract": contractID, "member": memberID}
	batch := &pgx.Batch{}
	batch.Queue("BEGIN")
	batch.Queue(joinLockQuery.sql, joinLockQuery.args(args)...)
	batch.Queue(joinReadQuery.sql, joinReadQuery.args(args)...)
	results := pc.SendBatch(ctx, batch)
	if _, err := results.Exec(); err != nil {
		results.Close()
		return domain.Exchange{}, err
	}
	rows, err := results.Query()
	if err != nil {
		results.Close()
		return domain.Exchange{}, err
	}
	enrolled := rows.Next()
	rows.Close()
	if err := rows.Err(); err != nil {
		results.Close()
		return domain.Exchange{}, err
	}
	var (
		now      time.Time
		status   string
		familyID string
		paid     bool
		activeID *string
	)
	readErr := results.QueryRow().Scan(&now, &status, &familyID, &paid, &activeID)
	if err := results.Close(); err != nil && readErr == nil {
		readErr = err
	}
	switch {
	case !enrolled:
		return domain.Exchange{}, errNotEnrolled
	case errors.Is(readErr, pgx.ErrNoRows):
		return domain.Exchange{}, domain.NotFound("contract-not-found", "no contract with this id")
	case readErr != nil:
		return domain.Exchange{}, readErr
	case activeID != nil:
		return domain.Exchange{}, errGeneralPath
	}
	cached, ok := s.frozen.Load(contractID)
	if !ok {
		return domain.Exchange{}, errGeneralPath
	}
	c := cached.(domain.Contract).WithStatus(domain.ContractStatus(status))
	recipients := map[string]domain.Recipient{}
	for _, id := range c.RecipientIDs() {
		r, ok := s.recipients.Load(id)
		if !ok {
			return domain.Exchange{}, errGeneralPath
		}
		recipients[id] = r.(domain.Recipient)
	}
	now = now.UTC()
	p, err := plan(app.JoinContext{Contract: c, Recipients: recipients, BonusEligible: !paid, Now: now})
	if err != nil {
		return domain.Exchange{}, err
	}
	ex := p.Exchange
	bonus := joinBonus(ex, nil)
	rec := exchangeToRecord(ex)
	events, err := JoinedEvents(c, rec.ID, rec.MemberID, rec.JoinedAt, rec.ExpiresAt, now)
	if err != nil {
		return domain.Exchange{}, err
	}
	write := &pgx.Batch{}
	write.Queue(joinWriteQuery.sql, joinWriteQuery.args(joinWriteArgs(rec, bonus, now, events))...)
	write.Queue("COMMIT")
	results = pc.SendBatch(ctx, write)
	_, writeErr := results.Exec()
	_, commitErr := results.Exec()
	closeErr := results.Close()
	if err := errors.Join(writeErr, commitErr, closeErr); err != nil {
		return domain.Exchange{}, fmt.Errorf("write join: %w", translate(writeErr, "active-exchange"))
	}
	return ex, nil
}
