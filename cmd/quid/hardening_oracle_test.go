package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quidpro/quid/app"
)

// sameAnswer fails unless every response has the same status and the same
// problem body, apart from the request's own instance and request id.
func sameAnswer(t *testing.T, what string, rs map[string]response) {
	t.Helper()
	var first, firstName string
	for name, r := range rs {
		var p map[string]any
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatalf("%s: %s", name, r.Body)
		}
		delete(p, "instance")
		delete(p, "request_id")
		p["status"] = r.Status
		b, _ := json.Marshal(p)
		if first == "" {
			first, firstName = string(b), name
			continue
		}
		if string(b) != first {
			t.Fatalf("%s: %s answers %s but %s answers %s", what, name, b, firstName, first)
		}
	}
}

// TestAnswersDoNotRevealWhatTheCallerHasNoGrantFor: a partner gets the same
// answer for an unknown member, an erased member, a member who never
// consented, whose consent was cancelled or expired, who consented for
// another purpose or to another recipient; a partner confirming deletion of
// an exchange that is not theirs gets the answer for an unknown exchange; a
// member asking for another member's exchange gets the answer for none.
func TestAnswersDoNotRevealWhatTheCallerHasNoGrantFor(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	contract := a.publishContract(f, contractBody(f))
	short := contractBody(f)
	short["duration"] = "PT1S"
	expiring := a.publishContract(f, short)
	members := map[string]string{}
	for _, name := range []string{"alice", "carol", "dave", "erin", "frank"} {
		members[name] = token(t, app.RoleMember, name)
		a.enrol(members[name])
	}
	aliceEx := a.joinContract(members["alice"], contract)
	daveEx := a.joinContract(members["dave"], contract)
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + daveEx["id"].(string), Token: members["dave"]}), 200)
	a.joinContract(members["erin"], contract)
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: members["erin"]}), 200)
	a.joinContract(members["frank"], expiring)
	time.Sleep(1100 * time.Millisecond)

	read := func(tok, member, purpose string) response {
		return a.do(req{Method: "GET", Path: "/v1/partner/members/" + member + "/data?purpose=" + purpose, Token: tok})
	}
	const offers = "loyalty.personalised_offers"
	expect(t, read(f.partner, "alice", offers), 200)
	stranger := token(t, app.RolePartner, uuid.NewString())
	sameAnswer(t, "partner read", map[string]response{
		"unknown member":             read(f.partner, "nobody", offers),
		"erased member":              read(f.partner, "erin", offers),
		"member who never consented": read(f.partner, "carol", offers),
		"cancelled consent":          read(f.partner, "dave", offers),
		"expired consent":            read(f.partner, "frank", offers),
		"another purpose":            read(f.partner, "alice", "advertising.third_party"),
		"another recipient":          read(token(t, app.RolePartner, f.adCo), "alice", offers),
		"an unregistered partner":    read(stranger, "alice", offers),
		"unregistered, unknown":      read(stranger, "nobody", offers),
	})

	confirm := func(tok, id string) response {
		return a.do(req{Method: "POST", Path: "/v1/partner/deletions", Token: tok, Body: map[string]any{"exchange_id": id}})
	}
	sameAnswer(t, "deletion confirmation", map[string]response{
		"unknown exchange":             confirm(token(t, app.RolePartner, f.adCo), uuid.NewString()),
		"an exchange not naming you":   confirm(token(t, app.RolePartner, f.adCo), daveEx["id"].(string)),
		"unregistered partner":         confirm(stranger, daveEx["id"].(string)),
		"an active one not naming you": confirm(token(t, app.RolePartner, f.adCo), aliceEx["id"].(string)),
	})

	// Drafts are not public: anyone but marketers and admins gets the
	// answer for no contract at all.
	draft := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: contractBody(f)}), 201).json(t)["id"].(string)
	unknown := uuid.NewString()
	for _, route := range []string{"/v1/contracts/%s", "/v1/contracts/%s/transparency", "/v1/contracts/%s/notice"} {
		for _, tok := range []string{"", members["carol"], f.partner} {
			sameAnswer(t, "reading "+route, map[string]response{
				"unknown": a.do(req{Method: "GET", Path: strings.Replace(route, "%s", unknown, 1), Token: tok}),
				"a draft": a.do(req{Method: "GET", Path: strings.Replace(route, "%s", draft, 1), Token: tok}),
			})
		}
	}
	sameAnswer(t, "joining", map[string]response{
		"unknown": a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: members["carol"], Body: map[string]any{"contract_id": unknown}}),
		"a draft": a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: members["carol"], Body: map[string]any{"contract_id": draft}}),
	})

	for _, method := range []string{"GET", "DELETE"} {
		sameAnswer(t, method+" another member's exchange", map[string]response{
			"unknown exchange":         a.do(req{Method: method, Path: "/v1/me/exchanges/" + uuid.NewString(), Token: members["carol"]}),
			"another member's":         a.do(req{Method: method, Path: "/v1/me/exchanges/" + aliceEx["id"].(string), Token: members["carol"]}),
			"an erased member's ended": a.do(req{Method: method, Path: "/v1/me/exchanges/" + daveEx["id"].(string), Token: members["carol"]}),
		})
	}
}

// TestErrorsThatNameANextStepAreTrue does the step each such error names.
func TestErrorsThatNameANextStepAreTrue(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()

	// "you are not enrolled yet: PUT /v1/me first" — for a new member, and
	// for one who erased their data.
	for _, sub := range []string{"newcomer", "leaver"} {
		tok := token(t, app.RoleMember, sub)
		if sub == "leaver" {
			a.enrol(tok)
			expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: tok}), 200)
		}
		for _, view := range []string{"/v1/me", "/v1/me/exchanges", "/v1/me/points", "/v1/me/access-log", "/v1/me/export"} {
			p := expect(t, a.do(req{Method: "GET", Path: view, Token: tok}), 404).json(t)
			if !strings.Contains(p["detail"].(string), "PUT /v1/me") {
				t.Fatalf("%s: %v", view, p)
			}
		}
		expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: tok, Body: map[string]any{"attributes": joinableProfile()}}), 201)
		expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: tok}), 200)
	}

	// "only drafts can be edited, create a new version instead"
	v1 := a.publishContract(f, contractBody(f))
	edit := func(id string) response {
		return a.do(req{Method: "PATCH", Path: "/v1/contracts/" + id, Token: f.marketer, Body: map[string]any{"title": "Coffee club 2"}})
	}
	p := expect(t, edit(v1), 409).json(t)
	if !strings.Contains(p["detail"].(string), "new version") {
		t.Fatalf("patch of a published version: %v", p)
	}
	v2 := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v1 + "/versions", Token: f.marketer}), 201).json(t)["id"].(string)
	// "a draft cannot be versioned; edit it instead"
	p = expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v2 + "/versions", Token: f.marketer}), 409).json(t)
	if !strings.Contains(p["detail"].(string), "edit it") {
		t.Fatalf("versioning a draft: %v", p)
	}
	expect(t, edit(v2), 200)
	// With the family's draft open, the answer to editing v1 again must
	// not send the marketer to a step that fails.
	p = expect(t, edit(v1), 409).json(t)
	if r := a.do(req{Method: "POST", Path: "/v1/contracts/" + v1 + "/versions", Token: f.marketer}); r.Status != 201 &&
		strings.Contains(p["detail"].(string), "create a new version") && !strings.Contains(p["detail"].(string), "draft") {
		t.Fatalf("the error says %q but that step answers %d %s", p["detail"], r.Status, r.Body)
	}
}
