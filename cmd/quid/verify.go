package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/postgres"
)

// errInvariantsBroken is verify's outcome when it ran and found violations:
// main exits 1 for it (2 means verify could not run at all).
var errInvariantsBroken = errors.New("invariants broken")

const verifyUsage = `Usage: quid verify [--json] [--max-shown N]

Checks every ledger and consent invariant on the database at DATABASE_URL and
prints a report: per rule, what it checked and every violation (member, rows,
what is wrong). Rules: balance-equals-entries, balance-not-negative,
transactions-balanced, balance-equals-postings, lots-equal-available,
credit-inside-consent,
credit-outside-restriction, one-credit-per-period, consent-events-complete,
bonus-once-per-family, deletion-duties-recorded, history-unchanged,
guards-in-place (see app/verify.go for each rule and its source in DESIGN.md).

Read-only: one REPEATABLE READ READ ONLY transaction, no writes, no temporary
tables, no locks beyond those of a plain SELECT; safe on a hot-standby replica.
Memory stays bounded: rows are streamed and at most --max-shown violations per
rule are kept (all are counted).

Exit status: 0 every rule holds; 1 a rule is broken; 2 verify could not run.

--json prints one object instead of text:
  {"ok": bool, "snapshot": RFC 3339 time of the snapshot checked,
   "max_shown_per_rule": int, "rules_broken": int,
   "rules": [{"id", "title", "source", "passed": bool, "checked": int,
              "checked_what": what "checked" counts, "violations": int (all),
              "shown": [{"member_id" (empty for schema-wide findings),
                         "rows": ["table/key", ...], "detail"}],
              "not_shown": int (violations beyond max_shown_per_rule)}]}
When verify cannot run (exit 2), --json prints {"ok": false, "error": "..."}.
`

// verifyCmd runs verify; with --json, a run that could not check anything
// still prints one JSON object, {"ok": false, "error": "..."}, so a script
// reading stdout never gets empty input.
func verifyCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	// Asked for before the flags are parsed, so a flag error answers in JSON too.
	asJSON := slices.ContainsFunc(args, func(a string) bool {
		return a == "-json" || a == "--json" || a == "-json=true" || a == "--json=true"
	})
	err := verifyRun(ctx, args, getenv, stdout, stderr, &asJSON)
	if err != nil && asJSON && !errors.Is(err, errInvariantsBroken) && !errors.Is(err, flag.ErrHelp) {
		_ = json.NewEncoder(stdout).Encode(struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}{false, err.Error()})
	}
	return err
}

func verifyRun(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, jsonOut *bool) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	maxShown := fs.Int("max-shown", 20, "violations shown per rule (all are counted)")
	fs.Usage = func() {
		fmt.Fprint(stderr, verifyUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	*jsonOut = *asJSON
	if fs.NArg() != 0 || *maxShown < 0 {
		fs.Usage()
		return errors.New("verify: takes only --json and --max-shown N (N ≥ 0)")
	}
	// Only the database is needed: verify must run on a replica's host
	// without the server's secrets.
	url := getenv("DATABASE_URL")
	if url == "" {
		return errors.New("verify: DATABASE_URL is required (a replica will do)")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// No statement timeout: a full check of a large ledger may take minutes.
	// Pooled: DATABASE_URL may name PgBouncer in transaction mode.
	db, err := postgres.Open(ctx, url, log, postgres.Settings{Pooled: true})
	if err != nil {
		return err
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	store, err := postgres.NewInvariants(db)
	if err != nil {
		return err
	}
	rep, err := app.NewVerifier(store).Verify(ctx, *maxShown)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(verifyJSON(rep)); err != nil {
			return err
		}
	} else {
		writeVerifyText(stdout, rep)
	}
	if !rep.Passed() {
		return fmt.Errorf("verify: %d of %d rules broken: %w", rep.Broken(), len(rep.Rules), errInvariantsBroken)
	}
	return nil
}

// verifyReportJSON is the --json shape documented in verifyUsage.
type verifyReportJSON struct {
	OK          bool             `json:"ok"`
	Snapshot    string           `json:"snapshot"`
	MaxShown    int              `json:"max_shown_per_rule"`
	RulesBroken int              `json:"rules_broken"`
	Rules       []verifyRuleJSON `json:"rules"`
}

type verifyRuleJSON struct {
	ID          string                `json:"id"`
	Title       string                `json:"title"`
	Source      string                `json:"source"`
	Passed      bool                  `json:"passed"`
	Checked     int64                 `json:"checked"`
	CheckedWhat string                `json:"checked_what"`
	Violations  int64                 `json:"violations"`
	Shown       []verifyViolationJSON `json:"shown"`
	NotShown    int64                 `json:"not_shown"`
}

type verifyViolationJSON struct {
	MemberID string   `json:"member_id"`
	Rows     []string `json:"rows"`
	Detail   string   `json:"detail"`
}

func verifyJSON(rep app.VerifyReport) verifyReportJSON {
	out := verifyReportJSON{OK: rep.Passed(), Snapshot: rep.Snapshot.Format(time.RFC3339Nano), MaxShown: rep.MaxShown,
		RulesBroken: rep.Broken(), Rules: make([]verifyRuleJSON, 0, len(rep.Rules))}
	for _, r := range rep.Rules {
		rj := verifyRuleJSON{ID: r.Rule.ID, Title: r.Rule.Title, Source: r.Rule.Source, Passed: r.Passed(),
			Checked: r.Checked, CheckedWhat: r.Rule.Counts, Violations: r.Violations,
			Shown: make([]verifyViolationJSON, 0, len(r.Shown)), NotShown: r.Violations - int64(len(r.Shown))}
		for _, v := range r.Shown {
			rows := v.Rows
			if rows == nil {
				rows = []string{}
			}
			rj.Shown = append(rj.Shown, verifyViolationJSON{MemberID: v.MemberID, Rows: rows, Detail: v.Detail})
		}
		out.Rules = append(out.Rules, rj)
	}
	return out
}

// writeVerifyText is the report for a person: one line per rule, then each
// shown violation under its rule. Member ids are quoted, so an id holding
// control characters cannot forge report lines.
func writeVerifyText(w io.Writer, rep app.VerifyReport) {
	if rep.Passed() {
		fmt.Fprintf(w, "quid verify: OK — all %d rules hold (snapshot %s, read-only)\n\n", len(rep.Rules), rep.Snapshot.Format(time.RFC3339Nano))
	} else {
		fmt.Fprintf(w, "quid verify: FAILED — %d of %d rules broken (snapshot %s, read-only)\n\n", rep.Broken(), len(rep.Rules), rep.Snapshot.Format(time.RFC3339Nano))
	}
	for _, r := range rep.Rules {
		status, counts := "pass", fmt.Sprintf("%d %s checked", r.Checked, r.Rule.Counts)
		if !r.Passed() {
			status, counts = "FAIL", fmt.Sprintf("%d violation(s) in %d %s", r.Violations, r.Checked, r.Rule.Counts)
		}
		fmt.Fprintf(w, "%-4s  %-25s %s: %s [%s]\n", status, r.Rule.ID, counts, r.Rule.Title, r.Rule.Source)
		for _, v := range r.Shown {
			who := "schema"
			if v.MemberID != "" {
				who = "member " + fmt.Sprintf("%q", v.MemberID)
			}
			fmt.Fprintf(w, "        %s: %s\n", who, v.Detail)
			if len(v.Rows) > 0 {
				fmt.Fprintf(w, "          rows: %s\n", strings.Join(v.Rows, ", "))
			}
		}
		if hidden := r.Violations - int64(len(r.Shown)); hidden > 0 {
			fmt.Fprintf(w, "        … and %d more not shown (at most %d per rule; --max-shown N shows more)\n", hidden, rep.MaxShown)
		}
	}
	if rep.Passed() {
		fmt.Fprintln(w, "\nExit status 0: every rule holds.")
	} else {
		fmt.Fprintln(w, "\nExit status 1: rules broken.")
	}
}
