package main

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/config"
)

// statsWorld is a contract whose points are worth 0.003 EUR, joined by
// members who each get a 7-point bonus that vests at once.
func statsWorld(t *testing.T, k int64, members int) (*api, fixtures, string, []string) {
	t.Helper()
	a := newAPI(t, func(c *config.Config) { c.StatsMinCount = k })
	f := a.fixtures()
	expect(t, a.do(req{Method: "PUT", Path: "/v1/programme", Token: f.admin, Body: programmeBody("EUR", "0.003")}), 200)
	body := contractBody(f)
	body["reward"] = map[string]any{"join_bonus": 7, "points_per_period": 0}
	id := a.publishContract(f, body)
	toks := make([]string, members)
	for i := range toks {
		toks[i] = token(t, app.RoleMember, fmt.Sprintf("stats-member-%d", i))
		a.enrol(toks[i])
		a.joinContract(toks[i], id)
	}
	return a, f, id, toks
}

func suppressedOf(m map[string]any) []string {
	var out []string
	for _, s := range m["suppressed"].([]any) {
		out = append(out, s.(string))
	}
	return out
}

func TestStatsShowNoCountBelowKAndNoneThatGivesOneAway(t *testing.T) {
	t.Parallel()
	a, f, id, toks := statsWorld(t, 3, 5)
	exchanges := expect(t, a.do(req{Method: "GET", Path: "/v1/me/exchanges", Token: toks[0]}), 200).json(t)["items"].([]any)
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + exchanges[0].(map[string]any)["id"].(string), Token: toks[0]}), 200)
	// 5 joins, 4 active, 1 cancelled: cancelled is below k = 3, and active
	// would give it away (5 - 4), as would the day's active and endings.
	st := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/stats", Token: f.marketer}), 200).json(t)
	if st["min_count"] != float64(3) || st["joins"] != float64(5) || st["cancelled"] != nil || st["active"] != nil {
		t.Fatalf("stats %v", st)
	}
	for _, name := range []string{"active", "cancelled", "expired", "terminated", "superseded", "erased"} {
		if !slices.Contains(suppressedOf(st), name) {
			t.Errorf("%s is withheld but not named in suppressed %v", name, st["suppressed"])
		}
	}
	series := st["series"].(map[string]any)
	items := series["items"].([]any)
	today := time.Now().UTC().Format(time.DateOnly)
	if series["step"] != "day" || len(items) != 1 || items[0].(map[string]any)["start"] != today+"T00:00:00Z" {
		t.Fatalf("series %v", series)
	}
	bucket := items[0].(map[string]any)
	if bucket["joins"] != float64(5) || bucket["endings"] != nil || bucket["active"] != nil {
		t.Fatalf("bucket %v: its endings (1) are below k, and its active gives them away", bucket)
	}
	// 35 points at 0.003 EUR are 0.105 EUR: 0.10 rounded half to even as
	// the exchange views round (not 0.11, as half up or a float would).
	if st["points_issued"] != float64(35) {
		t.Fatalf("points %v", st["points_issued"])
	}
	if v := st["points_value"].(map[string]any); v["currency"] != "EUR" || v["amount"] != "0.10" {
		t.Fatalf("points value %v", v)
	}
}

func TestStatsWithholdEverythingBelowKAndThePointsOfFewerThanKMembers(t *testing.T) {
	t.Parallel()
	a, f, id, _ := statsWorld(t, 3, 2) // k - 1 members
	st := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/stats", Token: f.marketer}), 200).json(t)
	for _, name := range []string{"joins", "active", "cancelled", "points_issued", "points_value"} {
		if st[name] != nil || !slices.Contains(suppressedOf(st), name) {
			t.Errorf("%s: %v (suppressed %v), want null and named", name, st[name], st["suppressed"])
		}
	}
	bucket := st["series"].(map[string]any)["items"].([]any)[0].(map[string]any)
	if bucket["joins"] != nil || bucket["active"] != nil || len(bucket["suppressed"].([]any)) != 3 {
		t.Fatalf("bucket %v", bucket)
	}
	// The k-th member makes the joins and the points visible (active is
	// then withheld: beside joins it would tell that every other status is 0).
	tok := token(t, app.RoleMember, "stats-member-k")
	a.enrol(tok)
	a.joinContract(tok, id)
	st = expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/stats", Token: f.marketer}), 200).json(t)
	if st["joins"] != float64(3) || st["active"] != nil || st["points_issued"] != float64(21) || st["points_value"].(map[string]any)["amount"] != "0.06" {
		t.Fatalf("stats at k: %v", st)
	}
}

func TestStatsOfAContractNobodyJoinedHaveNoSeries(t *testing.T) {
	t.Parallel()
	a, f, id, _ := statsWorld(t, 10, 0)
	st := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id + "/stats", Token: f.marketer}), 200).json(t)
	if s := st["series"].(map[string]any); s["step"] != nil || len(s["items"].([]any)) != 0 || st["joins"] != nil {
		t.Fatalf("stats %v", st)
	}
}
