package domain_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/quidpro/quid/domain"
)

func fairTerms(minAge int, items ...domain.Item) domain.Terms {
	return domain.Terms{Items: items, MinAge: minAge}
}

var (
	brand   = domain.Recipient{ID: "b", Kind: domain.FirstParty}
	partner = domain.Recipient{ID: "p", Kind: domain.ThirdParty}
	people  = map[string]domain.Recipient{"b": brand, "p": partner}
)

// fairCatalog has one advertising purpose whose key says nothing about
// advertising, one plain purpose and one advertising purpose by key.
func fairCatalog(t *testing.T) domain.Catalog {
	t.Helper()
	c, err := domain.NewCatalog([]domain.Category{{Key: "location.city", Label: "City", Description: "d", Type: domain.TypeString}},
		[]domain.Purpose{
			{Key: "loyalty.programme_operation", Label: "Run", Description: "d"},
			{Key: "loyalty.personalised_offers", Label: "Offers", Description: "d", Advertising: true},
			{Key: "advertising.first_party", Label: "Ads", Description: "d", Advertising: true},
		})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAgeRequirementIsAtLeastSixteenForThirdPartiesAndAdvertising(t *testing.T) {
	cat := fairCatalog(t)
	cases := []struct {
		name  string
		terms domain.Terms
		want  int
	}{
		{"first party, no min_age", fairTerms(0, domain.Item{Category: "location.city", Purpose: "loyalty.programme_operation", Recipients: []string{"b"}}), 0},
		{"first party, min_age 13", fairTerms(13, domain.Item{Category: "location.city", Purpose: "loyalty.programme_operation", Recipients: []string{"b"}}), 13},
		{"third party", fairTerms(0, domain.Item{Category: "location.city", Purpose: "loyalty.programme_operation", Recipients: []string{"b", "p"}}), 16},
		{"third party, lower min_age", fairTerms(13, domain.Item{Category: "location.city", Purpose: "loyalty.programme_operation", Recipients: []string{"p"}}), 16},
		{"third party, higher min_age", fairTerms(18, domain.Item{Category: "location.city", Purpose: "loyalty.programme_operation", Recipients: []string{"p"}}), 18},
		{"first-party advertising", fairTerms(0, domain.Item{Category: "location.city", Purpose: "advertising.first_party", Recipients: []string{"b"}}), 16},
		{"advertising flagged by the catalogue, not by its key", fairTerms(0, domain.Item{Category: "location.city", Purpose: "loyalty.personalised_offers", Recipients: []string{"b"}}), 16},
		{"unknown purpose counts as advertising", fairTerms(0, domain.Item{Category: "location.city", Purpose: "other.thing", Recipients: []string{"b"}}), 16},
		{"unknown recipient counts as a third party", fairTerms(0, domain.Item{Category: "location.city", Purpose: "loyalty.programme_operation", Recipients: []string{"x"}}), 16},
	}
	for _, c := range cases {
		if got := cat.AgeRequirement(c.terms, people); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestCheckAgeNeverTakesAMinorForOlder(t *testing.T) {
	// 16th birthday on 2026-06-10: it begins everywhere at 12:00 UTC that day.
	born := "2010-06-10"
	for _, c := range []struct {
		now  time.Time
		kind domain.Kind
	}{
		{time.Date(2026, 6, 10, 11, 59, 59, 0, time.UTC), domain.KindForbidden},
		{time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC), ""},
	} {
		err := domain.CheckAge(born, 16, c.now)
		if (c.kind == "" && err != nil) || (c.kind != "" && !domain.IsKind(err, c.kind)) {
			t.Errorf("at %s: %v", c.now, err)
		}
	}
	var de *domain.Error
	if err := domain.CheckAge(nil, 16, time.Now()); !errors.As(err, &de) || de.Kind != domain.KindInvalid ||
		de.Fields[0].Pointer != "/attributes/demographic.birthdate" {
		t.Errorf("unknown age: %v", err)
	}
	if err := domain.CheckAge(nil, 0, time.Now()); err != nil {
		t.Errorf("no age rule: %v", err)
	}
}

func TestRemovalsAreRefusedOnlyForSharedAttributesAndTheirSources(t *testing.T) {
	cat := ageCatalog(t)
	active := []domain.Share{
		{ExchangeID: "e2", Categories: []string{"demographic.age_over_18"}},
		{ExchangeID: "e1", Categories: []string{"location.city", "demographic.birthdate"}},
		{ExchangeID: "e3", Categories: []string{"contact.email"}},
	}
	err := cat.CheckRemovals([]string{"demographic.birthdate", "contact.phone"}, active)
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != "attribute-shared" || !slices.Equal(de.ExchangeIDs, []string{"e1", "e2"}) {
		t.Fatalf("removing the birthdate: %#v", err)
	}
	if err := cat.CheckRemovals([]string{"contact.phone"}, active); err != nil {
		t.Fatalf("removing an unshared attribute: %v", err)
	}
	if err := cat.CheckRemovals(nil, active); err != nil {
		t.Fatalf("no removal: %v", err)
	}
}

func TestCatalogueRefusesAnAdvertisingPurposeNotFlaggedAsAdvertising(t *testing.T) {
	for _, p := range []domain.Purpose{
		{Key: "loyalty.offers", Label: "Offers", Description: "d", DPV: "dpv:PersonalisedAdvertising"},
		{Key: "loyalty.offers", Label: "Offers", Description: "d", Fideslang: "marketing.advertising.first_party.targeted"},
	} {
		if _, err := domain.NewCatalog(nil, []domain.Purpose{p}); err == nil {
			t.Errorf("%s/%s accepted without the advertising flag", p.DPV, p.Fideslang)
		}
		p.Advertising = true
		if _, err := domain.NewCatalog(nil, []domain.Purpose{p}); err != nil {
			t.Errorf("flagged: %v", err)
		}
	}
}

// TestACorrectedBirthdateIsNeverRefusedButNamesTheExchangesToEnd: rule 10
// after a profile change. A corrected birthdate is accepted and names the
// exchanges whose age rule it fails (sorted), none when every rule holds; a
// removed birthdate that an age rule needs is 409 age-rule-shared.
func TestACorrectedBirthdateIsNeverRefusedButNamesTheExchangesToEnd(t *testing.T) {
	cat := fairCatalog(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	op := func(minAge int, recipients ...string) domain.Terms {
		return fairTerms(minAge, domain.Item{Category: "location.city", Purpose: "loyalty.programme_operation", Recipients: recipients})
	}
	active := []domain.Share{
		{ExchangeID: "c-third", Terms: op(0, "p"), Recipients: people},   // 16
		{ExchangeID: "a-adults", Terms: op(18, "b"), Recipients: people}, // 18
		{ExchangeID: "b-anyone", Terms: op(0, "b"), Recipients: people},  // no rule
	}
	born := func(s string) map[string]any { return map[string]any{domain.BirthdateCategory: s} }
	for _, c := range []struct {
		name  string
		after map[string]any
		want  []string
	}{
		{"adult", born("1990-01-01"), nil},
		{"17", born("2009-01-01"), []string{"a-adults"}},
		{"15", born("2011-01-01"), []string{"a-adults", "c-third"}},
	} {
		got, err := cat.CheckAgeRules(c.after, active, now)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, %v; want %v and no error", c.name, got, err, c.want)
		}
	}
	got, err := cat.CheckAgeRules(map[string]any{}, active, now)
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != "age-rule-shared" || !slices.Equal(de.ExchangeIDs, []string{"a-adults", "c-third"}) || got != nil {
		t.Fatalf("removal: %v, %v; want 409 age-rule-shared naming a-adults and c-third", got, err)
	}
	if got, err := cat.CheckAgeRules(map[string]any{}, active[2:], now); err != nil || got != nil {
		t.Fatalf("removal with no age rule active: %v, %v", got, err)
	}
}
