// Command quid is the Quid loyalty engine: it serves the API, applies
// migrations, runs accrual for cron, checks the database's invariants and
// mints development tokens.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

const usage = `quid — consent-based loyalty engine

Usage:
  quid serve [--demo]               apply pending migrations, then serve the API
  quid migrate up|status            apply or list database migrations
  quid accrue --once                credit due periods, vest bonuses, expire exchanges (for cron)
  quid token --role R --sub S       mint a development JWT (HS256, QUID_JWT_SECRET)
  quid verify [--json]              check every ledger and consent invariant, read-only
                                    (exit 0 all hold, 1 a rule is broken, 2 could not run)
  quid stream status|off            show or stop recording outbox events for the NATS event stream

Every command reads its configuration from the environment (see README).
Run 'quid <command> --help' for the command's flags.
`

func main() {
	tuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		switch {
		case errors.Is(err, errInvariantsBroken):
			os.Exit(1) // the report on stdout says which
		case errors.Is(err, flag.ErrHelp):
			os.Exit(0) // asked for, and printed
		}
		fmt.Fprintln(os.Stderr, "quid:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return errors.New("a command is required")
		}
		return nil
	}
	switch args[0] {
	case "serve":
		return serveCmd(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		return migrateCmd(ctx, args[1:], getenv, stdout, stderr)
	case "accrue":
		return accrueCmd(ctx, args[1:], getenv, stdout, stderr)
	case "token":
		return tokenCmd(args[1:], getenv, stdout, stderr)
	case "verify":
		return verifyCmd(ctx, args[1:], getenv, stdout, stderr)
	case "stream":
		return streamCmd(ctx, args[1:], getenv, stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// tuneGC trades memory the service has to spare for CPU: the heap is small
// (tens of MiB), so collecting less often is cheap, and a soft memory limit
// keeps the process well under the 200 MiB bar whatever the load. GOGC and
// GOMEMLIMIT, when set, win.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(150 << 20)
	}
}

func newLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(safeErrors{slog.NewTextHandler(w, opts)})
	}
	return slog.New(safeErrors{slog.NewJSONHandler(w, opts)})
}
