package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/domain"
	"github.com/quidpro/quid/infra/postgres"
	"github.com/quidpro/quid/infra/postgres/pgtest"
)

// Through PgBouncer in transaction mode a server session serves many
// clients, one transaction at a time: a named prepared statement left on
// it is another client's surprise (PgBouncer 1.18 cannot carry them), and
// the pooled URL must carry nothing PgBouncer refuses at login. Here both
// URLs reach the same server, told apart by application_name, so what goes
// where can be seen in pg_stat_activity; cmd/quidcluster runs the real
// PgBouncer.
func TestPooledSessionsKeepNoStateAndSessionStateGoesToTheDirectURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	pooled, direct := url+"&application_name=quid-pooled", url+"&application_name=quid-direct"
	if !strings.Contains(url, "?") {
		pooled, direct = url+"?application_name=quid-pooled", url+"?application_name=quid-direct"
	}
	db, err := postgres.Open(ctx, pooled, slog.New(slog.NewTextHandler(io.Discard, nil)), postgres.Settings{
		StatementTimeout: 42 * time.Second, IdleInTransactionTimeout: 7 * time.Second,
		PointsExpireAfter: domain.MustParseDuration("P24M"), DirectURL: direct})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	session := postgres.SessionDB(db)
	if session == sqlDB {
		t.Fatal("SessionDB is the pooled pool; want the direct URL's")
	}
	defer session.Close()

	// Statements through gorm and the pipelined paths leave no named
	// prepared statement on the pooled session.
	store := postgres.NewStore(db)
	for range 3 {
		if _, err := store.GetMember(ctx, "nobody"); err == nil {
			t.Fatal("a member that does not exist was found")
		}
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var prepared int
	var app, timeout, idle, expire string
	if err := conn.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM pg_prepared_statements), current_setting('application_name'),
		current_setting('statement_timeout'), current_setting('idle_in_transaction_session_timeout'),
		coalesce(current_setting('quid.points_expire_after', true), '')`).Scan(&prepared, &app, &timeout, &idle, &expire); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if prepared != 0 {
		t.Errorf("%d named prepared statements on a pooled session; a transaction pooler hands it to other clients", prepared)
	}
	if app != "quid-pooled" {
		t.Errorf("pooled session's application_name %q", app)
	}
	// The settings reach pooled sessions as the role's defaults in this
	// database, not as startup parameters PgBouncer would refuse.
	if timeout != "42s" || idle != "7s" || expire != "P24M" {
		t.Errorf("pooled session settings: statement_timeout %q, idle_in_transaction_session_timeout %q, quid.points_expire_after %q; want 42s, 7s, P24M", timeout, idle, expire)
	}
	var defaults string
	if err := sqlDB.QueryRowContext(ctx, `SELECT array_to_string(setconfig, ' ') FROM pg_db_role_setting
		WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = current_user) AND setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&defaults); err != nil {
		t.Fatalf("no role defaults in this database: %v", err)
	}
	for _, want := range []string{"statement_timeout=42000", "idle_in_transaction_session_timeout=7000", "quid.points_expire_after=P24M"} {
		if !strings.Contains(defaults, want) {
			t.Errorf("role defaults %q lack %s", defaults, want)
		}
	}

	// LISTEN and session advisory locks run on the direct URL.
	listenCtx, stop := context.WithCancel(ctx)
	defer stop()
	live := make(chan bool, 8)
	l := store.NewChangeListener(slog.New(slog.NewTextHandler(io.Discard, nil)))
	l.Subscribe(func(ok bool) {
		select {
		case live <- ok:
		default:
		}
	})
	go l.Run(listenCtx)
	select {
	case ok := <-live:
		if !ok {
			t.Fatal("the change listener did not connect")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the change listener did not connect in 10 s")
	}
	var listener string
	if err := postgres.Exclusively(ctx, session, "pooler-test", func(ctx context.Context) error {
		return sqlDB.QueryRowContext(ctx, `SELECT string_agg(DISTINCT a.application_name || ':' || CASE WHEN l.pid IS NULL THEN 'listen' ELSE 'lock' END, ' ' ORDER BY a.application_name || ':' || CASE WHEN l.pid IS NULL THEN 'listen' ELSE 'lock' END)
			FROM pg_stat_activity a LEFT JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'advisory' AND l.granted
			WHERE a.datname = current_database() AND (l.pid IS NOT NULL OR a.query LIKE 'LISTEN%')`).Scan(&listener)
	}); err != nil {
		t.Fatal(err)
	}
	if listener != "quid-direct:listen quid-direct:lock" {
		t.Errorf("sessions holding LISTEN and the advisory lock: %q; want both on the direct URL (quid-direct)", listener)
	}
}
