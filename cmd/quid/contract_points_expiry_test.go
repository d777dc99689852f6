package main

import (
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
)

// A contract may shorten the programme's points expiry for the points it
// pays: its lots expire at its shorter time (from the end of the period
// that earned them, as the programme's do), while another contract's lots
// keep the programme's; the value is part of the terms and their hash, and
// the statement says it in words.
func TestAContractsLotsExpireAtItsShorterPointsExpiry(t *testing.T) {
	t.Parallel()
	a := newAPI(t, pointsExpireAfter("P24M"))
	f := a.fixtures()
	short := contractBody(f)
	short["reward"] = map[string]any{"join_bonus": 0, "points_per_period": 10, "period": "PT1S", "max_periods": 2}
	short["points_expire_after"] = "P6M"
	shortID := a.publishContract(f, short)
	plain := contractBody(f)
	plain["title"] = "Plain club"
	plain["reward"] = map[string]any{"join_bonus": 0, "points_per_period": 10, "period": "PT1S", "max_periods": 2}
	plainID := a.publishContract(f, plain)

	c := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + shortID}), 200).json(t)
	if c["points_expire_after"] != "P6M" {
		t.Fatalf("contract shows points_expire_after %v, want P6M", c["points_expire_after"])
	}
	var canonical string
	if err := a.svc.db.Raw(`SELECT canonical_terms FROM contracts WHERE id = ?`, shortID).Scan(&canonical).Error; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(canonical, `"points_expire_after":"P6M"`) {
		t.Fatalf("canonical terms lack points_expire_after: %s", canonical)
	}
	st := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + shortID + "/transparency"}), 200).json(t)
	reward := st["reward"].(map[string]any)
	if reward["points_expire_after"] != "P6M" || !strings.Contains(reward["points_expiry_plain"].(string), "6 months") {
		t.Fatalf("statement reward %v lacks the contract's points expiry", reward)
	}
	html := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + shortID + "/transparency", Headers: map[string]string{"Accept": "text/html"}}), 200)
	if !strings.Contains(string(html.Body), "Points from this contract expire 6 months after they are credited") {
		t.Fatalf("HTML statement does not say the contract's points expiry:\n%s", html.Body)
	}

	// A contract that sets none tells the programme's expiry, in the
	// statement and in the notice, JSON and HTML.
	pst := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + plainID + "/transparency"}), 200).json(t)
	if words, _ := pst["reward"].(map[string]any)["points_expiry_plain"].(string); !strings.Contains(words, "24 months") {
		t.Errorf("the statement of a contract without its own expiry does not say the programme's: %q", words)
	}
	for _, path := range []string{"/transparency", "/notice"} {
		page := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + plainID + path, Headers: map[string]string{"Accept": "text/html"}}), 200)
		if !strings.Contains(string(page.Body), "Points expire 24 months after they are credited") {
			t.Errorf("the HTML %s does not say the programme's points expiry", path)
		}
	}
	notice := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + shortID + "/notice", Headers: map[string]string{"Accept": "text/html"}}), 200)
	if !strings.Contains(string(notice.Body), "Points from this contract expire 6 months after they are credited") {
		t.Error("the HTML notice does not say the contract's points expiry")
	}

	tok := token(t, app.RoleMember, "alice")
	a.enrol(tok)
	a.joinContract(tok, shortID)
	a.joinContract(tok, plainID)
	time.Sleep(2300 * time.Millisecond)
	if r := a.accrueNow(); r.Credits != 4 {
		t.Fatalf("accrual: %+v, want 4 credits", r)
	}
	var rows []struct {
		ContractID string
		Off        int
		N          int
	}
	if err := a.svc.db.Raw(`SELECT c.contract_id, count(*) AS n,
		count(*) FILTER (WHERE l.expires_at IS DISTINCT FROM c.period_end + CASE WHEN c.contract_id = ? THEN interval 'P6M' ELSE interval 'P24M' END) AS off
		FROM points_lots l JOIN ledger_entries c ON c.id = l.entry_id GROUP BY c.contract_id`, shortID).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("lots by contract: %+v, want two contracts' lots", rows)
	}
	for _, r := range rows {
		if r.N != 2 || r.Off != 0 {
			t.Errorf("contract %s: %d lots, %d not expiring at its expiry (P6M for %s, else P24M)", r.ContractID, r.N, r.Off, shortID)
		}
	}
	mustVerify(t, a.cfg.DatabaseURL)
}

// A contract may only shorten the programme's points expiry: a longer
// value (in any month: P31D is longer than P1M from 1 February) is 422
// naming the field, and nothing is written; as long is accepted.
func TestALongerThanProgrammePointsExpiryIsRefusedNamingTheField(t *testing.T) {
	t.Parallel()
	a := newAPI(t, pointsExpireAfter("P1M"))
	f := a.fixtures()
	for _, v := range []any{"P31D", "P2M", "P1Y", "PT0S", "P", "1 month", 30} {
		body := contractBody(f)
		body["points_expire_after"] = v
		r := a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: body})
		if r.Status != 422 {
			t.Errorf("points_expire_after %v: status %d, want 422\n%s", v, r.Status, r.Body)
			continue
		}
		p := problemOf(t, r)
		if len(p.Errors) == 0 || p.Errors[0].Pointer != "/points_expire_after" {
			t.Errorf("points_expire_after %v: errors %+v, want one at /points_expire_after", v, p.Errors)
		}
	}
	body := contractBody(f)
	body["points_expire_after"] = "P1M"
	id := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: body}), 201).json(t)["id"].(string)
	r := a.do(req{Method: "PATCH", Path: "/v1/contracts/" + id, Token: f.marketer, Body: map[string]any{"points_expire_after": "P5W"}})
	if r.Status != 422 || problemOf(t, r).Errors[0].Pointer != "/points_expire_after" {
		t.Fatalf("PATCH to P5W: %d %s, want 422 at /points_expire_after", r.Status, r.Body)
	}
	got := expect(t, a.do(req{Method: "PATCH", Path: "/v1/contracts/" + id, Token: f.marketer, Body: map[string]any{"points_expire_after": nil}}), 200).json(t)
	if got["points_expire_after"] != nil {
		t.Fatalf("PATCH null left points_expire_after %v", got["points_expire_after"])
	}
}
