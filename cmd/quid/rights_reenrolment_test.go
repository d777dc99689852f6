package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/quidpro/quid/app"
)

// TestAReenrolledMemberCannotReFarmAJoinBonus: erasing and enrolling again
// under the same subject, over and over, never pays a family's join bonus
// twice, while a family never paid still pays once; the erasure response
// says how many families are remembered and what coming back means.
func TestAReenrolledMemberCannotReFarmAJoinBonus(t *testing.T) {
	t.Parallel()
	a, f, first, _ := withJoinedMember(t)
	second := a.publishContract(f, contractBody(f))
	erase := func(wantFamilies int) {
		t.Helper()
		r := expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: f.member}), 200).json(t)
		if r["bonus_families_remembered"] != float64(wantFamilies) {
			t.Fatalf("bonus_families_remembered = %v, want %d", r["bonus_families_remembered"], wantFamilies)
		}
		if s, _ := r["reenrolment"].(string); !strings.Contains(s, "PUT /v1/me") || !strings.Contains(s, "not paid again") {
			t.Fatalf("the erasure does not say what coming back means: %q", s)
		}
	}
	pending := func() float64 {
		return expect(t, a.do(req{Method: "GET", Path: "/v1/me/points", Token: f.member}), 200).json(t)["pending"].(float64)
	}
	erase(1)
	a.enrol(f.member)
	if ex := a.joinContract(f.member, first); ex["bonus"] != nil {
		t.Fatalf("the first family's bonus was paid again: %v", ex["bonus"])
	}
	if ex := a.joinContract(f.member, second); ex["bonus"] == nil {
		t.Fatal("a family never paid did not pay its bonus")
	}
	if p := pending(); p != 200 {
		t.Fatalf("pending %v, want only the second family's 200", p)
	}
	erase(2)
	for round := range 2 {
		a.enrol(f.member)
		for _, c := range []string{first, second} {
			if ex := a.joinContract(f.member, c); ex["bonus"] != nil {
				t.Fatalf("round %d: a bonus was paid again: %v", round, ex["bonus"])
			}
		}
		if p := pending(); p != 0 {
			t.Fatalf("round %d: pending %v after re-enrolling", round, p)
		}
		erase(2)
	}
	// Someone else's erasure tells nothing of alice's: bob was paid nothing.
	bob := token(t, app.RoleMember, "bob")
	a.enrol(bob)
	if r := expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: bob}), 200).json(t); r["bonus_families_remembered"] != float64(0) {
		t.Fatalf("bob's erasure remembers %v families", r["bonus_families_remembered"])
	}
}

// TestASubjectErasedByAnOlderReleaseMayEnrolAgain: a release older than
// migration 00008, still running during a rolling deploy, erased by marking
// the member row erased and keeping its id. PUT /v1/me under that subject
// starts a fresh member (it used to answer 409 member-erased), with no link
// to the old data, and the old identity's join bonus is not paid again.
func TestASubjectErasedByAnOlderReleaseMayEnrolAgain(t *testing.T) {
	t.Parallel()
	a, f, contract, ex := withJoinedMember(t)
	for _, stmt := range []string{
		`UPDATE exchanges SET status = 'erased', ended_at = clock_timestamp() WHERE member_id = 'alice'`,
		`UPDATE members SET attributes = '{}', erased_at = clock_timestamp() WHERE id = 'alice'`,
	} {
		if err := a.svc.db.Exec(stmt).Error; err != nil {
			t.Fatal(err)
		}
	}
	me := expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: f.member, Body: map[string]any{"attributes": map[string]any{
		"location.city": "Bergen", "commerce.purchase_history": []string{"tea"}, "demographic.birthdate": "1990-05-01"}}}), 201).json(t)
	if me["balance"].(map[string]any)["pending"] != float64(0) {
		t.Fatalf("the fresh member inherited a balance: %v", me["balance"])
	}
	for _, view := range []string{"/v1/me/exchanges", "/v1/me/points", "/v1/me/recipients"} {
		if items := expect(t, a.do(req{Method: "GET", Path: view, Token: f.member}), 200).json(t)["items"].([]any); len(items) != 0 {
			t.Fatalf("%s shows the erased member's history: %d items", view, len(items))
		}
	}
	var linked int64
	a.svc.db.Raw(`SELECT (SELECT count(*) FROM exchanges WHERE id = ? AND member_id = 'alice')
		+ (SELECT count(*) FROM ledger_entries WHERE exchange_id = ? AND member_id = 'alice')
		+ (SELECT count(*) FROM members WHERE id = 'alice' AND erased_at IS NOT NULL)`, ex["id"], ex["id"]).Scan(&linked)
	if linked != 0 {
		t.Fatalf("%d old rows still name the subject", linked)
	}
	if again := a.joinContract(f.member, contract); again["bonus"] != nil {
		t.Fatalf("the old identity's bonus was paid again: %v", again["bonus"])
	}
}

// TestProfileUpdateRacingErasureAppliesBeforeItOrEnrolsAfresh: PUT /v1/me
// sent together with DELETE /v1/me for the same subject either applies
// first (200, then erased with the rest) or, when the erasure commits while
// it waits for the member's lock, enrols a fresh member after it (201) —
// never an undocumented 404 that loses the enrolment — and the database
// keeps every invariant.
func TestProfileUpdateRacingErasureAppliesBeforeItOrEnrolsAfresh(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	tok := token(t, app.RoleMember, "racer")
	erase := req{Method: "DELETE", Path: "/v1/me", Token: tok}
	update := req{Method: "PUT", Path: "/v1/me", Token: tok, Body: map[string]any{"attributes": map[string]any{"location.city": "Bergen"}}}
	outcomes := map[string]int{}
	for round := range 30 {
		if r := a.putProfile(tok, map[string]any{"location.city": "Oslo"}); r.Status != 200 && r.Status != 201 {
			t.Fatalf("round %d: enrol: %d %s", round, r.Status, r.Body)
		}
		var del, put response
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); del = a.send(erase) }()
		go func() { defer wg.Done(); put = a.send(update) }()
		wg.Wait()
		a.checkSpec(erase, erase.raw(), del)
		a.checkSpec(update, update.raw(), put)
		if del.Status != 200 {
			t.Fatalf("round %d: the erasure answered %d %s", round, del.Status, del.Body)
		}
		me := a.do(req{Method: "GET", Path: "/v1/me", Token: tok})
		switch put.Status {
		case 200: // applied first, then erased
			expect(t, me, 404)
		case 201: // enrolled afresh after the erasure
			if city := expect(t, me, 200).json(t)["attributes"].(map[string]any)["location.city"]; city != "Bergen" {
				t.Fatalf("round %d: the fresh member holds city %v, want Bergen", round, city)
			}
		default:
			t.Fatalf("round %d: PUT /v1/me racing the erasure answered %d %s", round, put.Status, put.Body)
		}
		outcomes[fmt.Sprintf("DELETE %d, PUT %d", del.Status, put.Status)]++
	}
	t.Logf("outcomes over 30 rounds: %v", outcomes)
	t.Log(mustVerify(t, a.cfg.DatabaseURL))
}
