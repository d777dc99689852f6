package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Helpers shared by the fault tests (fault_*_test.go).

// sendWithin is send with a bound: it reports an error instead of waiting
// longer than d for the answer.
func (a *api) sendWithin(r req, d time.Duration) (response, time.Duration, error) {
	start := time.Now()
	res, err := a.svc.app.Test(r.httpRequest(), int(d.Milliseconds()))
	took := time.Since(start)
	if err != nil {
		return response{}, took, fmt.Errorf("%s %s: no answer within %s: %w", r.Method, r.Path, d, err)
	}
	out, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return response{Status: res.StatusCode, Header: res.Header, Body: out}, took, nil
}

// openDB is a plain connection pool to url for the test's own checks.
func openDB(t testing.TB, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// faultNotes collects the figures fault tests report (go test -v shows
// them; QUID_FAULT_NOTES=<file> appends them to a file).
var faultNotes sync.Mutex

func noteFigures(t testing.TB, name string, figures map[string]any) {
	t.Helper()
	b, _ := json.Marshal(figures)
	t.Logf("%s figures: %s", name, b)
	if path := os.Getenv("QUID_FAULT_NOTES"); path != "" {
		faultNotes.Lock()
		defer faultNotes.Unlock()
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%s %s\n", name, b)
			f.Close()
		}
	}
}

// verifyNote runs mustVerify and adds its report to the figures.
func verifyNote(t testing.TB, url string, figures map[string]any) {
	t.Helper()
	figures["verify"] = strings.TrimSpace(mustVerify(t, url))
}
