// Package catalog loads the data categories and purposes shipped with Quid
// (catalog.json, embedded) into the domain's Catalog.
package catalog

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"

	"github.com/go-playground/validator/v10"
	"golang.org/x/text/currency"

	"github.com/quidpro/quid/domain"
)

//go:embed catalog.json
var data []byte

type file struct {
	Categories []struct {
		Key         string `json:"key"`
		Label       string `json:"label"`
		Description string `json:"description"`
		Example     string `json:"example"`
		Type        string `json:"type"`
		Sensitive   bool   `json:"sensitive"`
		Fideslang   string `json:"fideslang"`
		DPV         string `json:"dpv"`
		Derived     *struct {
			From          string `json:"from"`
			Rule          string `json:"rule"`
			Param         int    `json:"param"`
			Reveals       string `json:"reveals"`
			DoesNotReveal string `json:"does_not_reveal"`
		} `json:"derived"`
	} `json:"categories"`
	Purposes []struct {
		Key         string `json:"key"`
		Label       string `json:"label"`
		Description string `json:"description"`
		Fideslang   string `json:"fideslang"`
		DPV         string `json:"dpv"`
		// Advertising, DirectMarketing and AutomatedProcessing are required
		// in the file: a purpose added without them would silently read as
		// none of them, and so escape the age and GPC rules.
		Advertising         *bool     `json:"advertising"`
		DirectMarketing     *bool     `json:"direct_marketing"`
		AutomatedProcessing *[]string `json:"automated_processing"`
	} `json:"purposes"`
}

// Load parses the embedded catalogue.
func Load() (domain.Catalog, error) {
	var f file
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return domain.Catalog{}, fmt.Errorf("catalogue: %w", err)
	}
	cats := make([]domain.Category, 0, len(f.Categories))
	for _, c := range f.Categories {
		cat := domain.Category{Key: c.Key, Label: c.Label, Description: c.Description, Example: c.Example,
			Type: domain.ValueType(c.Type), Sensitive: c.Sensitive, Fideslang: c.Fideslang, DPV: c.DPV}
		if c.Derived != nil {
			cat.Derived = &domain.Derivation{From: c.Derived.From, Rule: c.Derived.Rule, Param: c.Derived.Param,
				Reveals: c.Derived.Reveals, DoesNotReveal: c.Derived.DoesNotReveal}
		}
		cats = append(cats, cat)
	}
	purs := make([]domain.Purpose, 0, len(f.Purposes))
	for _, p := range f.Purposes {
		if p.Advertising == nil || p.DirectMarketing == nil || p.AutomatedProcessing == nil {
			return domain.Catalog{}, fmt.Errorf("catalogue: purpose %q needs advertising, direct_marketing and automated_processing", p.Key)
		}
		purs = append(purs, domain.Purpose{Key: p.Key, Label: p.Label, Description: p.Description, Fideslang: p.Fideslang, DPV: p.DPV,
			Advertising: *p.Advertising, DirectMarketing: *p.DirectMarketing, AutomatedProcessing: *p.AutomatedProcessing})
	}
	c, err := domain.NewCatalog(cats, purs)
	return c.WithCountries(assignedCountry).WithCurrencies(isoCurrency), err
}

// countries checks ISO 3166-1 alpha-2 codes against the official list, the
// same one recipients' countries are validated with at the HTTP edge.
var countries = validator.New()

func assignedCountry(code string) bool { return countries.Var(code, "iso3166_1_alpha2") == nil }

// isoCurrency tells an ISO 4217 code and its minor units from the CLDR
// data golang.org/x/text/currency maintains: its standard rounding's scale
// is the digits after the point (EUR 2, JPY 0, KWD 3). The codes for no
// currency, testing, precious metals and units of account are refused: a
// point is worth money a member can spend.
func isoCurrency(code string) (int, bool) {
	u, err := currency.ParseISO(code)
	if err != nil || u.String() != code || notMoney[code] {
		return 0, false
	}
	scale, _ := currency.Standard.Rounding(u)
	return scale, true
}

var notMoney = map[string]bool{"XXX": true, "XTS": true, "XAU": true, "XAG": true, "XPD": true, "XPT": true,
	"XDR": true, "XBA": true, "XBB": true, "XBC": true, "XBD": true, "XSU": true, "XUA": true}
