package domain_test

import (
	"testing"

	"github.com/quidpro/quid/domain"
)

func TestZeroVestingParsesAsNone(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"PT0S", "P0D", "P0Y0M", "PT0H0M0S", "P00D"} {
		if d, err := domain.ParseOptionalDuration(in); err != nil || !d.IsZero() {
			t.Errorf("%s: %v, %v; want zero", in, d, err)
		}
	}
	for _, in := range []string{"", "P", "PT", "0", "P-1D", "zero"} {
		if _, err := domain.ParseOptionalDuration(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	if d, err := domain.ParseOptionalDuration("P14D"); err != nil || d != domain.MustParseDuration("P14D") {
		t.Errorf("P14D: %v, %v", d, err)
	}
}

func TestABonusWithoutVestingVestsInTheJoin(t *testing.T) {
	t.Parallel()
	tm := terms()
	tm.Reward.Vesting = domain.Duration{}
	c := domain.NewDraft("c1", "f1", 1, tm, t0)
	if err := c.Publish(recipients(), programme(), t0); err != nil {
		t.Fatal(err)
	}
	e, err := domain.Join("e1", "m1", c, t0, true)
	if err != nil {
		t.Fatal(err)
	}
	if e.BonusState() != domain.BonusVested || e.BonusPoints() != 200 {
		t.Fatalf("bonus %s %d, want vested 200", e.BonusState(), e.BonusPoints())
	}
	if e, _ := domain.Join("e2", "m1", c, t0, false); e.BonusState() != domain.BonusNone {
		t.Fatalf("ineligible bonus %s, want none", e.BonusState())
	}
	// A bonus with vesting stays pending.
	if e, _ := domain.Join("e3", "m2", published(t), t0, true); e.BonusState() != domain.BonusPending {
		t.Fatalf("bonus with vesting %s, want pending", e.BonusState())
	}
}
