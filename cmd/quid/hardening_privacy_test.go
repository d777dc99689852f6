package main

import (
	"fmt"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
)

// statementCounter counts the SQL statements gorm sends on one service's
// pool, whatever kind they are.
type statementCounter struct {
	mu sync.Mutex
	n  int
}

func countStatements(t *testing.T, db *gorm.DB) *statementCounter {
	t.Helper()
	c := &statementCounter{}
	count := func(*gorm.DB) { c.mu.Lock(); c.n++; c.mu.Unlock() }
	cb := db.Callback()
	for i, err := range []error{
		cb.Query().After("gorm:query").Register("test:count_query", count),
		cb.Row().After("gorm:row").Register("test:count_row", count),
		cb.Raw().After("gorm:raw").Register("test:count_raw", count),
		cb.Create().After("gorm:create").Register("test:count_create", count),
		cb.Update().After("gorm:update").Register("test:count_update", count),
		cb.Delete().After("gorm:delete").Register("test:count_delete", count),
	} {
		if err != nil {
			t.Fatalf("callback %d: %v", i, err)
		}
	}
	return c
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
// purpose, consent cancelled, erased) as for an id nobody holds, and a
// granted read still reads and logs.
func TestRefusedPartnerReadsCostTheSameForMembersAndStrangers(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
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

	counter := countStatements(t, a.svc.db)
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
		"cancelled consent":          read("dave", offers, 403),
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
