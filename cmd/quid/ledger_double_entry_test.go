package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
)

// doubleEntryMix runs, through the API, every movement of points there is
// today: a join bonus that vests, one voided by an early cancel, period
// credits, a redemption, a reversal (written as the catalogue's cancel will
// write it: no route writes one yet), and an erasure of a member who had
// points. It returns the API and the tokens of the members still enrolled.
func doubleEntryMix(t *testing.T) (*api, map[string]string) {
	t.Helper()
	a := newAPI(t)
	f := a.fixtures()
	ctx := context.Background()
	vesting := contractBody(f)
	vesting["reward"] = map[string]any{"join_bonus": 100, "vesting": "PT1S", "points_per_period": 10, "period": "PT1S", "max_periods": 3}
	vests := a.publishContract(f, vesting)
	slow := contractBody(f)
	slow["title"] = "Slow club"
	slow["reward"] = map[string]any{"join_bonus": 40, "vesting": "PT1H", "points_per_period": 5, "period": "PT1S"}
	voids := a.publishContract(f, slow)
	tok := map[string]string{}
	for _, m := range []string{"ana", "ben", "cleo"} {
		tok[m] = token(t, app.RoleMember, m)
		a.enrol(tok[m])
		a.joinContract(tok[m], vests)
	}
	benSlow := a.joinContract(tok["ben"], voids)["id"].(string)
	// dana's slow bonus stays pending to the end.
	tok["dana"] = token(t, app.RoleMember, "dana")
	a.enrol(tok["dana"])
	a.joinContract(tok["dana"], voids)
	time.Sleep(1500 * time.Millisecond)
	if _, err := a.svc.accrual.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	// ben cancels before the slow bonus vests: pending -40, voided +40.
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + benSlow, Token: tok["ben"]}), 200)
	expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: tok["ana"], Body: map[string]any{"points": 60, "reference": "cinema"}}), 201)
	db, err := sql.Open("pgx", a.cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		`INSERT INTO ledger_entries (member_id, kind, points, created_at) VALUES ('ana', 'reversal', 25, now())`,
		`UPDATE members SET available = available + 25 WHERE id = 'ana'`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: tok["cleo"]}), 200)
	delete(tok, "cleo")
	time.Sleep(1100 * time.Millisecond)
	if _, err := a.svc.accrual.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	return a, tok
}

// Every movement of points is a transaction whose postings sum to zero
// across the members' and the programme's accounts (DESIGN.md rule 12):
// after joins, vesting, a void, credits, a redemption, a reversal and an
// erasure, every entry has postings, each entry's sum to zero, and quid
// verify finds nothing wrong.
func TestEveryLedgerTransactionSumsToZeroAfterEveryKindOfMovement(t *testing.T) {
	t.Parallel()
	a, _ := doubleEntryMix(t)
	db, err := sql.Open("pgx", a.cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT l.kind, count(DISTINCT l.id), count(p.entry_id), count(DISTINCT l.id) FILTER (WHERE s.total <> 0),
		count(DISTINCT l.id) FILTER (WHERE l.member_id LIKE 'erased:%')
		FROM ledger_entries l
		LEFT JOIN ledger_postings p ON p.entry_id = l.id
		LEFT JOIN (SELECT entry_id, sum(amount) AS total FROM ledger_postings GROUP BY entry_id) s ON s.entry_id = l.id
		GROUP BY l.kind`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[string]int{}
	erased := 0
	for rows.Next() {
		var kind string
		var entries, postings, unbalanced, ofErased int
		if err := rows.Scan(&kind, &entries, &postings, &unbalanced, &ofErased); err != nil {
			t.Fatal(err)
		}
		seen[kind] = entries
		erased += ofErased
		if postings != 2*entries {
			t.Errorf("%d %s entries have %d postings, want two each", entries, kind, postings)
		}
		if unbalanced != 0 {
			t.Errorf("%d of %d %s entries have postings that do not sum to zero", unbalanced, entries, kind)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"bonus_pending", "bonus_vested", "bonus_voided", "period_credit", "redemption", "reversal"} {
		if seen[kind] == 0 {
			t.Errorf("the scripted mix wrote no %s entry: %v", kind, seen)
		}
	}
	if erased == 0 {
		t.Error("the erased member's entries are not in the ledger")
	}
	// The whole ledger sums to zero too: the programme's issued account
	// is minus what members hold, redeemed and lost.
	var total, issued, held int64
	if err := db.QueryRow(`SELECT (SELECT sum(amount) FROM ledger_postings), (SELECT sum(amount) FROM ledger_postings WHERE account = 'issued'),
		(SELECT sum(available + pending) FROM members)`).Scan(&total, &issued, &held); err != nil {
		t.Fatal(err)
	}
	if total != 0 || issued >= 0 || -issued < held {
		t.Errorf("the ledger sums to %d with issued %d against %d held by members", total, issued, held)
	}
	t.Logf("\n%s", mustVerify(t, a.cfg.DatabaseURL))
}

// A member who adds up the postings shown for each balance in their
// history gets that balance (DESIGN.md rule 12; issue 14: summing the
// entries' points gave 230 against 130, because vesting moves points
// between two balances).
func TestMemberHistoryPostingsAddUpToEachBalance(t *testing.T) {
	t.Parallel()
	a, tok := doubleEntryMix(t)
	for member, tk := range tok {
		var available, pending int64
		sums := map[string]int64{}
		var points int64
		kinds := map[string]bool{}
		cursor := ""
		for page := 0; ; page++ {
			path := "/v1/me/points?limit=2"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			var body struct {
				Available, Pending int64
				Items              []struct {
					Kind     string
					Points   int64
					Postings []struct {
						Account string
						Amount  int64
					}
				}
				NextCursor string `json:"next_cursor"`
			}
			if err := json.Unmarshal(expect(t, a.do(req{Method: "GET", Path: path, Token: tk}), 200).Body, &body); err != nil {
				t.Fatal(err)
			}
			available, pending = body.Available, body.Pending
			for _, e := range body.Items {
				kinds[e.Kind] = true
				points += e.Points
				if len(e.Postings) == 0 {
					t.Errorf("%s: a %s entry of %d points shows no postings", member, e.Kind, e.Points)
				}
				for _, p := range e.Postings {
					sums[p.Account] += p.Amount
				}
			}
			if cursor = body.NextCursor; cursor == "" || page > 100 {
				break
			}
		}
		if member == "dana" && pending == 0 {
			t.Errorf("dana's bonus is not pending: %d", pending)
		}
		if sums["available"] != available || sums["pending"] != pending || len(sums) > 2 {
			t.Errorf("%s: postings sum to %v, balances are available %d, pending %d", member, sums, available, pending)
		}
		if kinds["bonus_vested"] && points == available+pending {
			t.Errorf("%s: the entries' points (%d) add up to the balances although a bonus vested; the test shows nothing", member, points)
		}
		t.Logf("%s: available %d, pending %d from postings %v (entries' points add up to %d)", member, available, pending, sums, points)

		// The member statement tells the same account, in figures and in
		// words, as GET /v1/me.
		mine := expect(t, a.do(req{Method: "GET", Path: "/v1/me/transparency", Token: tk}), 200).json(t)
		pts, _ := mine["points"].(map[string]any)
		bal, _ := pts["balance"].(map[string]any)
		if bal["available"] != float64(sums["available"]) || bal["pending"] != float64(sums["pending"]) {
			t.Errorf("%s: the member statement shows balances %v, the postings sum to %v", member, bal, sums)
		}
		me := expect(t, a.do(req{Method: "GET", Path: "/v1/me", Token: tk}), 200).json(t)
		if !reflect.DeepEqual(pts["expiring"], me["expiring"]) {
			t.Errorf("%s: the member statement shows expiring %v, GET /v1/me %v", member, pts["expiring"], me["expiring"])
		}
		if words, _ := pts["how_it_adds_up"].(string); !strings.Contains(words, "postings") || !strings.Contains(words, "expire first") {
			t.Errorf("%s: the member statement does not explain the ledger: %q", member, words)
		}
	}
	// The redemption's own response shows its posting too.
	r := expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: tok["ana"], Body: map[string]any{"points": 1, "reference": "stamp"}}), 201)
	var red struct {
		Entry struct {
			Postings []struct {
				Account string
				Amount  int64
			}
		}
	}
	if err := json.Unmarshal(r.Body, &red); err != nil {
		t.Fatal(err)
	}
	if len(red.Entry.Postings) != 1 || red.Entry.Postings[0].Account != "available" || red.Entry.Postings[0].Amount != -1 {
		t.Errorf("the redemption's postings are %+v, want available -1", red.Entry.Postings)
	}
}
