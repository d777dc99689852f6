package domain_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/quidpro/quid/domain"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func testCatalog(t testing.TB) domain.Catalog {
	t.Helper()
	c, err := domain.NewCatalog([]domain.Category{
		{Key: "contact.email", Label: "Email", Description: "d", Type: domain.TypeEmail},
		{Key: "location.city", Label: "City", Description: "d", Type: domain.TypeString},
		{Key: "demographic.birthdate", Label: "Birthdate", Description: "d", Type: domain.TypeDate},
		{Key: "demographic.age_over_18", Label: "Adult", Description: "d", Type: domain.TypeBoolean,
			Derived: &domain.Derivation{From: "demographic.birthdate", Rule: domain.RuleAgeAtLeast, Param: 18}},
	}, []domain.Purpose{
		{Key: "loyalty.personalised_offers", Label: "Offers", Description: "d"},
		{Key: "analytics.product_improvement", Label: "Analytics", Description: "d"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func terms() domain.Terms {
	year := domain.MustParseDuration("P12M")
	return domain.Terms{
		Title:     "Coffee club",
		Items:     []domain.Item{{Category: "location.city", Purpose: "loyalty.personalised_offers", Recipients: []string{"r1", "r2"}}},
		Retention: domain.MustParseDuration("P30D"), Duration: &year,
		Reward:      domain.Reward{JoinBonus: 200, Vesting: domain.MustParseDuration("P14D"), PointsPerPeriod: 50, Period: domain.MustParseDuration("P1M"), MaxPeriods: 12},
		Value:       &domain.ValueEstimate{Amount: "4.80", Currency: "EUR", Per: domain.MustParseDuration("P1Y")},
		ValueMethod: "revenue_attributable", ValueExplanation: "Revenue from personalised offers per member and year.",
	}
}

// legacyTerms are terms() as a contract published before value estimates
// and programme identities existed holds them.
func legacyTerms() domain.Terms {
	t := terms()
	t.Value, t.ValueMethod, t.ValueExplanation = nil, "", ""
	return t
}

func programme() *domain.Programme {
	return &domain.Programme{Version: 1, LegalName: "Quid Coffee AS", Address: "Storgata 1, 0155 Oslo, Norway",
		ContactEmail: "privacy@coffee.example", DPOContact: "dpo@coffee.example", AuthorityName: "Datatilsynet",
		ComplaintURL: "https://www.datatilsynet.no/en/", PointValue: domain.PointValue{Currency: "EUR", Amount: "0.01"},
		Jurisdictions: []string{"NO", "SE"}}
}

func recipients() map[string]domain.Recipient {
	return map[string]domain.Recipient{
		"r1": {ID: "r1", Name: "Brand", Kind: domain.FirstParty, Country: "NO", PrivacyPolicyURL: "https://b.example/p"},
		"r2": {ID: "r2", Name: "PartnerCo", Kind: domain.ThirdParty, Country: "SE", PrivacyPolicyURL: "https://p.example/p"},
		"r3": {ID: "r3", Name: "AdCo", Kind: domain.ThirdParty, Country: "US", PrivacyPolicyURL: "https://a.example/p"},
	}
}

func TestValidateTermsNamesEachFailingField(t *testing.T) {
	t.Parallel()
	policy := domain.ContractPolicy{Catalog: testCatalog(t), MinPeriod: time.Hour}
	known := func(id string) bool { _, ok := recipients()[id]; return ok }
	tests := []struct {
		name    string
		mutate  func(*domain.Terms)
		pointer string
	}{
		{"unknown category", func(x *domain.Terms) { x.Items[0].Category = "contact.shoe_size" }, "/items/0/category"},
		{"unknown purpose", func(x *domain.Terms) { x.Items[0].Purpose = "selling.everything" }, "/items/0/purpose"},
		{"unknown recipient", func(x *domain.Terms) { x.Items[0].Recipients = []string{"nobody"} }, "/items/0/recipients/0"},
		{"no recipients", func(x *domain.Terms) { x.Items[0].Recipients = nil }, "/items/0/recipients"},
		{"empty items", func(x *domain.Terms) { x.Items = nil }, "/items"},
		{"duplicate item", func(x *domain.Terms) { x.Items = append(x.Items, x.Items[0]) }, "/items/1"},
		{"negative bonus", func(x *domain.Terms) { x.Reward.JoinBonus = -1 }, "/reward/join_bonus"},
		{"absurd points", func(x *domain.Terms) { x.Reward.PointsPerPeriod = 1 << 40 }, "/reward/points_per_period"},
		{"period below minimum", func(x *domain.Terms) { x.Reward.Period = domain.MustParseDuration("PT30M") }, "/reward/period"},
		{"points without period", func(x *domain.Terms) { x.Reward.Period = domain.Duration{} }, "/reward/period"},
		{"no title", func(x *domain.Terms) { x.Title = " " }, "/title"},
		{"no retention", func(x *domain.Terms) { x.Retention = domain.Duration{} }, "/retention"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			x := terms()
			tt.mutate(&x)
			err := policy.ValidateTerms(x, known)
			var de *domain.Error
			if !errors.As(err, &de) || de.Kind != domain.KindInvalid {
				t.Fatalf("want invalid error, got %v", err)
			}
			for _, f := range de.Fields {
				if f.Pointer == tt.pointer {
					return
				}
			}
			t.Fatalf("no error at %s in %+v", tt.pointer, de.Fields)
		})
	}
	if err := policy.ValidateTerms(terms(), known); err != nil {
		t.Fatalf("valid terms refused: %v", err)
	}
}

func TestContractLifecycleForbidsEveryOtherTransition(t *testing.T) {
	t.Parallel()
	c := domain.NewDraft("c1", "f1", 1, terms(), t0)
	if err := c.Retire(t0); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("retire draft: %v", err)
	}
	if _, err := c.NextVersion("c2", t0); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("version a draft: %v", err)
	}
	if err := c.Publish(recipients(), programme(), t0); err != nil {
		t.Fatal(err)
	}
	if err := c.Edit(terms()); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("edit published: %v", err)
	}
	if err := c.Publish(recipients(), programme(), t0); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("publish twice: %v", err)
	}
	next, err := c.NextVersion("c2", t0)
	if err != nil || next.Version() != 2 || !next.IsDraft() || next.FamilyID() != "f1" {
		t.Fatalf("next version: %+v %v", next, err)
	}
	if err := c.Retire(t0); err != nil {
		t.Fatal(err)
	}
	if err := c.Retire(t0); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("retire twice: %v", err)
	}
}

func TestTermsHashIsStableAndEqualForIdenticalTerms(t *testing.T) {
	t.Parallel()
	a, b := domain.NewDraft("a", "fa", 1, terms(), t0), domain.NewDraft("b", "fb", 3, terms(), t0.Add(time.Hour))
	shuffled := terms()
	shuffled.Items[0].Recipients = []string{"r2", "r1"}
	s := domain.NewDraft("s", "fs", 1, shuffled, t0)
	for _, c := range []*domain.Contract{&a, &b, &s} {
		if err := c.Publish(recipients(), programme(), t0); err != nil {
			t.Fatal(err)
		}
	}
	if a.TermsHash() != b.TermsHash() || a.TermsHash() != s.TermsHash() {
		t.Fatalf("hashes differ: %s %s %s", a.TermsHash(), b.TermsHash(), s.TermsHash())
	}
	if !strings.HasPrefix(a.TermsHash(), "sha256:") || domain.TermsHash(a.CanonicalTerms()) != a.TermsHash() {
		t.Fatalf("hash %s does not match its canonical JSON", a.TermsHash())
	}
	want := `{"duration":"P12M","items":[{"category":"location.city","purpose":"loyalty.personalised_offers","recipients":[{"country":"NO","id":"r1","kind":"first_party","name":"Brand","privacy_policy_url":"https://b.example/p"},{"country":"SE","id":"r2","kind":"third_party","name":"PartnerCo","privacy_policy_url":"https://p.example/p"}]}],"programme":{"address":"Storgata 1, 0155 Oslo, Norway","contact_email":"privacy@coffee.example","dpo_contact":"dpo@coffee.example","jurisdictions":["NO","SE"],"legal_name":"Quid Coffee AS","point_value":{"amount":"0.01","currency":"EUR"},"supervisory_authority":{"complaint_url":"https://www.datatilsynet.no/en/","name":"Datatilsynet"},"version":1},"renewal_notice":"P14D","retention":"P30D","reward":{"join_bonus":200,"max_periods":12,"period":"P1M","points_per_period":50,"vesting":"P14D"},"summary":"","title":"Coffee club","value_estimate":{"amount":"4.80","currency":"EUR","per":"P1Y"},"value_explanation":"Revenue from personalised offers per member and year.","value_method":"revenue_attributable"}`
	if string(a.CanonicalTerms()) != want {
		t.Fatalf("canonical JSON changed:\n%s\nwant\n%s", a.CanonicalTerms(), want)
	}
}

// Terms published before value estimates and programme identities existed
// have the same canonical form, and so the same hash, as they were
// published with: the new fields are written only when set.
func TestTermsPublishedBeforeValueAndProgrammeKeepTheirHash(t *testing.T) {
	t.Parallel()
	canonical, err := domain.CanonicalTerms(legacyTerms(), recipients())
	if err != nil {
		t.Fatal(err)
	}
	const published = `{"duration":"P12M","items":[{"category":"location.city","purpose":"loyalty.personalised_offers","recipients":[{"country":"NO","id":"r1","kind":"first_party","name":"Brand","privacy_policy_url":"https://b.example/p"},{"country":"SE","id":"r2","kind":"third_party","name":"PartnerCo","privacy_policy_url":"https://p.example/p"}]}],"renewal_notice":"P14D","retention":"P30D","reward":{"join_bonus":200,"max_periods":12,"period":"P1M","points_per_period":50,"vesting":"P14D"},"summary":"","title":"Coffee club"}`
	if string(canonical) != published || domain.TermsHash(canonical) != domain.TermsHash([]byte(published)) {
		t.Fatalf("canonical terms of a contract published before value estimates changed:\n%s\nwant\n%s", canonical, published)
	}
}

// The hash pins who answers for the data and what the data is worth: a
// new programme identity version, or another value estimate, method or
// explanation, is another hash.
func TestTermsHashChangesWithTheProgrammeVersionAndTheValueEstimate(t *testing.T) {
	t.Parallel()
	hash := func(tm domain.Terms, p *domain.Programme) string {
		c := domain.NewDraft("c", "f", 1, tm, t0)
		if err := c.Publish(recipients(), p, t0); err != nil {
			t.Fatal(err)
		}
		return c.TermsHash()
	}
	base := hash(terms(), programme())
	next := programme()
	next.Version = 2
	if hash(terms(), next) == base {
		t.Error("the programme identity's version is not in the hash")
	}
	moved := programme()
	moved.Address = "Kirkegata 2, 0153 Oslo, Norway"
	if hash(terms(), moved) == base {
		t.Error("the controller's address is not in the hash")
	}
	for name, mutate := range map[string]func(*domain.Terms){
		"amount":      func(x *domain.Terms) { x.Value.Amount = "5.00" },
		"per":         func(x *domain.Terms) { x.Value.Per = domain.MustParseDuration("P1M") },
		"method":      func(x *domain.Terms) { x.ValueMethod = "expenses_related" },
		"explanation": func(x *domain.Terms) { x.ValueExplanation = "Costs of running the offers." },
	} {
		tm := terms()
		mutate(&tm)
		if hash(tm, programme()) == base {
			t.Errorf("the value estimate's %s is not in the hash", name)
		}
	}
}

// A contract without a value estimate, its method and explanation, or
// without a programme identity, is refused at publish, each missing field
// named; the currency must be the programme's point currency.
func TestAContractWithoutAValueEstimateCannotBePublished(t *testing.T) {
	t.Parallel()
	c := domain.NewDraft("c", "f", 1, legacyTerms(), t0)
	err := c.Publish(recipients(), nil, t0)
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindInvalid {
		t.Fatalf("published without a value estimate: %v", err)
	}
	got := map[string]bool{}
	for _, f := range de.Fields {
		got[f.Pointer] = true
	}
	for _, p := range []string{"/programme", "/value_estimate", "/value_method", "/value_explanation"} {
		if !got[p] {
			t.Errorf("%s is not named: %v", p, de.Fields)
		}
	}
	if c.Status() != domain.ContractDraft || c.TermsHash() != "" {
		t.Fatal("a refused publish changed the draft")
	}
	tm := terms()
	tm.Value.Currency = "USD"
	c = domain.NewDraft("c", "f", 1, tm, t0)
	if err := c.Publish(recipients(), programme(), t0); !errors.As(err, &de) || len(de.Fields) != 1 || de.Fields[0].Pointer != "/value_estimate/currency" {
		t.Fatalf("published a USD estimate under a EUR programme: %v", err)
	}
}

func TestCompareTermsFlagsMaterialChanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		mutate   func(*domain.Terms)
		material bool
	}{
		{"wording only", func(x *domain.Terms) { x.Title = "Coffee club 2"; x.Summary = "new words" }, false},
		{"more points", func(x *domain.Terms) { x.Reward.PointsPerPeriod = 80 }, false},
		{"shorter retention", func(x *domain.Terms) { x.Retention = domain.MustParseDuration("P7D") }, false},
		{"removes a recipient", func(x *domain.Terms) { x.Items[0].Recipients = []string{"r1"} }, false},
		{"adds a category", func(x *domain.Terms) {
			x.Items = append(x.Items, domain.Item{Category: "contact.email", Purpose: "loyalty.personalised_offers", Recipients: []string{"r1"}})
		}, true},
		{"adds a purpose", func(x *domain.Terms) {
			x.Items = append(x.Items, domain.Item{Category: "location.city", Purpose: "analytics.product_improvement", Recipients: []string{"r1"}})
		}, true},
		{"adds a recipient", func(x *domain.Terms) { x.Items[0].Recipients = append(x.Items[0].Recipients, "r3") }, true},
		{"longer retention", func(x *domain.Terms) { x.Retention = domain.MustParseDuration("P90D") }, true},
		{"unlimited duration", func(x *domain.Terms) { x.Duration = nil }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			next := terms()
			tt.mutate(&next)
			ch := domain.CompareTerms(1, terms(), next, nil)
			if ch.Material != tt.material {
				t.Fatalf("material = %v (%v), want %v", ch.Material, ch.MaterialReasons, tt.material)
			}
		})
	}
}

// FuzzCanonicalTerms checks the RFC 8785 rules that matter for free text:
// the output is valid JSON that gives the text back, and the only escapes
// are the ones RFC 8785 requires (quote, backslash, control characters).
func FuzzCanonicalTerms(f *testing.F) {
	for _, s := range []string{"Coffee club", "\u007f", "\u2028 \u2029", "<&>", "\"\\\n\t\x01", "é😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if !utf8.ValidString(text) {
			return // request bodies are decoded to valid UTF-8 before terms exist
		}
		tm := terms()
		tm.Title, tm.Summary = text, text
		out, err := domain.CanonicalTerms(tm, recipients())
		if err != nil {
			t.Fatal(err)
		}
		var back struct{ Title string }
		if err := json.Unmarshal(out, &back); err != nil || back.Title != text {
			t.Fatalf("%q → %s does not give the title back (%v)", text, out, err)
		}
		for i := 0; i < len(out); i++ {
			if out[i] != '\\' {
				continue
			}
			i++
			switch out[i] {
			case '"', '\\', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+5 > len(out) {
					t.Fatalf("truncated escape at the end of %s", out)
				}
				hex := string(out[i+1 : i+5])
				code, err := strconv.ParseUint(hex, 16, 16)
				if err != nil || hex != strings.ToLower(hex) {
					t.Fatalf("malformed escape \\u%s (RFC 8785 writes lower-case hex)", hex)
				}
				if code >= 0x20 {
					t.Fatalf("%q is escaped as \\u%s, which RFC 8785 writes as is", rune(code), hex)
				}
				i += 4
			default:
				t.Fatalf("unexpected escape \\%c in %s", out[i], out)
			}
		}
	})
}
