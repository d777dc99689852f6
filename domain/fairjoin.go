package domain

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Fair joins (DESIGN rules 9 and 10): no reward for data not given, no
// child paid for data, and the Global Privacy Control signal honoured.

// BirthdateCategory is the stored category every age rule reads.
const BirthdateCategory = "demographic.birthdate"

// MinAgeFloor is the youngest age at which a member may join an exchange
// that ProtectsChildren covers (GDPR Art. 8 and Recital 38, CCPA's under-16
// opt-in rule), unless the contract sets a higher min_age.
const MinAgeFloor = 16

// IsAdvertising tells whether a purpose is for advertising, as the
// catalogue flags it. A purpose the catalogue does not hold counts as
// advertising, so an unknown key can never escape the age or GPC rule.
func (c Catalog) IsAdvertising(purpose string) bool {
	p, ok := c.purposes[purpose]
	return !ok || p.Advertising
}

// SourceOf is the stored category a member's profile must hold for a
// category to be shared: the category itself, or a derived one's source.
func (c Catalog) SourceOf(category string) string {
	if cat, ok := c.categories[category]; ok && cat.Derived != nil {
		return cat.Derived.From
	}
	return category
}

// RequiredAttributes lists, sorted and once each, the stored categories a
// member's profile must hold to join terms t.
func (c Catalog) RequiredAttributes(t Terms) []string {
	set := map[string]bool{}
	for _, it := range t.Items {
		set[c.SourceOf(it.Category)] = true
	}
	return sortedKeys(set)
}

// CheckProfileHolds refuses a join whose shared data the profile does not
// hold: one field error per missing stored category, at
// /attributes/<category>.
//
// The pointer names the stored category to add; the detail also names the
// derived categories the contract shares from it, so a member asked for
// their birthdate learns it is for, say, demographic.age_over_18.
func (c Catalog) CheckProfileHolds(t Terms, held map[string]bool) error {
	derivedFrom := map[string][]string{}
	for _, it := range t.Items {
		if src := c.SourceOf(it.Category); src != it.Category && !slices.Contains(derivedFrom[src], it.Category) {
			derivedFrom[src] = append(derivedFrom[src], it.Category)
		}
	}
	var v Violations
	for _, k := range c.RequiredAttributes(t) {
		if held[k] {
			continue
		}
		msg := "this contract shares " + k + ", which your profile does not hold"
		if d := derivedFrom[k]; len(d) > 0 {
			sort.Strings(d)
			msg = "this contract shares " + strings.Join(d, ", ") + ", computed from " + k +
				" (only the computed fact is shared), and your profile does not hold " + k
		}
		v.Add("/attributes/"+k, msg+": add it with PUT /v1/me before joining")
	}
	return v.Err()
}

// SharesWithThirdPartyOrForAdvertising tells whether terms send data to a
// third-party recipient (or one not in recipients) or use it for a purpose
// the catalogue flags as advertising.
func (c Catalog) SharesWithThirdPartyOrForAdvertising(t Terms, recipients map[string]Recipient) bool {
	for _, it := range t.Items {
		if c.IsAdvertising(it.Purpose) {
			return true
		}
		for _, id := range it.Recipients {
			if r, ok := recipients[id]; !ok || r.Kind != FirstParty {
				return true
			}
		}
	}
	return false
}

// ProtectsChildren tells whether terms t are closed to members under
// MinAgeFloor: they share with a third party (or a recipient not in
// recipients), use a purpose for advertising or direct marketing or one
// that involves profiling (GDPR Recital 38: children merit specific
// protection where their data is used for marketing or to build profiles;
// Recital 71), or share a sensitive category (Art. 9). An unknown purpose
// or category counts as all of these.
func (c Catalog) ProtectsChildren(t Terms, recipients map[string]Recipient) bool {
	if c.SharesWithThirdPartyOrForAdvertising(t, recipients) {
		return true
	}
	for _, it := range t.Items {
		p, ok := c.purposes[it.Purpose]
		if !ok || p.DirectMarketing || slices.Contains(p.AutomatedProcessing, DPVProfiling) {
			return true
		}
		cat, ok := c.categories[it.Category]
		if !ok || cat.Sensitive {
			return true
		}
	}
	return false
}

// AgeRequirement is the youngest age a member may join terms t at: at
// least MinAgeFloor when ProtectsChildren covers them, raised by the
// contract's min_age; only min_age for other contracts; 0 when no age rule
// applies.
func (c Catalog) AgeRequirement(t Terms, recipients map[string]Recipient) int {
	age := t.MinAge
	if c.ProtectsChildren(t, recipients) && age < MinAgeFloor {
		age = MinAgeFloor
	}
	return age
}

// CheckAge refuses a join by a member whose age is unknown (birthdate
// missing or unusable: 422 at /attributes/demographic.birthdate) or below
// minAge at now (403 under-minimum-age). Age follows AgeAtLeast, so a
// member is never taken for older than they are in any time zone.
func CheckAge(birthdate any, minAge int, now time.Time) error {
	if minAge <= 0 {
		return nil
	}
	s, _ := birthdate.(string)
	born, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Invalid("/attributes/"+BirthdateCategory,
			fmt.Sprintf("this contract is open only to members aged %d or older: add your date of birth with PUT /v1/me before joining", minAge))
	}
	if !AgeAtLeast(born, minAge, now) {
		return Forbidden("under-minimum-age",
			fmt.Sprintf("this contract is open only to members aged %d or older", minAge)).At("/attributes/" + BirthdateCategory)
	}
	return nil
}

// CheckGPC refuses a join or a renewal (consent given again) sent with the
// Global Privacy Control signal for terms that share with a third party or
// for advertising, unless the member affirmed that they want it anyway (the California rule that a
// business may ask the consumer to affirm a financial incentive over the
// signal).
func (c Catalog) CheckGPC(gpc, affirmed bool, t Terms, recipients map[string]Recipient) error {
	if !gpc || affirmed || !c.SharesWithThirdPartyOrForAdvertising(t, recipients) {
		return nil
	}
	return Conflict("gpc-conflict", "Your browser or device sends a Global Privacy Control signal, which asks that your data "+
		"not be sold or shared. This offer shares your data with another company or uses it for advertising. "+
		"Join or renew only if you want to make this exchange anyway: confirm to continue.").At("/affirm_despite_gpc")
}

// Share is one active exchange: the categories it shares, and its frozen
// terms with their recipients, from which the age it requires follows
// (AgeRequirement).
type Share struct {
	ExchangeID string
	Categories []string
	Terms      Terms
	Recipients map[string]Recipient
}

// CheckAgeRules applies DESIGN rule 10 to a profile change, given the
// profile after it and the member's active exchanges. Removing the
// birthdate while an active exchange's age rule needs it is refused: 409
// age-rule-shared naming those exchanges to cancel first (a removal, as
// attribute-shared is for a shared attribute). A corrected birthdate is
// rectification (GDPR Art. 16) and is never refused: the exchanges whose
// age rule the corrected age no longer meets are returned, sorted, for the
// caller to end in the same transaction; none when every rule still holds.
func (c Catalog) CheckAgeRules(after map[string]any, active []Share, now time.Time) ([]string, error) {
	_, known := after[BirthdateCategory]
	var ids []string
	for _, sh := range active {
		if age := c.AgeRequirement(sh.Terms, sh.Recipients); age > 0 && (!known || CheckAge(after[BirthdateCategory], age, now) != nil) {
			ids = append(ids, sh.ExchangeID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	sort.Strings(ids)
	if known {
		return ids, nil
	}
	return nil, (&Error{Kind: KindConflict, Code: "age-rule-shared",
		Message:     "active exchanges require a known age: the date of birth cannot be removed while they are active; cancel the exchanges listed in exchange_ids first, or correct the date instead",
		ExchangeIDs: ids}).At("/attributes/" + BirthdateCategory)
}

// CheckRemovals refuses removing an attribute that an active exchange
// shares (directly or as the source of a derived category): the error
// names the exchanges to cancel first. Changing a value is not a removal.
func (c Catalog) CheckRemovals(removed []string, active []Share) error {
	if len(removed) == 0 {
		return nil
	}
	gone := map[string]bool{}
	for _, k := range removed {
		gone[k] = true
	}
	var ids, keys []string
	seenKey := map[string]bool{}
	for _, sh := range active {
		hit := false
		for _, cat := range sh.Categories {
			if src := c.SourceOf(cat); gone[src] {
				hit = true
				if !seenKey[src] {
					seenKey[src] = true
					keys = append(keys, src)
				}
			}
		}
		if hit {
			ids = append(ids, sh.ExchangeID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	sort.Strings(ids)
	sort.Strings(keys)
	err := &Error{Kind: KindConflict, Code: "attribute-shared",
		Message: fmt.Sprintf("%s cannot be removed while an active exchange shares it: cancel the exchanges listed in exchange_ids first, or correct the value instead",
			strings.Join(keys, ", ")),
		ExchangeIDs: ids}
	for _, k := range keys {
		err.Fields = append(err.Fields, FieldError{Pointer: "/attributes/" + k, Reason: "is shared by an active exchange and cannot be removed"})
	}
	return err
}
