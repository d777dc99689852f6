package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/quidpro/quid/domain"
)

// AccrualResult counts what one accrual pass did.
type AccrualResult struct {
	Members int
	Expired int
	Vested  int
	Credits int
	Points  int64
	// PointsExpiries counts the expiry entries written (one per member a
	// pass expires points of), ExpiredPoints the points they expired.
	PointsExpiries int
	ExpiredPoints  int64
}

func (r *AccrualResult) add(o AccrualResult) {
	r.Members += o.Members
	r.Expired += o.Expired
	r.Vested += o.Vested
	r.Credits += o.Credits
	r.Points += o.Points
	r.PointsExpiries += o.PointsExpiries
	r.ExpiredPoints += o.ExpiredPoints
}

// AccrualStore does accrual in set-based batches.
type AccrualStore interface {
	// DueMembers lists, in id order, the first limit members whose id sorts
	// after after and who have a period to credit, a bonus to vest,
	// consent to expire or points lots to expire now ("" sorts before every member id: none is
	// empty). It locks nothing.
	DueMembers(ctx context.Context, after string, limit int) ([]string, error)
	// AccrueMembers expires exchanges whose duration ran out, vests due
	// bonuses, credits every fully earned period and expires points lots
	// whose time has come, in one transaction,
	// for those of members whose rows it could lock without waiting.
	AccrueMembers(ctx context.Context, members []string) (AccrualResult, error)
}

// DefaultAccrualWorkers is how many batches a server or `quid accrue`
// runs side by side.
const DefaultAccrualWorkers = 2

// Accrual pays what consent earned, computed from timestamps only, so it is
// right however late or often it runs and however many replicas run it.
type Accrual struct {
	store AccrualStore
	// expiry, when set, deletes stored idempotent responses older than
	// IdempotencyTTL on the same timer.
	expiry IdempotencyExpiry
	// erasures, when set, pseudonymises member.erasure_requested events
	// past their deadline on the same timer (see ErasureRequestRetention).
	erasures ErasureRequestRetention
	log      *slog.Logger
	// Reminders, when set, sends exchange.expiring reminders on the same
	// timer (see ExpiryReminders).
	Reminders ExpiryReminders
	// PointsReminders, when set and PointsNotice is not zero, sends
	// points.expiring PointsNotice before points expire, on the same timer.
	PointsReminders PointsExpiryReminders
	PointsNotice    domain.Duration
	// TierChanges, when set, announces members' tier changes
	// (member.tier_changed) on the same timer: the window rolls, so a tier
	// can drop with no new activity.
	TierChanges TierChanges
	// BatchSize is how many members one batch takes (default 5000).
	BatchSize int
	// Workers run batches side by side; SKIP LOCKED hands each a disjoint
	// set of members.
	Workers int
}

// NewAccrual wires the accrual worker: store does the set-based batches;
// expiry and erasures, either of which may be nil, are the housekeeping
// passes run on the same timer; log receives what each pass did. Set
// BatchSize and Workers before running it.
func NewAccrual(store AccrualStore, expiry IdempotencyExpiry, erasures ErasureRequestRetention, log *slog.Logger) *Accrual {
	return &Accrual{store: store, expiry: expiry, erasures: erasures, log: log}
}

// PointsExpiryReminders sends points.expiring to the brand (the first-party
// recipients of the contract whose credit opened the lot) once per lot
// whose expiry is within notice, set-based and safe on many replicas.
type PointsExpiryReminders interface {
	RemindPointsExpiring(ctx context.Context, notice domain.Duration) (int64, error)
}

// ErasureRequestRetention bounds how long a member.erasure_requested event
// keeps the erased member's id: until delivered, given up, or past its
// delete_by, whichever comes first, whether or not the recipient ever
// registers an endpoint. It is safe to run on several replicas at once.
type ErasureRequestRetention interface {
	ForgetErasureRequests(ctx context.Context) (int64, error)
}

// Housekeeping runs the passes that bound what is kept (stored idempotent
// responses past IdempotencyTTL, erasure requests past their deadline) and
// the exchange.expiring reminders that have come due.
func (a *Accrual) Housekeeping(ctx context.Context) error {
	if a.expiry != nil {
		if _, err := a.expiry.ExpireIdempotency(ctx); err != nil {
			return fmt.Errorf("expire idempotent responses: %w", err)
		}
	}
	if a.erasures != nil {
		if _, err := a.erasures.ForgetErasureRequests(ctx); err != nil {
			return fmt.Errorf("pseudonymise erasure requests past their deadline: %w", err)
		}
	}
	if a.Reminders != nil {
		if _, err := a.Reminders.RemindExpiring(ctx); err != nil {
			return fmt.Errorf("remind of expiring consent: %w", err)
		}
	}
	if a.PointsReminders != nil && !a.PointsNotice.IsZero() {
		if _, err := a.PointsReminders.RemindPointsExpiring(ctx, a.PointsNotice); err != nil {
			return fmt.Errorf("remind of expiring points: %w", err)
		}
	}
	if a.TierChanges != nil {
		if _, err := a.TierChanges.AnnounceTierChanges(ctx); err != nil {
			return fmt.Errorf("announce tier changes: %w", err)
		}
	}
	return nil
}

// DueListBatches is how many batches' worth of due members RunOnce lists
// with one query: a list costs one scan of what is due, however long.
const DueListBatches = 64

// RunOnce accrues for every member due when it starts, in batches of
// BatchSize members that Workers transactions work side by side. Members
// another transaction holds locked are skipped (the next run pays them
// everything they earned meanwhile), and so are members who fall due while
// it runs and sort before the member it is at.
func (a *Accrual) RunOnce(ctx context.Context) (AccrualResult, error) {
	batch := a.BatchSize
	if batch <= 0 {
		batch = 5000
	}
	workers := max(a.Workers, 1)
	var (
		mu    sync.Mutex
		total AccrualResult
		first error
	)
	listed := batch * DueListBatches
	for after := ""; ctx.Err() == nil; {
		due, err := a.store.DueMembers(ctx, after, listed)
		if err != nil {
			return total, err
		}
		if len(due) == 0 {
			break
		}
		batches := make(chan []string)
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for members := range batches {
					r, err := a.store.AccrueMembers(ctx, members)
					mu.Lock()
					total.add(r)
					if err != nil && first == nil {
						first = err
					}
					mu.Unlock()
				}
			}()
		}
	send:
		for i := 0; i < len(due); i += batch {
			mu.Lock()
			failed := first != nil
			mu.Unlock()
			if failed {
				break
			}
			select {
			case batches <- due[i:min(i+batch, len(due))]:
			case <-ctx.Done():
				break send
			}
		}
		close(batches)
		wg.Wait()
		if first != nil || len(due) < listed {
			break
		}
		after = due[len(due)-1]
	}
	if first == nil {
		first = ctx.Err()
	}
	return total, first
}

// Run repeats RunOnce every interval until ctx ends.
func (a *Accrual) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r, err := a.RunOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Error("accrual failed", "error", err)
		case r.Members > 0:
			a.log.Info("accrual", "members", r.Members, "expired", r.Expired, "vested", r.Vested, "credits", r.Credits, "points", r.Points,
				"points_expiries", r.PointsExpiries, "expired_points", r.ExpiredPoints)
		}
		if ctx.Err() == nil {
			if err := a.Housekeeping(ctx); err != nil && ctx.Err() == nil {
				a.log.Error("housekeeping failed", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
