package domain

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// ContractStatus is where a contract version is in its life.
type ContractStatus string

const (
	ContractDraft     ContractStatus = "draft"
	ContractPublished ContractStatus = "published"
	ContractRetired   ContractStatus = "retired"
)

// Item asks for one category, for one purpose, for the named recipients.
type Item struct {
	Category   string
	Purpose    string
	Recipients []string
}

// Reward is what the member gets. MaxPeriods 0 means no cap; a zero Period
// means the contract pays only the join bonus.
type Reward struct {
	JoinBonus       int64
	Vesting         Duration
	PointsPerPeriod int64
	Period          Duration
	MaxPeriods      int
}

// Terms are everything a member agrees to. Duration nil means the consent
// lasts until the member cancels it.
type Terms struct {
	Title     string
	Summary   string
	Items     []Item
	Retention Duration
	Duration  *Duration
	// RenewalNotice is how long before expiry the member is reminded and
	// may renew; nil means DefaultRenewalNotice. Only with a Duration.
	RenewalNotice *Duration
	Reward        Reward
	// MinAge is the youngest age the contract accepts; 0 means the contract
	// sets none (the floor of MinAgeFloor still applies to third-party and
	// advertising sharing, see AgeRequirement).
	MinAge int
	// Value is the brand's estimate of what the data is worth, with the
	// §7081 method (ValueMethods) and the inputs in words. Drafts may lack
	// them; Publish requires all three. nil/"" in terms published before
	// they existed.
	Value            *ValueEstimate
	ValueMethod      string
	ValueExplanation string
	// PointsExpireAfter, when set, is how long after it is credited a point
	// this contract pays expires: no longer than the programme's setting
	// (ContractPolicy.PointsExpireAfter) when that is set. nil: the
	// programme's setting applies.
	PointsExpireAfter *Duration
	// Programme is the programme identity the version was published under,
	// frozen into its terms (nil in drafts and in versions published before
	// programme identities existed).
	Programme *Programme
}

// Limits that keep a contract meaningful to a member.
const (
	MaxItems      = 50
	MaxRecipients = 20
	MaxPeriodsCap = 100_000
	MaxMinAge     = 120
)

// MaxPoints caps a contract's points; int64 like every points amount.
const MaxPoints int64 = 1_000_000

// ContractPolicy validates terms against the catalogue and the deployment's
// shortest allowed reward period.
type ContractPolicy struct {
	Catalog   Catalog
	MinPeriod time.Duration
	// PointsExpireAfter is the programme's points expiry
	// (QUID_POINTS_EXPIRE_AFTER); zero: points never expire.
	PointsExpireAfter Duration
	// StatsMinCount is k of the k-anonymous contract statistics
	// (QUID_STATS_MIN_COUNT, at least MinStatsMinCount); zero:
	// DefaultStatsMinCount.
	StatsMinCount int64
}

// ValidateTerms reports every problem of t at once. recipientExists tells
// whether a recipient id is registered.
func (p ContractPolicy) ValidateTerms(t Terms, recipientExists func(string) bool) error {
	var v Violations
	if s := strings.TrimSpace(t.Title); s == "" || utf8.RuneCountInString(s) > 200 {
		v.Add("/title", "must be 1 to 200 characters")
	}
	if utf8.RuneCountInString(t.Summary) > 2000 {
		v.Add("/summary", "must be at most 2000 characters")
	}
	// Text a member reads and the terms hash pins shows what it says.
	if hidesLine(t.Title) {
		v.Add("/title", "must be one line without control characters, invisible characters or bidirectional overrides")
	}
	for ptr, s := range map[string]string{"/summary": t.Summary, "/value_explanation": t.ValueExplanation} {
		if hidesText(s) {
			v.Add(ptr, "must not hold control characters, invisible characters or bidirectional overrides")
		}
	}
	if len(t.Items) == 0 {
		v.Add("/items", "must ask for at least one data item")
	}
	if len(t.Items) > MaxItems {
		v.Add("/items", fmt.Sprintf("must hold at most %d items", MaxItems))
	}
	seen := map[string]int{}
	for i, it := range t.Items {
		at := fmt.Sprintf("/items/%d", i)
		if _, ok := p.Catalog.Category(it.Category); !ok {
			v.Add(at+"/category", fmt.Sprintf("%q is not a category of the catalogue", it.Category))
		}
		if _, ok := p.Catalog.Purpose(it.Purpose); !ok {
			v.Add(at+"/purpose", fmt.Sprintf("%q is not a purpose of the catalogue", it.Purpose))
		}
		key := it.Category + "|" + it.Purpose
		if first, dup := seen[key]; dup {
			v.Add(at, fmt.Sprintf("repeats item %d (same category and purpose); list its recipients once", first))
		} else {
			seen[key] = i
		}
		if len(it.Recipients) == 0 || len(it.Recipients) > MaxRecipients {
			v.Add(at+"/recipients", fmt.Sprintf("must name 1 to %d recipients", MaxRecipients))
		}
		rseen := map[string]bool{}
		for j, r := range it.Recipients {
			rat := fmt.Sprintf("%s/recipients/%d", at, j)
			switch {
			case rseen[r]:
				v.Add(rat, "names the same recipient twice")
			case !recipientExists(r):
				v.Add(rat, fmt.Sprintf("%q is not a registered recipient", r))
			}
			rseen[r] = true
		}
	}
	if t.Retention.IsZero() {
		v.Add("/retention", "is required: how long recipients may keep the data after the exchange ends")
	} else if t.Retention.Exceeds(longestTerm) {
		v.Add("/retention", "must be at most 10 years")
	}
	if t.Duration != nil && t.Duration.Exceeds(longestTerm) {
		v.Add("/duration", "must be at most 10 years")
	}
	if t.RenewalNotice != nil && t.Duration == nil {
		v.Add("/renewal_notice", "applies only to a contract with a duration; set duration, or renewal_notice to null")
	} else if t.RenewalNotice != nil && t.RenewalNotice.Exceeds(longestTerm) {
		v.Add("/renewal_notice", "must be at most 10 years")
	} else if t.RenewalNotice != nil && t.RenewalNotice.Longest() >= t.Duration.Shortest() {
		// A notice as long as the duration would open the renewal window
		// again right after a renewal: renewals would stack. Compared at
		// the notice's longest and the duration's shortest (P1M notice,
		// P30D duration), so it holds in every month.
		v.Add("/renewal_notice", fmt.Sprintf("must be shorter than the duration (%s) in every month; set a shorter notice, or null for the default (%s)",
			t.Duration, DefaultNoticeFor(*t.Duration)))
	}
	if e := t.PointsExpireAfter; e != nil {
		switch {
		case e.IsZero():
			v.Add("/points_expire_after", "must be a positive duration, or null for the programme's points expiry")
		case !p.PointsExpireAfter.IsZero() && e.ExceedsAnyMonth(p.PointsExpireAfter):
			v.Add("/points_expire_after", fmt.Sprintf("must be at most the programme's points expiry (%s) from any day a point is credited; a contract may only shorten it", p.PointsExpireAfter))
		case e.Exceeds(longestTerm):
			v.Add("/points_expire_after", "must be at most 10 years")
		}
	}
	r := t.Reward
	if r.JoinBonus < 0 || r.JoinBonus > MaxPoints {
		v.Add("/reward/join_bonus", fmt.Sprintf("must be between 0 and %d", MaxPoints))
	}
	if r.PointsPerPeriod < 0 || r.PointsPerPeriod > MaxPoints {
		v.Add("/reward/points_per_period", fmt.Sprintf("must be between 0 and %d", MaxPoints))
	}
	if r.MaxPeriods < 0 || r.MaxPeriods > MaxPeriodsCap {
		v.Add("/reward/max_periods", fmt.Sprintf("must be between 1 and %d, or null for no cap", MaxPeriodsCap))
	}
	if r.PointsPerPeriod > 0 && r.Period.IsZero() {
		v.Add("/reward/period", "is required when points_per_period is above zero")
	}
	if !r.Period.IsZero() && r.Period.Shortest() < p.MinPeriod {
		v.Add("/reward/period", fmt.Sprintf("must be at least %s", p.MinPeriod))
	} else if r.Period.Exceeds(longestTerm) {
		v.Add("/reward/period", "must be at most 10 years")
	}
	if r.Vesting.Exceeds(longestVesting) {
		v.Add("/reward/vesting", "must be at most 2 years")
	}
	if r.JoinBonus == 0 && r.PointsPerPeriod == 0 {
		v.Add("/reward", "must offer a join bonus or points per period")
	}
	if t.MinAge < 0 || t.MinAge > MaxMinAge {
		v.Add("/min_age", fmt.Sprintf("must be between 1 and %d, or null for none", MaxMinAge))
	}
	if t.ValueMethod != "" && !IsValueMethod(t.ValueMethod) {
		v.Add("/value_method", "must be one of "+strings.Join(ValueMethods, ", ")+" (Cal. Code Regs. tit. 11 §7081(a)(1)-(8))")
	}
	// The bound every string of a body has at the HTTP edge, stated here
	// so that the rule and openapi.yaml say the same.
	if utf8.RuneCountInString(t.ValueExplanation) > 500 {
		v.Add("/value_explanation", "must be at most 500 characters")
	}
	return v.Err()
}

// Contract is one version of an offer in a family of versions.
type Contract struct {
	id          string
	familyID    string
	version     int
	status      ContractStatus
	terms       Terms
	canonical   []byte
	termsHash   string
	createdAt   time.Time
	publishedAt *time.Time
	retiredAt   *time.Time
}

// NewDraft starts version 1 of a new family, or a later version.
func NewDraft(id, familyID string, version int, terms Terms, at time.Time) Contract {
	return Contract{id: id, familyID: familyID, version: version, status: ContractDraft, terms: terms, createdAt: at}
}

// RehydrateContract rebuilds a stored contract; only stores call it.
func RehydrateContract(id, familyID string, version int, status ContractStatus, terms Terms, canonical []byte,
	termsHash string, createdAt time.Time, publishedAt, retiredAt *time.Time) Contract {
	return Contract{id, familyID, version, status, terms, canonical, termsHash, createdAt, publishedAt, retiredAt}
}

func (c Contract) ID() string              { return c.id }
func (c Contract) FamilyID() string        { return c.familyID }
func (c Contract) Version() int            { return c.version }
func (c Contract) Status() ContractStatus  { return c.status }
func (c Contract) Terms() Terms            { return c.terms }
func (c Contract) CanonicalTerms() []byte  { return c.canonical }
func (c Contract) TermsHash() string       { return c.termsHash }
func (c Contract) CreatedAt() time.Time    { return c.createdAt }
func (c Contract) PublishedAt() *time.Time { return c.publishedAt }
func (c Contract) RetiredAt() *time.Time   { return c.retiredAt }
func (c Contract) Joinable() bool          { return c.status == ContractPublished }
func (c Contract) IsDraft() bool           { return c.status == ContractDraft }
func (c Contract) HasPeriodicReward() bool { return c.terms.Reward.PointsPerPeriod > 0 }
func (c Contract) RecipientIDs() []string  { return c.terms.RecipientIDs() }
func (c Contract) ExpiresAt(joined time.Time) *time.Time {
	if c.terms.Duration == nil {
		return nil
	}
	t := c.terms.Duration.AddTo(joined, 1)
	return &t
}

// WithStatus is the same version in another status, for stores that cache
// the frozen terms of a published version and re-read only its status.
func (c Contract) WithStatus(s ContractStatus) Contract {
	c.status = s
	return c
}

// Edit replaces a draft's terms; published terms never change.
func (c *Contract) Edit(terms Terms) error {
	if c.status != ContractDraft {
		return Conflict("contract-not-draft", fmt.Sprintf("version %d is %s; only drafts can be edited, create a new version instead", c.version, c.status))
	}
	c.terms = terms
	return nil
}

// Publish freezes the terms: it fixes their canonical JSON, with the
// recipients' details as they are now and the programme identity in force,
// and the hash of that JSON. A version is published only with a value
// estimate, its method and explanation, in the programme's point currency
// (Cal. Code Regs. tit. 11 §7016(b)(5)), and under a programme identity
// (who answers for the data, GDPR Art. 13(1)(a)).
func (c *Contract) Publish(recipients map[string]Recipient, programme *Programme, at time.Time) error {
	if c.status != ContractDraft {
		return Conflict("contract-not-draft", fmt.Sprintf("version %d is already %s", c.version, c.status))
	}
	var v Violations
	if programme == nil {
		v.Add("/programme", "no programme identity is set: an admin sets it with PUT /v1/programme before a contract can be published")
	}
	if c.terms.Value == nil {
		v.Add("/value_estimate", "is required to publish: a good-faith estimate of what the member's data is worth, such as {\"amount\": \"4.80\", \"currency\": \"EUR\", \"per\": \"P1Y\"}")
	} else if programme != nil && c.terms.Value.Currency != programme.PointValue.Currency {
		v.Add("/value_estimate/currency", fmt.Sprintf("must be %s, the currency the programme values its points in", programme.PointValue.Currency))
	}
	if c.terms.ValueMethod == "" {
		v.Add("/value_method", "is required to publish: one of "+strings.Join(ValueMethods, ", "))
	}
	if strings.TrimSpace(c.terms.ValueExplanation) == "" {
		v.Add("/value_explanation", "is required to publish: the inputs of the estimate, in words")
	}
	if err := v.Err(); err != nil {
		return err
	}
	frozen := *programme
	frozen.Jurisdictions = append([]string(nil), programme.Jurisdictions...)
	c.terms.Programme = &frozen
	if c.terms.Duration != nil && c.terms.RenewalNotice == nil {
		// The notice that applies is written into the published terms, as
		// it is into their canonical form: a later change to the default
		// (Terms.Notice) never changes what this version promised.
		n := c.terms.Notice()
		c.terms.RenewalNotice = &n
	}
	canonical, err := CanonicalTerms(c.terms, recipients)
	if err != nil {
		return err
	}
	c.canonical = canonical
	c.termsHash = TermsHash(canonical)
	c.status = ContractPublished
	c.publishedAt = &at
	return nil
}

// Retire closes a published version to new joins; members already on it
// keep their exchange unless the marketer also terminates it.
func (c *Contract) Retire(at time.Time) error {
	if c.status != ContractPublished {
		return Conflict("contract-not-published", fmt.Sprintf("version %d is %s; only a published version can be retired", c.version, c.status))
	}
	c.status = ContractRetired
	c.retiredAt = &at
	return nil
}

// NextVersion drafts version n+1 with the same terms, ready to be edited.
func (c Contract) NextVersion(id string, at time.Time) (Contract, error) {
	if c.status == ContractDraft {
		return Contract{}, Conflict("contract-not-published", "a draft cannot be versioned; edit it instead")
	}
	t := c.terms.clone()
	t.Programme = nil // the next version is published under the identity of its day
	if t.RenewalNotice != nil && t.Duration != nil &&
		(*t.RenewalNotice == DefaultNoticeFor(*t.Duration) || t.RenewalNotice.Longest() >= t.Duration.Shortest()) {
		// The notice published as the default (Publish writes it in) stays
		// the default in the draft, so it follows an edited duration; one
		// a version published before notices had to be shorter than the
		// duration cannot be published again and takes the default.
		t.RenewalNotice = nil
	}
	return NewDraft(id, c.familyID, c.version+1, t, at), nil
}

// DeleteBy is when recipients must have deleted what they received under
// these terms, for consent that ended at ended: the end plus the retention.
// Deletion duties written in SQL (infra/postgres notifyEnded: e.ended_at +
// c.retention) follow the same rule; a parity test pins the two together.
func (t Terms) DeleteBy(ended time.Time) time.Time { return t.Retention.AddTo(ended, 1) }

func (t Terms) clone() Terms {
	out := t
	out.Items = make([]Item, len(t.Items))
	for i, it := range t.Items {
		out.Items[i] = Item{Category: it.Category, Purpose: it.Purpose, Recipients: append([]string(nil), it.Recipients...)}
	}
	if t.Duration != nil {
		d := *t.Duration
		out.Duration = &d
	}
	if t.RenewalNotice != nil {
		d := *t.RenewalNotice
		out.RenewalNotice = &d
	}
	if t.Value != nil {
		e := *t.Value
		out.Value = &e
	}
	if t.PointsExpireAfter != nil {
		d := *t.PointsExpireAfter
		out.PointsExpireAfter = &d
	}
	if t.Programme != nil {
		p := *t.Programme
		p.Jurisdictions = append([]string(nil), p.Jurisdictions...)
		out.Programme = &p
	}
	return out
}

// RecipientIDs lists each recipient named by any item, once, sorted.
func (t Terms) RecipientIDs() []string {
	set := map[string]bool{}
	for _, it := range t.Items {
		for _, r := range it.Recipients {
			set[r] = true
		}
	}
	return sortedKeys(set)
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CanonicalTerms renders terms as RFC 8785 canonical JSON: object keys sorted,
// no insignificant whitespace, items sorted by category then purpose,
// recipients sorted by id. Terms hold only strings, integers and null, so
// sorted keys and minimal string escaping are all the canonical form needs.
func CanonicalTerms(t Terms, recipients map[string]Recipient) ([]byte, error) {
	items := make([]any, 0, len(t.Items))
	sortedItems := append([]Item(nil), t.Items...)
	sort.Slice(sortedItems, func(i, j int) bool {
		if sortedItems[i].Category != sortedItems[j].Category {
			return sortedItems[i].Category < sortedItems[j].Category
		}
		return sortedItems[i].Purpose < sortedItems[j].Purpose
	})
	for _, it := range sortedItems {
		ids := append([]string(nil), it.Recipients...)
		sort.Strings(ids)
		rs := make([]any, 0, len(ids))
		for _, id := range ids {
			r, ok := recipients[id]
			if !ok {
				return nil, fmt.Errorf("canonical terms: recipient %s unknown", id)
			}
			rs = append(rs, map[string]any{"id": r.ID, "name": r.Name, "kind": string(r.Kind),
				"country": r.Country, "privacy_policy_url": r.PrivacyPolicyURL})
		}
		items = append(items, map[string]any{"category": it.Category, "purpose": it.Purpose, "recipients": rs})
	}
	optional := func(d Duration) any {
		if d.IsZero() {
			return nil
		}
		return d.String()
	}
	var duration any
	if t.Duration != nil {
		duration = t.Duration.String()
	}
	var maxPeriods any
	if t.Reward.MaxPeriods > 0 {
		maxPeriods = t.Reward.MaxPeriods
	}
	doc := map[string]any{
		"title": t.Title, "summary": t.Summary, "items": items,
		"retention": t.Retention.String(), "duration": duration,
		"reward": map[string]any{
			"join_bonus": t.Reward.JoinBonus, "vesting": optional(t.Reward.Vesting),
			"points_per_period": t.Reward.PointsPerPeriod, "period": optional(t.Reward.Period),
			"max_periods": maxPeriods,
		},
	}
	// min_age is written only when set, so the canonical form (and hash)
	// of terms published before min_age existed is unchanged.
	if t.MinAge > 0 {
		doc["min_age"] = t.MinAge
	}
	if t.Duration != nil {
		// The notice that applies is part of the terms (the default too).
		doc["renewal_notice"] = t.Notice().String()
	}
	// The value estimate and the programme identity are written only when
	// set, like min_age: terms published before they existed keep their
	// canonical form and hash. The programme's fields, version included,
	// are in the hash, so the hash pins who answers for the data and what
	// a point is worth.
	if t.Value != nil {
		doc["value_estimate"] = map[string]any{"amount": t.Value.Amount, "currency": t.Value.Currency, "per": t.Value.Per.String()}
	}
	// Written only when set, like min_age, so terms published before it
	// existed keep their hash; set, it is in the hash.
	if t.PointsExpireAfter != nil {
		doc["points_expire_after"] = t.PointsExpireAfter.String()
	}
	if t.ValueMethod != "" {
		doc["value_method"] = t.ValueMethod
	}
	if t.ValueExplanation != "" {
		doc["value_explanation"] = t.ValueExplanation
	}
	if t.Programme != nil {
		doc["programme"] = t.Programme.canonical()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	// encoding/json escapes U+2028 and U+2029; RFC 8785 writes them as is.
	out = bytes.ReplaceAll(out, []byte(`\u2028`), []byte("\u2028"))
	out = bytes.ReplaceAll(out, []byte(`\u2029`), []byte("\u2029"))
	return out, nil
}

// TermsHash is "sha256:" and the hex SHA-256 of the canonical terms.
func TermsHash(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return "sha256:" + hex.EncodeToString(sum[:])
}
