package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/quidpro/quid/infra/config"
	"github.com/quidpro/quid/infra/postgres"
)

func migrateCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: quid migrate up|status\n\n  up      apply every pending migration\n  status  list migrations and whether each is applied")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "up" && fs.Arg(0) != "status") {
		fs.Usage()
		return errors.New("migrate: say up or status")
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log, flushLog := serviceLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	defer flushLog()
	// No statement or idle timeout: a migration may rightly run long. A
	// direct connection: goose holds a session lock, which a transaction
	// pooler would not keep.
	db, err := postgres.Open(ctx, cfg.DirectURL(), log, postgres.Settings{})
	if err != nil {
		return err
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	if fs.Arg(0) == "up" {
		res, err := postgres.MigrateURL(ctx, cfg.DirectURL())
		for _, r := range res {
			fmt.Fprintf(stdout, "applied %s (%s)\n", r.Source.Path, r.Duration)
		}
		if err == nil && len(res) == 0 {
			fmt.Fprintln(stdout, "no pending migrations")
		}
		return err
	}
	st, err := postgres.MigrationStatus(ctx, sqlDB)
	if err != nil {
		return err
	}
	for _, s := range st {
		when := "pending"
		if !s.AppliedAt.IsZero() {
			when = "applied " + s.AppliedAt.UTC().Format("2006-01-02T15:04:05Z")
		}
		fmt.Fprintf(stdout, "%-40s %s\n", s.Source.Path, when)
	}
	return nil
}
