package main

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/quidpro/quid/app"
)

// outboxEvents returns the payloads of event type in the outbox, keyed by
// recipient name, and removes them, so the next step sees only its own.
func outboxEvents(t *testing.T, a *api, event string) map[string]map[string]any {
	t.Helper()
	var rows []struct {
		Name    string
		Payload []byte
	}
	if err := a.svc.db.Raw(`DELETE FROM webhook_outbox o USING recipients r WHERE r.id = o.recipient_id AND o.event_type = ?
		RETURNING r.name, o.payload`, event).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, r := range rows {
		checkWebhookPayload(t, event, r.Payload)
		if _, dup := out[r.Name]; dup {
			t.Fatalf("%s got two %s events for one change", r.Name, event)
		}
		var p map[string]any
		if err := json.Unmarshal(r.Payload, &p); err != nil {
			t.Fatal(err)
		}
		out[r.Name] = p
	}
	return out
}

func eventCategories(p map[string]any) string {
	var cats []string
	for _, c := range p["data"].(map[string]any)["categories"].([]any) {
		cats = append(cats, c.(string))
	}
	sort.Strings(cats)
	return strings.Join(cats, ",")
}

// TestRectificationReachesRecipientsThatReceiveTheCorrectedData: when PUT
// /v1/me changes a category an active exchange gives a recipient, that
// recipient gets member.attributes_changed naming the categories it receives
// (a derived category when its source changed), never the values; nobody
// else does, and nothing is sent for an unchanged value, an unshared
// category or after the exchange ended.
func TestRectificationReachesRecipientsThatReceiveTheCorrectedData(t *testing.T) {
	t.Parallel()
	a, f, _, ex := withJoinedMember(t)
	put := func(attrs map[string]any) {
		expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: f.member, Body: map[string]any{"attributes": attrs}}), 200)
	}
	outboxEvents(t, a, "member.attributes_changed") // none yet; clears nothing else

	steps := []struct {
		name  string
		attrs map[string]any
		want  map[string]string // recipient → categories named
	}{
		{"the same values again", map[string]any{"location.city": "Oslo", "demographic.birthdate": "1990-05-01"}, map[string]string{}},
		{"a category no exchange shares", map[string]any{"contact.email": "new@example.com"}, map[string]string{}},
		{"a category only the brand receives", map[string]any{"commerce.purchase_history": []string{"tea"}},
			map[string]string{"Brand": "commerce.purchase_history"}},
		{"the source of a derived category", map[string]any{"demographic.birthdate": "1991-06-02"},
			map[string]string{"PartnerCo": "demographic.age_over_18"}},
		{"a category two recipients receive, with another change", map[string]any{"location.city": "Bergen", "contact.email": "x@example.com"},
			map[string]string{"Brand": "location.city", "PartnerCo": "location.city"}},
	}
	for _, s := range steps {
		put(s.attrs)
		got := outboxEvents(t, a, "member.attributes_changed")
		if len(got) != len(s.want) {
			t.Fatalf("%s: events for %v, want %v", s.name, keys(anyMap(got)), s.want)
		}
		for name, cats := range s.want {
			p, ok := got[name]
			if !ok {
				t.Fatalf("%s: %s got no event", s.name, name)
			}
			if c := eventCategories(p); c != cats {
				t.Fatalf("%s: %s was told %s, want %s", s.name, name, c, cats)
			}
			d := p["data"].(map[string]any)
			if d["member_id"] != "alice" || len(d["exchanges"].([]any)) != 1 || d["exchanges"].([]any)[0] != ex["id"] {
				t.Fatalf("%s: event data %v", s.name, d)
			}
			raw, _ := json.Marshal(p)
			for _, value := range []string{"Bergen", "tea", "1991-06-02", "example.com"} {
				if strings.Contains(string(raw), value) {
					t.Fatalf("%s: the event carries the value %q", s.name, value)
				}
			}
		}
	}

	// bob's change reaches no one: he shares nothing.
	bob := token(t, app.RoleMember, "bob")
	a.enrol(bob)
	expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: bob, Body: map[string]any{"attributes": map[string]any{"location.city": "Tromsø"}}}), 200)
	if got := outboxEvents(t, a, "member.attributes_changed"); len(got) != 0 {
		t.Fatalf("a member who shares nothing notified %v", keys(anyMap(got)))
	}
	// Once the exchange ended, a correction is nobody's business.
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + ex["id"].(string), Token: f.member}), 200)
	put(map[string]any{"location.city": "Trondheim"})
	if got := outboxEvents(t, a, "member.attributes_changed"); len(got) != 0 {
		t.Fatalf("an ended exchange's recipients were notified: %v", keys(anyMap(got)))
	}
}

func anyMap[V any](m map[string]V) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}
