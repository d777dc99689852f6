package domain_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/quidpro/quid/domain"
)

// birthdayIn is the date someone born on born has their years-th birthday,
// with 29 February falling on 1 March in common years.
func birthdayIn(born time.Time, years int) (int, time.Month, int) {
	y := born.Year() + years
	m, d := born.Month(), born.Day()
	leap := y%4 == 0 && (y%100 != 0 || y%400 == 0)
	if m == time.February && d == 29 && !leap {
		return y, time.March, 1
	}
	return y, m, d
}

func ageCatalog(t *testing.T) domain.Catalog {
	t.Helper()
	cats := []domain.Category{{Key: "demographic.birthdate", Label: "Birthdate", Description: "d", Type: domain.TypeDate}}
	for _, years := range []int{16, 18, 21} {
		cats = append(cats, domain.Category{Key: fmt.Sprintf("demographic.age_over_%d", years), Label: "adult", Description: "d", Type: domain.TypeBoolean,
			Derived: &domain.Derivation{From: "demographic.birthdate", Rule: domain.RuleAgeAtLeast, Param: years}})
	}
	c, err := domain.NewCatalog(cats, []domain.Purpose{{Key: "loyalty.personalised_offers", Label: "Offers", Description: "d", Advertising: true}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func before(y1 int, m1 time.Month, d1 int, y2 int, m2 time.Month, d2 int) bool {
	return time.Date(y1, m1, d1, 0, 0, 0, 0, time.UTC).Before(time.Date(y2, m2, d2, 0, 0, 0, 0, time.UTC))
}

// TestAgeFactNeverCallsAMinorAnAdult is a property test of issue 8 item
// 17: for many birthdates (29 February weighted in) and instants around the
// 18th and 21st birthdays, the derived fact is true exactly when the
// birthday has begun in every time zone on Earth (UTC−12 to UTC+14, in
// quarter hours), so it never says adult where the birthday has not begun.
func TestAgeFactNeverCallsAMinorAnAdult(t *testing.T) {
	t.Parallel()
	c := ageCatalog(t)
	rng := rand.New(rand.NewPCG(8, 17))
	var zones []*time.Location
	for q := -12 * 4; q <= 14*4; q++ {
		zones = append(zones, time.FixedZone("", q*15*60))
	}
	for i := 0; i < 20000; i++ {
		born := time.Date(1950+rng.IntN(80), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
		if i%5 == 0 {
			born = time.Date(1952+4*rng.IntN(20), time.February, 29, 0, 0, 0, 0, time.UTC)
		}
		years := []int{16, 18, 21}[i%3]
		key := fmt.Sprintf("demographic.age_over_%d", years)
		by, bm, bd := birthdayIn(born, years)
		// An instant within two days either side of the birthday's start in UTC.
		now := time.Date(by, bm, bd, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(96*time.Hour))) - 48*time.Hour)
		if i%7 == 0 { // the boundary itself: 12:00 UTC, give or take a second
			now = time.Date(by, bm, bd, 12, 0, rng.IntN(3)-1, 0, time.UTC)
		}
		v, ok := c.Derive(key, born.Format(time.DateOnly), now)
		if !ok {
			t.Fatalf("%s from %s: not derived", key, born.Format(time.DateOnly))
		}
		begunEverywhere := true
		for _, z := range zones {
			ly, lm, ld := now.In(z).Date()
			if before(ly, lm, ld, by, bm, bd) {
				begunEverywhere = false
				break
			}
		}
		if v != begunEverywhere {
			t.Fatalf("born %s, at %s: %s = %v, but birthday %d-%02d-%02d begun everywhere = %v",
				born.Format(time.DateOnly), now.Format(time.RFC3339), key, v, by, bm, bd, begunEverywhere)
		}
	}
}

func TestAgeRuleExamples(t *testing.T) {
	t.Parallel()
	d := func(s string) time.Time { v, _ := time.Parse(time.DateOnly, s); return v }
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	for _, tt := range []struct {
		born, now string
		years     int
		want      bool
	}{
		{"2008-05-01", "2026-05-01T00:00:00Z", 18, false},      // midnight UTC: still 30 April in New York and UTC−12
		{"2008-05-01", "2026-05-01T04:00:00Z", 18, false},      // midnight in New York (EDT): UTC−12 is still on 30 April
		{"2008-05-01", "2026-05-01T11:59:59Z", 18, false},      // one second before the day begins in UTC−12
		{"2008-05-01", "2026-05-01T12:00:00Z", 18, true},       // begun everywhere
		{"2008-02-29", "2026-02-28T23:59:59-12:00", 18, false}, // 29 February: not on 28 February …
		{"2008-02-29", "2026-03-01T11:59:59Z", 18, false},
		{"2008-02-29", "2026-03-01T12:00:00Z", 18, true},  // … but on 1 March in a common year
		{"2010-02-29", "2028-02-29T12:00:00Z", 18, false}, // 2010-02-29 is not a date: not derived (checked below)
		{"2012-02-29", "2030-02-28T23:00:00Z", 18, false},
		{"2012-02-29", "2030-03-01T12:00:00Z", 18, true},
		{"2010-02-28", "2028-02-28T12:00:00Z", 18, true},
		{"2004-02-29", "2025-03-01T12:00:00Z", 21, true},
		{"2004-02-29", "2025-02-28T23:59:59Z", 21, false},
	} {
		born := d(tt.born)
		if born.IsZero() {
			continue
		}
		if got := domain.AgeAtLeast(born, tt.years, at(tt.now)); got != tt.want {
			t.Errorf("born %s, %d at %s: %v, want %v", tt.born, tt.years, tt.now, got, tt.want)
		}
	}
	if _, ok := testCatalog(t).Derive("demographic.age_over_18", "2010-02-29", time.Now()); ok {
		t.Error("an impossible birthdate derived an age fact")
	}
}
