package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/postgres"
)

// TestLogsHoldNoPersonalValues runs hostile and failing requests carrying
// probe values — member ids, attribute values, references, idempotency
// keys, cursors, tokens — and statements that fail or run slowly with probe
// parameters, with the production logger at debug level, and then searches
// every log line for the probes.
func TestLogsHoldNoPersonalValues(t *testing.T) {
	t.Parallel()
	a, logs := newLoggedAPI(t)
	f := a.fixtures()
	contract := a.publishContract(f, contractBody(f))

	subject := "prb7member-1a2b@example.com"
	probes := []string{subject, "prb7city-3c4d", "prb7ref-5e6f", "prb7idem-7a8b", "prb7cursor-9c0d", "prb7nobody-1e2f",
		"prb7param-3a4b", "prb7slow-5c6d", "prb7dup-7e8f"}
	member := token(t, app.RoleMember, subject)
	probes = append(probes, member, f.partner, f.admin)
	cursor := base64.RawURLEncoding.EncodeToString([]byte("2026-11-30T00:00:00Z|prb7cursor-9c0d"))

	expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: member, Body: map[string]any{"attributes": map[string]any{
		"location.city": "prb7city-3c4d", "demographic.birthdate": "1990-05-01", "commerce.purchase_history": []string{"x"}}}}), 201)
	a.send(req{Method: "PUT", Path: "/v1/me", Token: member, Body: map[string]any{"attributes": map[string]any{"contact.email": "prb7city-3c4d"}}})
	a.send(req{Method: "PUT", Path: "/v1/me", Token: member, Body: `{"attributes": {"location.city": "prb7city-3c4d`})
	join := func(id string) response {
		return a.send(req{Method: "POST", Path: "/v1/me/exchanges", Token: member, Body: map[string]any{"contract_id": id},
			Headers: map[string]string{"Idempotency-Key": "prb7idem-7a8b"}})
	}
	join(contract)
	join("prb7param-3a4b") // same key, another body
	a.send(req{Method: "POST", Path: "/v1/me/redemptions", Token: member, Body: map[string]any{"points": 999999, "reference": "prb7ref-5e6f"}})
	a.send(req{Method: "POST", Path: "/v1/me/redemptions", Token: member, Body: map[string]any{"points": 1, "reference": "prb7ref-5e6f\u0000"}})
	for _, path := range []string{"/v1/offers", "/v1/me/exchanges", "/v1/me/points", "/v1/me/access-log", "/v1/audit",
		"/v1/audit/overdue-deletions", "/v1/audit/webhook-deliveries", "/v1/contracts"} {
		for _, tok := range []string{member, f.admin, f.marketer} {
			a.send(req{Method: "GET", Path: path + "?cursor=" + cursor, Token: tok})
		}
	}
	for _, m := range []string{subject, "prb7nobody-1e2f"} {
		a.send(req{Method: "GET", Path: "/v1/partner/members/" + url.PathEscape(m) + "/data?purpose=loyalty.personalised_offers", Token: f.partner})
		a.send(req{Method: "GET", Path: "/v1/audit?member_id=" + url.QueryEscape(m), Token: f.admin})
	}
	a.send(req{Method: "GET", Path: "/v1/me/exchanges/prb7param-3a4b", Token: member})
	a.send(req{Method: "POST", Path: "/v1/partner/deletions", Token: f.partner, Body: map[string]any{"exchange_id": "prb7param-3a4b"}})
	a.send(req{Method: "GET", Path: "/v1/me", Token: "prb7param-3a4b." + member})

	// Statements that fail with values in their messages and details, and
	// a slow one; gorm's logger sees each.
	ctx := context.Background()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`SELECT CAST(? AS uuid)`, []any{"prb7param-3a4b"}},
		{`INSERT INTO members (id, created_at, updated_at) VALUES (?, now(), now()), (?, now(), now())`, []any{"prb7dup-7e8f", "prb7dup-7e8f"}},
		{`INSERT INTO member_events (member_id, kind, at) VALUES (?, 'enrolled', now())`, []any{"prb7dup-7e8f"}},
		{`SELECT pg_sleep(0.6), CAST(? AS text)`, []any{"prb7slow-5c6d"}},
		{`SELECT count(*) FROM members WHERE id IN ?`, []any{manyIDs(5000)}},
	} {
		var out []map[string]any
		_ = a.svc.db.WithContext(ctx).Raw(q.sql, q.args...).Scan(&out).Error
	}
	// The HTTP 5xx log and the workers log errors as values: the same
	// rendering must hold for an error that wraps a PostgreSQL error.
	a.svc.log.Error("request failed", "error", fmt.Errorf("save profile: %w", &pgconn.PgError{Code: "23505",
		Message: `duplicate key value violates unique constraint "x"`, Detail: "Key (member_id)=(prb7dup-7e8f) already exists.",
		ConstraintName: "members_pkey", TableName: "members"}))
	a.svc.log.Error("request failed", "error", errors.Join(errors.New(`parse "prb7param-3a4b"`), context.Canceled))

	out := logs.String()
	if !strings.Contains(out, "statement failed") || !strings.Contains(out, "slow statement") || !strings.Contains(out, "23505") {
		t.Fatalf("the failing statements were not logged at all:\n%s", out)
	}
	if found := scanLogs(out, probes); len(found) > 0 {
		t.Fatalf("the logs hold %q:\n%s", found, out)
	}
	if strings.Count(out, "$") > 2000 {
		t.Fatal("a statement with 5,000 parameters was logged in full")
	}
	for _, id := range manyIDs(3) {
		if strings.Contains(out, id) {
			t.Fatalf("a member id of a long IN list was logged:\n%s", out)
		}
	}
}

func manyIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("prb7many-%05d", i)
	}
	return out
}

func TestSafeErrorKeepsTheShapeAndDropsValues(t *testing.T) {
	t.Parallel()
	pg := &pgconn.PgError{Code: "22P02", Message: `invalid input syntax for type uuid: "prb7x"`, Detail: "prb7y", Where: "prb7z",
		TableName: "exchanges", ColumnName: "id"}
	got := postgres.SafeError(fmt.Errorf("list exchanges: %w", pg))
	if strings.Contains(got, "prb7") || !strings.Contains(got, "list exchanges: ") || !strings.Contains(got, "22P02") ||
		!strings.Contains(got, "table=exchanges") {
		t.Fatalf("SafeError = %q", got)
	}
	if got := postgres.SafeError(fmt.Errorf(`decode %q: %w`, "prb7q", errors.New("bad"))); strings.Contains(got, "prb7") {
		t.Fatalf("SafeError = %q", got)
	}
}
