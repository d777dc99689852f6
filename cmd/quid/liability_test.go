package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
)

type liabilityMonth struct {
	Month  *string
	Points int64
	Value  *string
}

type liabilityBalanceView struct {
	Points, Available, Pending int64
	Value                      *string
}

type liabilityPointsView struct {
	Points int64
	Value  *string
}

type liabilityView struct {
	From, To    string
	AsOf        string `json:"as_of"`
	Provisional bool
	PointValue  *struct{ Currency, Amount string } `json:"point_value"`
	RollForward struct {
		Opening liabilityBalanceView
		Issued  struct {
			Points     int64
			Value      *string
			ByContract []struct {
				ContractID *string `json:"contract_id"`
				Title      string
				Points     int64
				Value      *string
			} `json:"by_contract"`
		}
		Vested, Voided, Redeemed, Expired liabilityPointsView
		Closing                           liabilityBalanceView
	} `json:"roll_forward"`
	Outstanding struct {
		ByVintage []liabilityMonth `json:"by_vintage"`
		ByExpiry  []liabilityMonth `json:"by_expiry"`
	}
}

func reportPath(from, to time.Time, extra string) string {
	return "/v1/reports/points-liability?from=" + url.QueryEscape(from.Format(time.RFC3339Nano)) +
		"&to=" + url.QueryEscape(to.Format(time.RFC3339Nano)) + extra
}

func (a *api) liability(admin string, from, to time.Time) liabilityView {
	a.t.Helper()
	var out liabilityView
	expect(a.t, a.do(req{Method: "GET", Path: reportPath(from, to, ""), Token: admin}), 200).decode(a.t, &out)
	return out
}

// ledgerAccounts sums the postings of every entry written in [from, to)
// by account, straight from ledger_postings (what quid verify's
// balance-equals-postings rule sums).
func (a *api) ledgerAccounts(from, to time.Time) map[string]int64 {
	a.t.Helper()
	var rows []struct {
		Account string
		Total   int64
	}
	if err := a.svc.db.Raw(`SELECT p.account, sum(p.amount)::bigint AS total FROM ledger_postings p JOIN ledger_entries l ON l.id = p.entry_id
		WHERE l.created_at >= ? AND l.created_at < ? GROUP BY p.account`, from, to).Scan(&rows).Error; err != nil {
		a.t.Fatal(err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		out[r.Account] = r.Total
	}
	return out
}

func monthsSum(ms []liabilityMonth) int64 {
	var n int64
	for _, m := range ms {
		n += m.Points
	}
	return n
}

// checkLiability compares one report with the ledger's own sums: opening
// and closing are the members' postings before from and before to, every
// movement is its account's postings in [from, to), the roll-forward adds
// up, and both splits of what is outstanding sum to the closing available.
func (a *api) checkLiability(r liabilityView, from, to time.Time) {
	a.t.Helper()
	epoch := time.Unix(0, 0)
	before, until, in := a.ledgerAccounts(epoch, from), a.ledgerAccounts(epoch, to), a.ledgerAccounts(from, to)
	rf := r.RollForward
	got := fmt.Sprint(rf.Opening.Available, rf.Opening.Pending, rf.Closing.Available, rf.Closing.Pending,
		rf.Issued.Points, rf.Voided.Points, rf.Redeemed.Points, rf.Expired.Points)
	want := fmt.Sprint(before["available"], before["pending"], until["available"], until["pending"],
		-in["issued"], in["voided"], in["redeemed"], in["expired"])
	if got != want {
		a.t.Errorf("[%s, %s): report opening/closing available, pending, issued, voided, redeemed, expired %s; ledger %s", r.From, r.To, got, want)
	}
	if rf.Opening.Points+rf.Issued.Points-rf.Voided.Points-rf.Redeemed.Points-rf.Expired.Points != rf.Closing.Points {
		a.t.Errorf("[%s, %s): opening %d + issued %d - voided %d - redeemed %d - expired %d is not closing %d", r.From, r.To,
			rf.Opening.Points, rf.Issued.Points, rf.Voided.Points, rf.Redeemed.Points, rf.Expired.Points, rf.Closing.Points)
	}
	// Vested is what bonus_vested entries moved from pending to available.
	var vested int64
	if err := a.svc.db.Raw(`SELECT coalesce(sum(points), 0)::bigint FROM ledger_entries WHERE kind = 'bonus_vested' AND created_at >= ? AND created_at < ?`,
		from, to).Scan(&vested).Error; err != nil {
		a.t.Fatal(err)
	}
	if rf.Vested.Points != vested {
		a.t.Errorf("[%s, %s): vested %d, the ledger's bonus_vested entries %d", r.From, r.To, rf.Vested.Points, vested)
	}
	var byContract int64
	for _, c := range rf.Issued.ByContract {
		byContract += c.Points
	}
	if byContract != rf.Issued.Points {
		a.t.Errorf("[%s, %s): issued by contract sums to %d, issued is %d", r.From, r.To, byContract, rf.Issued.Points)
	}
	if v, e := monthsSum(r.Outstanding.ByVintage), monthsSum(r.Outstanding.ByExpiry); v != rf.Closing.Available || e != rf.Closing.Available {
		a.t.Errorf("[%s, %s): by vintage %d, by expiry %d; closing available %d\n%+v", r.From, r.To, v, e, rf.Closing.Available, r.Outstanding)
	}
}

// The liability report reconciles to the ledger to the point after a
// scripted year of activity, one "month" a phase (a second of periods, so
// the year runs in the test's time): joins, period credits, vesting, voided
// bonuses, redemptions, their reversals, cancellations, expiries of lots
// set to fall due month by month, an erasure. At every month's end the
// report's opening, movements and closing equal the sums of the postings
// (quid verify's), each month's closing is the next one's opening, the
// split by vintage and by expiry month sums to the closing available, the
// year's report equals the members' balances, and quid verify passes.
func TestTheLiabilityReportReconcilesToTheLedgerAfterAScriptedYear(t *testing.T) {
	t.Parallel()
	a := newAPI(t, pointsExpireAfter("P24M"))
	f := a.fixtures()
	coffee := contractBody(f)
	coffee["reward"] = map[string]any{"join_bonus": 100, "vesting": "PT1S", "points_per_period": 10, "period": "PT1S", "max_periods": 60}
	coffeeID := a.publishContract(f, coffee)
	slow := contractBody(f)
	slow["title"] = "Slow club"
	slow["reward"] = map[string]any{"join_bonus": 50, "vesting": "PT1H", "points_per_period": 5, "period": "PT1S", "max_periods": 60}
	slowID := a.publishContract(f, slow)

	tok := map[string]string{}
	ex := map[string]string{}
	join := func(m, contract string) {
		tok[m] = token(t, app.RoleMember, m)
		a.enrol(tok[m])
		ex[m] = a.joinContract(tok[m], contract)["id"].(string)
	}
	redemptions := map[string]string{}
	redeem := func(m string, points int) {
		r := expect(t, a.do(req{Method: "POST", Path: "/v1/me/redemptions", Token: tok[m], Body: map[string]any{"points": points, "reference": "gift"}}), 201).json(t)
		redemptions[m] = r["entry"].(map[string]any)["id"].(string)
	}
	// A reversal as the catalogue's cancel writes it (no route of this
	// branch writes one): it names its redemption and restores its lots.
	reverse := func(m string, points int) {
		if err := a.svc.db.Exec(`INSERT INTO ledger_entries (member_id, kind, points, reverses, created_at) VALUES (?, 'reversal', ?, ?, now())`,
			m, points, redemptions[m]).Error; err != nil {
			t.Fatal(err)
		}
		if err := a.svc.db.Exec(`UPDATE members SET available = available + ? WHERE id = ?`, points, m).Error; err != nil {
			t.Fatal(err)
		}
	}
	// dueMonthly sets a member's lots to expire one month apart in FEFO
	// order, the first `due` of them already past (so the next accrual
	// expires them): expiry months across the coming year.
	dueMonthly := func(m string, due int) {
		if err := a.svc.db.Exec(`UPDATE points_lots l SET expires_at = now() + (r.rank - ?) * interval '1 month' + interval '1 hour'
			FROM (SELECT l2.entry_id, row_number() OVER (ORDER BY l2.expires_at NULLS LAST, c.created_at, l2.entry_id) AS rank
			      FROM points_lots l2 JOIN ledger_entries c ON c.id = l2.entry_id WHERE c.member_id = ? AND l2.remaining > 0) r
			WHERE r.entry_id = l.entry_id`, due, m).Error; err != nil {
			t.Fatal(err)
		}
	}
	accrue := func() {
		time.Sleep(1100 * time.Millisecond)
		a.accrueNow()
	}
	cancel := func(m string) {
		expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + ex[m], Token: tok[m]}), 200)
	}
	year := []func(){
		func() { join("ana", coffeeID); join("ben", coffeeID); join("cleo", slowID) },
		func() { accrue(); join("dan", coffeeID) },
		func() { accrue(); redeem("ana", 30); cancel("cleo") },
		func() { accrue(); reverse("ana", 20) },
		func() { dueMonthly("ben", 3); accrue() },
		func() { join("eve", slowID); redeem("ben", 15) },
		func() { accrue(); cancel("dan") },
		func() { dueMonthly("ana", 2); reverse("ana", 10); accrue() },
		func() { join("fay", coffeeID); accrue() },
		func() { accrue(); redeem("fay", 25); dueMonthly("fay", 1) },
		func() { cancel("eve"); accrue() },
		func() {
			expect(t, a.do(req{Method: "DELETE", Path: "/v1/me", Token: tok["ben"]}), 200)
			accrue()
		},
	}
	tick := func() time.Time {
		time.Sleep(5 * time.Millisecond)
		b := time.Now().UTC().Truncate(time.Microsecond)
		time.Sleep(5 * time.Millisecond)
		return b
	}
	ends := []time.Time{tick()}
	for _, month := range year {
		month()
		ends = append(ends, tick())
	}

	var kinds []string
	if err := a.svc.db.Raw(`SELECT DISTINCT kind FROM ledger_entries ORDER BY kind`).Scan(&kinds).Error; err != nil {
		t.Fatal(err)
	}
	if want := "[bonus_pending bonus_vested bonus_voided expiry period_credit redemption reversal]"; fmt.Sprint(kinds) != want {
		t.Fatalf("the year wrote %v, want every kind %s", kinds, want)
	}

	var prev *liabilityView
	for i := 0; i+1 < len(ends); i++ {
		r := a.liability(f.admin, ends[i], ends[i+1])
		a.checkLiability(r, ends[i], ends[i+1])
		if prev != nil && fmt.Sprint(prev.RollForward.Closing.Points, prev.RollForward.Closing.Available, *prev.RollForward.Closing.Value) !=
			fmt.Sprint(r.RollForward.Opening.Points, r.RollForward.Opening.Available, *r.RollForward.Opening.Value) {
			t.Errorf("month %d opens with %+v, month %d closed with %+v", i, r.RollForward.Opening, i-1, prev.RollForward.Closing)
		}
		prev = &r
	}
	whole := a.liability(f.admin, ends[0], ends[len(ends)-1])
	a.checkLiability(whole, ends[0], ends[len(ends)-1])
	var held struct{ Available, Pending int64 }
	if err := a.svc.db.Raw(`SELECT sum(available)::bigint AS available, sum(pending)::bigint AS pending FROM members`).Scan(&held).Error; err != nil {
		t.Fatal(err)
	}
	rf := whole.RollForward
	if rf.Opening.Points != 0 || rf.Closing.Available != held.Available || rf.Closing.Pending != held.Pending ||
		rf.Vested.Points == 0 || rf.Voided.Points == 0 || rf.Redeemed.Points == 0 || rf.Expired.Points == 0 {
		t.Errorf("the year: %+v; members hold %+v", rf, held)
	}
	// Reversals are negative redemptions: the year redeemed 30 + 15 + 25
	// less the 30 given back.
	if rf.Redeemed.Points != 30+15+25-30 {
		t.Errorf("the year redeemed %d, want 40 (70 less 30 reversed)", rf.Redeemed.Points)
	}
	if len(rf.Issued.ByContract) != 2 || *rf.Issued.ByContract[0].Value == "" {
		t.Errorf("issued by contract: %+v", rf.Issued.ByContract)
	}
	if len(whole.Outstanding.ByExpiry) < 6 {
		t.Errorf("the lots set to expire month by month fall in %d expiry months: %+v", len(whole.Outstanding.ByExpiry), whole.Outstanding.ByExpiry)
	}
	// What is outstanding at now is what the lots hold now.
	var lots []struct {
		Month  string
		Points int64
	}
	if err := a.svc.db.Raw(`SELECT coalesce(to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM'), '') AS month, sum(remaining)::bigint AS points
		FROM points_lots WHERE remaining > 0 GROUP BY 1 ORDER BY 1`).Scan(&lots).Error; err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, m := range whole.Outstanding.ByExpiry {
		k := ""
		if m.Month != nil {
			k = *m.Month
		}
		got[k] = m.Points
	}
	for _, l := range lots {
		if got[l.Month] != l.Points {
			t.Errorf("lots expiring in %q hold %d, the report says %d", l.Month, l.Points, got[l.Month])
		}
	}
	mustVerify(t, a.cfg.DatabaseURL)
}

// Money is points times the programme's point value, exactly: 1 point at
// 0.003 EUR is 0.003, not rounded to cents, so money adds up as points do;
// without a programme identity every value is null.
func TestTheLiabilityIsValuedExactlyAtThePointValueOrNotAtAll(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixturesWithoutProgramme()
	from, to := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	r := a.liability(f.admin, from, to)
	// A period that has not ended is marked provisional; one that has,
	// final.
	if !r.Provisional {
		t.Errorf("a period ending in an hour is not marked provisional (as of %s)", r.AsOf)
	}
	if past := a.liability(f.admin, from.Add(-time.Hour), time.Now().Add(-6*time.Minute)); past.Provisional {
		t.Errorf("a period that ended six minutes ago is marked provisional (as of %s)", past.AsOf)
	}
	if recent := a.liability(f.admin, from, time.Now().Add(-time.Minute)); !recent.Provisional {
		t.Errorf("a period that ended a minute ago, inside the settling time, is marked final (as of %s)", recent.AsOf)
	}
	if r.PointValue != nil || r.RollForward.Opening.Value != nil || r.RollForward.Closing.Value != nil {
		t.Fatalf("without a programme: %+v", r)
	}
	expect(t, a.do(req{Method: "PUT", Path: "/v1/programme", Token: f.admin, Body: programmeBody("EUR", "0.003")}), 200)
	body := contractBody(f)
	body["reward"] = map[string]any{"join_bonus": 333, "vesting": "PT1H", "points_per_period": 1, "period": "P1M"}
	id := a.publishContract(f, body)
	a.enrol(f.member)
	a.joinContract(f.member, id)
	r = a.liability(f.admin, from, time.Now().Add(time.Hour))
	if r.PointValue == nil || r.PointValue.Currency != "EUR" || r.RollForward.Issued.Points != 333 || *r.RollForward.Issued.Value != "0.999" ||
		*r.RollForward.Closing.Value != "0.999" || r.RollForward.Closing.Pending != 333 || *r.RollForward.Opening.Value != "0.000" {
		t.Fatalf("333 points at 0.003 EUR: %+v", r.RollForward)
	}
}

// The CSV has a header row and one row per figure, money as decimal
// strings, and a contract title a spreadsheet would run as a formula is
// neutralised.
func TestTheLiabilityCSVIsATableNoSpreadsheetRunsAsAFormula(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	from := time.Now().Add(-time.Hour)
	titles := []string{"=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1)"}
	for i, title := range titles {
		body := contractBody(f)
		body["title"] = title
		body["reward"] = map[string]any{"join_bonus": 10 + i, "vesting": "PT1H", "points_per_period": 1, "period": "P1M"}
		a.joinContract(func() string { tok := token(t, app.RoleMember, "m"+fmt.Sprint(i)); a.enrol(tok); return tok }(), a.publishContract(f, body))
	}
	res := expect(t, a.do(req{Method: "GET", Path: reportPath(from, time.Now().Add(time.Hour), "&format=csv"), Token: f.admin}), 200)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("Content-Type %q", ct)
	}
	rows, err := csv.NewReader(bytes.NewReader(res.Body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "section,line,contract_id,month,points,value,currency" {
		t.Fatalf("header %v", rows[0])
	}
	seen := 0
	for _, row := range rows[1:] {
		if len(row) != 7 {
			t.Fatalf("row %v", row)
		}
		if strings.ContainsAny(row[1][:1], "=+-@") {
			t.Errorf("cell %q would run as a formula", row[1])
		}
		if row[0] == "issued_by_contract" {
			seen++
			if !strings.HasPrefix(row[1], "'") || row[6] != "EUR" || !strings.Contains(row[5], ".") {
				t.Errorf("issued row %v", row)
			}
		}
	}
	if seen != len(titles) {
		t.Fatalf("%d issued rows, want %d:\n%s", seen, len(titles), res.Body)
	}
}

// A period is two RFC 3339 times or dates, from before to, at most five
// years apart; anything else is 422 naming the parameter, and only admins
// may read the report.
func TestTheLiabilityPeriodIsValidatedNamingTheParameter(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	for _, c := range []struct{ query, pointer string }{
		{"to=2026-02-01", "/query/from"},
		{"from=2026-01-01", "/query/to"},
		{"from=yesterday&to=2026-02-01", "/query/from"},
		{"from=2026-01-01&to=2026-13-01", "/query/to"},
		{"from=2026-02-01&to=2026-01-01", "/query/to"},
		{"from=2026-01-01&to=2026-01-01", "/query/to"},
		{"from=2000-01-01&to=2026-01-01", "/query/to"},
		{"from=0001-01-01T00:00:00Z&to=2026-01-01", "/query/from"},
		{"from=2026-01-01&to=2026-02-01&format=xlsx", "/query/format"},
		{"from=2026-01-01&to=2026-02-01&format=", "/query/format"},
		{"from=%E2%80%AE2026-01-01&to=2026-02-01", "/query/from"},
		{"from=99999999999999999999&to=2026-02-01", "/query/from"},
	} {
		problemAt(t, a.do(req{Method: "GET", Path: "/v1/reports/points-liability?" + c.query, Token: f.admin}), 422, c.pointer)
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/reports/points-liability?from=2026-01-01&to=2026-02-01T00:00:00%2B01:00", Token: f.admin}), 200)
	expect(t, a.do(req{Method: "GET", Path: "/v1/reports/points-liability?from=2026-01-01&to=2026-02-01", Token: f.marketer}), 403)
}
