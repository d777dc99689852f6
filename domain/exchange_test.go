package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/quidpro/quid/domain"
)

func published(t *testing.T) domain.Contract {
	t.Helper()
	c := domain.NewDraft("c1", "f1", 1, terms(), t0)
	if err := c.Publish(recipients(), programme(), t0); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestJoinRequiresAPublishedVersion(t *testing.T) {
	t.Parallel()
	draft := domain.NewDraft("c1", "f1", 1, terms(), t0)
	if _, err := domain.Join("e1", "m1", draft, t0, true); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("join draft: %v, want not found (drafts are not public)", err)
	}
	retired := published(t)
	if err := retired.Retire(t0); err != nil {
		t.Fatal(err)
	}
	if _, err := domain.Join("e1", "m1", retired, t0, true); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("join retired: %v", err)
	}
	e, err := domain.Join("e1", "m1", published(t), t0, true)
	if err != nil {
		t.Fatal(err)
	}
	if e.BonusState() != domain.BonusPending || e.BonusPoints() != 200 || !e.BonusVestsAt().Equal(t0.AddDate(0, 0, 14)) {
		t.Fatalf("bonus: %+v", e)
	}
	if !e.NextPeriodEnd().Equal(t0.AddDate(0, 1, 0)) || !e.ExpiresAt().Equal(t0.AddDate(1, 0, 0)) {
		t.Fatalf("times: %+v", e)
	}
	again, _ := domain.Join("e2", "m1", published(t), t0, false)
	if again.BonusState() != domain.BonusNone {
		t.Fatalf("bonus paid twice: %+v", again)
	}
}

func TestCancelStopsLaterCreditsAndVoidsUnvestedBonus(t *testing.T) {
	t.Parallel()
	e, _ := domain.Join("e1", "m1", published(t), t0, true)
	at := t0.Add(10 * 24 * time.Hour)
	voided, changed := e.Cancel(at)
	if !changed || voided != 200 || e.BonusState() != domain.BonusVoided || e.Status() != domain.ExchangeCancelled {
		t.Fatalf("cancel: voided=%d changed=%v %+v", voided, changed, e)
	}
	if e.NextPeriodEnd() != nil {
		t.Fatalf("a period ending after the cancellation is still due: %v", e.NextPeriodEnd())
	}
	if v, changed := e.Cancel(at.Add(time.Hour)); changed || v != 0 || !e.EndedAt().Equal(at) {
		t.Fatalf("second cancel changed state")
	}
}

func TestSupersedeCarriesThePendingBonusToTheNewVersion(t *testing.T) {
	t.Parallel()
	old, _ := domain.Join("e1", "m1", published(t), t0, true)
	c2 := domain.NewDraft("c2", "f1", 2, terms(), t0)
	_ = c2.Publish(recipients(), programme(), t0)
	next, _ := domain.Join("e2", "m1", c2, t0.Add(time.Hour), false)
	old.Supersede(&next, t0.Add(time.Hour))
	if old.Status() != domain.ExchangeSuperseded || old.BonusState() != domain.BonusTransferred {
		t.Fatalf("old: %+v", old)
	}
	if next.BonusState() != domain.BonusPending || next.BonusPoints() != 200 || !next.BonusVestsAt().Equal(*old.BonusVestsAt()) {
		t.Fatalf("new: %+v", next)
	}
}

func TestBalanceNeverGoesNegative(t *testing.T) {
	t.Parallel()
	b := domain.Balance{Available: 100, Pending: 50}
	if _, err := b.Redeem(101); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("overdraw: %v", err)
	}
	if _, err := b.Redeem(0); err == nil {
		t.Fatal("zero redemption accepted")
	}
	after, err := b.Redeem(100)
	if err != nil || after.Available != 0 || after.Pending != 50 {
		t.Fatalf("redeem: %+v %v", after, err)
	}
	vested, err := b.Apply(domain.EntryBonusVested, 50)
	if err != nil || vested.Available != 150 || vested.Pending != 0 {
		t.Fatalf("vest: %+v %v", vested, err)
	}
}

func TestDerivedCategoriesDiscloseOnlyTheFact(t *testing.T) {
	t.Parallel()
	c := testCatalog(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC) // 1 May has begun everywhere
	tests := []struct {
		birth string
		want  bool
	}{{"2008-05-01", true}, {"2008-05-02", false}, {"1990-01-01", true}}
	for _, tt := range tests {
		v, ok := c.Derive("demographic.age_over_18", tt.birth, now)
		if !ok || v != tt.want {
			t.Errorf("%s: got %v, want %v", tt.birth, v, tt.want)
		}
	}
	if err := c.ValidateAttribute("demographic.age_over_18", true); err == nil {
		t.Error("a derived category was accepted as a stored attribute")
	}
}
