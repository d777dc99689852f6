package domain

import (
	"fmt"
	"net/mail"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ValueType says what a member attribute of a category must look like.
type ValueType string

const (
	TypeString      ValueType = "string"
	TypeEmail       ValueType = "email"
	TypePhone       ValueType = "phone"
	TypeDate        ValueType = "date"
	TypeCountryCode ValueType = "country_code"
	TypeNumber      ValueType = "number"
	TypeList        ValueType = "list"
	TypeAddress     ValueType = "address"
	TypeBoolean     ValueType = "boolean"
)

// Derivation rules: a derived category discloses a fact computed from its
// source category at read time, never the source value.
const (
	RuleAgeAtLeast       = "age_at_least"
	RuleCountryOfAddress = "country_of_address"
)

// DPV terms for profiling and automated decisions (GDPR Art. 22).
const (
	DPVProfiling               = "dpv:Profiling"
	DPVAutomatedDecisionMaking = "dpv:AutomatedDecisionMaking"
)

// Derivation describes how a derived category is computed.
type Derivation struct {
	From          string
	Rule          string
	Param         int
	Reveals       string
	DoesNotReveal string
}

// Category is a kind of personal data from the shipped catalogue.
type Category struct {
	Key, Label, Description, Example string
	Type                             ValueType
	Sensitive                        bool
	Fideslang, DPV                   string
	Derived                          *Derivation
}

// Purpose is why data is used. Advertising purposes choose or show ads and
// offers with the member's data (DPV's Advertising terms, Fideslang's
// marketing.advertising): they carry the age floor and the Global Privacy
// Control rule (DESIGN rule 10). DirectMarketing purposes can be objected to
// at any time (GDPR Art. 21(2)); AutomatedProcessing lists the DPV terms
// (dpv:Profiling, dpv:AutomatedDecisionMaking) of the profiling or
// automated decisions the purpose involves (Art. 22), empty when none.
type Purpose struct {
	Key, Label, Description string
	Fideslang, DPV          string
	Advertising             bool
	DirectMarketing         bool
	AutomatedProcessing     []string
}

// Catalog is the fixed set of categories and purposes a contract may name.
type Catalog struct {
	categories map[string]Category
	purposes   map[string]Purpose
	catOrder   []string
	purOrder   []string
	countries  func(string) bool
	currencies Currencies
}

var catalogKey = regexp.MustCompile(`^[a-z]+(?:_[a-z0-9]+)*\.[a-z0-9]+(?:_[a-z0-9]+)*$`)

// NewCatalog checks keys, types and derivations so that a bad catalogue file
// stops the process at start rather than a request later.
func NewCatalog(categories []Category, purposes []Purpose) (Catalog, error) {
	c := Catalog{categories: map[string]Category{}, purposes: map[string]Purpose{}}
	for _, cat := range categories {
		if !catalogKey.MatchString(cat.Key) {
			return Catalog{}, fmt.Errorf("catalogue: category key %q is not dotted lower case", cat.Key)
		}
		if _, dup := c.categories[cat.Key]; dup {
			return Catalog{}, fmt.Errorf("catalogue: category %q twice", cat.Key)
		}
		if cat.Label == "" || cat.Description == "" {
			return Catalog{}, fmt.Errorf("catalogue: category %q needs a label and a description", cat.Key)
		}
		switch cat.Type {
		case TypeString, TypeEmail, TypePhone, TypeDate, TypeCountryCode, TypeNumber, TypeList, TypeAddress, TypeBoolean:
		default:
			return Catalog{}, fmt.Errorf("catalogue: category %q has unknown type %q", cat.Key, cat.Type)
		}
		c.categories[cat.Key] = cat
		c.catOrder = append(c.catOrder, cat.Key)
	}
	for _, cat := range categories {
		if cat.Derived == nil {
			continue
		}
		src, ok := c.categories[cat.Derived.From]
		if !ok || src.Derived != nil {
			return Catalog{}, fmt.Errorf("catalogue: %q derives from %q, which is not a stored category", cat.Key, cat.Derived.From)
		}
		switch {
		case cat.Derived.Rule == RuleAgeAtLeast && src.Type == TypeDate:
		case cat.Derived.Rule == RuleCountryOfAddress && src.Type == TypeAddress:
		default:
			return Catalog{}, fmt.Errorf("catalogue: %q has rule %q that does not fit its source", cat.Key, cat.Derived.Rule)
		}
	}
	for _, p := range purposes {
		if !catalogKey.MatchString(p.Key) {
			return Catalog{}, fmt.Errorf("catalogue: purpose key %q is not dotted lower case", p.Key)
		}
		if _, dup := c.purposes[p.Key]; dup {
			return Catalog{}, fmt.Errorf("catalogue: purpose %q twice", p.Key)
		}
		// The flag cannot disagree with the standard terms the same entry
		// names: DPV's Marketing or an Advertising term, or Fideslang's
		// marketing.advertising, is advertising (DPV's DirectMarketing has
		// its own flag).
		if !p.Advertising && (p.DPV == "dpv:Marketing" || strings.HasSuffix(p.DPV, "Advertising") || strings.HasPrefix(p.Fideslang, "marketing.advertising")) {
			return Catalog{}, fmt.Errorf("catalogue: purpose %q is advertising by its DPV or Fideslang term but not flagged advertising", p.Key)
		}
		for _, term := range p.AutomatedProcessing {
			if term != DPVProfiling && term != DPVAutomatedDecisionMaking {
				return Catalog{}, fmt.Errorf("catalogue: purpose %q has unknown automated processing term %q", p.Key, term)
			}
		}
		c.purposes[p.Key] = p
		c.purOrder = append(c.purOrder, p.Key)
	}
	sort.Strings(c.catOrder)
	sort.Strings(c.purOrder)
	return c, nil
}

func (c Catalog) Category(key string) (Category, bool) { cat, ok := c.categories[key]; return cat, ok }
func (c Catalog) Purpose(key string) (Purpose, bool)   { p, ok := c.purposes[key]; return p, ok }

// Categories lists every category, sorted by key.
func (c Catalog) Categories() []Category {
	out := make([]Category, 0, len(c.catOrder))
	for _, k := range c.catOrder {
		out = append(out, c.categories[k])
	}
	return out
}

// Purposes lists every purpose, sorted by key.
func (c Catalog) Purposes() []Purpose {
	out := make([]Purpose, 0, len(c.purOrder))
	for _, k := range c.purOrder {
		out = append(out, c.purposes[k])
	}
	return out
}

var (
	e164        = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	countryCode = regexp.MustCompile(`^[A-Z]{2}$`)
)

// MinDateYear is the earliest year a date attribute may hold: a birthdate
// such as 0000-01-01 would make anyone an adult (DESIGN rule 10).
const MinDateYear = 1900

// blank tells text that shows nothing: no rune of it is visible on its
// own. White space, control and format characters (zero-width space, BOM,
// joiners), combining marks with nothing to combine with (variation
// selectors, the combining grapheme joiner) and the characters Unicode
// draws empty (Braille blank, Hangul and Khmer fillers) are not. Such a
// value is not data given (DESIGN rule 9), so it is refused wherever text
// is.
func blank(s string) bool {
	for _, r := range s {
		if unicode.IsGraphic(r) && !unicode.IsSpace(r) && !unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf) && !drawnEmpty[r] {
			return false
		}
	}
	return true
}

// IsEmailAddress tells a bare addr-spec (RFC 5322 §3.4.1) that every
// reader takes to be the same one mailbox: net/mail parses it back to
// itself (no display name, comment, quoting or angle brackets), it is at
// most 254 bytes (RFC 5321 §4.5.3.1.3: a path is at most 256 octets with
// its brackets), every character shows (rule 9: an address of invisible
// characters is no address given), the local part holds nothing a mailto:
// URI or a mail header reads as a delimiter (?, &, #, %, no space), and the
// domain is a dotted host name of letters, digits and hyphens, so
// "privacy@acme.example?bcc=harvest", "ㅤ@ㅤ" and "a@b" are refused.
func IsEmailAddress(addr string) bool {
	if len(addr) > 254 || strings.ContainsAny(addr, "?&#% \"") {
		return false
	}
	if parsed, err := mail.ParseAddress(addr); err != nil || parsed.Name != "" || parsed.Address != addr {
		return false
	}
	at := strings.LastIndexByte(addr, '@')
	local, host := addr[:at], addr[at+1:]
	if first, _ := utf8.DecodeRuneInString(local); local == "" || unicode.In(first, unicode.Mn, unicode.Me) {
		return false
	}
	for _, r := range local {
		if unicode.IsSpace(r) || unicode.In(r, unicode.Cf, unicode.Cc) || drawnEmpty[r] {
			return false
		}
	}
	labels := strings.Split(host, ".")
	if len(labels) < 2 {
		return false
	}
	for _, label := range labels {
		// A label may not start with a mark that has nothing to combine
		// with, nor start or end with a hyphen (RFC 1123 §2.1).
		if first, _ := utf8.DecodeRuneInString(label); label == "" || unicode.In(first, unicode.Mn, unicode.Me) ||
			label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.In(r, unicode.Mn, unicode.Mc) || drawnEmpty[r] {
				return false
			}
		}
	}
	return true
}

// IsCountry tells an ISO 3166-1 alpha-2 code assigned to a country or
// territory: two capital letters, and, when the catalogue's loader supplied
// the official list (WithCountries; the standard library has none), one of
// it, so a user-assigned code such as ZZ, XX or QO is no country.
func (c Catalog) IsCountry(s string) bool {
	return countryCode.MatchString(s) && (c.countries == nil || c.countries(s))
}

// WithCountries is c with the list of assigned ISO 3166-1 alpha-2 codes
// that IsCountry checks.
func (c Catalog) WithCountries(assigned func(string) bool) Catalog {
	c.countries = assigned
	return c
}

// hidesText tells text that can show something other than what it holds:
// control characters (but line breaks and tabs, which a multi-line text
// may hold), the bidirectional embeddings, overrides and isolates
// (U+202A–U+202E, U+2066–U+2069) that reorder what a reader sees (the
// "Trojan Source" trick, CVE-2021-42574), and the characters that draw
// nothing yet split or join what a reader and a search see as one word:
// zero width space, word joiner, byte order mark, and the line and
// paragraph separators a page does not break at (U+200B, U+2060, U+FEFF,
// U+2028, U+2029). Joiners and direction marks that scripts need (ZWJ,
// ZWNJ, LRM, RLM) stay allowed.
func hidesText(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return (unicode.IsControl(r) && r != '\n' && r != '\t') || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') ||
			r == '\u200b' || r == '\u2060' || r == '\ufeff' || r == '\u2028' || r == '\u2029'
	})
}

// hidesLine is hidesText for a one-line text (a title, a name): a line
// break or a tab in it is hidden too, where a page shows it as a space.
func hidesLine(s string) bool {
	return hidesText(s) || strings.ContainsAny(s, "\n\t\r")
}

// drawnEmpty are graphic characters that render as nothing.
var drawnEmpty = map[rune]bool{'\u2800': true, '\u3164': true, '\u115f': true, '\u1160': true, '\uffa0': true, '\u17b4': true, '\u17b5': true}

// ValidateAttribute checks a member's value for a stored category. Values
// arrive decoded from JSON: strings, float64 numbers, []any, map[string]any.
func (c Catalog) ValidateAttribute(key string, value any) error {
	cat, ok := c.categories[key]
	if !ok {
		return fmt.Errorf("is not a category of the catalogue")
	}
	if cat.Derived != nil {
		return fmt.Errorf("is derived from %s and cannot be set directly", cat.Derived.From)
	}
	if !storableText(value) {
		return fmt.Errorf("must hold only valid UTF-8 text without the NUL character")
	}
	// What a member types reaches partners and the member's own pages: no
	// string in it may reorder what a reader sees (reordersText). Invisible
	// characters in a visible value stay accepted: pasted data often has them.
	if reordersAnyText(value) {
		return fmt.Errorf("must not hold control characters or bidirectional embeddings, overrides or isolates")
	}
	str, isString := value.(string)
	switch cat.Type {
	case TypeString:
		if !isString || blank(str) || utf8.RuneCountInString(str) > 500 {
			return fmt.Errorf("must be a non-empty string of at most 500 characters")
		}
	case TypeEmail:
		// RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its angle
		// brackets, so an address is at most 254.
		if !isString || !IsEmailAddress(str) {
			return fmt.Errorf("must be an email address such as alex@example.com, of at most 254 bytes")
		}
	case TypePhone:
		if !isString || !e164.MatchString(str) {
			return fmt.Errorf("must be a phone number in E.164 form such as +4712345678")
		}
	case TypeDate:
		// A date attribute records something that has happened (a
		// birthdate): not before MinDateYear, and not after today anywhere
		// on Earth (UTC+14).
		d, err := time.Parse(time.DateOnly, str)
		if !isString || err != nil || d.Year() < MinDateYear || d.After(time.Now().UTC().Add(14*time.Hour)) {
			return fmt.Errorf("must be a date in YYYY-MM-DD form, from %d-01-01 to today", MinDateYear)
		}
	case TypeCountryCode:
		if !isString || !c.IsCountry(str) {
			return fmt.Errorf("must be an ISO 3166-1 alpha-2 country code such as NO")
		}
	case TypeNumber:
		// Every number the catalogue holds counts or measures something.
		if n, ok := value.(float64); !ok || n < 0 {
			return fmt.Errorf("must be a number, zero or more")
		}
	case TypeList:
		// An empty list is no data given (rule 9): null removes the
		// attribute instead.
		list, ok := value.([]any)
		if !ok || len(list) == 0 || len(list) > 200 {
			return fmt.Errorf("must be a list of 1 to 200 strings of at most 200 characters each (null removes it)")
		}
		for _, v := range list {
			if s, ok := v.(string); !ok || blank(s) || utf8.RuneCountInString(s) > 200 {
				return fmt.Errorf("must be a list of non-empty strings of at most 200 characters each")
			}
		}
	case TypeAddress:
		m, ok := value.(map[string]any)
		if !ok {
			return fmt.Errorf("must be an object with street, postal_code, city and country")
		}
		for k, v := range m {
			s, isStr := v.(string)
			switch k {
			case "street", "postal_code", "city":
				if !isStr || blank(s) || utf8.RuneCountInString(s) > 200 {
					return fmt.Errorf("%s must be a non-empty string of at most 200 characters", k)
				}
			case "country":
				if !isStr || !c.IsCountry(s) {
					return fmt.Errorf("country must be an ISO 3166-1 alpha-2 code")
				}
			default:
				return fmt.Errorf("has unknown field %s", k)
			}
		}
		// Street and postal code are optional (rural addresses, countries
		// without postal codes); an address without a city is no address
		// given (rule 9).
		for _, k := range []string{"city", "country"} {
			if _, ok := m[k]; !ok {
				return fmt.Errorf("%s is required", k)
			}
		}
	default:
		return fmt.Errorf("cannot be stored")
	}
	return nil
}

// reordersText tells text whose characters a reader may not see in the
// order they are stored: control characters (but line breaks and tabs)
// and the bidirectional embeddings, overrides and isolates of hidesText
// (CVE-2021-42574).
func reordersText(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return (unicode.IsControl(r) && r != '\n' && r != '\t') || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
	})
}

// ReordersLine is reordersText for one line a member types (a redemption's
// reference): a line break or a tab in it is refused too.
func ReordersLine(s string) bool {
	return reordersText(s) || strings.ContainsAny(s, "\n\t")
}

// reordersAnyText says whether any string in a decoded JSON value (object
// keys included) reorders text (reordersText).
func reordersAnyText(v any) bool {
	switch x := v.(type) {
	case string:
		return reordersText(x)
	case []any:
		for _, e := range x {
			if reordersAnyText(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range x {
			if reordersAnyText(k) || reordersAnyText(e) {
				return true
			}
		}
	}
	return false
}

// storableText says whether every string in a decoded JSON value (object
// keys included) is valid UTF-8 without NUL: PostgreSQL's jsonb, where
// attributes are kept, cannot hold \u0000, so such a value would fail at
// the database instead of being refused with the field named.
func storableText(v any) bool {
	switch x := v.(type) {
	case string:
		return utf8.ValidString(x) && !strings.ContainsRune(x, 0)
	case []any:
		for _, e := range x {
			if !storableText(e) {
				return false
			}
		}
	case map[string]any:
		for k, e := range x {
			if !storableText(k) || !storableText(e) {
				return false
			}
		}
	}
	return true
}

// Derive computes a derived category's value from its source value at time
// now; ok is false when the source is missing or unusable.
func (c Catalog) Derive(key string, source any, now time.Time) (any, bool) {
	cat, found := c.categories[key]
	if !found || cat.Derived == nil || source == nil {
		return nil, false
	}
	switch cat.Derived.Rule {
	case RuleAgeAtLeast:
		s, _ := source.(string)
		born, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return nil, false
		}
		return AgeAtLeast(born, cat.Derived.Param, now), true
	case RuleCountryOfAddress:
		m, _ := source.(map[string]any)
		country, ok := m["country"].(string)
		return country, ok
	}
	return nil, false
}
