package postgres

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// PublicChangeChannel is the NOTIFY channel on which the database announces,
// at commit, every write to what public responses are made of (contracts,
// recipients; see migration 00009's triggers).
const PublicChangeChannel = "quid_public_change"

// ChangeListener holds a dedicated connection that LISTENs for public
// changes and tells its subscribers: changed(true) after each change and
// after every (re)connection (notifications may have been missed while it
// was down), changed(false) when the connection is lost, so caches stop
// serving until it is back. It reconnects with back-off until ctx ends.
type ChangeListener struct {
	// store's own recipient cache is dropped with every change, so a
	// recipient changed on another replica is not served stale here.
	store *Store
	cfg   *pgx.ConnConfig
	log   *slog.Logger
	mu    sync.Mutex
	subs  []func(live bool)
}

// NewChangeListener listens on the store's database.
func (s *Store) NewChangeListener(log *slog.Logger) *ChangeListener {
	l := &ChangeListener{log: log.With("component", "changes"), store: s}
	// The listener connects exactly as the pool does; a store opened some
	// other way has no listener config, and its caches stay bypassed (the
	// listener never reports live).
	if d, ok := s.db.Dialector.(translatingDialector); ok {
		l.cfg = d.cfg
	}
	return l
}

// Subscribe registers fn; call it before Run.
func (l *ChangeListener) Subscribe(fn func(live bool)) {
	l.mu.Lock()
	l.subs = append(l.subs, fn)
	l.mu.Unlock()
}

func (l *ChangeListener) tell(live bool) {
	l.store.recipients.Clear()
	l.mu.Lock()
	subs := append([]func(bool){}, l.subs...)
	l.mu.Unlock()
	for _, fn := range subs {
		fn(live)
	}
}

// Run listens until ctx ends.
func (l *ChangeListener) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := l.listen(ctx)
		l.tell(false)
		if time.Since(start) > 30*time.Second {
			backoff = 100 * time.Millisecond // it had been up: retry soon
		}
		if ctx.Err() != nil {
			return
		}
		l.log.WarnContext(ctx, "change listener disconnected; public caches bypassed until it is back", "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff *= 2; backoff > 5*time.Second {
			backoff = 5 * time.Second
		}
	}
}

func (l *ChangeListener) listen(ctx context.Context) error {
	connectCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if l.cfg == nil {
		cancel()
		return errors.New("no connection settings for the change listener")
	}
	conn, err := pgx.ConnectConfig(connectCtx, l.cfg.Copy())
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+PublicChangeChannel); err != nil {
		return err
	}
	l.tell(true) // anything may have changed while nobody listened
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		l.tell(true)
	}
}
