package domain

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Programme is one version of who runs the loyalty programme and answers
// for the data (the controller, GDPR Art. 13(1)(a)-(b)), where a member
// complains (Art. 13(2)(d)), what a point is worth, and where the programme
// is offered. Every change is a new version; a contract published under a
// version keeps it in its terms.
type Programme struct {
	Version       int
	LegalName     string
	Address       string
	ContactEmail  string
	DPOContact    string
	AuthorityName string
	ComplaintURL  string
	PointValue    PointValue
	Jurisdictions []string
	CreatedAt     time.Time
}

// subdivisionCode is an ISO 3166-2 code: a country and up to three letters
// or digits (US-CA, GB-SCT, NO-03).
var subdivisionCode = regexp.MustCompile(`^([A-Z]{2})-[A-Z0-9]{1,3}$`)

// MaxJurisdictions bounds the list a programme names.
const MaxJurisdictions = 300

// ValidateProgramme checks p and returns it in its one spelling (trimmed
// text, sorted jurisdictions, the point amount without trailing zeros).
// Jurisdictions are ISO 3166-1 alpha-2 country codes (NO, DE) or ISO
// 3166-2 subdivision codes of an assigned country (US-CA): codes, not
// region names, so a statement can name each in the reader's language and
// a rule can tell whether a law applies (US-CA: the CCPA's notice).
func (c Catalog) ValidateProgramme(p Programme) (Programme, error) {
	var v Violations
	text := func(at string, s *string, max int, hides func(string) bool) {
		*s = strings.TrimSpace(*s)
		if blank(*s) || utf8.RuneCountInString(*s) > max {
			v.Add(at, fmt.Sprintf("must be 1 to %d visible characters", max))
		} else if hides(*s) {
			v.Add(at, "must not hold control characters, invisible characters or bidirectional overrides")
		}
	}
	// Names are one line; an address or a contact may take several.
	text("/legal_name", &p.LegalName, 200, hidesLine)
	text("/address", &p.Address, 500, hidesText)
	text("/dpo_contact", &p.DPOContact, 500, hidesText)
	text("/supervisory_authority/name", &p.AuthorityName, 200, hidesLine)
	if !IsEmailAddress(p.ContactEmail) {
		v.Add("/contact_email", "must be an e-mail address such as privacy@brand.example")
	}
	// The DPO contact is free text (a name, a postal address, a phone), but
	// an e-mail address it names is held to the same rule: a reader or a
	// mail client that makes a link of it must reach that one mailbox.
	for _, word := range strings.Fields(p.DPOContact) {
		if word = strings.Trim(word, `()<>[],;:."'`); strings.Contains(word, "@") && !IsEmailAddress(word) {
			v.Add("/dpo_contact", "names an e-mail address that is not one such as dpo@brand.example: "+
				"a bare address, without ?, &, # or %")
			break
		}
	}
	if problem := WebURLProblem(p.ComplaintURL); problem != "" {
		v.Add("/supervisory_authority/complaint_url", problem)
	}
	p.PointValue = ValidatePointValue(p.PointValue, c.currency, "/point_value", &v)
	if len(p.Jurisdictions) == 0 || len(p.Jurisdictions) > MaxJurisdictions {
		v.Add("/jurisdictions", fmt.Sprintf("must name 1 to %d ISO 3166 codes", MaxJurisdictions))
	}
	seen := map[string]bool{}
	for i, j := range p.Jurisdictions {
		at := fmt.Sprintf("/jurisdictions/%d", i)
		country := j
		if m := subdivisionCode.FindStringSubmatch(j); m != nil {
			country = m[1]
		}
		switch {
		case !c.IsCountry(country):
			v.Add(at, "must be an ISO 3166-1 alpha-2 country code (NO) or an ISO 3166-2 subdivision code (US-CA)")
		case seen[j]:
			v.Add(at, "names the same jurisdiction twice")
		}
		seen[j] = true
	}
	if err := v.Err(); err != nil {
		return Programme{}, err
	}
	p.Jurisdictions = append([]string(nil), p.Jurisdictions...)
	sort.Strings(p.Jurisdictions)
	return p, nil
}

// currency looks a code up in the catalogue's currency list (WithCurrencies).
func (c Catalog) currency(code string) (int, bool) {
	if c.currencies == nil {
		return 0, false
	}
	return c.currencies(code)
}

// Currency tells the minor units of an ISO 4217 currency.
func (c Catalog) Currency(code string) (digits int, ok bool) { return c.currency(code) }

// WithCurrencies is c with the ISO 4217 list Currency reads.
func (c Catalog) WithCurrencies(known Currencies) Catalog {
	c.currencies = known
	return c
}

// canonical is the programme as it stands in canonical terms: every field a
// member relies on to know who answers for the data and what a point is worth.
func (p Programme) canonical() map[string]any {
	jur := make([]any, 0, len(p.Jurisdictions))
	for _, j := range p.Jurisdictions {
		jur = append(jur, j)
	}
	return map[string]any{
		"version": p.Version, "legal_name": p.LegalName, "address": p.Address,
		"contact_email": p.ContactEmail, "dpo_contact": p.DPOContact,
		"supervisory_authority": map[string]any{"name": p.AuthorityName, "complaint_url": p.ComplaintURL},
		"point_value":           map[string]any{"currency": p.PointValue.Currency, "amount": p.PointValue.Amount},
		"jurisdictions":         jur,
	}
}
