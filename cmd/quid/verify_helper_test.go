package main

import (
	"bytes"
	"context"
	"testing"
)

// mustVerify runs `quid verify` in-process (the very function main calls)
// against databaseURL, fails the test with the full report when any
// invariant is broken or verify cannot run, and returns the human report
// (for logging in closing notes).
func mustVerify(t testing.TB, databaseURL string) string {
	t.Helper()
	out, errOut, err := runVerify(context.Background(), databaseURL)
	if err != nil {
		t.Fatalf("quid verify: %v\n%s%s", err, out, errOut)
	}
	return out
}

// runVerify runs `quid verify args...` in-process and returns its stdout,
// stderr and error (errInvariantsBroken when a rule is broken).
func runVerify(ctx context.Context, databaseURL string, args ...string) (string, string, error) {
	var stdout, stderr bytes.Buffer
	env := map[string]string{"DATABASE_URL": databaseURL}
	err := run(ctx, append([]string{"verify"}, args...), func(k string) string { return env[k] }, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}
