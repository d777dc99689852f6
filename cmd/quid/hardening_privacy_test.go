package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/quidpro/quid/app"
)

// statementCounter counts the SQL statements sent on one service's pool,
// whatever kind they are and whoever sends them: gorm's, and each statement
// of a pipelined batch (BEGIN and COMMIT included).
type statementCounter struct {
	mu sync.Mutex
	n  int
}

func (c *statementCounter) add() { c.mu.Lock(); c.n++; c.mu.Unlock() }

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.add()
	return ctx
}
func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *statementCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (c *statementCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {
	c.add()
}
func (c *statementCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// newCountedAPI is newAPI whose pool reports every statement to the counter.
func newCountedAPI(t *testing.T) (*api, *statementCounter) {
	t.Helper()
	c := &statementCounter{}
	cfg := testConfig(t)
	svc, err := build(context.WithValue(context.Background(), statementTracer{}, pgx.QueryTracer(c)), cfg,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.close)
	return &api{t: t, svc: svc, cfg: cfg}, c
}

func (c *statementCounter) during(fn func()) int {
	c.mu.Lock()
	before := c.n
	c.mu.Unlock()
	fn()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n - before
}

// TestRefusedPartnerReadsCostTheSameForMembersAndStrangers: a partner
// refused a read must not learn from the latency whether the id is a
// member's. Latency is too noisy to test, so the work is: the refusal sends
// as many statements for a member without a grant (never consented, other
// purpose, erased) as for an id nobody holds, and a granted read still
// reads and logs. The one refusal that does more is a read after the
// consent that granted this partner ended: it is logged where the member
// sees it, and it tells the partner nothing new, since the partner was sent
// the member's data and then told of the ending.
func TestRefusedPartnerReadsCostTheSameForMembersAndStrangers(t *testing.T) {
	t.Parallel()
	a, counter := newCountedAPI(t)
	f := a.fixtures()
	contract := a.publishContract(f, contractBody(f))
	for _, name := range []string{"alice", "carol", "dave", "erin"} {
		a.enrol(token(t, app.RoleMember, name))
	}
	a.joinContract(token(t, app.RoleMember, "alice"), contract)
	daveEx := a.joinContract(token(t, app.RoleMember, "dave"), contract)
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + daveEx["id"].(string), Token: token(t, app.RoleMember, "dave")}), 200)
	a.joinContract(token(t, app.RoleMember, "erin"), contract)
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: token(t, app.RoleMember, "erin")}), 200)

	const offers = "loyalty.personalised_offers"
	read := func(member, purpose string, status int) int {
		return counter.during(func() {
			expect(t, a.do(req{Method: "GET", Path: "/v1/partner/members/" + member + "/data?purpose=" + purpose, Token: f.partner}), status)
		})
	}
	stranger := read("nobody", offers, 403)
	for what, n := range map[string]int{
		"member who never consented": read("carol", offers, 403),
		"member, another purpose":    read("alice", "advertising.third_party", 403),
		"erased member":              read("erin", offers, 403),
		"another stranger":           read("nobody-else", offers, 403),
	} {
		if n != stranger {
			t.Errorf("refusing a %s sends %d statements, refusing a stranger %d: the latency tells members apart", what, n, stranger)
		}
	}
	if granted := read("alice", offers, 200); granted <= stranger {
		t.Errorf("a granted read sends %d statements, a refusal %d: the read is not loaded or not logged", granted, stranger)
	}
	log := expect(t, a.do(req{Method: "GET", Path: "/v1/me/access-log", Token: token(t, app.RoleMember, "alice")}), 200).json(t)
	if items := log["items"].([]any); len(items) != 1 {
		t.Fatalf("alice's access log after one granted read: %v", fmt.Sprint(items))
	}
}

// TestPseudonymsCannotBeTokenSubjects: erasure replaces a member id by
// "erased:<uuid>", so no token may carry that shape as its subject — an
// existing pseudonym would meet an erased member's records (409 on PUT
// /v1/me while GET /v1/me says to PUT first), an unused one would enrol and
// pass for an erased member in the audit. Near misses stay ordinary
// subjects. And erasing without a member says so, not "PUT /v1/me first".
func TestPseudonymsCannotBeTokenSubjects(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	leaver := token(t, app.RoleMember, "leaver")
	a.enrol(leaver)
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: leaver}), 200)
	var existing string
	if err := a.svc.db.Raw(`SELECT id FROM members WHERE erased_at IS NOT NULL`).Scan(&existing).Error; err != nil || existing == "" {
		t.Fatalf("no pseudonym after erasure: %v", err)
	}
	unused := "erased:" + uuid.NewString()
	body := map[string]any{"attributes": joinableProfile()}
	for _, sub := range []string{existing, unused} {
		for _, role := range []app.Role{app.RoleMember, app.RolePartner, app.RoleAdmin, app.RoleMarketer} {
			tok := token(t, role, sub)
			for _, r := range []req{
				{Method: "GET", Path: "/v1/me", Token: tok},
				{Method: "PUT", Path: "/v1/me", Token: tok, Body: body},
				{Method: "DELETE", Path: "/v1/me", Token: tok},
				{Method: "GET", Path: "/v1/contracts", Token: tok},
				{Method: "GET", Path: "/v1/audit", Token: tok},
				{Method: "GET", Path: "/v1/partner/members/someone/data?purpose=loyalty.personalised_offers", Token: tok},
			} {
				if got := a.do(r); got.Status != http.StatusUnauthorized {
					t.Errorf("%s %s as %s %q: %d %s", r.Method, r.Path, role, sub, got.Status, got.Body)
				}
			}
		}
	}
	var enrolled int64
	a.svc.db.Raw(`SELECT count(*) FROM members WHERE id LIKE 'erased:%' AND erased_at IS NULL`).Scan(&enrolled)
	if enrolled != 0 {
		t.Fatalf("%d live members carry a pseudonym's shape", enrolled)
	}

	u := uuid.NewString()
	for _, sub := range []string{"erased:x", "Erased:" + u, "erased:" + strings.ToUpper(u), "erased:" + strings.ReplaceAll(u, "-", "")} {
		tok := token(t, app.RoleMember, sub)
		expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: tok, Body: body}), 201)
		expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: tok}), 200)
	}

	// DELETE /v1/me without a member: never enrolled, or erased already.
	for _, tok := range []string{token(t, app.RoleMember, "stranger"), leaver} {
		p := expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: tok}), 404).json(t)
		if d, _ := p["detail"].(string); !strings.HasPrefix(d, "nothing to erase") || strings.Contains(d, "PUT /v1/me") {
			t.Errorf("erasing without a member: %v", p)
		}
	}
}

// TestErasureRequestsForgetTheMemberIdByTheirDeadline: a
// member.erasure_requested event keeps the member id so the recipient
// learns whose data to delete, but the dispatcher only tries recipients
// with an endpoint, so for one without an endpoint the id stayed forever.
// The housekeeping pass (quid accrue --once, and the server's accrual
// worker) pseudonymises every event past its delete_by, delivered or not,
// and keeps the id until then, so a recipient that registers soon after
// still learns it. Several replicas may run the pass at once.
func TestErasureRequestsForgetTheMemberIdByTheirDeadline(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	contract := a.publishContract(f, contractBody(f))
	// Brand registers an endpoint that answers nothing (so its events stay
	// pending between attempts); PartnerCo never registers one.
	expect(t, a.do(req{Method: "PUT", Path: "/v1/partner/webhook", Token: token(t, app.RolePartner, f.brand),
		Body: map[string]any{"url": "http://127.0.0.1:9/hook"}}), 200)
	subjects := []string{"old-leaver@example.com", "new-leaver@example.com"}
	for _, sub := range subjects {
		tok := token(t, app.RoleMember, sub)
		a.enrol(tok)
		a.joinContract(tok, contract)
		expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: tok}), 200)
	}
	holding := func(sub string) (n int64) {
		a.svc.db.Raw(`SELECT count(*) FROM webhook_outbox WHERE strpos(payload::text, ?) > 0`, sub).Scan(&n)
		return n
	}
	for _, sub := range subjects {
		if n := holding(sub); n != 2 {
			t.Fatalf("%s: %d events name the member, want the 2 erasure requests (Brand, PartnerCo)", sub, n)
		}
	}
	housekeeping := func() {
		t.Helper()
		env := map[string]string{"DATABASE_URL": a.cfg.DatabaseURL, "QUID_JWT_SECRET": testSecret, "QUID_LOG_LEVEL": "error"}
		errs := make(chan error, 3)
		for range 3 { // replicas at once
			go func() {
				errs <- accrueCmd(context.Background(), []string{"--once"}, func(k string) string { return env[k] }, io.Discard, io.Discard)
			}()
		}
		for range 3 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
	// Within the deadline the id stays, endpoint or not.
	housekeeping()
	for _, sub := range subjects {
		if n := holding(sub); n != 2 {
			t.Fatalf("%s: within the deadline %d erasure requests name the member, want 2", sub, n)
		}
	}
	// 30 days pass for the first erasure only.
	if err := a.svc.db.Exec(`UPDATE webhook_outbox SET created_at = created_at - interval '30 days 1 minute'
		WHERE event_type = 'member.erasure_requested' AND strpos(payload::text, ?) > 0`, subjects[0]).Error; err != nil {
		t.Fatal(err)
	}
	housekeeping()
	housekeeping()
	if n := holding(subjects[0]); n != 0 {
		t.Fatalf("%d erasure requests still name the member after their deadline", n)
	}
	if n := holding(subjects[1]); n != 2 {
		t.Fatalf("the erasure within its deadline lost the member id: %d events name it", n)
	}
	// What is left is the pseudonym of the erased exchanges, still pending,
	// so a recipient registering now still learns which exchanges to delete.
	var rows []struct {
		MemberID, Pseudonym string
		Pending             bool
	}
	a.svc.db.Raw(`SELECT o.payload->'data'->>'member_id' AS member_id, e.member_id AS pseudonym,
		(o.delivered_at IS NULL AND o.failed_at IS NULL) AS pending
		FROM webhook_outbox o JOIN exchanges e ON e.id = CAST(o.payload->'data'->'exchanges'->>0 AS uuid)
		WHERE o.event_type = 'member.erasure_requested' AND o.created_at < now() - interval '30 days'`).Scan(&rows)
	if len(rows) != 2 {
		t.Fatalf("aged erasure requests: %+v", rows)
	}
	for _, r := range rows {
		if r.MemberID != r.Pseudonym || !strings.HasPrefix(r.Pseudonym, "erased:") || !r.Pending {
			t.Fatalf("aged erasure request: %+v", r)
		}
	}
}
