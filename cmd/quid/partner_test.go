package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/config"
)

func keys(m map[string]any) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func TestPartnersReadOnlyWhatActiveConsentGrantsThem(t *testing.T) {
	t.Parallel()
	a, f, _, ex := withJoinedMember(t)
	adCo := token(t, app.RolePartner, f.adCo)
	brand := token(t, app.RolePartner, f.brand)
	read := func(tok, member, purpose string) response {
		path := "/v1/partner/members/" + member + "/data"
		if purpose != "" {
			path += "?purpose=" + purpose
		}
		return a.do(req{Method: "GET", Path: path, Token: tok})
	}
	tests := []struct {
		name    string
		tok     string
		purpose string
		status  int
		keys    string
	}{
		{"granted category for the granted purpose", f.partner, "loyalty.personalised_offers", 200, "location.city"},
		{"another recipient's category stays hidden", f.partner, "loyalty.personalised_offers", 200, "location.city"},
		{"derived category, not its source", f.partner, "loyalty.programme_operation", 200, "demographic.age_over_18"},
		{"first party sees its own grants", brand, "loyalty.personalised_offers", 200, "commerce.purchase_history,location.city"},
		{"another purpose", f.partner, "advertising.third_party", 403, ""},
		{"a recipient the contract does not name", adCo, "loyalty.personalised_offers", 403, ""},
		{"unknown purpose", f.partner, "selling.everything", 422, ""},
		{"missing purpose", f.partner, "", 422, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := expect(t, read(tt.tok, "alice", tt.purpose), tt.status)
			if tt.status != 200 {
				return
			}
			body := r.json(t)
			attrs := body["attributes"].(map[string]any)
			if keys(attrs) != tt.keys {
				t.Fatalf("attributes %v, want only %s", attrs, tt.keys)
			}
			if strings.Contains(string(r.Body), "1990-05-01") {
				t.Fatal("the birthdate leaked")
			}
			if v, ok := attrs["demographic.age_over_18"]; ok && v != true {
				t.Fatalf("age_over_18 = %v", v)
			}
		})
	}
	expect(t, read(f.partner, "nobody", "loyalty.personalised_offers"), 403) // the same answer as for no consent
	expect(t, read(f.member, "alice", "loyalty.personalised_offers"), 403)

	// Every successful read is in the member's access log, newest first.
	log := expect(t, a.do(req{Method: "GET", Path: "/v1/me/access-log", Token: f.member}), 200).json(t)["items"].([]any)
	if len(log) != 4 {
		t.Fatalf("%d reads logged, want 4", len(log))
	}
	last := log[0].(map[string]any)
	if last["accessor"] != "Brand" || last["purpose"] != "loyalty.personalised_offers" || last["request_id"] == "" {
		t.Fatalf("log entry: %v", last)
	}
	audit := expect(t, a.do(req{Method: "GET", Path: "/v1/audit?recipient_id=" + f.partnerCo + "&member_id=alice", Token: f.admin}), 200).json(t)
	if n := len(audit["items"].([]any)); n != 3 {
		t.Fatalf("audit has %d reads by PartnerCo, want 3", n)
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/audit?from=yesterday", Token: f.admin}), 422)
	mine := expect(t, a.do(req{Method: "GET", Path: "/v1/me/transparency", Token: f.member}), 200).json(t)
	if len(mine["access_log"].([]any)) != 4 {
		t.Fatal("reads missing from the member's transparency view")
	}

	// The moment consent ends, the same read is refused.
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + ex["id"].(string), Token: f.member}), 200)
	expect(t, read(f.partner, "alice", "loyalty.personalised_offers"), 403)
	expect(t, read(brand, "alice", "loyalty.personalised_offers"), 403)
}

func TestReadsStopWhenConsentExpiresOrIsTerminated(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	short := contractBody(f)
	short["duration"] = "PT1S"
	expiring := a.publishContract(f, short)
	terminated := a.publishContract(f, contractBody(f))
	a.enrol(f.member)
	a.joinContract(f.member, terminated)
	bob := token(t, app.RoleMember, "bob")
	a.enrol(bob)
	a.joinContract(bob, expiring)
	path := func(m string) string { return "/v1/partner/members/" + m + "/data?purpose=loyalty.personalised_offers" }
	expect(t, a.do(req{Method: "GET", Path: path("alice"), Token: f.partner}), 200)
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + terminated + "/retire", Token: f.marketer, Body: map[string]any{"terminate_active": true}}), 200)
	expect(t, a.do(req{Method: "GET", Path: path("alice"), Token: f.partner}), 403)
	time.Sleep(1100 * time.Millisecond) // no worker runs: expiry is enforced from the timestamp alone
	expect(t, a.do(req{Method: "GET", Path: path("bob"), Token: f.partner}), 403)
}

// receiver is a partner's webhook endpoint that fails the first failFirst calls.
type receiver struct {
	mu        sync.Mutex
	failFirst int
	calls     int
	got       []http.Header
	bodies    [][]byte
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.calls <= r.failFirst {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	r.got = append(r.got, req.Header.Clone())
	r.bodies = append(r.bodies, body)
	w.WriteHeader(http.StatusNoContent)
}

func TestWebhooksAreSignedRetriedAndSurviveARestart(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	rcv := &receiver{failFirst: 1}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	expect(t, a.do(req{Method: "PUT", Path: "/v1/partner/webhook", Token: f.partner, Body: map[string]any{"url": srv.URL + "/hooks", "secret": secret}}), 200)
	id := a.publishContract(f, contractBody(f))
	a.enrol(f.member)
	ex := a.joinContract(f.member, id)

	// The process that committed the join "crashes" before delivering: a new
	// one, on the same database, delivers from the outbox.
	restarted, err := build(context.Background(), a.cfg, a.svc.log)
	if err != nil {
		t.Fatal(err)
	}
	defer restarted.close()
	d := restarted.dispatcher
	d.BaseBackoff, d.MaxBackoff = 10*time.Millisecond, 10*time.Millisecond
	if delivered, failed, err := d.RunOnce(context.Background()); err != nil || delivered != 0 || failed != 1 {
		t.Fatalf("first attempt: delivered %d failed %d err %v", delivered, failed, err)
	}
	time.Sleep(20 * time.Millisecond)
	if delivered, _, err := d.RunOnce(context.Background()); err != nil || delivered != 1 {
		t.Fatalf("retry: delivered %d err %v", delivered, err)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(rcv.bodies[0], rcv.got[0]); err != nil {
		t.Fatalf("signature does not verify with the Standard Webhooks library: %v", err)
	}
	body := string(rcv.bodies[0])
	for _, want := range []string{`"type":"exchange.joined"`, ex["id"].(string), `"member_id":"alice"`, "location.city", "demographic.age_over_18"} {
		if !strings.Contains(body, want) {
			t.Errorf("payload lacks %s: %s", want, body)
		}
	}
	if strings.Contains(body, "commerce.purchase_history") {
		t.Error("PartnerCo was told about a category it does not receive")
	}
	deliveries := expect(t, a.do(req{Method: "GET", Path: "/v1/audit/webhook-deliveries?recipient_id=" + f.partnerCo, Token: f.admin}), 200).json(t)
	first := deliveries["items"].([]any)[0].(map[string]any)
	if first["state"] != "delivered" || first["attempts"] != float64(2) || first["id"] != rcv.got[0].Get("webhook-id") {
		t.Fatalf("delivery state: %v", first)
	}

	// Cancelling sends the deadline by which the partner must delete.
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + ex["id"].(string), Token: f.member}), 200)
	if delivered, _, _ := d.RunOnce(context.Background()); delivered != 1 {
		t.Fatal("cancellation event not delivered")
	}
	if last := string(rcv.bodies[len(rcv.bodies)-1]); !strings.Contains(last, `"type":"exchange.cancelled"`) || !strings.Contains(last, `"delete_by":"20`) {
		t.Fatalf("cancellation payload: %s", last)
	}
}

func TestWebhookURLsOnPrivateNetworksAreRefusedByDefault(t *testing.T) {
	t.Parallel()
	a := newAPI(t, func(c *config.Config) { c.WebhookAllowPrivate = false })
	f := a.fixtures()
	for _, url := range []string{"http://127.0.0.1:9/hook", "http://10.0.0.8/hook", "http://169.254.169.254/latest", "http://[::1]/hook", "ftp://example.com/x"} {
		problemAt(t, a.do(req{Method: "PUT", Path: "/v1/partner/webhook", Token: f.partner, Body: map[string]any{"url": url}}), 422, "/url")
	}
	problemAt(t, a.do(req{Method: "PUT", Path: "/v1/partner/webhook", Token: f.partner, Body: map[string]any{"url": "https://8.8.8.8/hook", "secret": "plain"}}), 422, "/secret")
	generated := expect(t, a.do(req{Method: "PUT", Path: "/v1/partner/webhook", Token: f.partner, Body: map[string]any{"url": "https://8.8.8.8/hook"}}), 200).json(t)
	if !strings.HasPrefix(generated["secret"].(string), "whsec_") {
		t.Fatalf("generated secret: %v", generated)
	}
}

func TestDeletionAcknowledgementsReachMembersAndAdmins(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	body := contractBody(f)
	body["retention"] = "PT1S"
	id := a.publishContract(f, body)
	a.enrol(f.member)
	ex := a.joinContract(f.member, id)
	exID := ex["id"].(string)
	confirm := func(tok string) response {
		return a.do(req{Method: "POST", Path: "/v1/partner/deletions", Token: tok, Body: map[string]any{"exchange_id": exID}})
	}
	expect(t, confirm(f.partner), 409) // still active: nothing to delete yet
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + exID, Token: f.member}), 200)

	view := func() map[string]any {
		mine := expect(t, a.do(req{Method: "GET", Path: "/v1/me/transparency", Token: f.member}), 200).json(t)
		return mine["exchanges"].([]any)[0].(map[string]any)
	}
	if s := view()["deletion_summary"]; s != "0 of 2 recipients confirmed deletion" {
		t.Fatalf("summary: %v", s)
	}
	ack := expect(t, confirm(f.partner), 200).json(t)
	if ack["state"] != "deleted" || ack["confirmed_at"] == nil {
		t.Fatalf("ack: %v", ack)
	}
	if again := expect(t, confirm(f.partner), 200).json(t); again["confirmed_at"] != ack["confirmed_at"] {
		t.Fatal("confirming twice changed the record")
	}
	expect(t, confirm(token(t, app.RolePartner, f.adCo)), 404)
	if s := view()["deletion_summary"]; s != "1 of 2 recipients confirmed deletion" {
		t.Fatalf("summary: %v", s)
	}
	time.Sleep(1100 * time.Millisecond) // the retention period runs out
	states := map[string]string{}
	for _, d := range view()["deletions"].([]any) {
		d := d.(map[string]any)
		states[d["recipient"].(string)] = d["state"].(string)
	}
	if states["PartnerCo"] != "deleted" || states["Brand"] != "overdue" {
		t.Fatalf("states: %v", states)
	}
	overdue := expect(t, a.do(req{Method: "GET", Path: "/v1/audit/overdue-deletions", Token: f.admin}), 200).json(t)["items"].([]any)
	if len(overdue) != 1 || overdue[0].(map[string]any)["recipient"] != "Brand" {
		t.Fatalf("overdue: %v", overdue)
	}
}

// Rules 5 and 6: nothing is shared without joining a contract that names it,
// and a broader new version reaches no one until they join it themselves.
func TestBroaderTermsReachOnlyMembersWhoJoinThem(t *testing.T) {
	t.Parallel()
	a, f, v1, ex := withJoinedMember(t)
	adCo := token(t, app.RolePartner, f.adCo)
	read := func(tok, member, purpose string) response {
		return a.do(req{Method: "GET", Path: "/v1/partner/members/" + member + "/data?purpose=" + purpose, Token: tok})
	}
	bob := token(t, app.RoleMember, "bob")
	a.enrol(bob)
	expect(t, read(f.partner, "bob", "loyalty.personalised_offers"), 403) // enrolled, joined nothing

	body := contractBody(f)
	body["items"] = append(body["items"].([]any), map[string]any{"category": "location.city", "purpose": "advertising.third_party", "recipients": []string{f.adCo}})
	v2 := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v1 + "/versions", Token: f.marketer}), 201).json(t)["id"].(string)
	expect(t, a.do(req{Method: "PATCH", Path: "/v1/contracts/" + v2, Token: f.marketer, Body: map[string]any{"items": body["items"]}}), 200)
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v2 + "/publish", Token: f.marketer}), 200)

	mine := a.exchangeByID(f.member, ex["id"].(string))
	newer, _ := mine["newer_version"].(map[string]any)
	if mine["contract_id"] != v1 || mine["status"] != "active" || newer["contract_id"] != v2 || newer["material"] != true {
		t.Fatalf("the member's exchange after a broader version: %v", mine)
	}
	expect(t, read(adCo, "alice", "advertising.third_party"), 403)
	a.joinContract(f.member, v2)
	if got := keys(expect(t, read(adCo, "alice", "advertising.third_party"), 200).json(t)["attributes"].(map[string]any)); got != "location.city" {
		t.Fatalf("after joining v2 AdCo reads %s", got)
	}
}

func TestReconsentThatDropsARecipientOwesItADeletion(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	v1 := a.publishContract(f, contractBody(f))
	a.enrol(f.member)
	old := a.joinContract(f.member, v1)
	oldID := old["id"].(string)
	// v2 stops giving PartnerCo the city; it keeps age_over_18, and Brand
	// keeps everything it had.
	v2 := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v1 + "/versions", Token: f.marketer}), 201).json(t)["id"].(string)
	items := contractBody(f)["items"].([]any)
	item(map[string]any{"items": items}, 0)["recipients"] = []string{f.brand}
	expect(t, a.do(req{Method: "PATCH", Path: "/v1/contracts/" + v2, Token: f.marketer, Body: map[string]any{"items": items}}), 200)
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v2 + "/publish", Token: f.marketer}), 200)
	a.joinContract(f.member, v2)
	if got := a.exchangeByID(f.member, oldID)["status"]; got != "superseded" {
		t.Fatalf("old exchange %v, want superseded", got)
	}

	var events []struct {
		Recipient, Withdrawn string
		DeleteBy             *string
	}
	if err := a.svc.db.Raw(`SELECT r.name AS recipient, payload->'data'->>'withdrawn_categories' AS withdrawn, payload->'data'->>'delete_by' AS delete_by
		FROM webhook_outbox o JOIN recipients r ON r.id = o.recipient_id
		WHERE event_type = 'exchange.superseded' ORDER BY r.name`).Scan(&events).Error; err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].Recipient != "Brand" || events[0].Withdrawn != "[]" || events[0].DeleteBy != nil ||
		events[1].Recipient != "PartnerCo" || events[1].Withdrawn != `["location.city"]` || events[1].DeleteBy == nil {
		t.Fatalf("superseded events: %+v", events)
	}

	mine := expect(t, a.do(req{Method: "GET", Path: "/v1/me/transparency", Token: f.member}), 200).json(t)
	var owed []string
	for _, e := range mine["exchanges"].([]any) {
		e := e.(map[string]any)
		for _, d := range e["deletions"].([]any) {
			owed = append(owed, e["id"].(string)+" "+d.(map[string]any)["recipient"].(string))
		}
	}
	if strings.Join(owed, ",") != oldID+" PartnerCo" {
		t.Fatalf("deletions owed: %v", owed)
	}
	expect(t, confirmDeletion(a, f.partner, oldID), 200)
	r := expect(t, confirmDeletion(a, token(t, app.RolePartner, f.brand), oldID), 409)
	if r.json(t)["code"] != "deletion-not-owed" {
		t.Fatalf("brand keeps its data under v2: %s", r.Body)
	}
}

func TestMembersCanReadTheirWholeAccessLogFromTheirStatement(t *testing.T) {
	t.Parallel()
	a, f, _, _ := withJoinedMember(t)
	for i := 0; i < 103; i++ {
		expect(t, a.do(req{Method: "GET", Path: "/v1/partner/members/alice/data?purpose=loyalty.personalised_offers", Token: f.partner}), 200)
	}
	mine := expect(t, a.do(req{Method: "GET", Path: "/v1/me/transparency", Token: f.member}), 200).json(t)
	cursor, _ := mine["access_log_next_cursor"].(string)
	if n := len(mine["access_log"].([]any)); n != 100 || cursor == "" {
		t.Fatalf("statement holds %d reads and cursor %q", n, cursor)
	}
	older := expect(t, a.do(req{Method: "GET", Path: "/v1/me/access-log?cursor=" + cursor, Token: f.member}), 200).json(t)
	if n := len(older["items"].([]any)); n != 3 {
		t.Fatalf("%d older reads, want 3", n)
	}
}

func TestAuditFiltersRefuseValuesThatCannotMatch(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	admin := token(t, app.RoleAdmin, "root")
	for _, tt := range []struct{ path, pointer string }{
		{"/v1/audit/webhook-deliveries?recipient_id=not-a-uuid", "/query/recipient_id"},
		{"/v1/audit/webhook-deliveries?cursor=garbage", "/query/cursor"},
		{"/v1/audit/overdue-deletions?cursor=garbage", "/query/cursor"},
		{"/v1/audit?cursor=garbage", "/query/cursor"},
		{"/v1/audit?from=yesterday", "/query/from"},
		{"/v1/audit?limit=0", "/query/limit"},
	} {
		problemAt(t, a.do(req{Method: "GET", Path: tt.path, Token: admin}), 422, tt.pointer)
	}
}

func TestErasureEndsConsentWipesDataAndNotifiesRecipients(t *testing.T) {
	t.Parallel()
	a, f, _, ex := withJoinedMember(t)
	path := "/v1/partner/members/alice/data?purpose=loyalty.personalised_offers"
	expect(t, a.do(req{Method: "GET", Path: path, Token: f.partner}), 200)

	export := expect(t, a.do(req{Method: "GET", Path: "/v1/me/export", Token: f.member}), 200).json(t)
	exchanges := export["exchanges"].([]any)
	if len(exchanges) != 1 || exchanges[0].(map[string]any)["receipt"] == "" || len(export["access_log"].([]any)) != 1 ||
		len(export["consent_log"].([]any)) != 1 ||
		export["member"].(map[string]any)["attributes"].(map[string]any)["location.city"] != "Oslo" {
		t.Fatalf("export: %v", export)
	}

	erased := expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: f.member}), 200).json(t)
	if erased["exchanges_ended"] != float64(1) || erased["recipients_notified"] != float64(2) {
		t.Fatalf("erasure: %v", erased)
	}
	for _, view := range memberViews {
		expect(t, a.do(req{Method: "GET", Path: view, Token: f.member}), 404)
	}
	expect(t, a.do(req{Method: "GET", Path: path, Token: f.partner}), 403)
	var events []string
	if err := a.svc.db.Raw(`SELECT event_type FROM webhook_outbox WHERE payload->'data'->>'member_id' = 'alice' ORDER BY created_at, event_type`).Scan(&events).Error; err != nil {
		t.Fatal(err)
	}
	if strings.Count(strings.Join(events, ","), "member.erasure_requested") != 2 {
		t.Fatalf("events: %v", events)
	}
	var attrs []string
	a.svc.db.Raw(`SELECT attributes::text FROM members WHERE id = 'alice' OR attributes <> '{}'`).Scan(&attrs)
	if len(attrs) != 0 {
		t.Fatalf("attributes kept after erasure: %s", attrs)
	}
	acks := expect(t, confirmDeletion(a, f.partner, ex["id"].(string)), 200).json(t)
	if acks["state"] != "deleted" {
		t.Fatalf("ack: %v", acks)
	}
}

func confirmDeletion(a *api, tok, exchangeID string) response {
	return a.do(req{Method: "POST", Path: "/v1/partner/deletions", Token: tok, Body: map[string]any{"exchange_id": exchangeID}})
}
