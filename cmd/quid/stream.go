package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/quidpro/quid/infra/config"
	"github.com/quidpro/quid/infra/postgres"
)

// streamCmd shows or stops the recording of outbox events for the event
// stream. A replica started with QUID_NATS_URL switches it on; only this
// command switches it off, so an event written while every publishing
// replica is down is never lost.
func streamCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: quid stream status|off\n\n"+
			"  status  whether outbox events are recorded for the NATS event stream, how many wait and the oldest's time\n"+
			"  off     stop recording (a replica started with QUID_NATS_URL switches it on again); waiting events are still published")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "status" && fs.Arg(0) != "off") {
		fs.Usage()
		return errors.New("stream: say status or off")
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log, flushLog := serviceLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	defer flushLog()
	// The direct URL: a pooler refuses statement_timeout at login.
	db, err := postgres.Open(ctx, cfg.DirectURL(), log, postgres.Settings{StatementTimeout: cfg.DBStatementTimeout})
	if err != nil {
		return err
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	store := postgres.NewStore(db)
	if fs.Arg(0) == "off" {
		if err := store.SetStreamRecording(ctx, false); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "event stream recording off")
		return nil
	}
	st, err := store.StreamStatus(ctx)
	if err != nil {
		return err
	}
	oldest := "-"
	if st.Oldest.Valid {
		oldest = st.Oldest.Time.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "recording %v\nwaiting   %d\ngiven_up  %d\noldest    %s\n", st.Recording, st.Waiting, st.GivenUp, oldest)
	return nil
}
