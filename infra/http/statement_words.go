package http

import (
	"encoding/json"
	"fmt"
	"html/template"
	"strings"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/language/display"

	"github.com/quidpro/quid/domain"
)

// The words of the statement and the notice: every key, code and machine
// date they carry in JSON has its human form here, so the HTML shows
// labels, names and dates a person reads (issue 12), and the JSON carries
// the same words beside the keys.

// countryName is the English name of an ISO 3166-1 alpha-2 code from the
// CLDR data golang.org/x/text maintains ("NO" → "Norway"); the code itself
// when CLDR has no name for it.
func countryName(code string) string {
	r, err := language.ParseRegion(code)
	if err != nil {
		return code
	}
	if name := display.English.Regions().Name(r); name != "" {
		return name
	}
	return code
}

// humanDate is an instant as a day a person reads, in UTC: "30 November 2026".
func humanDate(t time.Time) string { return t.UTC().Format("2 January 2006") }

// valueMethodLabels are the methods of Cal. Code Regs. tit. 11 §7081(a)(1)-(8)
// in words, by their keys (domain.ValueMethods).
var valueMethodLabels = map[string]string{
	"marginal_value":               "the marginal value to the business of your data",
	"average_value":                "the average value to the business of your data",
	"aggregate_value_per_consumer": "the value to the business of all members' data, divided by the number of members",
	"revenue_attributable":         "the revenue the business makes from collecting, selling or keeping personal data",
	"expenses_related":             "the expenses of the business for collecting, selling or keeping personal data",
	"incentive_expenses":           "the expenses of the business for offering this reward",
	"profit_attributable":          "the profit the business makes from collecting, selling or keeping personal data",
	"practical_method":             "another practical and reasonably reliable method, used in good faith",
}

func valueMethodLabel(key string) string {
	if l, ok := valueMethodLabels[key]; ok {
		return l
	}
	return "a method the brand describes below"
}

// fingerprintPlain says what terms_hash is and how anyone checks it.
const fingerprintPlain = "The fingerprint is the SHA-256 hash of these terms exactly as published, and your consent receipt carries the same value: " +
	"to check it, take the \"terms\" field of this statement as JSON (Accept: application/json), write it as RFC 8785 canonical JSON, " +
	"hash that with SHA-256 and compare the result with the fingerprint here and on your receipt."

func controllerOf(p domain.Programme) *stmtController {
	return &stmtController{ProgrammeVersion: p.Version, LegalName: p.LegalName, Address: p.Address, ContactEmail: p.ContactEmail,
		DPOContact: p.DPOContact, SupervisoryAuthority: stmtAuthority{p.AuthorityName, p.ComplaintURL},
		Plain: p.LegalName + " decides what is done with your data and answers for it (the controller). " +
			"Write to " + p.ContactEmail + " with any question; its data protection officer is " + p.DPOContact + "."}
}

// legalBasisOf is consent, explicit when a shared category is sensitive.
func legalBasisOf(c domain.Catalog, t domain.Terms) stmtLegalBasis {
	b := stmtLegalBasis{Basis: "consent", Articles: []string{"GDPR Art. 6(1)(a)"},
		Plain: "Your data is shared only because you agree to it (consent), and only for as long as you keep agreeing."}
	var sensitive []string
	seen := map[string]bool{}
	for _, it := range t.Items {
		if cat, ok := c.Category(it.Category); ok && cat.Sensitive && !seen[cat.Key] {
			seen[cat.Key] = true
			sensitive = append(sensitive, cat.Label)
		}
	}
	if len(sensitive) > 0 {
		b.ExplicitConsent = true
		b.Articles = append(b.Articles, "GDPR Art. 9(2)(a)")
		b.Plain += " Some of it is sensitive (" + strings.Join(sensitive, ", ") + "), so your consent must be explicit: you confirm it yourself, for these purposes."
	}
	return b
}

// valuePlain sets the reward in money and the brand's estimate of the
// data's worth in words; nil where a figure is missing.
func valuePlain(t domain.Terms, rv *domain.RewardValue) (reward, value *string) {
	if rv != nil {
		var parts []string
		r := t.Reward
		if r.JoinBonus > 0 {
			parts = append(parts, fmt.Sprintf("%s %s when you join", rv.JoinBonus, rv.Currency))
		}
		if r.PointsPerPeriod > 0 {
			parts = append(parts, fmt.Sprintf("%s %s for every full %s", rv.PerPeriod, rv.Currency, everyDuration(r.Period)))
		}
		if rv.MaxTotal != "" {
			parts = append(parts, fmt.Sprintf("at most %s %s in total", rv.MaxTotal, rv.Currency))
		}
		s := fmt.Sprintf("One point is worth %s %s, so the reward is worth %s.", rv.Point, rv.Currency, strings.Join(parts, ", "))
		reward = &s
	}
	if e := t.Value; e != nil {
		s := fmt.Sprintf("The brand estimates in good faith that your data is worth %s %s to it for every %s, calculated from %s.",
			e.Amount, e.Currency, everyDuration(e.Per), valueMethodLabel(t.ValueMethod))
		value = &s
	}
	return reward, value
}

// examplePlain is a category's example as a value a person reads, never
// JSON: a list joined by commas, an address on one line, yes or no, a date
// and a country spelled out. An example that does not parse as its type
// says is shown as written.
func examplePlain(cat domain.Category) string {
	ex := cat.Example
	switch cat.Type {
	case domain.TypeList:
		var xs []string
		if json.Unmarshal([]byte(ex), &xs) == nil {
			return strings.Join(xs, ", ")
		}
	case domain.TypeAddress:
		var a map[string]string
		if json.Unmarshal([]byte(ex), &a) == nil {
			var parts []string
			if a["street"] != "" {
				parts = append(parts, a["street"])
			}
			parts = append(parts, strings.TrimSpace(a["postal_code"]+" "+a["city"]))
			if a["country"] != "" {
				parts = append(parts, countryName(a["country"]))
			}
			return strings.Join(parts, ", ")
		}
	case domain.TypeBoolean:
		switch ex {
		case "true":
			return "yes"
		case "false":
			return "no"
		}
	case domain.TypeDate:
		if d, err := time.Parse(time.DateOnly, ex); err == nil {
			return humanDate(d)
		}
	case domain.TypeCountryCode:
		return countryName(ex)
	}
	return ex
}

func categoryLabels(c domain.Catalog, keys []string) []string {
	out := []string{}
	for _, k := range keys {
		if cat, ok := c.Category(k); ok {
			k = cat.Label
		}
		out = append(out, k)
	}
	return out
}

func purposeLabels(c domain.Catalog, keys []string) []string {
	out := []string{}
	for _, k := range keys {
		if p, ok := c.Purpose(k); ok {
			k = p.Label
		}
		out = append(out, k)
	}
	return out
}

// fieldLabels name the fields a change lists (domain.CompareTerms).
var fieldLabels = map[string]string{
	"join_bonus": "join bonus (points)", "vesting": "time before the join bonus is yours",
	"points_per_period": "points per period", "period": "period", "max_periods": "most periods paid",
	"retention": "time recipients keep your data", "duration": "how long your consent lasts",
	"renewal_notice": "reminder before consent ends", "min_age": "minimum age",
	"title": "title", "summary": "summary", "value_explanation": "explanation of the value",
	"value_estimate": "estimate of what your data is worth", "value_method": "method of that estimate",
	"programme":  "company responsible and what a point is worth",
	"controller": "company responsible for your data", "contact_email": "privacy contact address",
	"dpo_contact": "contact of the data-protection officer", "supervisory_authority": "supervisory authority or its complaint page",
	"jurisdictions": "list of places the programme is offered in", "point_value": "what a point is worth",
	"programme_version": "version number of the company's details, though not the details themselves,",
}

// plainTemplateFuncs are the helpers both HTML pages use.
var plainTemplateFuncs = template.FuncMap{
	"mailto": mailtoURL,
	"field": func(k string) string {
		if l, ok := fieldLabels[k]; ok {
			return l
		}
		return strings.ReplaceAll(k, "_", " ")
	},
	// plainValue spells a change's value: an ISO 8601 duration in words.
	"plainValue": func(s string) string {
		if d, err := domain.ParseDuration(s); err == nil && !d.IsZero() {
			return plainDuration(d)
		}
		return s
	},
	"kind": kindWords,
	// every spells an ISO 8601 duration after "every": "year", "3 months".
	"every": func(s string) string {
		if d, err := domain.ParseDuration(s); err == nil && !d.IsZero() {
			return everyDuration(d)
		}
		return s
	},
	"Kind": func(k string) string { w := kindWords(k); return strings.ToUpper(w[:1]) + w[1:] },
}

// kindWords says who a recipient is to the member.
func kindWords(k string) string {
	if k == string(domain.FirstParty) {
		return "the brand itself (first party)"
	}
	return "another company (third party)"
}

// everyDuration is a duration after "every": "year" for P1Y, "3 months" for P3M.
func everyDuration(d domain.Duration) string {
	p := plainDuration(d)
	if rest, ok := strings.CutPrefix(p, "1 "); ok && !strings.Contains(rest, " ") {
		return rest
	}
	return p
}

// mailtoURL is the mailto: URI (RFC 6068) that writes to addr and to no one
// else: every character of the address but the unreserved ones and the
// sub-delimiters RFC 6068 §2 lets an addr-spec keep is percent-encoded, so
// no ?, &, # or % of a stored address can start header fields (a hidden
// Bcc:) or a fragment. Validation already refuses such addresses; this
// holds for any stored before it did.
func mailtoURL(addr string) string {
	var b strings.Builder
	b.WriteString("mailto:")
	for i := 0; i < len(addr); i++ {
		c := addr[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-._~!$'()*+,;:@", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
