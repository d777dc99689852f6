package main

import (
	"testing"
	"time"

	"github.com/quidpro/quid/app"
)

// A partner that keeps reading after the member cancelled is refused, and
// the member sees the attempt in their access log, refused for no consent
// (issue 13's journey: cancel, then see the partner's read refused). Members
// the partner never had data of get the same refusal and no entry: nothing
// is written for strangers, and the answer is the same for all.
func TestAReadRefusedAfterTheMemberCancelledIsLoggedWhereTheMemberSeesIt(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	contract := a.publishContract(f, contractBody(f))
	a.enrol(f.member)
	ex := a.joinContract(f.member, contract)["id"].(string)
	carol := token(t, app.RoleMember, "carol")
	a.enrol(carol)
	read := func(member string) response {
		return a.do(req{Method: "GET", Path: "/v1/partner/members/" + member + "/data?purpose=loyalty.personalised_offers", Token: f.partner})
	}
	expect(t, read("alice"), 200)
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + ex, Token: f.member}), 200)
	time.Sleep(10 * time.Millisecond)
	refused := expect(t, read("alice"), 403)
	if problemOf(t, refused).Code != "no-consent" {
		t.Fatalf("after cancelling: %s", refused.Body)
	}
	expect(t, read("carol"), 403)

	items := expect(t, a.do(req{Method: "GET", Path: "/v1/me/access-log", Token: f.member}), 200).json(t)["items"].([]any)
	if len(items) != 2 {
		t.Fatalf("want the served read and the refused one, got %d: %v", len(items), items)
	}
	newest := items[0].(map[string]any)
	if newest["refused"] != "no-consent" || len(newest["categories"].([]any)) != 0 {
		t.Fatalf("newest entry is not the refused read: %v", newest)
	}
	if exs := newest["exchanges"]; exs == nil || len(exs.([]any)) != 1 || exs.([]any)[0] != ex {
		t.Fatalf("the refused read names the ended exchange %s: %v", ex, newest)
	}
	if got := expect(t, a.do(req{Method: "GET", Path: "/v1/me/access-log", Token: carol}), 200).json(t)["items"].([]any); len(got) != 0 {
		t.Fatalf("a member the partner never had data of gets entries: %v", got)
	}
}

// A redemption's reference is text the member types and sees again in the
// history: like a profile value, it may not reorder what a reader sees,
// and a refusal writes nothing.
func TestARedemptionReferenceThatReordersTextIsRefused(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	a.enrol(f.member)
	for _, ref := range []string{"\u202eema", "a\u2066b", "two\nlines", "tab\there", "bell\a"} {
		var r response
		a.unchangedBy("reference "+ref, func() {
			r = a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: f.member, Body: map[string]any{"points": 1, "reference": ref}})
		})
		if r.Status != 422 || problemOf(t, r).Errors[0].Pointer != "/reference" {
			t.Errorf("reference %q: %d %s", ref, r.Status, r.Body)
		}
	}
}
