package domain

import (
	"strings"
	"time"
	"unicode/utf8"
)

// RecipientKind tells whether a recipient is the brand itself or a partner.
type RecipientKind string

const (
	FirstParty RecipientKind = "first_party"
	ThirdParty RecipientKind = "third_party"
)

// Recipient receives member data under contracts that name it.
type Recipient struct {
	ID               string
	Name             string
	Kind             RecipientKind
	Country          string
	PrivacyPolicyURL string
	CreatedAt        time.Time
}

// NewRecipient validates a recipient before it can be named in a contract.
func NewRecipient(id, name string, kind RecipientKind, country, policyURL string, at time.Time) (Recipient, error) {
	var v Violations
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 200 {
		v.Add("/name", "must be 1 to 200 characters")
	} else if hidesLine(name) {
		// The name is shown in every statement that names the recipient.
		v.Add("/name", "must be one line without control characters, invisible characters or bidirectional overrides")
	}
	if kind != FirstParty && kind != ThirdParty {
		v.Add("/kind", "must be first_party or third_party")
	}
	if !countryCode.MatchString(country) {
		v.Add("/country", "must be an ISO 3166-1 alpha-2 country code such as NO")
	}
	if problem := WebURLProblem(policyURL); problem != "" {
		v.Add("/privacy_policy_url", problem)
	}
	if err := v.Err(); err != nil {
		return Recipient{}, err
	}
	return Recipient{ID: id, Name: name, Kind: kind, Country: country, PrivacyPolicyURL: policyURL, CreatedAt: at}, nil
}
