package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"gorm.io/gorm"

	"github.com/google/uuid"

	quid "github.com/quidpro/quid"
	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
	"github.com/quidpro/quid/infra/auth"
	"github.com/quidpro/quid/infra/catalog"
	"github.com/quidpro/quid/infra/config"
	"github.com/quidpro/quid/infra/eventstream"
	httpapi "github.com/quidpro/quid/infra/http"
	"github.com/quidpro/quid/infra/postgres"
	"github.com/quidpro/quid/infra/webhook"
)

func serveCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	demo := fs.Bool("demo", false, "create a demo recipient and a published demo contract when none exists, and offer the web pages' development sign-in (any member id): never on a server with real members")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: quid serve [--demo]\n\nApplies pending migrations, starts the accrual and webhook workers and serves the API on QUID_ADDR.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log, flushLog := serviceLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	defer flushLog()
	cfg.Web.DemoSignIn = *demo
	log.Info("starting", "config", cfg)
	if *demo {
		log.Warn("development sign-in is on (--demo): anyone can sign in to /account as anyone")
	}

	svc, err := build(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer svc.close()
	if *demo {
		// Under a database lock, so replicas started together seed once.
		// It logs once the lock is released: nothing logs while holding a lock.
		var said []any
		if err := postgres.Exclusively(ctx, svc.sqlDB(), "demo", func(ctx context.Context) (err error) {
			said, err = seedDemo(ctx, svc)
			return err
		}); err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
		log.Info("demo", said...)
	}
	if cfg.PprofAddr != "" {
		go func() {
			// net/http/pprof registers on the default mux; it is served only here.
			log.Info("pprof", "addr", cfg.PprofAddr, "error", http.ListenAndServe(cfg.PprofAddr, nil))
		}()
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	return svc.serve(ctx, ln, cfg)
}

// service is the wired process: database, HTTP app and background workers.
type service struct {
	db         *gorm.DB
	store      *postgres.Store
	app        *fiber.App
	log        *slog.Logger
	contracts  *app.Contracts
	accrual    *app.Accrual
	dispatcher *app.Dispatcher
	relay      *app.StreamRelay       // nil without QUID_NATS_URL
	publisher  *eventstream.Publisher // nil without QUID_NATS_URL
	workers    []func(ctx context.Context)
}

func (s *service) sqlDB() *sql.DB {
	sqlDB, _ := s.db.DB()
	return sqlDB
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

type uuidIDs struct{}

func (uuidIDs) NewID() string { return uuid.NewString() }

// statementTracer is the context key under which a test hands build a
// pgx.QueryTracer that sees every statement of the service's pool.
type statementTracer struct{}

// build wires adapters into use cases. Migrations must already be applied
// when the HTTP app serves; serve and the tests apply them first.
func build(ctx context.Context, cfg config.Config, log *slog.Logger) (*service, error) {
	tracer, _ := ctx.Value(statementTracer{}).(pgx.QueryTracer)
	db, err := postgres.Open(ctx, cfg.DatabaseURL, log, postgres.Settings{
		StatementTimeout: cfg.DBStatementTimeout, IdleInTransactionTimeout: cfg.DBIdleInTransactionTimeout,
		PointsExpireAfter: cfg.PointsExpireAfter, Tracer: tracer})
	if err != nil {
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	// Over a connection without the statement timeout (see MigrateURL).
	if _, err := postgres.MigrateURL(ctx, cfg.DatabaseURL); err != nil {
		sqlDB.Close()
		return nil, err
	}
	verifier, err := auth.NewVerifier(auth.VerifierOptions{
		Secret: cfg.JWTSecret, PublicKeysFile: cfg.JWTPublicKeysFile,
		Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Leeway: cfg.JWTLeeway,
	})
	if err != nil {
		return nil, err
	}
	cat, err := catalog.Load()
	if err != nil {
		return nil, err
	}
	store := postgres.NewStore(db)
	signer, err := receiptSigner(ctx, cfg, store, sqlDB)
	if err != nil {
		return nil, err
	}
	contracts := app.NewContracts(store, store, domain.ContractPolicy{Catalog: cat, MinPeriod: cfg.MinRewardPeriod, PointsExpireAfter: cfg.PointsExpireAfter, StatsMinCount: cfg.StatsMinCount}, systemClock{}, uuidIDs{})
	members := app.NewMembers(store, cat)
	exchanges := app.NewExchanges(store, store, store, signer, uuidIDs{}, cat)
	rewards := app.NewRewards(store, systemClock{}, uuidIDs{})
	rewards.CancelWindow = cfg.RedemptionCancelWindow
	accrual := app.NewAccrual(store, store, store, log.With("worker", "accrual"))
	accrual.Workers = app.DefaultAccrualWorkers
	accrual.Reminders = store
	accrual.PointsReminders, accrual.PointsNotice = store, cfg.PointsExpiringNotice
	accrual.TierChanges = store
	enforcement := app.NewEnforcement(store, store, store, cat, webhook.Guard{AllowPrivate: cfg.WebhookAllowPrivate}, webhook.Secrets{})
	dispatcher := app.NewDispatcher(store, webhook.NewSender(cfg.WebhookAllowPrivate, 10*time.Second, systemClock{}),
		systemClock{}, log.With("worker", "webhooks"))
	dispatcher.MaxAttempts, dispatcher.BaseBackoff, dispatcher.MaxBackoff, dispatcher.Lease = 12, 5*time.Second, time.Hour, time.Minute

	changes := store.NewChangeListener(log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(sqlDB, "quid"))
	a := httpapi.New(httpapi.Options{
		Logger:         log,
		Verifier:       verifier,
		Ready:          func(ctx context.Context) error { return postgres.Ready(ctx, sqlDB) },
		Registry:       reg,
		OpenAPI:        quid.OpenAPI,
		PublicCacheTTL: cfg.PublicCacheTTL,
		Changes:        changes,
		MaxHeaderBytes: cfg.MaxHeaderBytes,
		RateLimits: httpapi.RateLimits{Principal: httpapi.Quota(cfg.RateLimitPrincipal), Address: httpapi.Quota(cfg.RateLimitAddress),
			TrustedProxies: cfg.TrustedProxies},
		Services: httpapi.Services{Contracts: contracts, Members: members, Exchanges: exchanges, Enforcement: enforcement, Catalog: cat,
			Restrictions: app.NewRestrictions(store), Objections: app.NewObjections(store, cat), Tiers: app.NewTiers(store, systemClock{}),
			Rewards: rewards,
			Reports: app.NewReports(store, store, cat.Currency),
			JWKS:    func() any { return signer.JWKS() }, Snapshot: store.ReadSnapshot},
		Web: webOptions(cfg, store),
	})
	s := &service{db: db, store: store, app: a, log: log, contracts: contracts, accrual: accrual, dispatcher: dispatcher}
	s.workers = append(s.workers,
		func(ctx context.Context) { accrual.Run(ctx, cfg.AccrualInterval) },
		func(ctx context.Context) { dispatcher.Run(ctx, cfg.WebhookInterval) },
		changes.Run)
	if err := s.wireEventStream(ctx, cfg, reg); err != nil {
		sqlDB.Close()
		return nil, err
	}
	return s, nil
}

// wireEventStream starts the event stream relay when QUID_NATS_URL is set,
// after switching on the recording of outbox events for it. NATS being
// down does not stop the start, nor make the replica unready: events wait
// in the outbox, and the relay publishes them once NATS is back.
func (s *service) wireEventStream(ctx context.Context, cfg config.Config, reg *prometheus.Registry) error {
	if !cfg.NATS.On() {
		if on, err := s.store.StreamRecording(ctx); err == nil && on {
			s.log.Warn("event stream recording is on but QUID_NATS_URL is not set here: events wait for a replica that has it ('quid stream off' stops recording)")
		}
		return nil
	}
	if err := s.store.SetStreamRecording(ctx, true); err != nil {
		return fmt.Errorf("event stream: switch recording on: %w", err)
	}
	pub, err := eventstream.Open(eventstream.Options{URL: cfg.NATS.URL, CredsFile: cfg.NATS.CredsFile, Stream: cfg.NATS.Stream,
		Duplicates: cfg.NATS.Duplicates, MaxAge: cfg.NATS.MaxAge, Replicas: cfg.NATS.Replicas, Log: s.log.With("worker", "event-stream")})
	if err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	relay := app.NewStreamRelay(s.store, pub, systemClock{}, s.log.With("worker", "event-stream"))
	relay.Metrics = eventstream.NewMetrics(reg)
	s.relay, s.publisher = relay, pub
	s.workers = append(s.workers, func(ctx context.Context) { relay.Run(ctx, cfg.WebhookInterval) })
	return nil
}

// receiptSigner uses QUID_SIGNING_KEY when set; otherwise the oldest active
// key in the database, generating and storing one on first start. The first
// key is made under a database lock, so replicas starting together agree on
// one key and publish the same JWKS.
func receiptSigner(ctx context.Context, cfg config.Config, store *postgres.Store, sqlDB *sql.DB) (*auth.ReceiptSigner, error) {
	stored, err := store.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.SigningKeyFile == "" && len(stored) == 0 {
		err := postgres.Exclusively(ctx, sqlDB, "first-signing-key", func(ctx context.Context) error {
			if stored, err = store.SigningKeys(ctx); err != nil || len(stored) > 0 {
				return err // another replica made it while this one waited
			}
			k, err := auth.GenerateSigningKey()
			if err != nil {
				return err
			}
			if err := store.AddSigningKey(ctx, k.KID, k.Private.Seed(), k.Public(), true); err != nil {
				return err
			}
			stored, err = store.SigningKeys(ctx)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	var keys []auth.SigningKey
	for _, sk := range stored {
		k, err := auth.SigningKeyFromSeed(sk.KID, sk.Seed)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if cfg.SigningKeyFile != "" {
		k, err := auth.LoadSigningKeyFile(cfg.SigningKeyFile)
		if err != nil {
			return nil, err
		}
		return auth.NewReceiptSigner(k, keys...), nil
	}
	return auth.NewReceiptSigner(keys[0], keys[1:]...), nil
}

func (s *service) close() {
	if s.publisher != nil {
		s.publisher.Close()
	}
	if sqlDB, err := s.db.DB(); err == nil {
		_ = sqlDB.Close()
	}
}

// serve runs until ctx ends, then stops taking connections and lets in-flight
// requests finish within the shutdown timeout.
func (s *service) serve(ctx context.Context, ln net.Listener, cfg config.Config) error {
	workCtx, stopWork := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, w := range s.workers {
		wg.Add(1)
		go func() { defer wg.Done(); w(workCtx) }()
	}
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(ln) }()
	s.log.Info("serving", "addr", ln.Addr().String())
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		s.log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
		err = s.app.ShutdownWithTimeout(cfg.ShutdownTimeout)
	}
	stopWork()
	wg.Wait()
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("shutdown timed out with requests still in flight")
	}
	return err
}

// webOptions turns on the web pages under /account (issue 13): sign-in by
// OpenID Connect when an identity provider is configured, the development
// sign-in only with --demo.
func webOptions(cfg config.Config, store *postgres.Store) *httpapi.WebOptions {
	w := &httpapi.WebOptions{Sessions: store, SessionTTL: cfg.Web.SessionTTL, Demo: cfg.Web.DemoSignIn, PublicURL: cfg.Web.PublicURL,
		MinCount: int(cfg.StatsMinCount)}
	if cfg.Web.OIDC() {
		w.OIDC = &httpapi.OIDCOptions{Issuer: cfg.Web.Issuer, ClientID: cfg.Web.ClientID, ClientSecret: cfg.Web.ClientSecret,
			PublicURL: cfg.Web.PublicURL, RoleClaim: cfg.Web.RoleClaim}
	}
	return w
}
