package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
)

// A join bonus without vesting (null, absent or a zero duration) is
// available in the join itself, in every kind of join: the first of a
// contract (terms not cached yet), a later one, one with an Idempotency-Key
// and its replay. The ledger shows the pending credit and its vesting in the
// same join, and adds up to the balances.
func TestJoinBonusWithoutVestingIsAvailableAtOnce(t *testing.T) {
	t.Parallel()
	for _, vesting := range []any{nil, "PT0S", "P0D", "absent"} {
		t.Run(fmt.Sprint(vesting), func(t *testing.T) {
			t.Parallel()
			a := newAPI(t)
			f := a.fixtures()
			body := contractBody(f)
			r := body["reward"].(map[string]any)
			if vesting == "absent" {
				delete(r, "vesting")
			} else {
				r["vesting"] = vesting
			}
			id := a.publishContract(f, body)
			if got := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id}), 200).json(t)["terms"]; got != nil {
				if v := reward(got.(map[string]any))["vesting"]; v != nil {
					t.Fatalf("vesting %v is stored as %v, want null", vesting, v)
				}
			}
			join := func(member string, headers map[string]string, contract string) {
				t.Helper()
				res := a.do(req{Method: "POST", Path: "/v1/me/exchanges", Token: member, Headers: headers, Body: map[string]any{"contract_id": contract}})
				if res.Status != 201 && res.Status != 200 {
					t.Fatalf("join: %d %s", res.Status, res.Body)
				}
				if b, _ := res.json(t)["bonus"].(map[string]any); b != nil && b["state"] != "vested" {
					t.Fatalf("bonus after the join is %v, want vested", b)
				}
			}
			redeemAll := func(member string, want int64) {
				t.Helper()
				checkBalances(t, a, member, want, 0)
				expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: member,
					Body: map[string]any{"points": want, "reference": "right after joining"}}), 201)
				checkBalances(t, a, member, 0, 0)
			}
			members := make([]string, 4)
			for i := range members {
				members[i] = token(t, app.RoleMember, fmt.Sprintf("m%d", i))
				a.enrol(members[i])
			}
			join(members[0], nil, id) // the contract is not cached yet
			redeemAll(members[0], 200)
			join(members[1], nil, id) // cached
			redeemAll(members[1], 200)
			key := map[string]string{"Idempotency-Key": "join-" + fmt.Sprint(vesting)}
			join(members[2], key, id) // with a key, then its replay
			join(members[2], key, id)
			redeemAll(members[2], 200)

			// Re-consent: the bonus is not paid twice and stays available.
			join(members[3], nil, id)
			v2 := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + id + "/versions", Token: f.marketer}), 201).json(t)["id"].(string)
			expect(t, a.do(req{Method: "PATCH", Path: "/v1/contracts/" + v2, Token: f.marketer, Body: map[string]any{"title": "Coffee club 2"}}), 200)
			expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v2 + "/publish", Token: f.marketer}), 200)
			join(members[3], nil, v2)
			redeemAll(members[3], 200)
		})
	}
}

// A bonus carried over by a re-consent whose vesting time has passed (but no
// accrual run has vested it yet) vests in the re-consent itself.
func TestCarriedOverBonusDueAtReconsentVestsInTheJoin(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	body := contractBody(f)
	reward(body)["vesting"] = "PT1S"
	v1 := a.publishContract(f, body)
	a.enrol(f.member)
	if b := a.joinContract(f.member, v1)["bonus"].(map[string]any); b["state"] != "pending" {
		t.Fatalf("bonus with vesting PT1S: %v, want pending", b)
	}
	checkBalances(t, a, f.member, 0, 200)
	v2 := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v1 + "/versions", Token: f.marketer}), 201).json(t)["id"].(string)
	expect(t, a.do(req{Method: "PATCH", Path: "/v1/contracts/" + v2, Token: f.marketer, Body: map[string]any{"title": "Coffee club 2"}}), 200)
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v2 + "/publish", Token: f.marketer}), 200)
	time.Sleep(1100 * time.Millisecond)
	if b := a.joinContract(f.member, v2)["bonus"].(map[string]any); b["state"] != "vested" {
		t.Fatalf("carried bonus past its vesting time: %v, want vested", b)
	}
	checkBalances(t, a, f.member, 200, 0)
	expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: f.member, Body: map[string]any{"points": 200, "reference": "x"}}), 201)
}

// checkBalances asserts the member's balances and that the ledger entries of
// GET /v1/me/points add up to them (pending entries by kind).
func checkBalances(t *testing.T, a *api, member string, available, pending int64) {
	t.Helper()
	var p struct {
		Available, Pending int64
		Items              []struct {
			Kind   string
			Points int64
		}
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/me/points?limit=100", Token: member}), 200).decode(t, &p)
	if p.Available != available || p.Pending != pending {
		t.Fatalf("balances available=%d pending=%d, want %d and %d", p.Available, p.Pending, available, pending)
	}
	var avail, pend int64
	for _, e := range p.Items {
		switch e.Kind {
		case "bonus_pending":
			pend += e.Points
		case "bonus_vested":
			pend -= e.Points
			avail += e.Points
		case "bonus_voided":
			pend += e.Points
		default:
			avail += e.Points
		}
	}
	if avail != p.Available || pend != p.Pending {
		t.Fatalf("ledger adds up to available=%d pending=%d, balances say %d and %d: %+v", avail, pend, p.Available, p.Pending, p.Items)
	}
}
