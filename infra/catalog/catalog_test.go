package catalog_test

import (
	"testing"

	"github.com/quidpro/quid/infra/catalog"
)

// A country held in a profile is one ISO 3166-1 assigns, as a recipient's
// is: a code of the right shape that no country has (ZZ, XX, QO, UK, EU) is
// refused in a country attribute and in an address.
func TestOnlyAssignedCountryCodesAreCountries(t *testing.T) {
	t.Parallel()
	c, err := catalog.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{"ZZ", "XX", "QO", "AA", "UK", "EU", "no", "NOR"} {
		if c.ValidateAttribute("location.address", map[string]any{"city": "X", "country": code}) == nil {
			t.Errorf("%s accepted as an address's country", code)
		}
	}
	for _, code := range []string{"NO", "SE", "US", "GB", "AQ", "JP"} {
		if err := c.ValidateAttribute("location.address", map[string]any{"city": "X", "country": code}); err != nil {
			t.Errorf("%s refused: %v", code, err)
		}
	}
}

// A point's currency is one ISO 4217 lists for money in use, with its
// minor units from the maintained CLDR data: EUR 2, JPY 0, KWD 3; the codes
// for no currency, testing and precious metals, and other spellings, are none.
func TestCurrenciesAreISO4217WithTheirMinorUnits(t *testing.T) {
	t.Parallel()
	c, err := catalog.Load()
	if err != nil {
		t.Fatal(err)
	}
	for code, want := range map[string]int{"EUR": 2, "USD": 2, "NOK": 2, "JPY": 0, "KWD": 3, "XOF": 0} {
		if got, ok := c.Currency(code); !ok || got != want {
			t.Errorf("%s: %d digits, known %v; want %d", code, got, ok, want)
		}
	}
	for _, code := range []string{"XXX", "XTS", "XAU", "eur", "EURO", "ZZZ", ""} {
		if _, ok := c.Currency(code); ok {
			t.Errorf("%q accepted as a currency", code)
		}
	}
}
