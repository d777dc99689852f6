package main

import (
	"testing"

	"github.com/quidpro/quid/app"
)

// TestMembersSeeEveryRecipientThatWasEverGrantedTheirData: GET
// /v1/me/recipients names every recipient any exchange of the member's ever
// named (GDPR Art. 15(1)(c), 19), ended grants included, with what it got,
// since when, until when, the reads it made and the deletion it owes; one
// page at a time; and nothing of another member's.
func TestMembersSeeEveryRecipientThatWasEverGrantedTheirData(t *testing.T) {
	t.Parallel()
	a, f, _, _ := withJoinedMember(t)
	adOnly := contractBody(f)
	adOnly["items"] = []any{map[string]any{"category": "location.city", "purpose": "advertising.third_party", "recipients": []string{f.adCo}}}
	delete(adOnly, "duration") // lasts until cancelled: no brand to remind
	adContract := a.publishContract(f, adOnly)
	adEx := a.joinContract(f.member, adContract)["id"].(string)
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + adEx, Token: f.member}), 200)
	read := func(tok string) {
		expect(t, a.do(req{Method: "GET", Path: "/v1/partner/members/alice/data?purpose=loyalty.personalised_offers", Token: tok}), 200)
	}
	read(f.partner)
	read(f.partner)
	read(token(t, app.RolePartner, f.brand))
	// bob's grant to AdCo is his, not alice's.
	bob := token(t, app.RoleMember, "bob")
	a.enrol(bob)
	a.joinContract(bob, adContract)

	all := map[string]map[string]any{}
	var order []string
	cursor := ""
	for pages := 0; ; pages++ {
		path := "/v1/me/recipients?limit=1"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		body := expect(t, a.do(req{Method: "GET", Path: path, Token: f.member}), 200).json(t)
		for _, it := range body["items"].([]any) {
			r := it.(map[string]any)
			all[r["name"].(string)] = r
			order = append(order, r["id"].(string))
		}
		next, _ := body["next_cursor"].(string)
		if next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("the pages never end")
		}
		cursor = next
	}
	if len(all) != 3 || len(order) != 3 {
		t.Fatalf("recipients %v, want Brand, PartnerCo and AdCo once each", order)
	}
	for i := 1; i < len(order); i++ {
		if order[i-1] >= order[i] {
			t.Fatalf("pages are not in recipient order: %v", order)
		}
	}
	p := all["PartnerCo"]
	if p["kind"] != "third_party" || p["country"] != "SE" || p["active"] != true || p["until"] != nil || p["reads"] != float64(2) || p["last_read_at"] == nil {
		t.Fatalf("PartnerCo: %v", p)
	}
	if cats := p["categories"].([]any); len(cats) != 2 || cats[0] != "demographic.age_over_18" || cats[1] != "location.city" {
		t.Fatalf("PartnerCo's categories: %v", cats)
	}
	if purs := p["purposes"].([]any); len(purs) != 2 {
		t.Fatalf("PartnerCo's purposes: %v", purs)
	}
	if b := all["Brand"]; b["kind"] != "first_party" || b["reads"] != float64(1) || len(b["grants"].([]any)) != 1 {
		t.Fatalf("Brand: %v", b)
	}
	ad := all["AdCo"]
	if ad["active"] != false || ad["until"] == nil || ad["reads"] != float64(0) {
		t.Fatalf("AdCo: %v", ad)
	}
	grants := ad["grants"].([]any)
	if len(grants) != 1 {
		t.Fatalf("AdCo has %d grants of alice's, want 1 (bob's is not hers)", len(grants))
	}
	g := grants[0].(map[string]any)
	if g["exchange_id"] != adEx || g["status"] != "cancelled" || g["deletion_state"] != "due" || g["deletion_due_at"] == nil {
		t.Fatalf("AdCo's grant: %v", g)
	}
	if d := ad["deletion"].(map[string]any); d["owed"] != float64(1) || d["confirmed"] != float64(0) || d["next_due_at"] == nil {
		t.Fatalf("AdCo's deletion: %v", d)
	}
	expect(t, confirmDeletion(a, token(t, app.RolePartner, f.adCo), adEx), 200)
	for _, it := range expect(t, a.do(req{Method: "GET", Path: "/v1/me/recipients", Token: f.member}), 200).json(t)["items"].([]any) {
		if r := it.(map[string]any); r["name"] == "AdCo" {
			if d := r["deletion"].(map[string]any); d["confirmed"] != float64(1) || d["next_due_at"] != nil {
				t.Fatalf("AdCo's confirmed deletion: %v", d)
			}
		}
	}
	// bob sees only AdCo, from his own grant.
	mine := expect(t, a.do(req{Method: "GET", Path: "/v1/me/recipients", Token: bob}), 200).json(t)["items"].([]any)
	if len(mine) != 1 || mine[0].(map[string]any)["name"] != "AdCo" || mine[0].(map[string]any)["active"] != true {
		t.Fatalf("bob's recipients: %v", mine)
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/me/recipients?cursor=bogus", Token: f.member}), 422)
}

// TestTheExportListsEveryRecipient: GET /v1/me/export carries the whole
// recipients list, as GET /v1/me/recipients gives it, past its first page.
func TestTheExportListsEveryRecipient(t *testing.T) {
	t.Parallel()
	a, f, _, _ := withJoinedMember(t)
	adOnly := contractBody(f)
	adOnly["items"] = []any{map[string]any{"category": "location.city", "purpose": "advertising.third_party", "recipients": []string{f.adCo}}}
	delete(adOnly, "duration") // lasts until cancelled: no brand to remind
	a.joinContract(f.member, a.publishContract(f, adOnly))
	export := expect(t, a.do(req{Method: "GET", Path: "/v1/me/export", Token: f.member}), 200).json(t)
	listed := expect(t, a.do(req{Method: "GET", Path: "/v1/me/recipients", Token: f.member}), 200).json(t)["items"].([]any)
	got, _ := export["recipients"].([]any)
	if len(got) != 3 || len(listed) != 3 {
		t.Fatalf("export has %d recipients, the list %d; want 3", len(got), len(listed))
	}
	for i := range got {
		g, l := got[i].(map[string]any), listed[i].(map[string]any)
		if g["id"] != l["id"] || len(g["grants"].([]any)) != len(l["grants"].([]any)) {
			t.Fatalf("export recipient %d = %v, list has %v", i, g, l)
		}
	}
}
