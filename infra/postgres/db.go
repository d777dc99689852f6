// Package postgres implements Quid's storage ports on PostgreSQL through gorm,
// applies the embedded migrations and translates driver errors into domain
// errors.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	pgdriver "gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
	"github.com/quidpro/quid/migrations"
)

// Settings are PostgreSQL session settings for every connection of a pool;
// zero leaves the server's default (normally off).
type Settings struct {
	// StatementTimeout cancels a statement that runs longer
	// (statement_timeout).
	StatementTimeout time.Duration
	// IdleInTransactionTimeout ends a session that sits inside a
	// transaction without sending a statement for longer
	// (idle_in_transaction_session_timeout), which releases its locks:
	// a process stuck between two statements of a transaction cannot keep
	// members locked.
	IdleInTransactionTimeout time.Duration
	// PointsExpireAfter, when not zero, is how long after its credit a
	// points lot expires: the session setting quid.points_expire_after,
	// which the lots trigger reads (migration 00024); zero: never.
	PointsExpireAfter domain.Duration
	// DirectURL, when set and not the URL Open is given, reaches
	// PostgreSQL itself while that URL goes through a transaction pooler
	// (PgBouncer in transaction mode, whose server sessions clients share
	// and which refuses startup parameters it does not track): LISTEN and
	// session advisory locks then use it (SessionDB), and the settings
	// above become the defaults of the connecting role in its database
	// (ALTER ROLE … IN DATABASE … SET), which the pooler's server sessions
	// take when they log in. Empty: one URL for everything.
	DirectURL string
	// Pooled says the URL may go through a transaction pooler although no
	// DirectURL is given (a command that holds no session state, such as
	// quid verify): no named prepared statements, as with a DirectURL.
	Pooled bool
	// Tracer, when set, sees every statement sent on the pool's
	// connections, gorm's and the pipelined paths' alike (pgx calls it for
	// each query and each statement of a batch). Tests count with it.
	Tracer pgx.QueryTracer
}

// connConfig parses url as the service connects: UTC session time zone and
// a bounded connect timeout.
func connConfig(url string) (*pgx.ConnConfig, error) {
	// Interval arithmetic on timestamptz (P1M, P1D) depends on the session
	// time zone; UTC makes SQL agree with the domain's Duration.AddTo.
	if !strings.Contains(url, "timezone=") {
		if strings.Contains(url, "?") {
			url += "&timezone=UTC"
		} else {
			url += "?timezone=UTC"
		}
	}
	pgCfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if pgCfg.ConnectTimeout == 0 {
		// An unreachable host answers 503 within seconds, not when the
		// kernel gives up on the handshake.
		pgCfg.ConnectTimeout = 5 * time.Second
	}
	// Named in pg_stat_activity, so an operator (and the fault tests) can
	// tell Quid's sessions apart; a name given in DATABASE_URL wins.
	if pgCfg.RuntimeParams["application_name"] == "" {
		pgCfg.RuntimeParams["application_name"] = "quid"
	}
	return pgCfg, nil
}

// Open connects to PostgreSQL with a pool sized for a small service, every
// session with the given settings: sent in the startup message, so they
// hold from the first statement and survive reconnection; or, behind a
// transaction pooler (settings.DirectURL), set as role defaults.
//
// Behind a pooler, statements use pgx's describe mode
// (QueryExecModeCacheDescribe): unnamed statements, parsed, bound and
// executed in one round trip once their description is cached, never a
// named prepared statement kept on a server session, which a transaction
// pooler would hand to another client (PgBouncer before 1.21 has no
// protocol-level prepared statements). PostgreSQL then plans each
// statement anew, so a direct pool keeps pgx's prepared statements. A
// default_query_exec_mode in url wins either way (cache_statement through
// PgBouncer ≥ 1.21 with max_prepared_statements set).
func Open(ctx context.Context, url string, log *slog.Logger, settings Settings) (*gorm.DB, error) {
	pgCfg, err := connConfig(url)
	if err != nil {
		return nil, err
	}
	params := sessionParams(settings)
	// The listener and session locks connect as the pool does, or to
	// DirectURL when the pool goes through a pooler.
	directCfg, direct := pgCfg, (*sql.DB)(nil)
	if settings.DirectURL != "" && settings.DirectURL != url {
		if directCfg, err = connConfig(settings.DirectURL); err != nil {
			return nil, fmt.Errorf("QUID_DATABASE_DIRECT_URL: %w", errors.Unwrap(err))
		}
		for name, v := range params {
			if v != "" {
				directCfg.RuntimeParams[name] = v
			}
		}
		if !strings.Contains(url, "default_query_exec_mode") {
			pgCfg.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
		}
		direct = stdlib.OpenDB(*directCfg)
		direct.SetMaxOpenConns(4)
		direct.SetConnMaxIdleTime(time.Minute)
		if err := setRoleDefaults(ctx, direct, params); err != nil {
			direct.Close()
			return nil, err
		}
	} else {
		if settings.Pooled && !strings.Contains(url, "default_query_exec_mode") {
			pgCfg.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
		}
		for name, v := range params {
			if v != "" {
				pgCfg.RuntimeParams[name] = v
			}
		}
	}
	pgCfg.Tracer = settings.Tracer
	o := &outage{}
	sqlDB := sql.OpenDB(unavailableConnector{o: o, Connector: stdlib.GetConnector(*pgCfg, stdlib.OptionShouldPing(o.shouldPing))})
	closeAll := func() {
		sqlDB.Close()
		if direct != nil {
			direct.Close()
		}
	}
	db, err := gorm.Open(translatingDialector{o: o, cfg: directCfg, direct: direct, Dialector: pgdriver.New(pgdriver.Config{Conn: sqlDB}).(*pgdriver.Dialector)}, &gorm.Config{
		TranslateError:         true,
		SkipDefaultTransaction: true,
		PrepareStmt:            false,
		// SELECT lists name their columns (never *): a column added while
		// this release runs then cannot change a cached statement's result
		// type (kind: rolling deploys).
		QueryFields: true,
		// Parameters are never logged (they can hold personal data): the
		// gorm logger renders statements with placeholders only.
		Logger: sqlLogger{log: log.With("component", "sql"), slow: 500 * time.Millisecond},
	})
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := o.register(db); err != nil {
		closeAll()
		return nil, err
	}
	sqlDB.SetMaxOpenConns(16)
	sqlDB.SetMaxIdleConns(16)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		closeAll()
		return nil, fmt.Errorf("reach database: %w", err)
	}
	if direct != nil {
		checkPooledSettings(pingCtx, log, sqlDB, direct)
	}
	return db, nil
}

// outage marks errors that mean the database cannot be reached as
// app.ErrUnavailable (the HTTP layer answers 503) at the three places they
// surface: opening a connection, gorm's callbacks, gorm's error translation.
// While one was seen lately, pooled connections are pinged before reuse, so
// connections that died with the server are dropped instead of failing a
// request on paths that use the driver directly.
type outage struct{ last atomic.Int64 }

// pingWindow is how long after a connection failure reuse pings first.
const pingWindow = 30 * time.Second

func (o *outage) note(err error) error {
	if err == nil || errors.Is(err, app.ErrUnavailable) {
		if err != nil {
			o.last.Store(time.Now().UnixNano())
		}
		return err
	}
	if !isUnreachable(err) {
		return err
	}
	o.last.Store(time.Now().UnixNano())
	return unavailable(err)
}

func (o *outage) shouldPing(_ context.Context, p stdlib.ShouldPingParams) bool {
	return p.IdleDuration > time.Second || time.Since(time.Unix(0, o.last.Load())) < pingWindow
}

// register makes every gorm operation's error pass through note: gorm sets
// query errors on some paths (Row, Rows, Scan) without translating them.
func (o *outage) register(db *gorm.DB) error {
	mark := func(tx *gorm.DB) {
		if tx.Error != nil {
			tx.Error = o.note(tx.Error)
		}
	}
	cb := db.Callback()
	for _, err := range []error{
		cb.Create().Register("quid:unavailable", mark), cb.Query().Register("quid:unavailable", mark),
		cb.Update().Register("quid:unavailable", mark), cb.Delete().Register("quid:unavailable", mark),
		cb.Row().Register("quid:unavailable", mark), cb.Raw().Register("quid:unavailable", mark),
	} {
		if err != nil {
			return fmt.Errorf("register callback: %w", err)
		}
	}
	return nil
}

// unavailableConnector marks every failure to open a connection as
// app.ErrUnavailable, whichever path (gorm, database/sql, raw pgx) asked.
type unavailableConnector struct {
	driver.Connector
	o *outage
}

func (c unavailableConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		c.o.last.Store(time.Now().UnixNano())
		return nil, unavailable(err)
	}
	return conn, nil
}

// translatingDialector marks statement failures that mean the database went
// away before gorm's own translation runs.
type translatingDialector struct {
	*pgdriver.Dialector
	o *outage
	// cfg is what connections kept outside the pool (the change listener)
	// connect with: the pool's hosts, credentials and settings, or
	// Settings.DirectURL's.
	cfg *pgx.ConnConfig
	// direct is the pool of sessions for session state when the main
	// pool goes through a transaction pooler; nil otherwise.
	direct *sql.DB
}

// SessionDB is the pool to hold session state on (session advisory locks,
// as Exclusively takes): Settings.DirectURL's when Open had one, else db's
// own. The caller closes it with db when they differ.
func SessionDB(db *gorm.DB) *sql.DB {
	if d, ok := db.Dialector.(translatingDialector); ok && d.direct != nil {
		return d.direct
	}
	sqlDB, _ := db.DB()
	return sqlDB
}

// sessionParams are the PostgreSQL settings of Settings by name; "" leaves
// the server's default.
func sessionParams(settings Settings) map[string]string {
	params := map[string]string{"statement_timeout": "", "idle_in_transaction_session_timeout": "", "quid.points_expire_after": ""}
	for name, d := range map[string]time.Duration{"statement_timeout": settings.StatementTimeout,
		"idle_in_transaction_session_timeout": settings.IdleInTransactionTimeout} {
		if d > 0 {
			params[name] = strconv.FormatInt(d.Milliseconds(), 10)
		}
	}
	if !settings.PointsExpireAfter.IsZero() {
		params["quid.points_expire_after"] = settings.PointsExpireAfter.String()
	}
	return params
}

// setRoleDefaults makes params the defaults of the connecting role in its
// database ("" resets one), so sessions a transaction pooler opens take
// them at login: such a pooler refuses them as startup parameters, and a
// session SET would leak to the pooler's other clients. Replicas starting
// together take turns (ALTER ROLE on one row concurrently fails), and a
// default already in place is left alone.
func setRoleDefaults(ctx context.Context, direct *sql.DB, params map[string]string) error {
	return Exclusively(ctx, direct, "role-defaults", func(ctx context.Context) error {
		var current []string
		rows, err := direct.QueryContext(ctx, `SELECT unnest(setconfig) FROM pg_db_role_setting
    WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = current_user)
      AND setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())`)
		if err != nil {
			return fmt.Errorf("read role defaults: %w", markUnreachable(err))
		}
		for rows.Next() {
			var kv string
			if err := rows.Scan(&kv); err != nil {
				rows.Close()
				return err
			}
			current = append(current, kv)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read role defaults: %w", markUnreachable(err))
		}
		var db string
		if err := direct.QueryRowContext(ctx, "SELECT current_database()").Scan(&db); err != nil {
			return fmt.Errorf("read role defaults: %w", markUnreachable(err))
		}
		for name, v := range params {
			had := ""
			for _, kv := range current {
				if k, val, ok := strings.Cut(kv, "="); ok && k == name {
					had = val
				}
			}
			if had == v {
				continue
			}
			// Names are Quid's own constants and values digits or an ISO
			// 8601 duration; the literal is quoted all the same.
			stmt := "ALTER ROLE CURRENT_USER IN DATABASE " + pgx.Identifier{db}.Sanitize() + " RESET " + name
			if v != "" {
				stmt = "ALTER ROLE CURRENT_USER IN DATABASE " + pgx.Identifier{db}.Sanitize() + " SET " + name + " = '" + strings.ReplaceAll(v, "'", "''") + "'"
			}
			if _, err := direct.ExecContext(ctx, stmt); err != nil {
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Code == "42501" {
					// A role may set its own defaults of the built-in settings,
					// but a custom one (quid.*) needs a superuser's grant.
					return fmt.Errorf("set %s as the role's default for sessions through the pooler: %w; "+
						"as a superuser run GRANT SET ON PARAMETER %s TO <Quid's role> (PostgreSQL 15 or later)", name, err, name)
				}
				return fmt.Errorf("set %s as the role's default for sessions through the pooler: %w", name, markUnreachable(err))
			}
		}
		return nil
	})
}

// checkPooledSettings warns when a session reached through the pooler does
// not have the settings a direct session has: the pooler's server
// sessions logged in before setRoleDefaults changed them (PgBouncer:
// RECONNECT on its admin console, or wait for server_lifetime).
func checkPooledSettings(ctx context.Context, log *slog.Logger, pooled, direct *sql.DB) {
	const q = `SELECT current_setting('statement_timeout') || ' ' || current_setting('idle_in_transaction_session_timeout') || ' ' ||
    coalesce(current_setting('quid.points_expire_after', true), '')`
	var p, d string
	if err := pooled.QueryRowContext(ctx, q).Scan(&p); err != nil {
		log.WarnContext(ctx, "could not read the settings of a pooled session", "error", err)
		return
	}
	if err := direct.QueryRowContext(ctx, q).Scan(&d); err != nil {
		log.WarnContext(ctx, "could not read the settings of a direct session", "error", err)
		return
	}
	if p != d {
		log.WarnContext(ctx, "sessions through DATABASE_URL lack the settings a direct session has (statement_timeout, idle_in_transaction_session_timeout, quid.points_expire_after): the pooler's server sessions predate them; reconnect them (PgBouncer: RECONNECT)",
			"pooled", p, "direct", d)
	}
}

func (d translatingDialector) Translate(err error) error {
	if err2 := d.o.note(err); err2 != err {
		return err2
	}
	return d.Dialector.Translate(err)
}

func provider(db *sql.DB, opts ...goose.ProviderOption) (*goose.Provider, error) {
	sub, err := fs.Sub(migrations.FS, ".")
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectPostgres, db, sub, opts...)
}

// Migrate applies every pending migration. It holds goose's session-level
// advisory lock meanwhile, so replicas starting at once apply each migration
// exactly once: the others wait (up to five minutes) and then find nothing
// pending.
func Migrate(ctx context.Context, db *sql.DB) ([]*goose.MigrationResult, error) {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	p, err := provider(db, goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return res, fmt.Errorf("apply migrations: %w", err)
	}
	return res, nil
}

// MigrateURL applies every pending migration over a connection of its own,
// opened without the service's Settings: building an index on a large table
// may take longer than any statement of a request should, and is not to be
// cancelled by statement_timeout halfway.
func MigrateURL(ctx context.Context, url string) ([]*goose.MigrationResult, error) {
	pgCfg, err := connConfig(url)
	if err != nil {
		return nil, err
	}
	// Off explicitly: behind a pooler they are the role's defaults.
	pgCfg.RuntimeParams["statement_timeout"] = "0"
	pgCfg.RuntimeParams["idle_in_transaction_session_timeout"] = "0"
	db := stdlib.OpenDB(*pgCfg)
	defer db.Close()
	return Migrate(ctx, db)
}

// MigrationStatus reports each known migration and whether it is applied.
func MigrationStatus(ctx context.Context, db *sql.DB) ([]*goose.MigrationStatus, error) {
	p, err := provider(db)
	if err != nil {
		return nil, err
	}
	return p.Status(ctx)
}

// ErrMigrationsPending means the schema is behind the binary.
var ErrMigrationsPending = errors.New("migrations pending")

// Ready checks that the database answers and that no migration is pending.
func Ready(ctx context.Context, db *sql.DB) error {
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	p, err := provider(db)
	if err != nil {
		return err
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("migration state: %w", err)
	}
	if pending {
		return ErrMigrationsPending
	}
	return nil
}

// Exclusively runs fn while holding a session-level advisory lock named name
// in this database, so work every replica does at start (first signing key,
// demo data) happens once: a replica that waited finds it done. fn may use
// other pooled connections; the lock lives on a connection of its own.
func Exclusively(ctx context.Context, db *sql.DB, name string, fn func(context.Context) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(hashtextextended($1, 0))", "quid:"+name); err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	defer func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtextextended($1, 0))", "quid:"+name)
	}()
	return fn(ctx)
}

// columnsCache holds the qualified column list of each record type.
var columnsCache sync.Map

// columns is the SELECT list of a record's columns, qualified by its table
// ("exchanges.id, exchanges.member_id, …"), for queries that add computed
// columns to a record: written out, never "table.*", so an added column
// cannot change the result type of a statement cached before it.
func columns(db *gorm.DB, record any) string {
	t := reflect.TypeOf(record)
	if v, ok := columnsCache.Load(t); ok {
		return v.(string)
	}
	stmt := &gorm.Statement{DB: db}
	if err := stmt.Parse(record); err != nil {
		panic(fmt.Sprintf("columns of %T: %v", record, err))
	}
	cols := make([]string, len(stmt.Schema.DBNames))
	for i, name := range stmt.Schema.DBNames {
		cols[i] = stmt.Schema.Table + "." + name
	}
	list := strings.Join(cols, ", ")
	columnsCache.Store(t, list)
	return list
}
