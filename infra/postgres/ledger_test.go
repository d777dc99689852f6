package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
	"github.com/quidpro/quid/infra/catalog"
	"github.com/quidpro/quid/infra/postgres"
	"github.com/quidpro/quid/infra/postgres/pgtest"
)

type clock struct{}

func (clock) Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

type ids struct{}

func (ids) NewID() string { return uuid.NewString() }

type plainSigner struct{}

func (plainSigner) SignReceipt(r app.Receipt) (string, error) { return "receipt-" + r.ID, nil }

// world is the use cases on a fresh database, with one recipient.
type world struct {
	t         *testing.T
	db        *gorm.DB
	store     *postgres.Store
	contracts *app.Contracts
	members   *app.Members
	exchanges *app.Exchanges
	accrual   *app.Accrual
	brand     domain.Recipient
}

var (
	marketer = app.Principal{Subject: "mark", Role: app.RoleMarketer}
	admin    = app.Principal{Subject: "root", Role: app.RoleAdmin}
)

func member(id string) app.Principal { return app.Principal{Subject: id, Role: app.RoleMember} }

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.NewDatabase(t), slog.New(slog.NewTextHandler(io.Discard, nil)), postgres.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	cat, err := catalog.Load()
	if err != nil {
		t.Fatal(err)
	}
	store := postgres.NewStore(db)
	w := &world{t: t, db: db, store: store,
		contracts: app.NewContracts(store, store, domain.ContractPolicy{Catalog: cat, MinPeriod: time.Second}, clock{}, ids{}),
		members:   app.NewMembers(store, cat),
		exchanges: app.NewExchanges(store, store, store, plainSigner{}, ids{}, cat),
		accrual:   accrualWorker(store, 50),
	}
	w.brand, err = w.contracts.CreateRecipient(ctx, admin, app.RecipientInput{Name: "Brand", Kind: "first_party", Country: "NO", PrivacyPolicyURL: "https://brand.example/privacy"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.contracts.PutProgramme(ctx, admin, testProgramme); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.assertLedgerBalances)
	return w
}

// Contracts are published under a programme identity and with a value estimate.
var (
	testProgramme = app.ProgrammeInput{LegalName: "Brand AS", Address: "Storgata 1, 0155 Oslo, Norway",
		ContactEmail: "privacy@brand.example", DPOContact: "dpo@brand.example", AuthorityName: "Datatilsynet",
		ComplaintURL: "https://www.datatilsynet.no/en/", PointValue: domain.PointValue{Currency: "EUR", Amount: "0.01"},
		Jurisdictions: []string{"NO"}}
	testEstimate = app.ValueEstimateInput{Amount: "4.80", Currency: "EUR", Per: "P1Y"}
)

// accrualWorker is an accrual worker without housekeeping that takes batch
// members per batch.
func accrualWorker(store *postgres.Store, batch int) *app.Accrual {
	a := app.NewAccrual(store, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	a.BatchSize = batch
	return a
}

func str(s string) *string { return &s }

type offer struct {
	bonus, perPeriod int64
	vesting, period  string
	duration         string
	maxPeriods       int
}

func (w *world) publish(o offer) domain.Contract {
	w.t.Helper()
	in := app.TermsInput{ValueEstimate: &testEstimate, ValueMethod: str("revenue_attributable"), ValueExplanation: str("Revenue per member."), Title: "Offer", Retention: "P30D",
		Items:  []app.ItemInput{{Category: "location.city", Purpose: "loyalty.personalised_offers", Recipients: []string{w.brand.ID}}},
		Reward: app.RewardInput{JoinBonus: o.bonus, PointsPerPeriod: o.perPeriod}}
	if o.vesting != "" {
		in.Reward.Vesting = str(o.vesting)
	}
	if o.period != "" {
		in.Reward.Period = str(o.period)
	}
	if o.duration != "" {
		in.Duration = str(o.duration)
	}
	if o.maxPeriods > 0 {
		in.Reward.MaxPeriods = &o.maxPeriods
	}
	ctx := context.Background()
	d, err := w.contracts.CreateDraft(ctx, marketer, in)
	if err != nil {
		w.t.Fatal(err)
	}
	c, err := w.contracts.Publish(ctx, marketer, d.ID())
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

func (w *world) enrol(id string) app.Principal {
	w.t.Helper()
	if _, err := w.members.Enrol(context.Background(), member(id), map[string]any{"location.city": "Oslo",
		"contact.email": "m@example.com", "demographic.birthdate": "1990-05-01", "demographic.gender": "woman"}); err != nil {
		w.t.Fatal(err)
	}
	return member(id)
}

func (w *world) join(p app.Principal, c domain.Contract) domain.Exchange {
	w.t.Helper()
	e, _, err := w.exchanges.Join(context.Background(), p, c.ID(), nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

// backdate moves an exchange into the past, as if it had been joined ago
// earlier: the way to show what a late worker owes without a fake clock.
func (w *world) backdate(exchangeID string, ago time.Duration) {
	w.t.Helper()
	iv := fmt.Sprintf("%d microseconds", ago.Microseconds())
	if err := w.db.Exec(`UPDATE exchanges SET joined_at = joined_at - ?::interval, next_period_end = next_period_end - ?::interval,
		bonus_vests_at = bonus_vests_at - ?::interval, expires_at = expires_at - ?::interval WHERE id = ?`,
		iv, iv, iv, iv, exchangeID).Error; err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) accrue() app.AccrualResult {
	w.t.Helper()
	r, err := w.accrual.RunOnce(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

type credit struct {
	PeriodStart, PeriodEnd time.Time
}

func (w *world) credits(exchangeID string) []credit {
	w.t.Helper()
	var out []credit
	if err := w.db.Raw(`SELECT period_start, period_end FROM ledger_entries WHERE exchange_id = ? AND kind = 'period_credit' ORDER BY period_start`,
		exchangeID).Scan(&out).Error; err != nil {
		w.t.Fatal(err)
	}
	return out
}

func (w *world) exchange(id string) domain.Exchange {
	w.t.Helper()
	var memberID string
	w.db.Raw(`SELECT member_id FROM exchanges WHERE id = ?`, id).Scan(&memberID)
	e, err := w.store.GetExchange(context.Background(), memberID, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

// assertLedgerBalances checks rule 3 after every test: each balance equals
// the sum of its entries, and none is negative.
func (w *world) assertLedgerBalances() {
	var bad []struct {
		ID                             string
		Available, Pending, SumA, SumP int64
	}
	err := w.db.Raw(`
SELECT m.id, m.available, m.pending, coalesce(s.a, 0) AS sum_a, coalesce(s.p, 0) AS sum_p
FROM members m LEFT JOIN (
    SELECT member_id,
        sum(points) FILTER (WHERE kind IN ('period_credit', 'bonus_vested', 'redemption', 'reversal', 'expiry')) AS a,
        coalesce(sum(points) FILTER (WHERE kind IN ('bonus_pending', 'bonus_voided')), 0)
          - coalesce(sum(points) FILTER (WHERE kind = 'bonus_vested'), 0) AS p
    FROM ledger_entries GROUP BY member_id) s ON s.member_id = m.id
WHERE m.available <> coalesce(s.a, 0) OR m.pending <> coalesce(s.p, 0) OR m.available < 0 OR m.pending < 0`).Scan(&bad).Error
	if err != nil {
		w.t.Errorf("balance check: %v", err)
	}
	for _, b := range bad {
		w.t.Errorf("member %s: available %d pending %d, but entries sum to %d and %d", b.ID, b.Available, b.Pending, b.SumA, b.SumP)
	}
}

func TestLateWorkerPaysEveryEarnedPeriodAndNoMore(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.publish(offer{perPeriod: 10, period: "PT1H"})
	e := w.join(w.enrol("alice"), c)
	w.backdate(e.ID(), 7*24*time.Hour+30*time.Minute) // the worker was down for a week

	r := w.accrue()
	if r.Credits != 168 || r.Points != 1680 {
		t.Fatalf("first run: %+v, want 168 credits", r)
	}
	if again := w.accrue(); again.Credits != 0 {
		t.Fatalf("second run paid again: %+v", again)
	}
	if st, _, err := w.store.ContractStats(context.Background(), c.ID()); err != nil || st.PointsIssued != 1680 || st.Active != 1 {
		t.Fatalf("stats %+v, %v: want the 1,680 points the ledger holds", st, err)
	}
	got := w.credits(e.ID())
	joined := w.exchange(e.ID()).JoinedAt()
	for k, cr := range got {
		start, end := domain.PeriodBounds(joined, domain.MustParseDuration("PT1H"), k)
		if !cr.PeriodStart.Equal(start) || !cr.PeriodEnd.Equal(end) {
			t.Fatalf("credit %d covers [%s, %s), want [%s, %s)", k, cr.PeriodStart, cr.PeriodEnd, start, end)
		}
	}
}

func TestConcurrentWorkersCreditEachPeriodExactlyOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.publish(offer{perPeriod: 1, period: "PT1H", maxPeriods: 40})
	const members = 60
	for i := 0; i < members; i++ {
		e := w.join(w.enrol(fmt.Sprintf("m%02d", i)), c)
		w.backdate(e.ID(), 50*time.Hour) // 50 periods earned, capped at 40
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker := accrualWorker(w.store, 7)
			if _, err := worker.RunOnce(context.Background()); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	w.accrue() // whatever a worker skipped because another held the lock
	var n, distinct int64
	w.db.Raw(`SELECT count(*) FROM ledger_entries WHERE kind = 'period_credit'`).Scan(&n)
	w.db.Raw(`SELECT count(DISTINCT (exchange_id, period_start)) FROM ledger_entries WHERE kind = 'period_credit'`).Scan(&distinct)
	if n != members*40 || distinct != n {
		t.Fatalf("%d credits (%d distinct), want %d", n, distinct, members*40)
	}
}

func TestCancellationRacingAccrualNeverPaysAPeriodEndingAfterIt(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.publish(offer{perPeriod: 5, period: "PT1S"})
	const members = 24
	var exchanges []domain.Exchange
	for i := 0; i < members; i++ {
		exchanges = append(exchanges, w.join(w.enrol(fmt.Sprintf("r%02d", i)), c))
	}
	ctx, stop := context.WithCancel(context.Background())
	var workers sync.WaitGroup
	for i := 0; i < 3; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			worker := accrualWorker(w.store, 5)
			for ctx.Err() == nil {
				if _, err := worker.RunOnce(ctx); err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	// Members cancel at scattered instants, many right on period boundaries,
	// while the workers keep crediting.
	var cancels sync.WaitGroup
	for i, e := range exchanges {
		cancels.Add(1)
		go func() {
			defer cancels.Done()
			time.Sleep(time.Duration(i) * 125 * time.Millisecond)
			if _, err := w.exchanges.Cancel(context.Background(), member(e.MemberID()), e.ID()); err != nil {
				t.Error(err)
			}
		}()
	}
	cancels.Wait()
	time.Sleep(1100 * time.Millisecond) // every period that could end after a cancellation has now ended
	stop()
	workers.Wait()
	w.accrue()
	paid := 0
	for _, e := range exchanges {
		ended := w.exchange(e.ID())
		credits := w.credits(e.ID())
		paid += len(credits)
		for _, cr := range credits {
			if cr.PeriodEnd.After(*ended.EndedAt()) {
				t.Errorf("exchange %s cancelled at %s was credited for [%s, %s)", e.ID(), ended.EndedAt(), cr.PeriodStart, cr.PeriodEnd)
			}
		}
		whole := int(ended.EndedAt().Sub(ended.JoinedAt()) / time.Second)
		if len(credits) != whole {
			t.Errorf("exchange %s active %s got %d credits, want %d", e.ID(), ended.EndedAt().Sub(ended.JoinedAt()), len(credits), whole)
		}
	}
	if paid == 0 {
		t.Fatal("no period was ever paid: the race was not exercised")
	}
}

func TestBonusVestsWhileActiveAndIsVoidedByAnEarlyCancel(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.publish(offer{bonus: 200, vesting: "P14D"})
	ctx := context.Background()

	kept := w.join(w.enrol("keeper"), c)
	w.backdate(kept.ID(), 15*24*time.Hour)
	left := w.join(w.enrol("leaver"), c)

	m, _ := w.members.Get(ctx, member("leaver"))
	if m.Balance.Pending != 200 || m.Balance.Available != 0 {
		t.Fatalf("after join: %+v", m.Balance)
	}
	if _, err := w.exchanges.Cancel(ctx, member("leaver"), left.ID()); err != nil {
		t.Fatal(err)
	}
	if r := w.accrue(); r.Vested != 1 {
		t.Fatalf("accrual: %+v, want one bonus vested", r)
	}
	keeper, _ := w.members.Get(ctx, member("keeper"))
	leaver, _ := w.members.Get(ctx, member("leaver"))
	if keeper.Balance != (domain.Balance{Available: 200}) || leaver.Balance != (domain.Balance{}) {
		t.Fatalf("keeper %+v, leaver %+v", keeper.Balance, leaver.Balance)
	}
	if e := w.exchange(left.ID()); e.BonusState() != domain.BonusVoided {
		t.Fatalf("leaver's bonus is %s", e.BonusState())
	}
}

func TestBonusIsPaidOncePerFamilyEvenAfterLeavingAndRejoining(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.publish(offer{bonus: 100, vesting: "PT1S", perPeriod: 1, period: "PT1H"})
	ctx := context.Background()
	p := w.enrol("alice")
	first := w.join(p, c)
	w.backdate(first.ID(), time.Minute)
	w.accrue()
	if _, err := w.exchanges.Cancel(ctx, p, first.ID()); err != nil {
		t.Fatal(err)
	}
	second := w.join(p, c)
	if second.BonusState() != domain.BonusNone {
		t.Fatalf("bonus offered again: %s", second.BonusState())
	}
	var bonuses int64
	w.db.Raw(`SELECT count(*) FROM ledger_entries WHERE member_id = 'alice' AND kind = 'bonus_pending'`).Scan(&bonuses)
	if bonuses != 1 {
		t.Fatalf("%d bonus entries", bonuses)
	}
}

func TestConcurrentDuplicateJoinsLeaveOneActiveExchange(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.publish(offer{bonus: 10})
	p := w.enrol("alice")
	var wg sync.WaitGroup
	results := make(chan error, 12)
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := w.exchanges.Join(context.Background(), p, c.ID(), nil)
			results <- err
		}()
	}
	wg.Wait()
	close(results)
	ok := 0
	for err := range results {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, domain.ErrConflict):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	var active int64
	w.db.Raw(`SELECT count(*) FROM exchanges WHERE member_id = 'alice' AND status = 'active'`).Scan(&active)
	if ok != 1 || active != 1 {
		t.Fatalf("%d joins succeeded, %d active", ok, active)
	}
}

func TestIdempotencyKeyReplaysTheFirstJoin(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.publish(offer{bonus: 10})
	other := w.publish(offer{bonus: 20})
	p := w.enrol("alice")
	ctx := context.Background()
	key, _ := app.NewIdempotencyKey("k-1", true, []byte(`{"contract_id":"`+c.ID()+`"}`))
	first, replayed, err := w.exchanges.Join(ctx, p, c.ID(), key)
	if err != nil || replayed {
		t.Fatal(err, replayed)
	}
	again, replayed, err := w.exchanges.Join(ctx, p, c.ID(), key)
	if err != nil || !replayed || again.ID() != first.ID() || again.Receipt() != first.Receipt() {
		t.Fatalf("replay: %+v %v %v", again, replayed, err)
	}
	otherKey, _ := app.NewIdempotencyKey("k-1", true, []byte(`{"contract_id":"`+other.ID()+`"}`))
	if _, _, err := w.exchanges.Join(ctx, p, other.ID(), otherKey); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("key reused with another body: %v", err)
	}
	var n int64
	w.db.Raw(`SELECT count(*) FROM exchanges WHERE member_id = 'alice'`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d exchanges", n)
	}
}

func TestConcurrentRedemptionsNeverOverdraw(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.publish(offer{perPeriod: 10, period: "PT1H"})
	p := w.enrol("alice")
	e := w.join(p, c)
	w.backdate(e.ID(), 10*time.Hour+time.Minute)
	w.accrue() // 100 points available
	var wg sync.WaitGroup
	results := make(chan error, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, _, err := w.exchanges.Redeem(context.Background(), p, 30, fmt.Sprintf("order-%d", i), nil)
			results <- err
		}()
	}
	wg.Wait()
	close(results)
	ok := 0
	for err := range results {
		if err == nil {
			ok++
		} else if !errors.Is(err, &domain.Error{Kind: domain.KindInvalid, Code: "insufficient-points"}) {
			t.Fatalf("unexpected: %v", err)
		}
	}
	m, _ := w.members.Get(context.Background(), p)
	if ok != 3 || m.Balance.Available != 10 {
		t.Fatalf("%d redemptions succeeded, available %d", ok, m.Balance.Available)
	}
}

func TestExpiryEndsConsentAndItsCredits(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.publish(offer{bonus: 50, vesting: "P1D", perPeriod: 1, period: "PT1H", duration: "PT10H"})
	e := w.join(w.enrol("alice"), c)
	w.backdate(e.ID(), 30*time.Hour)
	r := w.accrue()
	got := w.exchange(e.ID())
	if got.Status() != domain.ExchangeExpired || !got.EndedAt().Equal(*got.ExpiresAt()) {
		t.Fatalf("exchange: %+v", got)
	}
	if r.Expired != 1 || r.Credits != 10 || len(w.credits(e.ID())) != 10 {
		t.Fatalf("accrual %+v, want 10 credits and one expiry", r)
	}
	if got.BonusState() != domain.BonusVoided {
		t.Fatalf("bonus vesting after expiry was not voided: %s", got.BonusState())
	}
}

func TestReconsentSupersedesWithoutPayingTheBonusAgain(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	v1 := w.publish(offer{bonus: 100, vesting: "P7D"})
	p := w.enrol("alice")
	old := w.join(p, v1)
	draft, err := w.contracts.NewVersion(ctx, marketer, v1.ID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.contracts.EditDraft(ctx, marketer, draft.ID(), func(in app.TermsInput) app.TermsInput {
		in.Items = append(in.Items, app.ItemInput{Category: "contact.email", Purpose: "loyalty.personalised_offers", Recipients: []string{w.brand.ID}})
		return in
	}); err != nil {
		t.Fatal(err)
	}
	v2, err := w.contracts.Publish(ctx, marketer, draft.ID())
	if err != nil {
		t.Fatal(err)
	}
	views, _, err := w.exchanges.List(ctx, p, app.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if nv := views[0].NewerVersion; nv == nil || nv.ContractID != v2.ID() || !nv.Material {
		t.Fatalf("newer version not offered: %+v", views[0].NewerVersion)
	}
	if _, _, err := w.exchanges.Join(ctx, p, v1.ID(), nil); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("joining the retired version: %v", err)
	}
	next := w.join(p, v2)
	if got := w.exchange(old.ID()); got.Status() != domain.ExchangeSuperseded {
		t.Fatalf("old exchange is %s", got.Status())
	}
	if next.BonusState() != domain.BonusPending || next.BonusPoints() != 100 {
		t.Fatalf("pending bonus not carried over: %+v", next)
	}
	m, _ := w.members.Get(ctx, p)
	if m.Balance.Pending != 100 {
		t.Fatalf("pending %d, want the one bonus", m.Balance.Pending)
	}
}

func TestTerminationEndsEveryActiveExchangeOfTheVersion(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	c := w.publish(offer{bonus: 30, vesting: "P1D", perPeriod: 1, period: "PT1H"})
	a := w.join(w.enrol("a"), c)
	b := w.join(w.enrol("b"), c)
	w.backdate(a.ID(), 3*time.Hour+time.Minute)
	_, n, err := w.contracts.Retire(ctx, marketer, c.ID(), true)
	if err != nil || n != 2 {
		t.Fatalf("terminated %d: %v", n, err)
	}
	w.accrue()
	for _, id := range []string{a.ID(), b.ID()} {
		e := w.exchange(id)
		if e.Status() != domain.ExchangeTerminated || e.BonusState() != domain.BonusVoided {
			t.Fatalf("%s: %+v", id, e)
		}
		for _, cr := range w.credits(id) {
			if cr.PeriodEnd.After(*e.EndedAt()) {
				t.Fatalf("credit after termination")
			}
		}
	}
	if got := len(w.credits(a.ID())); got != 3 {
		t.Fatalf("periods earned before termination: %d, want 3", got)
	}
}

func TestJoinsRacingATerminationLeaveNoActiveExchangeBehind(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.publish(offer{bonus: 10, vesting: "P1D"})
	var members []app.Principal
	for i := 0; i < 30; i++ {
		members = append(members, w.enrol(fmt.Sprintf("j%02d", i)))
	}
	var wg sync.WaitGroup
	for i, p := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * time.Millisecond)
			_, _, err := w.exchanges.Join(context.Background(), p, c.ID(), nil)
			if err != nil && !errors.Is(err, domain.ErrConflict) {
				t.Error(err)
			}
		}()
	}
	time.Sleep(10 * time.Millisecond)
	if _, _, err := w.contracts.Retire(context.Background(), marketer, c.ID(), true); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	var active int64
	w.db.Raw(`SELECT count(*) FROM exchanges WHERE contract_id = ? AND status = 'active'`, c.ID()).Scan(&active)
	if active != 0 {
		t.Fatalf("%d exchanges still active on a terminated version", active)
	}
}
