package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/domain"
)

// Rule 9: text that shows nothing is not data given, whatever invisible
// characters carry it and wherever text is stored; rule 10: a birthdate
// long before any living member cannot make a child an adult.
func TestInvisibleTextAndImpossibleBirthdatesAreNotData(t *testing.T) {
	t.Parallel()
	c, err := domain.NewCatalog([]domain.Category{
		{Key: "location.city", Label: "City", Description: "d", Type: domain.TypeString},
		{Key: "behaviour.interests", Label: "Interests", Description: "d", Type: domain.TypeList},
		{Key: "contact.address", Label: "Address", Description: "d", Type: domain.TypeAddress},
		{Key: "demographic.birthdate", Label: "Birthdate", Description: "d", Type: domain.TypeDate},
		{Key: "demographic.children_count", Label: "Children", Description: "d", Type: domain.TypeNumber},
	}, []domain.Purpose{{Key: "loyalty.personalised_offers", Label: "Offers", Description: "d"}})
	if err != nil {
		t.Fatal(err)
	}
	invisible := []string{"", " ", "\t", "\u00a0", "\u200b", "\ufeff", "\u200d\u2060", "\u3000", "\u3164", " \u200b \u00a0",
		"\ufe0f", "\u034f", "\u2800", "\u0301\u0301", "\u20dd", "\uffa0", "\u17b4"}
	for _, s := range invisible {
		for key, value := range map[string]any{
			"location.city":       s,
			"behaviour.interests": []any{"running", s},
			"contact.address":     map[string]any{"city": s, "country": "NO"},
		} {
			if err := c.ValidateAttribute(key, value); err == nil {
				t.Errorf("%s = %q was accepted as data", key, s)
			}
		}
	}
	for key, value := range map[string]any{"location.city": " Oslo ", "behaviour.interests": []any{"é"}, "contact.address": map[string]any{"city": "Bø", "country": "NO"}} {
		if err := c.ValidateAttribute(key, value); err != nil {
			t.Errorf("%s = %v was refused: %v", key, value, err)
		}
	}
	// No data dressed as data: an empty list, an address with no city, a
	// negative count.
	for key, value := range map[string]any{"behaviour.interests": []any{}, "contact.address": map[string]any{"country": "NO"},
		"demographic.children_count": -1.0} {
		if err := c.ValidateAttribute(key, value); err == nil {
			t.Errorf("%s = %v was accepted as data", key, value)
		}
	}
	if err := c.ValidateAttribute("location.city", "\u200bOslo"); err != nil {
		t.Errorf("a visible value with an invisible character was refused: %v", err)
	}
	// Text that reads in another order than it is stored is refused, in
	// every kind of value a member types.
	for key, value := range map[string]any{"location.city": "\u202eolsO", "behaviour.interests": []any{"a\u2066b"},
		"contact.address": map[string]any{"city": "B\u202dø", "country": "NO"}, "contact.email": "a\u202e@example.com"} {
		if err := c.ValidateAttribute(key, value); err == nil {
			t.Errorf("%s = %q was accepted", key, value)
		}
	}
	future := time.Now().UTC().AddDate(0, 0, 2).Format(time.DateOnly)
	for _, d := range []string{"0000-01-01", "0001-01-01", "1899-12-31", future, "9999-12-31"} {
		if err := c.ValidateAttribute("demographic.birthdate", d); err == nil {
			t.Errorf("birthdate %s was accepted", d)
		}
	}
	if err := c.ValidateAttribute("demographic.birthdate", "1900-01-01"); err != nil {
		t.Errorf("birthdate 1900-01-01 was refused: %v", err)
	}
}

// An e-mail address is data only when every character of it shows and its
// domain is a dotted name (rule 9).
func TestInvisibleEmailAddressesAreNotData(t *testing.T) {
	t.Parallel()
	c, err := domain.NewCatalog([]domain.Category{{Key: "contact.email", Label: "E-mail", Description: "d", Type: domain.TypeEmail}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"\u3164@\u3164", "\u2800@\u2800", "a@\ufe0f", "\u034f@x.no", "\u200b@x.com", "a@b", "a\u200b@x.no", "a@x.\u3164", "a@x..no"} {
		if err := c.ValidateAttribute("contact.email", s); err == nil {
			t.Errorf("%q was accepted as an e-mail address", s)
		}
	}
	for _, s := range []string{"alex@example.com", "josé@exämple.no", "a.b+c@x.co.uk"} {
		if err := c.ValidateAttribute("contact.email", s); err != nil {
			t.Errorf("%q was refused: %v", s, err)
		}
	}
}

// Text a member reads and a hash pins shows what it holds: no control
// characters, no bidirectional overrides (CVE-2021-42574), in a contract's
// texts and in the programme's identity.
func TestTextThatHidesWhatItSaysIsRefused(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"a\u0007b", "pay \u202eevil\u202c", "x\u2066y\u2069", "a\u0000b"} {
		terms := domain.Terms{Title: "T", Summary: s}
		err := domain.ContractPolicy{}.ValidateTerms(terms, func(string) bool { return true })
		var de *domain.Error
		found := false
		if errors.As(err, &de) {
			for _, f := range de.Fields {
				found = found || f.Pointer == "/summary"
			}
		}
		if !found {
			t.Errorf("summary %q accepted", s)
		}
		if _, err := domain.NewRecipient("r", "Partner"+s, domain.ThirdParty, "SE", "https://r.example/p", time.Now()); err == nil {
			t.Errorf("recipient name %q accepted", s)
		}
	}
}

// Every text a member reads refuses what hides its content, each by its
// kind: a one-line text (a title, a name) also refuses line breaks and
// tabs, which a page shows as a space; a multi-line text (a summary, an
// explanation, an address, a description, benefits) keeps them. None
// takes a zero width space, word joiner, byte order mark or line/paragraph
// separator (an outside tester found all of them accepted).
func TestEveryTextRefusesWhatHidesItsContentByItsKind(t *testing.T) {
	t.Parallel()
	cat, err := domain.NewCatalog(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pv := domain.PointValue{Currency: "EUR", Amount: "0.01"}
	programme := func(mut func(*domain.Programme)) error {
		p := domain.Programme{LegalName: "Acme AS", Address: "Street 1\nOslo", ContactEmail: "privacy@acme.example", DPOContact: "dpo@acme.example",
			AuthorityName: "Datatilsynet", ComplaintURL: "https://www.datatilsynet.no/", PointValue: pv, Jurisdictions: []string{"NO"}}
		mut(&p)
		_, err := cat.WithCurrencies(func(string) (int, bool) { return 2, true }).ValidateProgramme(p)
		return err
	}
	fields := []struct {
		name    string
		oneLine bool
		check   func(s string) error
	}{
		{"contract title", true, func(s string) error {
			return domain.ContractPolicy{}.ValidateTerms(domain.Terms{Title: "T" + s}, func(string) bool { return true })
		}},
		{"contract summary", false, func(s string) error {
			return domain.ContractPolicy{}.ValidateTerms(domain.Terms{Title: "T", Summary: s}, func(string) bool { return true })
		}},
		{"value explanation", false, func(s string) error {
			return domain.ContractPolicy{}.ValidateTerms(domain.Terms{Title: "T", ValueExplanation: s}, func(string) bool { return true })
		}},
		{"recipient name", true, func(s string) error {
			_, err := domain.NewRecipient("r", "Partner"+s, domain.ThirdParty, "SE", "https://r.example/p", time.Now())
			return err
		}},
		{"reward name", true, func(s string) error {
			return domain.CatalogueReward{Name: "Gift" + s, Description: "d", ImageURL: "https://img.example/g.png", Cost: 1}.Validate()
		}},
		{"reward description", false, func(s string) error {
			return domain.CatalogueReward{Name: "Gift", Description: "d" + s, ImageURL: "https://img.example/g.png", Cost: 1}.Validate()
		}},
		{"tier name", true, func(s string) error {
			_, err := domain.ValidateTierSchedule(domain.TierSchedule{Window: domain.MustParseDuration("P12M"), Tiers: []domain.Tier{{Name: "Gold" + s, Threshold: 1}}})
			return err
		}},
		{"tier benefits", false, func(s string) error {
			_, err := domain.ValidateTierSchedule(domain.TierSchedule{Window: domain.MustParseDuration("P12M"), Tiers: []domain.Tier{{Name: "Gold", Threshold: 1, Benefits: "b" + s}}})
			return err
		}},
		{"programme legal name", true, func(s string) error { return programme(func(p *domain.Programme) { p.LegalName += s }) }},
		{"supervisory authority name", true, func(s string) error { return programme(func(p *domain.Programme) { p.AuthorityName += s }) }},
		{"programme address", false, func(s string) error { return programme(func(p *domain.Programme) { p.Address += s }) }},
	}
	for _, f := range fields {
		refused := func(s string) bool {
			err := f.check(s)
			var de *domain.Error
			if !errors.As(err, &de) {
				return false
			}
			for _, fe := range de.Fields {
				if strings.Contains(fe.Reason, "characters") {
					return true
				}
			}
			return false
		}
		if refused("") {
			t.Fatalf("%s: the plain value is refused for its characters", f.name)
		}
		for _, s := range []string{" \u202eevil", "a\u0007b", "a\u200bb", "a\ufeffb", "a\u2060b", "a\u2028b", "a\u2029b"} {
			if !refused(s) {
				t.Errorf("%s: %q accepted", f.name, s)
			}
		}
		for _, s := range []string{"a\nb", "a\tb"} {
			if got := refused(s); got != f.oneLine {
				t.Errorf("%s: %q refused %v, want %v (one line: %v)", f.name, s, got, f.oneLine, f.oneLine)
			}
		}
		if refused("Café \u200d👩‍💻 \u200fשלום") {
			t.Errorf("%s: text with the joiners and direction marks scripts need is refused", f.name)
		}
	}
}
