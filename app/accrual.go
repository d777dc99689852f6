package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// AccrualResult counts what one accrual pass did.
type AccrualResult struct {
	Members int
	Expired int
	Vested  int
	Credits int
	Points  int64
}

func (r *AccrualResult) add(o AccrualResult) {
	r.Members += o.Members
	r.Expired += o.Expired
	r.Vested += o.Vested
	r.Credits += o.Credits
	r.Points += o.Points
}

// AccrualStore does one set-based batch: it expires exchanges whose duration
// ran out, vests due bonuses and credits every fully earned period, for at
// most limit members whose rows it could lock without waiting.
type AccrualStore interface {
	AccrueBatch(ctx context.Context, limit int) (AccrualResult, error)
}

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
	return nil
}

// RunOnce works batches until nothing is due (or every due member is
// locked by another worker for now).
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
		wg    sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				r, err := a.store.AccrueBatch(ctx, batch)
				mu.Lock()
				total.add(r)
				if err != nil && first == nil {
					first = err
				}
				mu.Unlock()
				if err != nil || r.Members < batch {
					return
				}
			}
		}()
	}
	wg.Wait()
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
			a.log.Info("accrual", "members", r.Members, "expired", r.Expired, "vested", r.Vested, "credits", r.Credits, "points", r.Points)
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
