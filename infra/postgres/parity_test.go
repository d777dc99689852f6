package postgres_test

// Parity tests: rules that exist both in domain (Go, for decisions on one
// exchange) and in SQL (set-based, for the workers and the reads) are run
// side by side on many random timelines, seeded so that a failure can be
// replayed (the seed is printed; PARITY_SEED=<n> replays it). PostgreSQL
// is asked for every date; none is hard-coded here.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"
	"gorm.io/gorm"

	quid "github.com/quidpro/quid"
	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
	"github.com/quidpro/quid/infra/postgres"
)

// paritySeed is a fresh seed per run unless PARITY_SEED replays one.
func paritySeed(t *testing.T) *rand.Rand {
	t.Helper()
	seed := time.Now().UnixNano()
	if s := os.Getenv("PARITY_SEED"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("PARITY_SEED: %v", err)
		}
		seed = n
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("parity seed %d (replay with PARITY_SEED=%d go test ./infra/postgres -run '%s$')", seed, seed, t.Name())
		}
	})
	return rand.New(rand.NewSource(seed))
}

// Anchors are the instants month and leap-year arithmetic goes wrong on:
// month ends, 29 February of a leap year, and the nights European clocks
// change (an instant in UTC, the session's zone, is never ambiguous).
var parityAnchors = []time.Time{
	time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC),
	time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC),
	time.Date(2023, 1, 31, 0, 0, 0, 0, time.UTC),
	time.Date(2023, 12, 31, 0, 0, 0, 0, time.UTC),
	time.Date(2024, 3, 31, 0, 0, 0, 0, time.UTC),
	time.Date(2024, 10, 27, 0, 0, 0, 0, time.UTC),
	time.Date(2025, 8, 31, 0, 0, 0, 0, time.UTC),
}

func randomInstant(r *rand.Rand) time.Time {
	if r.Intn(5) == 0 { // anywhere in 2020-2026
		return time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int63n(int64(6 * 365 * 24 * time.Hour)))).Truncate(time.Microsecond)
	}
	a := parityAnchors[r.Intn(len(parityAnchors))]
	switch r.Intn(3) {
	case 0:
		return a // midnight exactly
	case 1:
		return a.Add(23*time.Hour + 59*time.Minute + 59*time.Second + 999999*time.Microsecond)
	}
	return a.Add(time.Duration(r.Int63n(int64(24 * time.Hour)))).Truncate(time.Microsecond)
}

var parityPeriods = []string{"PT1S", "P1D", "P1M", "P1W", "PT1H", "PT36H", "P1M1D", "P1Y", "P2M", "P1DT1S"}

// TestPeriodBoundariesAgreeWithPostgres asks PostgreSQL, on the service's
// own connection (UTC session), for joined_at + k * period, as the accrual
// SQL computes every period bound, and compares with domain.PeriodBounds.
func TestPeriodBoundariesAgreeWithPostgres(t *testing.T) {
	t.Parallel()
	r := paritySeed(t)
	w := newWorld(t)
	const cases = 3000
	joined, periods, ks := make([]time.Time, cases), make([]string, cases), make([]int, cases)
	for i := range joined {
		joined[i], periods[i], ks[i] = randomInstant(r), parityPeriods[r.Intn(len(parityPeriods))], r.Intn(60)
	}
	var got []struct {
		I          int
		Start, End time.Time
	}
	// One statement for all cases; the same expression as creditPeriodsSQL
	// (joined_at + k * reward_period, the interval read from its ISO text).
	err := w.db.Raw(`SELECT c.i, c.j + c.k * CAST(c.p AS interval) AS start, c.j + (c.k + 1) * CAST(c.p AS interval) AS "end"
FROM unnest(CAST(? AS timestamptz[]), CAST(? AS text[]), CAST(? AS int[])) WITH ORDINALITY AS c(j, p, k, i) ORDER BY c.i`,
		pgTimes(joined), pgTexts(periods), pgInts(ks)).Scan(&got).Error
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != cases {
		t.Fatalf("%d rows for %d cases", len(got), cases)
	}
	for i, g := range got {
		start, end := domain.PeriodBounds(joined[i], domain.MustParseDuration(periods[i]), ks[i])
		if !g.Start.Equal(start) || !g.End.Equal(end) {
			t.Fatalf("period %d of %s from %s: PostgreSQL says [%s, %s), domain [%s, %s)", ks[i], periods[i],
				joined[i].Format(time.RFC3339Nano), g.Start.UTC().Format(time.RFC3339Nano), g.End.UTC().Format(time.RFC3339Nano),
				start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano))
		}
	}
	// The rule only holds in a session without daylight saving time: the
	// service's connection must be in UTC whatever the server's default.
	var zone string
	if err := w.db.Raw(`SHOW TimeZone`).Scan(&zone).Error; err != nil || zone != "UTC" {
		t.Fatalf("the service's session time zone is %q (%v), want UTC", zone, err)
	}
}

// pgTimes and friends spell Go slices as PostgreSQL array literals.
func pgTimes(ts []time.Time) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = `"` + t.UTC().Format("2006-01-02 15:04:05.999999Z07:00") + `"`
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func pgTexts(ss []string) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = `"` + s + `"`
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func pgInts(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// --- random timelines ---------------------------------------------------

// parityContracts publishes contract shapes covering the reward rules:
// join bonus with and without vesting, periods of PT1S, P1D, P1M and more,
// caps, consent durations and retentions.
func parityContracts(t *testing.T, w *world, r *rand.Rand, n int) []domain.Contract {
	t.Helper()
	vestings := []string{"", "PT0S", "PT1S", "PT30S", "P1D", "P1M", "P7D"}
	durations := []string{"", "", "PT10S", "PT90S", "P1D", "P1M", "P3M", "P1Y", "P45D"}
	retentions := []string{"P30D", "P1M", "P1Y", "PT1S", "P1M1D", "P2W", "P3M"}
	caps := []int{0, 0, 1, 3, 12}
	ctx := context.Background()
	// Shapes every run has, so each outcome a rule distinguishes is
	// reached whatever the seed: monthly periods from month ends, PT1S
	// periods with a cap inside a short consent, a bonus still vesting.
	fixed := []app.RewardInput{
		{JoinBonus: 100, Vesting: str("P1M"), PointsPerPeriod: 5, Period: str("P1M")},
		{JoinBonus: 7, Vesting: str("PT30S"), PointsPerPeriod: 2, Period: str("PT1S"), MaxPeriods: ptrInt(3)},
		{JoinBonus: 50, Vesting: str("P7D"), PointsPerPeriod: 1, Period: str("P1D")},
		{PointsPerPeriod: 3, Period: str("P1M1D"), MaxPeriods: ptrInt(12)},
		{JoinBonus: 9, Vesting: str("P1Y"), PointsPerPeriod: 4, Period: str("P1Y")},
	}
	fixedDurations := []string{"", "PT90S", "P45D", "P1Y", ""}
	var out []domain.Contract
	for len(out) < n {
		in := app.TermsInput{ValueEstimate: &testEstimate, ValueMethod: str("revenue_attributable"), ValueExplanation: str("Revenue per member."), Title: "Parity", Retention: retentions[r.Intn(len(retentions))],
			Items: []app.ItemInput{{Category: "location.city", Purpose: "loyalty.personalised_offers", Recipients: []string{w.brand.ID}}}}
		if i := len(out); i < len(fixed) && n > len(fixed) {
			in.Reward = fixed[i]
			if d := fixedDurations[i]; d != "" {
				in.Duration = str(d)
			}
		} else if r.Intn(3) > 0 {
			in.Reward.JoinBonus = int64(1 + r.Intn(500))
			if v := vestings[r.Intn(len(vestings))]; v != "" {
				in.Reward.Vesting = str(v)
			}
		}
		if len(out) < len(fixed) && n > len(fixed) {
			// fixed above
		} else if r.Intn(4) > 0 {
			in.Reward.PointsPerPeriod = int64(1 + r.Intn(20))
			in.Reward.Period = str(parityPeriods[r.Intn(len(parityPeriods))])
			if m := caps[r.Intn(len(caps))]; m > 0 {
				in.Reward.MaxPeriods = &m
			}
		}
		if d := durations[r.Intn(len(durations))]; d != "" && (len(out) >= len(fixed) || n <= len(fixed)) {
			in.Duration = str(d)
		}
		if in.Reward.JoinBonus == 0 && in.Reward.PointsPerPeriod == 0 {
			in.Reward.JoinBonus = 10
		}
		d, err := w.contracts.CreateDraft(ctx, marketer, in)
		if err != nil {
			continue // a shape the policy refuses (a duration shorter than the period, say)
		}
		c, err := w.contracts.Publish(ctx, marketer, d.ID())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// timeline is one member's exchange: joined at a chosen instant, possibly
// ended at another, and accrued at a third.
type timeline struct {
	c      domain.Contract
	member string
	joined domain.Exchange // as domain.Join made it
	end    domain.ExchangeStatus
	endAt  time.Time
	now    time.Time
}

// horizon is how far a timeline of c reaches: enough periods, vesting and
// duration to cross every boundary a few times, and few enough PT1S
// periods to keep the ledger small.
func horizon(c domain.Contract) time.Duration {
	h := time.Hour
	rw := c.Terms().Reward
	if !rw.Period.IsZero() {
		h = max(h, 15*rw.Period.Approx())
	}
	if c.Terms().Duration != nil {
		h = max(h, 2*c.Terms().Duration.Approx())
	}
	h = max(h, 2*rw.Vesting.Approx())
	if !rw.Period.IsZero() && rw.Period.Approx() < time.Minute {
		h = min(h, 20*rw.Period.Approx()+2*time.Minute)
	}
	return h
}

// notable picks, often, an instant a rule turns on (a period end, the
// vesting time, the expiry, a microsecond either side) and otherwise any
// instant in [from, from+h]. It stays within h so that no timeline earns
// more periods than one worker run credits (10,000).
func notable(r *rand.Rand, e domain.Exchange, c domain.Contract, from time.Time, h time.Duration) time.Time {
	var marks []time.Time
	if v := e.BonusVestsAt(); v != nil {
		marks = append(marks, *v)
	}
	if x := e.ExpiresAt(); x != nil {
		marks = append(marks, *x)
	}
	if p := c.Terms().Reward.Period; !p.IsZero() {
		for k := 0; k < 6; k++ {
			_, end := domain.PeriodBounds(e.JoinedAt(), p, r.Intn(20))
			marks = append(marks, end)
		}
	}
	if len(marks) > 0 && r.Intn(2) == 0 {
		m := marks[r.Intn(len(marks))].Add(time.Duration(r.Intn(3)-1) * time.Microsecond)
		if !m.Before(from) && !m.After(from.Add(h)) { // beyond h, PT1S periods would outnumber a worker run's cap
			return m
		}
	}
	if r.Intn(3) == 0 { // soon after: before the first period ends or the bonus vests
		h /= 30
	}
	return from.Add(time.Duration(r.Int63n(int64(h) + 1))).Truncate(time.Microsecond)
}

var endings = []domain.ExchangeStatus{"", domain.ExchangeExpired, domain.ExchangeCancelled, domain.ExchangeTerminated, domain.ExchangeErased}

func randomTimeline(t *testing.T, r *rand.Rand, cs []domain.Contract) timeline {
	t.Helper()
	c := cs[r.Intn(len(cs))]
	tl := timeline{c: c, member: "parity-" + uuid.NewString()}
	e, err := domain.Join(uuid.NewString(), tl.member, c, randomInstant(r), r.Intn(5) > 0)
	if err != nil {
		t.Fatal(err)
	}
	e.AttachReceipt(uuid.NewString(), "receipt")
	tl.joined = e
	h := horizon(c)
	tl.end = endings[r.Intn(len(endings))]
	tl.endAt = notable(r, e, c, e.JoinedAt(), h)
	from := e.JoinedAt()
	if tl.end != "" {
		from = tl.endAt
	}
	tl.now = notable(r, e, c, from, h)
	return tl
}

// insert writes the timeline's member and its exchange as domain.Join made
// it, with the join's bonus entries and balances (as the join writes them).
func (tl timeline) insert(t *testing.T, db *gorm.DB) {
	t.Helper()
	e := tl.joined.State()
	var bal domain.Balance
	var entries []domain.EntryKind
	if e.BonusPoints > 0 {
		entries = append(entries, domain.EntryBonusPending)
		if e.BonusState == domain.BonusVested {
			entries = append(entries, domain.EntryBonusVested)
		}
	}
	for _, k := range entries {
		var err error
		if bal, err = bal.Apply(k, e.BonusPoints); err != nil {
			t.Fatal(err)
		}
	}
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`INSERT INTO members (id, available, pending, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
			e.MemberID, bal.Available, bal.Pending, e.JoinedAt, e.JoinedAt).Error; err != nil {
			return err
		}
		if err := tx.Exec(`INSERT INTO exchanges (id, member_id, contract_id, family_id, terms_hash, status, joined_at, expires_at, ended_at,
    bonus_points, bonus_state, bonus_vests_at, credited_periods, next_period_end, receipt_id, receipt)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, 0, ?, ?, ?)`, e.ID, e.MemberID, e.ContractID, e.FamilyID, e.TermsHash, string(e.Status),
			e.JoinedAt, e.ExpiresAt, e.BonusPoints, string(e.BonusState), e.BonusVestsAt, e.NextPeriodEnd, e.ReceiptID, e.Receipt).Error; err != nil {
			return err
		}
		for _, k := range entries {
			if err := tx.Exec(`INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, e.MemberID, string(k), e.BonusPoints, e.ID, e.ContractID, e.FamilyID, e.TermsHash, e.JoinedAt).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// endInSQL ends the exchange at endAt as the service does: consent that
// had lapsed by then expires first (expireLapsed), then the ending.
func (tl timeline) endInSQL(t *testing.T, w *world) {
	t.Helper()
	if tl.end == "" {
		return
	}
	id := tl.joined.ID()
	err := w.db.Transaction(func(tx *gorm.DB) error {
		if _, err := w.store.EndExchanges(tx, "e.id = CAST(@id AS uuid) AND "+postgres.LapsedAt("CAST(@t AS timestamptz)"),
			[]any{"id", id, "t", tl.endAt}, "expired", "e.expires_at", "system", "exchange.expired"); err != nil {
			return err
		}
		if tl.end == domain.ExchangeExpired {
			return nil
		}
		event := "exchange." + string(tl.end)
		if tl.end == domain.ExchangeErased {
			event = "" // erasure asks for deletion through member.erasure_requested
		}
		_, err := w.store.EndExchanges(tx, "e.id = CAST(@id AS uuid)", []any{"id", id, "t", tl.endAt}, string(tl.end),
			"CAST(@t AS timestamptz)", "member", event)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// endInGo is the same ending by domain's rules.
func (tl timeline) endInGo() domain.Exchange {
	e := tl.joined
	if tl.end == "" {
		return e
	}
	e = e.AsOf(tl.endAt)
	switch tl.end {
	case domain.ExchangeCancelled:
		e.Cancel(tl.endAt)
	case domain.ExchangeTerminated:
		e.Terminate(tl.endAt)
	case domain.ExchangeErased:
		e.Erase(tl.endAt)
	}
	return e
}

// accrueInGo is an accrual run at now by domain's rules; it returns the
// period credits.
func (tl timeline) accrueInGo(e domain.Exchange) (domain.Exchange, []domain.Period) {
	e = e.AsOf(tl.now)
	e.VestDue(tl.now)
	periods := e.CreditsDue(tl.c.Terms().Reward, tl.now)
	return e, periods
}

func (tl timeline) accrueInSQL(t *testing.T, w *world) {
	t.Helper()
	err := w.db.Transaction(func(tx *gorm.DB) error {
		_, err := w.store.AccrueMembersAt(tx, []string{tl.member}, tl.now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// expectedEntries is the ledger domain says the timeline leaves: the join's
// bonus entries, the bonus outcome, and one credit per period.
func (tl timeline) expectedEntries(e domain.Exchange, periods []domain.Period) []string {
	j := tl.joined
	var out []string
	add := func(kind domain.EntryKind, points int64, p *domain.Period) {
		s := fmt.Sprintf("%s %d", kind, points)
		if p != nil {
			s += " [" + p.Start.UTC().Format(time.RFC3339Nano) + ", " + p.End.UTC().Format(time.RFC3339Nano) + ")"
		}
		out = append(out, s)
	}
	if j.BonusPoints() > 0 {
		add(domain.EntryBonusPending, j.BonusPoints(), nil)
		switch e.BonusState() {
		case domain.BonusVested:
			add(domain.EntryBonusVested, j.BonusPoints(), nil)
		case domain.BonusVoided:
			add(domain.EntryBonusVoided, -j.BonusPoints(), nil)
		}
	}
	for i := range periods {
		add(domain.EntryPeriodCredit, tl.c.Terms().Reward.PointsPerPeriod, &periods[i])
	}
	sort.Strings(out)
	return out
}

type storedEntry struct {
	Kind                   string
	Points                 int64
	PeriodStart, PeriodEnd *time.Time
}

// compare checks the stored exchange, its ledger and the member's balances
// against domain's: the exchange row field by field, the entries as a
// multiset, and the balances as domain.Balance.Apply folds the stored
// entries (so every kind the SQL wrote moved the balance domain says).
func (tl timeline) compare(t *testing.T, w *world, stage string, e domain.Exchange, periods []domain.Period) {
	t.Helper()
	var rec struct {
		Status, BonusState     string
		EndedAt, NextPeriodEnd *time.Time
		CreditedPeriods        int
	}
	if err := w.db.Raw(`SELECT status, bonus_state, ended_at, next_period_end, credited_periods FROM exchanges WHERE id = ?`,
		tl.joined.ID()).Scan(&rec).Error; err != nil {
		t.Fatal(err)
	}
	s := e.State()
	sameTime := func(a, b *time.Time) bool { return (a == nil) == (b == nil) && (a == nil || a.Equal(*b)) }
	if rec.Status != string(s.Status) || rec.BonusState != string(s.BonusState) || !sameTime(rec.EndedAt, s.EndedAt) ||
		!sameTime(rec.NextPeriodEnd, s.NextPeriodEnd) || rec.CreditedPeriods != s.CreditedPeriods {
		t.Fatalf("%s: %s\nSQL    status=%s bonus=%s ended=%s next=%s credited=%d\ndomain status=%s bonus=%s ended=%s next=%s credited=%d",
			stage, tl, rec.Status, rec.BonusState, fmtTime(rec.EndedAt), fmtTime(rec.NextPeriodEnd), rec.CreditedPeriods,
			s.Status, s.BonusState, fmtTime(s.EndedAt), fmtTime(s.NextPeriodEnd), s.CreditedPeriods)
	}
	var stored []storedEntry
	if err := w.db.Raw(`SELECT kind, points, period_start, period_end FROM ledger_entries WHERE member_id = ? ORDER BY seq`,
		tl.member).Scan(&stored).Error; err != nil {
		t.Fatal(err)
	}
	var got []string
	var folded domain.Balance
	for _, se := range stored {
		s := fmt.Sprintf("%s %d", se.Kind, se.Points)
		if se.PeriodStart != nil {
			s += " [" + se.PeriodStart.UTC().Format(time.RFC3339Nano) + ", " + se.PeriodEnd.UTC().Format(time.RFC3339Nano) + ")"
		}
		got = append(got, s)
		var err error
		if folded, err = folded.Apply(domain.EntryKind(se.Kind), se.Points); err != nil {
			t.Fatalf("%s: %s: domain refuses the stored %s entry of %d: %v", stage, tl, se.Kind, se.Points, err)
		}
	}
	sort.Strings(got)
	want := tl.expectedEntries(e, periods)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s: %s\nSQL ledger:\n  %s\ndomain ledger:\n  %s", stage, tl, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	var m struct{ Available, Pending int64 }
	if err := w.db.Raw(`SELECT available, pending FROM members WHERE id = ?`, tl.member).Scan(&m).Error; err != nil {
		t.Fatal(err)
	}
	if m.Available != folded.Available || m.Pending != folded.Pending {
		t.Fatalf("%s: %s: SQL balances available %d pending %d, domain's fold of the same entries %+v", stage, tl, m.Available, m.Pending, folded)
	}
}

func ptrInt(n int) *int { return &n }

func fmtTime(t *time.Time) string {
	if t == nil {
		return "null"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (tl timeline) String() string {
	r := tl.c.Terms().Reward
	d := "none"
	if tl.c.Terms().Duration != nil {
		d = tl.c.Terms().Duration.String()
	}
	return fmt.Sprintf("joined %s (bonus %d %s vesting %s, %d per %s, max %d, duration %s), end %q at %s, accrued at %s",
		tl.joined.JoinedAt().Format(time.RFC3339Nano), tl.joined.BonusPoints(), tl.joined.BonusState(), r.Vesting, r.PointsPerPeriod, r.Period,
		r.MaxPeriods, d, tl.end, tl.endAt.Format(time.RFC3339Nano), tl.now.Format(time.RFC3339Nano))
}

// TestEndingEffectsAgreeWithDomain ends random exchanges with the
// set-based endExchanges (expiry, cancel, termination, erasure; a lapsed
// exchange expires first, as every ending path does) and with domain's
// Exchange.AsOf/Cancel/Terminate/Erase at the same instant: status, end
// time, next period end, bonus (voided or not), the bonus_voided entry and
// the pending balance must agree.
func TestEndingEffectsAgreeWithDomain(t *testing.T) {
	t.Parallel()
	r := paritySeed(t)
	w := newWorld(t)
	cs := parityContracts(t, w, r, 24)
	seen := map[string]int{}
	for i := 0; i < 300; i++ {
		tl := randomTimeline(t, r, cs)
		if tl.end == "" {
			tl.end = endings[1+r.Intn(len(endings)-1)]
		}
		tl.insert(t, w.db)
		tl.endInSQL(t, w)
		e := tl.endInGo()
		tl.compare(t, w, "after the ending", e, nil)
		seen["status "+string(e.Status())]++
		seen["bonus "+string(e.BonusState())]++
		if e.EndedAt() != nil && tl.joined.NextPeriodEnd() != nil {
			seen[fmt.Sprintf("next period end kept %v", e.NextPeriodEnd() != nil)]++
		}
	}
	requireCoverage(t, seen, "status active", "status expired", "status cancelled", "status terminated", "status erased",
		"bonus pending", "bonus vested", "bonus voided", "bonus none", "next period end kept true", "next period end kept false")
}

// requireCoverage fails when the random timelines no longer reach every
// outcome a rule distinguishes: a generator that drifted would prove nothing.
func requireCoverage(t *testing.T, seen map[string]int, want ...string) {
	t.Helper()
	for _, k := range want {
		if seen[k] == 0 {
			t.Errorf("no timeline reached %q (reached: %v)", k, seen)
		}
	}
}

// TestAccrualOfRandomTimelinesAgreesWithDomain runs the accrual worker's
// set-based statements (expiry, vesting, period credits with caps) as of a
// chosen instant after a random ending, and domain's AsOf, VestDue and
// CreditsDue at the same instant: the exchange row, every ledger entry
// (period bounds included) and the balances must agree.
func TestAccrualOfRandomTimelinesAgreesWithDomain(t *testing.T) {
	t.Parallel()
	r := paritySeed(t)
	w := newWorld(t)
	cs := parityContracts(t, w, r, 24)
	seen := map[string]int{}
	for i := 0; i < 300; i++ {
		tl := randomTimeline(t, r, cs)
		if v := tl.joined.BonusVestsAt(); i%8 == 0 && v != nil && (tl.end == "" || !v.Before(tl.endAt)) {
			tl.now = *v // the very instant the bonus vests
			seen["accrued as the bonus vests"]++
		}
		tl.insert(t, w.db)
		tl.endInSQL(t, w)
		tl.accrueInSQL(t, w)
		e, periods := tl.accrueInGo(tl.endInGo())
		tl.compare(t, w, "after the accrual run", e, periods)
		rw := tl.c.Terms().Reward
		seen["bonus "+string(e.BonusState())]++
		if len(periods) > 0 {
			seen["credited"]++
			if rw.MaxPeriods > 0 && e.State().CreditedPeriods == rw.MaxPeriods {
				seen["capped"]++
			}
			if rw.Period.Months > 0 && tl.joined.JoinedAt().Day() >= 29 && len(periods) > 1 {
				seen["month-end clamped"]++
			}
			if e.EndedAt() != nil && e.NextPeriodEnd() == nil {
				seen["credits stopped at the end"]++
			}
		}
		if r.Intn(3) == 0 { // a second run later pays only what is new
			prev := tl.now
			tl.now = notable(r, e, tl.c, prev, horizon(tl.c))
			tl.accrueInSQL(t, w)
			e2, more := tl.accrueInGo(e)
			tl.compare(t, w, "after a second accrual run", e2, append(periods, more...))
			if len(more) > 0 && len(periods) > 0 {
				seen["second run paid more"]++
			}
		}
	}
	requireCoverage(t, seen, "bonus pending", "bonus vested", "bonus voided", "credited", "capped", "month-end clamped",
		"credits stopped at the end", "second run paid more", "accrued as the bonus vests")
}

// TestActiveAtAgreesWithPostgres compares the SQL condition partner reads
// and the enforcement grant use (activeAt) with domain's
// Exchange.AsOf(t).IsActive() for random exchanges, before and after they
// end, at random instants and at the expiry itself.
func TestActiveAtAgreesWithPostgres(t *testing.T) {
	t.Parallel()
	r := paritySeed(t)
	w := newWorld(t)
	cs := parityContracts(t, w, r, 16)
	cond := postgres.ActiveAt("CAST(@t AS timestamptz)")
	lapsed := "e.status = 'active' AND " + postgres.LapsedAt("CAST(@t AS timestamptz)")
	for i := 0; i < 250; i++ {
		tl := randomTimeline(t, r, cs)
		tl.insert(t, w.db)
		e := tl.joined
		if r.Intn(2) == 0 {
			tl.endInSQL(t, w)
			e = tl.endInGo()
		}
		for j := 0; j < 4; j++ {
			at := notable(r, e, tl.c, e.JoinedAt().Add(-time.Hour), horizon(tl.c))
			var row struct{ Active, Lapsed bool }
			if err := w.db.Raw(`SELECT bool_or(`+cond+`) AS active, bool_or(`+lapsed+`) AS lapsed FROM exchanges e WHERE e.id = @id`,
				map[string]any{"id": e.ID(), "t": at}).Scan(&row).Error; err != nil {
				t.Fatal(err)
			}
			asOf := e.AsOf(at)
			if row.Active != asOf.IsActive() {
				t.Fatalf("%s: at %s SQL says active=%v, domain AsOf says %s", tl, at.Format(time.RFC3339Nano), row.Active, asOf.Status())
			}
			if want := e.IsActive() && asOf.Status() == domain.ExchangeExpired; row.Lapsed != want {
				t.Fatalf("%s: at %s SQL says lapsed=%v, domain AsOf says %s (stored %s)", tl, at.Format(time.RFC3339Nano), row.Lapsed, asOf.Status(), e.Status())
			}
		}
	}
}

// TestEntryKindBalanceEffectsAgreeWithPostgres writes an entry of every
// kind domain knows, with random points, and compares the balance effect
// `quid verify` computes for it in SQL with domain.Balance.Apply. (What the
// SQL writers move is compared with domain in the timeline tests above,
// which fold the stored entries with Apply.)
func TestEntryKindBalanceEffectsAgreeWithPostgres(t *testing.T) {
	t.Parallel()
	r := paritySeed(t)
	w := newWorld(t)
	for round := 0; round < 20; round++ {
		tl := randomTimeline(t, r, parityContracts(t, w, r, 1))
		st := tl.joined.State() // entries of every kind follow, written by hand
		st.BonusPoints, st.BonusState, st.BonusVestsAt = 0, domain.BonusNone, nil
		tl.joined = domain.RehydrateExchange(st)
		tl.insert(t, w.db)
		type effect struct{ Available, Pending int64 }
		want := map[string]effect{}
		var fold domain.Balance
		at := time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC)
		for i, kind := range domain.EntryKinds {
			if kind == domain.EntryExpiry {
				// Written only for lots past their time (the lots trigger
				// refuses any other), which these entries, written with no
				// points_expire_after, never open; its effect is available's
				// like a redemption's, and cmd/quid's expiry tests run it.
				continue
			}
			points := int64(1000 + r.Intn(1000)) // what comes in
			switch kind {
			case domain.EntryBonusVested, domain.EntryBonusVoided, domain.EntryRedemption, domain.EntryReversal:
				points = int64(1 + r.Intn(300)) // what moves or goes out
			}
			if kind == domain.EntryBonusVoided || kind == domain.EntryRedemption || (kind == domain.EntryReversal && r.Intn(2) == 0) {
				points = -points
			}
			var ps, pe any
			if kind == domain.EntryPeriodCredit {
				ps, pe = at, at.Add(time.Hour)
			}
			if err := w.db.Exec(`INSERT INTO ledger_entries (member_id, kind, points, period_start, period_end, exchange_id, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`, tl.member, string(kind), points, ps, pe, tl.joined.ID(), at.Add(time.Duration(i)*time.Second)).Error; err != nil {
				t.Fatal(err)
			}
			big := domain.Balance{Available: 1 << 40, Pending: 1 << 40}
			after, err := big.Apply(kind, points)
			if err != nil {
				t.Fatal(err)
			}
			want[string(kind)] = effect{after.Available - big.Available, after.Pending - big.Pending}
			if fold, err = fold.Apply(kind, points); err != nil {
				t.Fatalf("%s of %d: %v", kind, points, err)
			}
		}
		// The cached balance is what domain folds; `quid verify` (and this
		// package's cleanup check) must find it equal to the entries.
		if err := w.db.Exec(`UPDATE members SET available = ?, pending = ? WHERE id = ?`, fold.Available, fold.Pending, tl.member).Error; err != nil {
			t.Fatal(err)
		}
		var rows []struct {
			Kind                string
			Avail, Pend, Points int64
		}
		if err := w.db.Raw(`WITH `+postgres.EntryEffects+` SELECT kind, avail, pend, points FROM fx WHERE member_id = ?`, tl.member).Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, row := range rows {
			seen[row.Kind] = true
			if w, ok := want[row.Kind]; !ok || w.Available != row.Avail || w.Pending != row.Pend {
				t.Fatalf("%s of %d: SQL moves available %+d, pending %+d; domain %+d, %+d", row.Kind, row.Points, row.Avail, row.Pend, w.Available, w.Pending)
			}
		}
		for k := range want {
			if !seen[k] {
				t.Fatalf("entry kind %s: no row from the SQL effects", k)
			}
		}
	}
}

// TestDeleteByDatesAgreeWithPostgres ends random exchanges (month-end and
// leap-day end times, retentions of seconds to years) and compares the
// deletion duties the SQL writes (deletion_acks.due_at and the webhook's
// data.delete_by, both ended_at + retention) with domain's Terms.DeleteBy,
// which the member's transparency view uses for duties not yet stored; and
// when a duty is overdue (SQL's overdue list against domain.DeletionState).
func TestDeleteByDatesAgreeWithPostgres(t *testing.T) {
	t.Parallel()
	r := paritySeed(t)
	w := newWorld(t)
	cs := parityContracts(t, w, r, 24)
	checked := 0
	for i := 0; i < 300; i++ {
		tl := randomTimeline(t, r, cs)
		tl.end = []domain.ExchangeStatus{domain.ExchangeExpired, domain.ExchangeCancelled, domain.ExchangeTerminated}[r.Intn(3)]
		if r.Intn(2) == 0 { // end on an anchor itself: 31 January, 29 February
			tl.endAt = parityAnchors[r.Intn(len(parityAnchors))].Add(time.Duration(r.Int63n(int64(24 * time.Hour)))).Truncate(time.Microsecond)
			if tl.endAt.Before(tl.joined.JoinedAt()) {
				tl.endAt = tl.joined.JoinedAt()
			}
		}
		tl.insert(t, w.db)
		tl.endInSQL(t, w)
		e := tl.endInGo()
		if e.EndedAt() == nil {
			continue // it had not lapsed yet: nothing ended, nothing owed
		}
		want := tl.c.Terms().DeleteBy(*e.EndedAt())
		var acks []struct{ DueAt time.Time }
		if err := w.db.Raw(`SELECT due_at FROM deletion_acks WHERE exchange_id = ?`, e.ID()).Scan(&acks).Error; err != nil {
			t.Fatal(err)
		}
		var payloads []string
		if err := w.db.Raw(`SELECT payload->'data'->>'delete_by' FROM webhook_outbox WHERE payload->'data'->>'exchange_id' = ?`, e.ID()).Scan(&payloads).Error; err != nil {
			t.Fatal(err)
		}
		if len(acks) != 1 || len(payloads) != 1 {
			t.Fatalf("%s: %d deletion duties and %d events, want one each (one recipient)", tl, len(acks), len(payloads))
		}
		if !acks[0].DueAt.Equal(want) {
			t.Fatalf("%s: retention %s after %s: SQL says due %s, domain %s", tl, tl.c.Terms().Retention, fmtTime(e.EndedAt()),
				acks[0].DueAt.UTC().Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
		}
		if got := payloads[0]; got != want.UTC().Format("2006-01-02T15:04:05.000000Z") {
			t.Fatalf("%s: retention %s after %s: the event says delete_by %s, domain %s", tl, tl.c.Terms().Retention, fmtTime(e.EndedAt()),
				got, want.Format(time.RFC3339Nano))
		}
		// When the duty is overdue: SQL's overdue list and domain's
		// DeletionState (the state partners and members read) at instants
		// around the due time, confirmed or not.
		var confirmed *time.Time
		if r.Intn(3) == 0 {
			c := want.Add(time.Duration(r.Intn(3)-1) * time.Hour)
			confirmed = &c
			if err := w.db.Exec(`UPDATE deletion_acks SET confirmed_at = ? WHERE exchange_id = ?`, c, e.ID()).Error; err != nil {
				t.Fatal(err)
			}
		}
		for _, at := range []time.Time{want, want.Add(time.Microsecond), want.Add(-time.Microsecond), notable(r, e, tl.c, *e.EndedAt(), horizon(tl.c))} {
			var overdue bool
			if err := w.db.Raw(`SELECT bool_or(`+postgres.OverdueAt("CAST(? AS timestamptz)")+`) FROM deletion_acks a WHERE a.exchange_id = ?`,
				at, e.ID()).Scan(&overdue).Error; err != nil {
				t.Fatal(err)
			}
			if state := domain.DeletionState(want, confirmed, at); overdue != (state == "overdue") {
				t.Fatalf("%s: due %s, confirmed %s, at %s: SQL says overdue=%v, domain %s", tl, want.Format(time.RFC3339Nano), fmtTime(confirmed),
					at.Format(time.RFC3339Nano), overdue, state)
			}
		}
		checked++
	}
	if checked < 50 {
		t.Fatalf("only %d of 300 timelines ended; the generator no longer exercises the rule", checked)
	}
}

// webhookSchemas are the request bodies openapi.yaml's webhooks declare,
// by event type.
func webhookSchemas(t *testing.T) map[string]*openapi3.Schema {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(quid.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*openapi3.Schema{}
	for name, item := range doc.Webhooks {
		if item.Post == nil || item.Post.RequestBody == nil || item.Post.RequestBody.Value.Content.Get("application/json") == nil {
			t.Fatalf("openapi.yaml: webhook %s declares no JSON body", name)
		}
		out[name] = item.Post.RequestBody.Value.Content.Get("application/json").Schema.Value
	}
	return out
}

// TestWebhookPayloadsMatchOpenAPI drives every way the code emits a
// webhook event (a join, built in Go; cancel, expiry, termination,
// supersession, restriction, rectification, expiry reminder and renewal,
// built in SQL; an erasure request) with random contract
// shapes, and validates every payload in the outbox against the schema
// openapi.yaml's webhooks declare for its type. Every declared type must
// be emitted, and no undeclared one.
func TestWebhookPayloadsMatchOpenAPI(t *testing.T) {
	t.Parallel()
	r := paritySeed(t)
	w := newWorld(t)
	ctx := context.Background()
	schemas := webhookSchemas(t)
	other, err := w.contracts.CreateRecipient(ctx, admin, app.RecipientInput{Name: "Partner", Kind: "third_party", Country: "SE", PrivacyPolicyURL: "https://partner.example/privacy"})
	if err != nil {
		t.Fatal(err)
	}
	recipients := []string{w.brand.ID, other.ID}
	categories := []string{"location.city", "contact.email", "demographic.gender"}
	purposes := []string{"loyalty.personalised_offers"}
	items := func() []app.ItemInput {
		var out []app.ItemInput
		for _, c := range categories[:1+r.Intn(len(categories))] {
			rs := recipients[:1+r.Intn(2)]
			if r.Intn(2) == 0 {
				rs = []string{recipients[r.Intn(2)]}
			}
			out = append(out, app.ItemInput{Category: c, Purpose: purposes[0], Recipients: rs})
		}
		return out
	}
	// Lapsing consent names the brand, who is reminded before it lapses.
	brandNamed := func(in *app.TermsInput) {
		if in.Duration != nil && !slices.ContainsFunc(in.Items, func(it app.ItemInput) bool { return slices.Contains(it.Recipients, w.brand.ID) }) {
			in.Items[0].Recipients = append(in.Items[0].Recipients, w.brand.ID)
		}
	}
	publish := func(duration string, vesting bool) domain.Contract {
		in := app.TermsInput{ValueEstimate: &testEstimate, ValueMethod: str("revenue_attributable"), ValueExplanation: str("Revenue per member."), Title: "Hooks", Retention: []string{"P30D", "P1M", "PT1S"}[r.Intn(3)], Items: items(),
			Reward: app.RewardInput{JoinBonus: int64(1 + r.Intn(200)), PointsPerPeriod: 1, Period: str("P1D")}}
		if vesting {
			in.Reward.Vesting = str("P7D")
		}
		if duration != "" {
			in.Duration = str(duration)
		}
		brandNamed(&in)
		d, err := w.contracts.CreateDraft(ctx, marketer, in)
		if err != nil {
			t.Fatal(err)
		}
		c, err := w.contracts.Publish(ctx, marketer, d.ID())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for i := 0; i < 12; i++ {
		p := w.enrol(fmt.Sprintf("hooks-%d", i))
		// Cancels always void a bonus still vesting; others vest at once
		// or not, at random.
		c := publish([]string{"", "P1Y"}[r.Intn(2)], i%5 == 0 || r.Intn(2) == 0)
		e := w.join(p, c) // exchange.joined
		if b, _, _, err := w.exchanges.Points(ctx, p, app.Page{}); err == nil && b.Available > 0 {
			if _, _, _, err := w.exchanges.Redeem(ctx, p, 1+int64(r.Intn(int(b.Available))), "parity", nil); err != nil {
				t.Fatal(err)
			}
		}
		if i%4 == 1 { // member.restricted, member.restriction_lifted
			for _, restricted := range []bool{true, false} {
				if _, err := w.store.SetRestriction(ctx, p.Subject, restricted); err != nil {
					t.Fatal(err)
				}
			}
		}
		switch i % 5 {
		case 0: // exchange.cancelled
			if _, err := w.exchanges.Cancel(ctx, p, e.ID()); err != nil {
				t.Fatal(err)
			}
		case 1: // exchange.expired, by the accrual worker
			c2 := publish("P1D", r.Intn(2) == 0)
			e2 := w.join(w.enrol(fmt.Sprintf("hooks-exp-%d", i)), c2)
			w.backdate(e2.ID(), 2*24*time.Hour)
			w.accrue()
		case 2: // exchange.terminated
			if _, _, err := w.contracts.Retire(ctx, marketer, c.ID(), true); err != nil {
				t.Fatal(err)
			}
		case 3: // exchange.superseded, with and without withdrawn categories
			draft, err := w.contracts.NewVersion(ctx, marketer, c.ID())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.contracts.EditDraft(ctx, marketer, draft.ID(), func(in app.TermsInput) app.TermsInput {
				in.Title = "Hooks v2"
				if r.Intn(2) == 0 {
					in.Items = items()
					brandNamed(&in)
				}
				return in
			}); err != nil {
				t.Fatal(err)
			}
			v2, err := w.contracts.Publish(ctx, marketer, draft.ID())
			if err != nil {
				t.Fatal(err)
			}
			w.join(p, v2)
		case 4: // member.erasure_requested
			if _, err := w.store.EraseMember(ctx, p.Subject); err != nil {
				t.Fatal(err)
			}
		}
	}
	// member.attributes_changed: a member whose consent is in force
	// corrects a category it shares.
	rectifying := w.enrol("hooks-rectify")
	w.join(rectifying, publish("", false))
	if _, err := w.members.Enrol(ctx, rectifying, map[string]any{"location.city": "Bergen"}); err != nil {
		t.Fatal(err)
	}
	// exchange.expiring: the renewal window opened (the exchange moved
	// back in time); the brand is a first-party recipient.
	renewing, err := w.contracts.CreateDraft(ctx, marketer, app.TermsInput{ValueEstimate: &testEstimate, ValueMethod: str("revenue_attributable"), ValueExplanation: str("Revenue per member."), Title: "Hooks renewal", Retention: "P30D",
		Items:    []app.ItemInput{{Category: "location.city", Purpose: purposes[0], Recipients: []string{w.brand.ID}}},
		Duration: str("P1Y"), Reward: app.RewardInput{JoinBonus: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.contracts.Publish(ctx, marketer, renewing.ID()); err != nil {
		t.Fatal(err)
	}
	expiring := w.enrol("hooks-expiring")
	onRenewing := w.join(expiring, renewing)
	openRenewalWindow(t, w.db, onRenewing.ID())
	if _, err := w.store.RemindExpiring(ctx); err != nil {
		t.Fatal(err)
	}
	// exchange.renewed: the member renews inside that window.
	if _, err := w.exchanges.Renew(ctx, expiring, onRenewing.ID()); err != nil {
		t.Fatal(err)
	}
	// points.expiring: the lot of the join bonus (earned under a contract
	// naming the brand) is moved to expire within the notice.
	var lots int64
	if err := w.db.Raw(`WITH moved AS (UPDATE points_lots l SET expires_at = now() + interval '1 day' FROM ledger_entries c
		WHERE c.id = l.entry_id AND c.member_id = ? AND c.contract_id = ? RETURNING 1) SELECT count(*) FROM moved`,
		expiring.Subject, renewing.ID()).Scan(&lots).Error; err != nil || lots == 0 {
		t.Fatalf("moved %d lots: %v", lots, err)
	}
	if _, err := w.store.RemindPointsExpiring(ctx, domain.MustParseDuration("P14D")); err != nil {
		t.Fatal(err)
	}
	// member.tier_changed: a tier of one point earned reaches the members
	// whose bonus vested.
	if _, err := w.store.AddTierSchedule(ctx, domain.TierSchedule{Window: domain.MustParseDuration("P10Y"),
		Tiers: []domain.Tier{{Name: "Bronze", Threshold: 1, Benefits: "A badge."}}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.AnnounceTierChanges(ctx); err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		EventType string
		Payload   []byte
	}
	if err := w.db.Raw(`SELECT event_type, payload FROM webhook_outbox ORDER BY created_at`).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, row := range rows {
		seen[row.EventType]++
		schema, ok := schemas[row.EventType]
		if !ok {
			t.Fatalf("the code emits %s, which openapi.yaml's webhooks do not declare", row.EventType)
		}
		var payload map[string]any
		if err := json.Unmarshal(row.Payload, &payload); err != nil {
			t.Fatal(err)
		}
		if payload["type"] != row.EventType {
			t.Fatalf("a %s event whose payload says type %v", row.EventType, payload["type"])
		}
		if err := schema.VisitJSON(payload, openapi3.EnableJSONSchema2020()); err != nil {
			t.Fatalf("%s payload does not match openapi.yaml: %v\n%s", row.EventType, err, row.Payload)
		}
		// The validator must be able to say no: the same payload without
		// its data is refused.
		delete(payload, "data")
		if schema.VisitJSON(payload, openapi3.EnableJSONSchema2020()) == nil {
			t.Fatalf("%s: the schema accepts a payload without data; the check proves nothing", row.EventType)
		}
	}
	for name := range schemas {
		if seen[name] == 0 {
			t.Errorf("openapi.yaml declares webhook %s, which no path of this test emitted (emitted: %v)", name, seen)
		}
	}
	// These paths are also every writer of balances outside the accrual
	// worker (the join's statement, a cancel's void in Go, termination,
	// supersession, a redemption): what each wrote must be what domain
	// says its entries move.
	assertBalancesFoldWithDomain(t, w)
}

// assertBalancesFoldWithDomain folds every member's ledger, in the order it
// was written, with domain.Balance.Apply and compares with the balances
// the SQL keeps.
func assertBalancesFoldWithDomain(t *testing.T, w *world) {
	t.Helper()
	var entries []struct {
		MemberID string
		Kind     string
		Points   int64
	}
	if err := w.db.Raw(`SELECT member_id, kind, points FROM ledger_entries ORDER BY seq`).Scan(&entries).Error; err != nil {
		t.Fatal(err)
	}
	folded := map[string]domain.Balance{}
	for _, e := range entries {
		b, err := folded[e.MemberID].Apply(domain.EntryKind(e.Kind), e.Points)
		if err != nil {
			t.Fatalf("domain refuses a stored %s entry of %d: %v", e.Kind, e.Points, err)
		}
		folded[e.MemberID] = b
	}
	var members []struct {
		ID                 string
		Available, Pending int64
	}
	if err := w.db.Raw(`SELECT id, available, pending FROM members`).Scan(&members).Error; err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, e := range entries {
		kinds[e.Kind] = true
	}
	for _, m := range members {
		if f := folded[m.ID]; f.Available != m.Available || f.Pending != m.Pending {
			t.Fatalf("a member's balances are available %d, pending %d; domain folds its entries to %+v", m.Available, m.Pending, f)
		}
	}
	if len(kinds) < 4 {
		t.Fatalf("the flows wrote only entry kinds %v", kinds)
	}
}
