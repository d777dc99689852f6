// Command quidcluster is `make cluster-test`: Quid in its production
// topology on loopback, under load, through two faults. It starts, from
// the system's packages (installed when missing, as root), a PostgreSQL
// primary with a synchronous streaming standby, PgBouncer in transaction
// pooling mode in front of the primary, three `quid serve` replicas
// (DATABASE_URL through PgBouncer, QUID_DATABASE_DIRECT_URL naming both
// servers with target_session_attrs=read-write), HAProxy balancing HTTP
// across them with health checks on /readyz, and a partner's webhook
// receiver. Under a steady mixed load through HAProxy it kills one
// replica (SIGKILL) and restarts it, then fails over (stops the primary,
// promotes the standby, re-points PgBouncer), and then checks that every
// acknowledged join exists once, that retried keys made no duplicate,
// that `quid verify` is clean, that every webhook event was delivered,
// that every replica serves the same JWKS and that a publish reaches
// every replica's offers within the bound. It prints a table and exits
// non-zero when a check fails.
//
// It is a program, not a test: `make test` does not run it, and it needs
// bin/quid (make cluster-test builds it).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "quidcluster %s "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05.000")}, args...)...)
}

func main() {
	quid := flag.String("quid", "bin/quid", "the quid binary the replicas run")
	keep := flag.Bool("keep", false, "keep the cluster's directory (logs, data) after a successful run")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, *quid, *keep)
	if err != nil {
		fmt.Fprintln(os.Stderr, "quidcluster:", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}
