package domain

import (
	"fmt"
	"strconv"
	"strings"
)

// FieldChange is one value that differs between two versions.
type FieldChange struct {
	Field string
	From  string
	To    string
}

// Grant is one (category, purpose, recipient) permission in a contract.
type Grant struct {
	Category, Purpose, Recipient string
}

// Changes is what a version changes against the previous one. Material is
// true when members on the old version must re-consent to get the new terms.
type Changes struct {
	PreviousVersion   int
	CategoriesAdded   []string
	CategoriesRemoved []string
	PurposesAdded     []string
	PurposesRemoved   []string
	RecipientsAdded   []string
	RecipientsRemoved []string
	GrantsAdded       []Grant
	GrantsRemoved     []Grant
	Reward            []FieldChange
	Durations         []FieldChange
	Wording           []FieldChange
	// Eligibility is who may join: min_age.
	Eligibility     []FieldChange
	Material        bool
	MaterialReasons []string
}

// Grants lists every permission of the terms.
func (t Terms) Grants() []Grant {
	var out []Grant
	for _, it := range t.Items {
		for _, r := range it.Recipients {
			out = append(out, Grant{it.Category, it.Purpose, r})
		}
	}
	return out
}

// CompareTerms says what next changes against prev: every field of the
// terms (a test walks them all, so a field added later cannot be left
// out). A change is material when it adds a category, purpose or
// recipient (or gives an existing recipient data or a purpose it did not
// have), lengthens retention or duration, shortens the renewal notice (the
// member is reminded later) or its points expiry, or raises the minimum age (members on the old
// version may no longer be able to join the new one), or changes who answers
// for the data or cuts what a point is worth (compareProgrammes).
// recipientName labels recipients in the reasons; nil leaves their ids.
func CompareTerms(prevVersion int, prev, next Terms, recipientName func(id string) string) Changes {
	ch := Changes{PreviousVersion: prevVersion}
	sets := func(t Terms) (cats, purs, recs map[string]bool, grants map[Grant]bool) {
		cats, purs, recs, grants = map[string]bool{}, map[string]bool{}, map[string]bool{}, map[Grant]bool{}
		for _, g := range t.Grants() {
			cats[g.Category], purs[g.Purpose], recs[g.Recipient], grants[g] = true, true, true, true
		}
		return
	}
	pc, pp, pr, pg := sets(prev)
	nc, np, nr, ng := sets(next)
	ch.CategoriesAdded, ch.CategoriesRemoved = diffKeys(pc, nc)
	ch.PurposesAdded, ch.PurposesRemoved = diffKeys(pp, np)
	ch.RecipientsAdded, ch.RecipientsRemoved = diffKeys(pr, nr)
	for _, g := range next.Grants() {
		if !pg[g] {
			ch.GrantsAdded = append(ch.GrantsAdded, g)
		}
	}
	for _, g := range prev.Grants() {
		if !ng[g] {
			ch.GrantsRemoved = append(ch.GrantsRemoved, g)
		}
	}
	reason := func(r string) { ch.Material = true; ch.MaterialReasons = append(ch.MaterialReasons, r) }
	for _, c := range ch.CategoriesAdded {
		reason("adds category " + c)
	}
	for _, p := range ch.PurposesAdded {
		reason("adds purpose " + p)
	}
	for _, r := range ch.RecipientsAdded {
		if recipientName != nil {
			r = recipientName(r)
		}
		reason("adds recipient " + r)
	}
	if len(ch.CategoriesAdded) == 0 && len(ch.PurposesAdded) == 0 && len(ch.RecipientsAdded) == 0 && len(ch.GrantsAdded) > 0 {
		reason("shares existing data with a recipient or for a purpose it was not shared with before")
	}

	if prev.Retention != next.Retention {
		ch.Durations = append(ch.Durations, FieldChange{"retention", prev.Retention.String(), next.Retention.String()})
		if next.Retention.Approx() > prev.Retention.Approx() {
			reason("lengthens retention")
		}
	}
	durationText := func(d *Duration) string {
		if d == nil {
			return "until cancelled"
		}
		return d.String()
	}
	if durationText(prev.Duration) != durationText(next.Duration) {
		ch.Durations = append(ch.Durations, FieldChange{"duration", durationText(prev.Duration), durationText(next.Duration)})
		if next.Duration == nil || (prev.Duration != nil && next.Duration.Approx() > prev.Duration.Approx()) {
			reason("lengthens duration")
		}
	}
	// The notice that applies (the default included), as the canonical
	// terms show it; terms without a duration have none.
	noticeText := func(t Terms) string {
		if t.Duration == nil {
			return "none"
		}
		return t.Notice().String()
	}
	if pn, nn := noticeText(prev), noticeText(next); pn != nn {
		ch.Durations = append(ch.Durations, FieldChange{"renewal_notice", pn, nn})
		if prev.Duration != nil && next.Duration != nil && next.Notice().Approx() < prev.Notice().Approx() {
			reason("shortens the renewal notice")
		}
	}
	// A contract's own points expiry: shorter (or newly set, under the
	// programme's) is material, as the member's points expire sooner.
	expiryText := func(d *Duration) string {
		if d == nil {
			return "programme's"
		}
		return d.String()
	}
	if pe, ne := expiryText(prev.PointsExpireAfter), expiryText(next.PointsExpireAfter); pe != ne {
		ch.Durations = append(ch.Durations, FieldChange{"points_expire_after", pe, ne})
		if next.PointsExpireAfter != nil && (prev.PointsExpireAfter == nil || prev.PointsExpireAfter.ExceedsAnyMonth(*next.PointsExpireAfter)) {
			reason("shortens how long its points last before they expire")
		}
	}
	if prev.MinAge != next.MinAge {
		age := func(n int) string {
			if n == 0 {
				return "none"
			}
			return strconv.Itoa(n)
		}
		ch.Eligibility = append(ch.Eligibility, FieldChange{"min_age", age(prev.MinAge), age(next.MinAge)})
		if next.MinAge > prev.MinAge {
			reason("raises the minimum age")
		}
	}
	pw, nw := prev.Reward, next.Reward
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	dur := func(d Duration) string {
		if d.IsZero() {
			return "none"
		}
		return d.String()
	}
	maxp := func(n int) string {
		if n == 0 {
			return "no cap"
		}
		return fmt.Sprint(n)
	}
	for _, fc := range []FieldChange{
		{"join_bonus", num(pw.JoinBonus), num(nw.JoinBonus)},
		{"vesting", dur(pw.Vesting), dur(nw.Vesting)},
		{"points_per_period", num(pw.PointsPerPeriod), num(nw.PointsPerPeriod)},
		{"period", dur(pw.Period), dur(nw.Period)},
		{"max_periods", maxp(pw.MaxPeriods), maxp(nw.MaxPeriods)},
	} {
		if fc.From != fc.To {
			ch.Reward = append(ch.Reward, fc)
		}
	}
	if prev.Title != next.Title {
		ch.Wording = append(ch.Wording, FieldChange{"title", prev.Title, next.Title})
	}
	if prev.Summary != next.Summary {
		ch.Wording = append(ch.Wording, FieldChange{"summary", prev.Summary, next.Summary})
	}
	// What the brand thinks the data is worth is a disclosure: a change
	// shows, and is no material change of what the member gives.
	estimate := func(e *ValueEstimate) string {
		if e == nil {
			return "none"
		}
		return e.Amount + " " + e.Currency + " per " + e.Per.String()
	}
	for _, fc := range []FieldChange{
		{"value_estimate", estimate(prev.Value), estimate(next.Value)},
		{"value_method", prev.ValueMethod, next.ValueMethod},
		{"value_explanation", prev.ValueExplanation, next.ValueExplanation},
	} {
		if fc.From != fc.To {
			ch.Wording = append(ch.Wording, fc)
		}
	}
	compareProgrammes(&ch, prev.Programme, next.Programme, reason)
	return ch
}

// compareProgrammes says what the programme identity frozen into the terms
// changes, by content: a new version number with the same content (an
// identical PUT) changes nothing a member relies on and says only that.
// Consent is given to a controller for its processing (GDPR Art. 4(11),
// 7, 13(1)(a)-(b)): a new controller, data-protection officer or
// supervisory authority is material, as is a cut in what a point is worth
// (or a change of the currency it is valued in, which cannot be compared),
// since the reward the member agreed to is then worth less. A new contact
// address, complaint page or list of jurisdictions shows, and is not.
func compareProgrammes(ch *Changes, prev, next *Programme, reason func(string)) {
	switch {
	case prev == nil && next == nil:
		return
	case prev == nil || next == nil:
		ch.Wording = append(ch.Wording, FieldChange{"programme", programmeText(prev), programmeText(next)})
		return
	}
	changed := false
	wording := func(field, from, to string) bool {
		if from == to {
			return false
		}
		changed = true
		ch.Wording = append(ch.Wording, FieldChange{field, from, to})
		return true
	}
	if wording("controller", prev.LegalName+", "+prev.Address, next.LegalName+", "+next.Address) {
		reason("changes the company responsible for your data (the controller)")
	}
	wording("contact_email", prev.ContactEmail, next.ContactEmail)
	if wording("dpo_contact", prev.DPOContact, next.DPOContact) {
		reason("changes the data-protection officer")
	}
	if prev.AuthorityName != next.AuthorityName {
		reason("changes the supervisory authority")
	}
	wording("supervisory_authority", prev.AuthorityName+" ("+prev.ComplaintURL+")", next.AuthorityName+" ("+next.ComplaintURL+")")
	wording("jurisdictions", strings.Join(prev.Jurisdictions, ", "), strings.Join(next.Jurisdictions, ", "))
	pv, nv := prev.PointValue, next.PointValue
	if pv != nv {
		changed = true
		ch.Reward = append(ch.Reward, FieldChange{"point_value", pv.Amount + " " + pv.Currency, nv.Amount + " " + nv.Currency})
		pa, okp := ParseAmount(pv.Amount)
		na, okn := ParseAmount(nv.Amount)
		switch {
		case pv.Currency != nv.Currency:
			reason("values points in another currency, " + nv.Currency + " instead of " + pv.Currency)
		case !okp || !okn || na.Cmp(pa) < 0:
			reason("lowers what a point is worth")
		}
	}
	if !changed && prev.Version != next.Version {
		ch.Wording = append(ch.Wording, FieldChange{"programme_version", strconv.Itoa(prev.Version), strconv.Itoa(next.Version)})
	}
}

func diffKeys(prev, next map[string]bool) (added, removed []string) {
	for _, k := range sortedKeys(next) {
		if !prev[k] {
			added = append(added, k)
		}
	}
	for _, k := range sortedKeys(prev) {
		if !next[k] {
			removed = append(removed, k)
		}
	}
	return added, removed
}

// programmeText is a programme identity in words, as a change shows it.
func programmeText(p *Programme) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprintf("%s, %s; contact %s; data-protection officer %s; supervisory authority %s (%s); a point is worth %s %s; serves %s",
		p.LegalName, p.Address, p.ContactEmail, p.DPOContact, p.AuthorityName, p.ComplaintURL,
		p.PointValue.Amount, p.PointValue.Currency, strings.Join(p.Jurisdictions, ", "))
}
