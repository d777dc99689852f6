package main

import (
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
	"github.com/quidpro/quid/infra/config"
)

// rewardBody is a valid POST /v1/rewards body with extra fields set.
func rewardBody(extra map[string]any) map[string]any {
	b := map[string]any{"name": "Cinema ticket", "description": "One seat.\nAny film.", "image_url": "https://img.example.com/t.png", "cost": 100}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

func (a *api) createReward(f fixtures, extra map[string]any) string {
	a.t.Helper()
	return expect(a.t, a.do(req{Method: "POST", Path: "/v1/rewards", Token: f.marketer, Body: rewardBody(extra)}), 201).json(a.t)["id"].(string)
}

// fundedMembers enrols members who each have 500 available points (a join
// bonus that vests at once).
func (a *api) fundedMembers(f fixtures, names ...string) []string {
	a.t.Helper()
	body := contractBody(f)
	body["reward"] = map[string]any{"join_bonus": 500, "points_per_period": 0}
	contract := a.publishContract(f, body)
	toks := make([]string, len(names))
	for i, n := range names {
		toks[i] = token(a.t, app.RoleMember, n)
		a.enrol(toks[i])
		a.joinContract(toks[i], contract)
	}
	return toks
}

func (a *api) available(tok string) int64 {
	a.t.Helper()
	return int64(expect(a.t, a.do(req{Method: "GET", Path: "/v1/me/points", Token: tok}), 200).json(a.t)["available"].(float64))
}

func (a *api) stockLeft(id string) int64 {
	a.t.Helper()
	var n int64
	if err := a.svc.db.Raw(`SELECT stock_left FROM rewards WHERE id = ?`, id).Row().Scan(&n); err != nil {
		a.t.Fatal(err)
	}
	return n
}

// Issue 14: "stock never oversold with 100 concurrent redemptions of the
// last unit". A hundred members redeem the one unit left at one instant:
// exactly one gets it, the 99 others 409 reward-out-of-stock, and only the
// winner's points moved.
func TestCatalogueLastUnitGoesToExactlyOneOfAHundredConcurrentMembers(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	addr := a.listen(t)
	f := a.fixtures()
	const n = 100
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("last-unit-%03d", i)
	}
	toks := a.fundedMembers(f, names...)
	reward := a.createReward(f, map[string]any{"stock": 1, "cost": 120})
	out := releasedTogether(t, a, addr, n, func(i int) req {
		return req{Method: "POST", Path: "/v1/me/redemptions", Token: toks[i], Body: map[string]any{"reward_id": reward}}
	})
	got := statuses(out)
	if got[201] != 1 || got[409] != n-1 {
		t.Fatalf("outcomes %v, want one 201 and %d × 409", got, n-1)
	}
	spent := 0
	for i, o := range out {
		switch o.resp.Status {
		case 409:
			if code := problemCode(t, o.resp); code != "reward-out-of-stock" {
				t.Fatalf("refusal code %q", code)
			}
			if b := a.available(toks[i]); b != 500 {
				t.Fatalf("a refused member has %d points, want 500", b)
			}
		case 201:
			spent++
			if b := a.available(toks[i]); b != 380 {
				t.Fatalf("the winner has %d points, want 380", b)
			}
		}
	}
	if left := a.stockLeft(reward); left != 0 || spent != 1 {
		t.Fatalf("stock_left %d after %d redemptions", left, spent)
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/rewards/" + reward}), 404) // out of stock: unlisted
	mustVerify(t, a.cfg.DatabaseURL)
}

// The per-member limit holds under concurrency: one member sending twenty
// redemptions of a reward limited to two per member at once gets two; a
// cancellation frees a place again.
func TestCataloguePerMemberLimitHoldsUnderConcurrentRedemptions(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	addr := a.listen(t)
	f := a.fixtures()
	tok := a.fundedMembers(f, "limited")[0]
	reward := a.createReward(f, map[string]any{"per_member_limit": 2, "cost": 10})
	out := releasedTogether(t, a, addr, 20, func(i int) req {
		return req{Method: "POST", Path: "/v1/me/redemptions", Token: tok, Body: map[string]any{"reward_id": reward}}
	})
	got := statuses(out)
	if got[201] != 2 || got[409] != 18 {
		t.Fatalf("outcomes %v, want 2 × 201 and 18 × 409", got)
	}
	var first string
	for _, o := range out {
		if o.resp.Status == 409 {
			if code := problemCode(t, o.resp); code != "reward-limit-reached" {
				t.Fatalf("refusal code %q", code)
			}
		} else if first == "" {
			first = o.resp.json(t)["redemption"].(map[string]any)["id"].(string)
		}
	}
	if b := a.available(tok); b != 480 {
		t.Fatalf("available %d, want 480", b)
	}
	expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions/" + first + "/cancel", Token: tok}), 200)
	expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: tok, Body: map[string]any{"reward_id": reward}}), 201)
	if p := problemOf(t, expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: tok,
		Body: map[string]any{"reward_id": reward}}), 409)); p.Code != "reward-limit-reached" {
		t.Fatalf("code %q", p.Code)
	}
	mustVerify(t, a.cfg.DatabaseURL)
}

// Cancelling a redemption within its window returns its points to the
// lots it took them from (so available, the lots and the postings agree),
// its stock unit and its code stays listed as cancelled; a second cancel
// is 409 redemption-already-cancelled and moves nothing; after the window
// it is 409 cancel-window-closed. The Idempotency-Key replays the first
// answer, code and all.
func TestCatalogueCancelReturnsPointsStockAndPostingsSumToZero(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	tok := a.fundedMembers(f, "canceller")[0]
	reward := a.createReward(f, map[string]any{"stock": 5, "cost": 200})
	redeem := req{Method: "POST", Path: "/v1/me/redemptions", Token: tok, Headers: map[string]string{"Idempotency-Key": "gift-1"},
		Body: map[string]any{"reward_id": reward}}
	r := expect(t, a.do(redeem), 201).json(t)
	rd := r["redemption"].(map[string]any)
	replay := expect(t, a.do(redeem), 201)
	if replay.Header.Get("Idempotent-Replayed") != "true" || replay.json(t)["redemption"].(map[string]any)["code"] != rd["code"] {
		t.Fatalf("the retried request did not replay the first answer: %s", replay.Body)
	}
	if a.available(tok) != 300 || a.stockLeft(reward) != 4 {
		t.Fatalf("after redeeming: available %d, stock_left %d", a.available(tok), a.stockLeft(reward))
	}
	id := rd["id"].(string)
	c := expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions/" + id + "/cancel", Token: tok}), 200).json(t)
	if c["redemption"].(map[string]any)["status"] != "cancelled" || c["balance"].(map[string]any)["available"].(float64) != 500 {
		t.Fatalf("cancel answered %v", c)
	}
	if a.available(tok) != 500 || a.stockLeft(reward) != 5 {
		t.Fatalf("after cancelling: available %d, stock_left %d", a.available(tok), a.stockLeft(reward))
	}
	var sum, redeemed, lotsLeft int64
	if err := a.svc.db.Raw(`SELECT coalesce(sum(p.amount), 0), coalesce(sum(p.amount) FILTER (WHERE p.account = 'redeemed'), 0)
		FROM ledger_postings p JOIN reward_redemptions x ON p.entry_id IN (x.entry_id, x.reversal_id) WHERE x.id = ?`, id).Row().Scan(&sum, &redeemed); err != nil {
		t.Fatal(err)
	}
	if sum != 0 || redeemed != 0 {
		t.Fatalf("the redemption and its reversal post %d in all, %d to redeemed; want 0 and 0", sum, redeemed)
	}
	if err := a.svc.db.Raw(`SELECT sum(l.remaining) FROM points_lots l JOIN ledger_entries c ON c.id = l.entry_id WHERE c.member_id = 'canceller'`).
		Row().Scan(&lotsLeft); err != nil || lotsLeft != 500 {
		t.Fatalf("lots hold %d (%v), want 500", lotsLeft, err)
	}
	if p := problemOf(t, expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions/" + id + "/cancel", Token: tok}), 409)); p.Code != "redemption-already-cancelled" {
		t.Fatalf("second cancel: %q", p.Code)
	}
	if a.available(tok) != 500 || a.stockLeft(reward) != 5 {
		t.Fatal("the second cancel moved something")
	}
	// Another member cannot see or cancel it.
	other := a.fundedMembers(f, "stranger")[0]
	expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions/" + id + "/cancel", Token: other}), 404)
	// Out of the window (P14D by default).
	r2 := expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: tok, Body: map[string]any{"reward_id": reward}}), 201).json(t)
	id2 := r2["redemption"].(map[string]any)["id"].(string)
	if err := a.svc.db.Exec(`UPDATE reward_redemptions SET created_at = created_at - interval '14 days 1 second' WHERE id = ?`, id2).Error; err != nil {
		t.Fatal(err)
	}
	if p := problemOf(t, expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions/" + id2 + "/cancel", Token: tok}), 409)); p.Code != "cancel-window-closed" {
		t.Fatalf("late cancel: %q", p.Code)
	}
	var list struct {
		Items []struct {
			ID, Code, Status string
			RewardName       string `json:"reward_name"`
		}
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/me/redemptions", Token: tok}), 200).decode(t, &list)
	// Newest first: id2 was backdated past the window, so the cancelled one leads.
	if len(list.Items) != 2 || list.Items[1].ID != id2 || list.Items[0].Status != "cancelled" || list.Items[0].Code != rd["code"] || list.Items[1].RewardName != "Cinema ticket" {
		t.Fatalf("redemptions listed: %+v", list.Items)
	}
	var other2 struct{ Items []any }
	expect(t, a.do(req{Method: "GET", Path: "/v1/me/redemptions", Token: other}), 200).decode(t, &other2)
	if len(other2.Items) != 0 {
		t.Fatal("another member sees the redemptions")
	}
	// The export (portability) carries every redemption with its code.
	var export struct {
		Redemptions []struct{ ID, Code, Status string }
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/me/export", Token: tok}), 200).decode(t, &export)
	if len(export.Redemptions) != 2 || export.Redemptions[0].Code != rd["code"] || export.Redemptions[1].ID != id2 {
		t.Errorf("the export's redemptions: %+v, want both with their codes", export.Redemptions)
	}
	mustVerify(t, a.cfg.DatabaseURL)
}

// A zero window (QUID_REDEMPTION_CANCEL_WINDOW=PT0S) means no redemption
// can be cancelled.
func TestCatalogueZeroCancelWindowRefusesEveryCancel(t *testing.T) {
	t.Parallel()
	a := newAPI(t, func(c *config.Config) { c.RedemptionCancelWindow = domain.Duration{} })
	f := a.fixtures()
	tok := a.fundedMembers(f, "no-regrets")[0]
	reward := a.createReward(f, nil)
	id := expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: tok, Body: map[string]any{"reward_id": reward}}), 201).
		json(t)["redemption"].(map[string]any)["id"].(string)
	if p := problemOf(t, expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions/" + id + "/cancel", Token: tok}), 409)); p.Code != "cancel-window-closed" {
		t.Fatalf("code %q", p.Code)
	}
}

// GET /v1/rewards lists only what can be redeemed now: not retired, valid
// now, in stock; a marketer sees everything; a hidden reward is 404 by id
// to anyone else, and redeeming it is the precise 409.
func TestCatalogueListHidesRetiredOutOfStockAndNotValidRewards(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	tok := a.fundedMembers(f, "browser")[0]
	future := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	past := time.Now().Add(-48 * time.Hour).UTC().Format(time.RFC3339)
	shown := a.createReward(f, map[string]any{"name": "shown", "valid_from": past})
	shown2 := a.createReward(f, map[string]any{"name": "shown too", "stock": 3, "valid_until": future})
	retired := a.createReward(f, map[string]any{"name": "retired"})
	expect(t, a.do(req{Method: "POST", Path: "/v1/rewards/" + retired + "/retire", Token: f.marketer}), 200)
	expect(t, a.do(req{Method: "POST", Path: "/v1/rewards/" + retired + "/retire", Token: f.marketer}), 200) // changes nothing
	empty := a.createReward(f, map[string]any{"name": "empty", "stock": 0})
	later := a.createReward(f, map[string]any{"name": "later", "valid_from": future})
	expired := a.createReward(f, map[string]any{"name": "over", "valid_from": "2020-01-01T00:00:00Z", "valid_until": past})
	ids := func(tok string) []string {
		var out []string
		cursor := ""
		for {
			path := "/v1/rewards?limit=1"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			var page struct {
				Items      []struct{ ID string }
				NextCursor string `json:"next_cursor"`
			}
			expect(t, a.do(req{Method: "GET", Path: path, Token: tok}), 200).decode(t, &page)
			for _, it := range page.Items {
				out = append(out, it.ID)
			}
			if page.NextCursor == "" {
				return out
			}
			cursor = page.NextCursor
		}
	}
	if got := ids(""); strings.Join(got, ",") != shown2+","+shown {
		t.Fatalf("public catalogue %v, want [%s %s]", got, shown2, shown)
	}
	if got := ids(tok); len(got) != 2 {
		t.Fatalf("a member sees %v", got)
	}
	if got := ids(f.marketer); len(got) != 6 {
		t.Fatalf("a marketer sees %d rewards, want 6", len(got))
	}
	for id, code := range map[string]string{retired: "reward-retired", empty: "reward-out-of-stock", later: "reward-not-valid-now", expired: "reward-not-valid-now"} {
		expect(t, a.do(req{Method: "GET", Path: "/v1/rewards/" + id}), 404)
		expect(t, a.do(req{Method: "GET", Path: "/v1/rewards/" + id, Token: f.marketer}), 200)
		if p := problemOf(t, expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: tok, Body: map[string]any{"reward_id": id}}), 409)); p.Code != code {
			t.Fatalf("redeeming %s: %q, want %q", id, p.Code, code)
		}
	}
	if a.available(tok) != 500 {
		t.Fatal("a refused redemption moved points")
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/rewards/" + shown}), 200)
	// Unknown and malformed ids.
	expect(t, a.do(req{Method: "GET", Path: "/v1/rewards/0b6f0c2e-3c1e-4a8e-9a64-3f0e4c1b2a7d"}), 404)
	expect(t, a.do(req{Method: "GET", Path: "/v1/rewards/nope"}), 404)
	expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: tok, Body: map[string]any{"reward_id": "0b6f0c2e-3c1e-4a8e-9a64-3f0e4c1b2a7d"}}), 404)
	problemAt(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: tok, Body: map[string]any{"reward_id": "x"}}), 422, "/reward_id")
	problemAt(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: tok, Body: map[string]any{"reward_id": shown, "points": 1}}), 422, "/points")
	// Too few points: 422 insufficient-points, nothing moves.
	dear := a.createReward(f, map[string]any{"cost": 501, "stock": 1})
	problemAt(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: tok, Body: map[string]any{"reward_id": dear}}), 422, "/reward_id")
	if a.stockLeft(dear) != 1 || a.available(tok) != 500 {
		t.Fatal("a refused redemption moved stock or points")
	}
}

// PATCH changes what it is sent, keeps the rest, counts held units in a
// new stock (never below them: 409 stock-below-redeemed), clears optional
// fields with null and refuses null for the others; a retired reward is
// 409 reward-retired.
func TestCataloguePatchKeepsStockAboveWhatRedemptionsHold(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	toks := a.fundedMembers(f, "p1", "p2")
	reward := a.createReward(f, map[string]any{"stock": 5, "cost": 50})
	for _, tok := range toks {
		expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: tok, Body: map[string]any{"reward_id": reward}}), 201)
	}
	path := "/v1/rewards/" + reward
	p := problemOf(t, expect(t, a.do(req{Method: "PATCH", Path: path, Token: f.marketer, Body: map[string]any{"stock": 1}}), 409))
	if p.Code != "stock-below-redeemed" {
		t.Fatalf("code %q", p.Code)
	}
	r := expect(t, a.do(req{Method: "PATCH", Path: path, Token: f.marketer, Body: map[string]any{"stock": 2, "name": "Renamed"}}), 200).json(t)
	if r["stock_left"].(float64) != 0 || r["name"] != "Renamed" || r["cost"].(float64) != 50 {
		t.Fatalf("patched %v", r)
	}
	r = expect(t, a.do(req{Method: "PATCH", Path: path, Token: f.marketer, Body: map[string]any{"stock": nil, "image_url": nil}}), 200).json(t)
	if r["stock"] != nil || r["stock_left"] != nil || r["image_url"] != nil {
		t.Fatalf("null did not clear: %v", r)
	}
	r = expect(t, a.do(req{Method: "PATCH", Path: path, Token: f.marketer, Body: map[string]any{"stock": 10}}), 200).json(t)
	if r["stock_left"].(float64) != 8 {
		t.Fatalf("stock_left %v, want 8 (10 less the 2 held)", r["stock_left"])
	}
	for _, field := range []string{"name", "description", "cost"} {
		problemAt(t, a.do(req{Method: "PATCH", Path: path, Token: f.marketer, Body: map[string]any{field: nil}}), 422, "/"+field)
	}
	problemAt(t, a.do(req{Method: "PATCH", Path: path, Token: f.marketer, Body: map[string]any{"valid_from": "2030-01-01T00:00:00Z", "valid_until": "2029-01-01T00:00:00Z"}}), 422, "/valid_until")
	expect(t, a.do(req{Method: "POST", Path: path + "/retire", Token: f.marketer}), 200)
	if p := problemOf(t, expect(t, a.do(req{Method: "PATCH", Path: path, Token: f.marketer, Body: map[string]any{"cost": 1}}), 409)); p.Code != "reward-retired" {
		t.Fatalf("code %q", p.Code)
	}
	mustVerify(t, a.cfg.DatabaseURL)
}

// Hostile values in every field of a reward are refused with a 422 naming
// the field, and nothing is written.
func TestCatalogueRefusesHostileRewardFields(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	cases := []struct {
		field string
		value any
	}{
		{"name", ""}, {"name", "   "}, {"name", strings.Repeat("n", 201)}, {"name", "a\u202eb"}, {"name", "a\x00b"}, {"name", "a\nb"},
		{"name", 7},
		{"description", strings.Repeat("d", 2001)}, {"description", "x\u2066y"}, {"description", "bell\a"},
		{"image_url", "http://img.example.com/a.png"}, {"image_url", "javascript:alert(1)"}, {"image_url", "https://u:p@x.example/a"},
		{"image_url", "https://x.example/a b"}, {"image_url", "https://x.example/#f"}, {"image_url", "https://" + strings.Repeat("a", 2000)},
		{"image_url", "//x.example/a"}, {"image_url", 3},
		{"cost", 0}, {"cost", -1}, {"cost", 1.5}, {"cost", "10"}, {"cost", 1e13}, {"cost", "99999999999999999999"}, {"cost", nil},
		{"stock", -1}, {"stock", 1_000_000_001}, {"stock", 2.5}, {"stock", true},
		{"per_member_limit", 0}, {"per_member_limit", -3}, {"per_member_limit", 1_000_001},
		{"valid_from", "tomorrow"}, {"valid_from", "2027-01-01"}, {"valid_from", "2027-01-01T00:00:00"}, {"valid_until", 17},
		{"surprise", 1},
	}
	for _, c := range cases {
		body := rewardBody(map[string]any{c.field: c.value})
		r := a.do(req{Method: "POST", Path: "/v1/rewards", Token: f.marketer, Body: body})
		if r.Status != 422 {
			t.Errorf("%s = %q: %d %s", c.field, fmt.Sprint(c.value), r.Status, r.Body)
			continue
		}
		problemAt(t, r, 422, "/"+c.field)
	}
	// A huge integer sent as raw JSON.
	problemAt(t, a.do(req{Method: "POST", Path: "/v1/rewards", Token: f.marketer, Body: `{"name":"x","cost":99999999999999999999999}`}), 422, "/cost")
	var n int
	if err := a.svc.db.Raw(`SELECT count(*) FROM rewards`).Row().Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rewards written (%v)", n, err)
	}
	// The database refuses a negative stock whatever a writer does.
	id := a.createReward(f, map[string]any{"stock": 1})
	if err := a.svc.db.Exec(`UPDATE rewards SET stock_left = -1 WHERE id = ?`, id).Error; err == nil {
		t.Fatal("the database took a negative stock")
	}
}

// Codes are 128 random bits in 26 base32 characters, never repeated.
func TestRedemptionCodesAreUniqueAnd128BitRandom(t *testing.T) {
	t.Parallel()
	shape := regexp.MustCompile(`^[A-Z2-7]{26}$`)
	seen := map[string]bool{}
	var ones [26 * 5]int
	const n = 20000
	for range n {
		c, err := app.NewRedemptionCode()
		if err != nil {
			t.Fatal(err)
		}
		if !shape.MatchString(c) || seen[c] {
			t.Fatalf("code %q (seen before: %v)", c, seen[c])
		}
		seen[c] = true
		for i, ch := range c {
			v := strings.IndexRune("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ch)
			for b := range 5 {
				if v>>(4-b)&1 == 1 {
					ones[i*5+b]++
				}
			}
		}
	}
	// Every one of the first 128 bits is set about half the time (the last
	// two bits of the 26th character are padding, always 0).
	for i := range 128 {
		if ones[i] < n*45/100 || ones[i] > n*55/100 {
			t.Fatalf("bit %d set %d times of %d: not random", i, ones[i], n)
		}
	}
	a := newAPI(t)
	f := a.fixtures()
	tok := a.fundedMembers(f, "collector")[0]
	reward := a.createReward(f, map[string]any{"cost": 1})
	var codes atomic.Int32
	got := map[string]bool{}
	for range 20 {
		c := expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: tok, Body: map[string]any{"reward_id": reward}}), 201).
			json(t)["redemption"].(map[string]any)["code"].(string)
		if got[c] || !shape.MatchString(c) {
			t.Fatalf("code %q", c)
		}
		got[c] = true
		codes.Add(1)
	}
}

// FEFO under concurrent redemptions and expiry: while the expiry job runs
// again and again, redemptions of a reward take the member's points from
// the lots that expire first; every lot is consumed at most once (what it
// gave and what expired of it never exceed it), expiry never takes points
// a redemption took, and the ledger verifies.
func TestCatalogueRedemptionsAndExpiryRacingKeepFEFOAndEveryLotOnce(t *testing.T) {
	t.Parallel()
	a := newAPI(t, pointsExpireAfter("P30D"))
	addr := a.listen(t)
	f := a.fixtures()
	a.secondLots(f, 6, "racer")
	a.spreadExpiry("racer", 2) // 20 points are past their time, 40 are not
	tok := token(t, app.RoleMember, "racer")
	reward := a.createReward(f, map[string]any{"cost": 15})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				a.accrueNow()
			}
		}
	}()
	out := releasedTogether(t, a, addr, 6, func(int) req {
		return req{Method: "POST", Path: "/v1/me/redemptions", Token: tok, Body: map[string]any{"reward_id": reward}}
	})
	close(stop)
	<-done
	got := statuses(out)
	// 40 unexpired points pay for two redemptions of 15; the rest are 422.
	if got[201] != 2 || got[422] != 4 {
		t.Fatalf("outcomes %v, want 2 × 201 and 4 × 422", got)
	}
	var overdrawn, expiredTaken int
	if err := a.svc.db.Raw(`SELECT count(*) FILTER (WHERE taken + l.remaining + l.expired <> l.points + restored) FROM points_lots l
		LEFT JOIN LATERAL (SELECT coalesce(sum(k.points) FILTER (WHERE e.kind <> 'expiry'), 0) AS taken, coalesce(sum(k.restored), 0) AS restored
			FROM points_lot_consumptions k JOIN ledger_entries e ON e.id = k.entry_id WHERE k.lot_id = l.entry_id) k ON true`).Row().Scan(&overdrawn); err != nil {
		t.Fatal(err)
	}
	if err := a.svc.db.Raw(`SELECT count(*) FROM points_lot_consumptions k JOIN ledger_entries e ON e.id = k.entry_id JOIN points_lots l ON l.entry_id = k.lot_id
		WHERE e.kind = 'redemption' AND l.expires_at <= e.created_at`).Row().Scan(&expiredTaken); err != nil {
		t.Fatal(err)
	}
	if overdrawn != 0 || expiredTaken != 0 {
		t.Fatalf("%d lots gave out other than they held; %d redemptions took expired points", overdrawn, expiredTaken)
	}
	// FEFO: the first redemption took from the lot expiring first among the unexpired.
	var firstLotRank int
	if err := a.svc.db.Raw(`WITH ranked AS (SELECT l.entry_id, rank() OVER (ORDER BY l.expires_at) AS r FROM points_lots l WHERE l.expires_at > now())
		SELECT min(r.r) FROM points_lot_consumptions k JOIN ledger_entries e ON e.id = k.entry_id JOIN ranked r ON r.entry_id = k.lot_id WHERE e.kind = 'redemption'`).
		Row().Scan(&firstLotRank); err != nil || firstLotRank != 1 {
		t.Fatalf("redemptions began at the lot ranked %d (%v), want the first to expire", firstLotRank, err)
	}
	if b := a.available(tok); b != 10 {
		t.Fatalf("available %d, want 10", b)
	}
	mustVerify(t, a.cfg.DatabaseURL)
}
