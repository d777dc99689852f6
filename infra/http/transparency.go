package http

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

type stmtCategory struct {
	Key         string `json:"key"`
	Label       string `json:"label"`
	Description string `json:"description"`
	Example     string `json:"example"`
	// ExamplePlain is the example as a person reads it: a list as words
	// separated by commas, an address on one line, a date spelled out.
	ExamplePlain  string  `json:"example_plain"`
	Sensitive     bool    `json:"sensitive"`
	Derived       bool    `json:"derived"`
	Reveals       *string `json:"reveals,omitempty"`
	DoesNotReveal *string `json:"does_not_reveal,omitempty"`
}

type stmtPurpose struct {
	Key                 string   `json:"key"`
	Label               string   `json:"label"`
	Description         string   `json:"description"`
	Advertising         bool     `json:"advertising"`
	DirectMarketing     bool     `json:"direct_marketing"`
	AutomatedProcessing []string `json:"automated_processing"`
	// Rights says in plain words what the member may do about this
	// purpose: object to direct marketing at any time (GDPR Art. 21(2)),
	// and what profiling or automated decisions it involves (Art. 22).
	Rights []string `json:"rights"`
}

// stmtAgeRule is who may join: MinAge is the youngest age accepted (null
// when none applies), Plain the rule in words.
type stmtAgeRule struct {
	MinAge *int   `json:"min_age"`
	Plain  string `json:"plain"`
}

func purposeRights(p domain.Purpose) []string {
	out := []string{}
	if p.DirectMarketing {
		out = append(out, "This is direct marketing: you may object to it at any time, free of charge, and it then stops.")
	}
	profiling, automated := false, false
	for _, term := range p.AutomatedProcessing {
		profiling = profiling || term == domain.DPVProfiling
		automated = automated || term == domain.DPVAutomatedDecisionMaking
	}
	if profiling {
		out = append(out, "Your data is used for profiling: a computer analyses it to predict your interests or behaviour.")
	}
	if automated {
		out = append(out, "Decisions about you are made automatically, without a person looking at them; you may ask for a person to review a decision, give your view and contest it.")
	}
	return out
}

func ageRuleOf(c domain.Catalog, t domain.Terms, recipients map[string]domain.Recipient) stmtAgeRule {
	age := c.AgeRequirement(t, recipients)
	if age == 0 {
		return stmtAgeRule{Plain: "No minimum age."}
	}
	r := stmtAgeRule{MinAge: &age, Plain: fmt.Sprintf("Open only to members aged %d or older: your date of birth must be in your profile, and is checked when you join.", age)}
	if c.ProtectsChildren(t, recipients) {
		r.Plain += fmt.Sprintf(" Nobody under %d may share data with another company, for advertising, marketing or profiling, or share sensitive data.", domain.MinAgeFloor)
	}
	return r
}

type stmtRecipient struct {
	ID               string `json:"id"`
	Name             string `json:"name"`
	Kind             string `json:"kind"`
	Country          string `json:"country"`
	CountryName      string `json:"country_name"`
	PrivacyPolicyURL string `json:"privacy_policy_url"`
}

type stmtItem struct {
	Category   stmtCategory    `json:"category"`
	Purpose    stmtPurpose     `json:"purpose"`
	Recipients []stmtRecipient `json:"recipients"`
}

type stmtReceives struct {
	Category string `json:"category"`
	Label    string `json:"label"`
	Purpose  string `json:"purpose"`
	// PurposeLabel is the purpose's catalogue label, the words a member reads.
	PurposeLabel string `json:"purpose_label"`
}

type stmtRecipientSummary struct {
	stmtRecipient
	Receives []stmtReceives `json:"receives"`
}

// stmtReward is the contract's reward with what it adds up to.
type stmtReward struct {
	rewardDTO
	MaxTotalPoints *int64 `json:"max_total_points"`
	Plain          string `json:"plain"`
	// PointsExpireAfter is the contract's own, shorter points expiry (null:
	// the programme's applies), PointsExpiryPlain it in words ("" then).
	PointsExpireAfter *string `json:"points_expire_after"`
	PointsExpiryPlain string  `json:"points_expiry_plain"`
}

type stmtFieldChange struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

type stmtChanges struct {
	PreviousVersion   int      `json:"previous_version"`
	CategoriesAdded   []string `json:"categories_added"`
	CategoriesRemoved []string `json:"categories_removed"`
	PurposesAdded     []string `json:"purposes_added"`
	PurposesRemoved   []string `json:"purposes_removed"`
	// The same, as catalogue labels.
	CategoriesAddedLabels   []string          `json:"categories_added_labels"`
	CategoriesRemovedLabels []string          `json:"categories_removed_labels"`
	PurposesAddedLabels     []string          `json:"purposes_added_labels"`
	PurposesRemovedLabels   []string          `json:"purposes_removed_labels"`
	RecipientsAdded         []string          `json:"recipients_added"`
	RecipientsRemoved       []string          `json:"recipients_removed"`
	Reward                  []stmtFieldChange `json:"reward"`
	Durations               []stmtFieldChange `json:"durations"`
	Wording                 []stmtFieldChange `json:"wording"`
	Eligibility             []stmtFieldChange `json:"eligibility"`
	Material                bool              `json:"material"`
	MaterialReasons         []string          `json:"material_reasons"`
}

type statementDTO struct {
	ContractID           string                 `json:"contract_id"`
	FamilyID             string                 `json:"family_id"`
	Version              int                    `json:"version"`
	Status               string                 `json:"status"`
	Title                string                 `json:"title"`
	Summary              string                 `json:"summary"`
	Items                []stmtItem             `json:"items"`
	Recipients           []stmtRecipientSummary `json:"recipients"`
	Retention            string                 `json:"retention"`
	RetentionPlain       string                 `json:"retention_plain"`
	Duration             *string                `json:"duration"`
	DurationPlain        string                 `json:"duration_plain"`
	Reward               stmtReward             `json:"reward"`
	RewardValue          *rewardValueDTO        `json:"reward_value"`
	ValueEstimate        *valueEstimateDTO      `json:"value_estimate"`
	ValueMethod          *string                `json:"value_method"`
	ValueExplanation     *string                `json:"value_explanation"`
	AgeRule              stmtAgeRule            `json:"age_rule"`
	OnCancellation       string                 `json:"on_cancellation"`
	Rights               []stmtRight            `json:"rights"`
	TermsHash            *string                `json:"terms_hash"`
	Terms                json.RawMessage        `json:"terms"`
	PublishedAt          *string                `json:"published_at"`
	ChangesSincePrevious *stmtChanges           `json:"changes_since_previous"`

	// PublishedOn is PublishedAt as a person reads it (UTC): "30 November 2026".
	PublishedOn *string `json:"published_on"`
	// Controller is who answers for the data (GDPR Art. 13(1)(a)-(b),
	// 13(2)(d)); null while no programme identity was ever set.
	Controller *stmtController `json:"controller"`
	LegalBasis stmtLegalBasis  `json:"legal_basis"`
	// ValueMethodLabel is value_method in words (Cal. Code Regs. tit. 11
	// §7081(a)); ValuePlain sets the estimate beside the reward in money.
	ValueMethodLabel *string `json:"value_method_label"`
	ValuePlain       *string `json:"value_plain"`
	RewardValuePlain *string `json:"reward_value_plain"`
	// NoticeURL is the Notice of Financial Incentive of a published version
	// (null for a draft).
	NoticeURL *string `json:"notice_url"`
	// FingerprintPlain says in one sentence what terms_hash is and how to
	// check it.
	FingerprintPlain *string `json:"fingerprint_plain"`
}

// stmtController is the programme identity the statement names.
type stmtController struct {
	ProgrammeVersion     int           `json:"programme_version"`
	LegalName            string        `json:"legal_name"`
	Address              string        `json:"address"`
	ContactEmail         string        `json:"contact_email"`
	DPOContact           string        `json:"dpo_contact"`
	SupervisoryAuthority stmtAuthority `json:"supervisory_authority"`
	Plain                string        `json:"plain"`
}

type stmtAuthority struct {
	Name         string `json:"name"`
	ComplaintURL string `json:"complaint_url"`
}

// stmtLegalBasis is why the processing is lawful: consent (GDPR Art.
// 6(1)(a)), and explicit consent (Art. 9(2)(a)) when a shared category is
// sensitive (a special category of Art. 9(1)).
type stmtLegalBasis struct {
	Basis           string   `json:"basis"`
	Articles        []string `json:"articles"`
	ExplicitConsent bool     `json:"explicit_consent"`
	Plain           string   `json:"plain"`
}

// stmtRight is one right the member holds over the data this contract
// shares: its GDPR article (or rule), what it means in plain words, and the
// call that exercises it.
type stmtRight struct {
	Key   string `json:"key"`
	Basis string `json:"basis"`
	Plain string `json:"plain"`
	Call  string `json:"call"`
}

// memberRights are the rights every statement lists, in the order a member
// meets them: the same for every contract, since every contract is consent.
var memberRights = []stmtRight{
	{"withdraw", "GDPR Art. 7(3)", "You can cancel this exchange at any time, in as many steps as it took to join; what follows is under \"If you cancel\".", "DELETE /v1/me/exchanges/{id}"},
	{"access", "GDPR Art. 15", "You can see everything held about you: your profile, your exchanges with their receipts, your points, and every read of your data.", "GET /v1/me, GET /v1/me/transparency, GET /v1/me/access-log"},
	{"recipients", "GDPR Art. 15(1)(c), 19", "You can see every company that ever received your data, what it got, for what, until when, how often it read it, and whether it confirmed deleting it.", "GET /v1/me/recipients"},
	{"rectification", "GDPR Art. 16, 19", "You can correct your data at any time; every company that receives it is told which data changed (never the values).", "PUT /v1/me"},
	{"erasure", "GDPR Art. 17", "You can erase your account: your data is deleted and every recipient must delete it too. The consent log and points history are kept with nothing that identifies you, and a keyed hash remains so that a join bonus already paid is not paid again if you come back.", "DELETE /v1/me"},
	{"restriction", "GDPR Art. 18", "You can restrict the use of your data: it is kept, but no company may read it and you earn no points while the restriction lasts.", "PUT /v1/me/restriction"},
	{"portability", "GDPR Art. 20", "You can download everything held about you in one file.", "GET /v1/me/export"},
	{"objection", "GDPR Art. 21", "You can object to a purpose: every exchange that uses it ends, and you cannot be asked to join one until you lift the objection. You may object to direct marketing at any time, for any reason.", "POST /v1/me/objections"},
	{"automated_decisions", "GDPR Art. 22", "Where a purpose above involves automated decisions, you may ask for a person to review a decision, give your view and contest it.", "POST /v1/me/objections"},
	{"global_privacy_control", "Cal. Code Regs. tit. 11 §7025", "If your browser or device sends the Global Privacy Control signal, joining or renewing an exchange that shares your data with another company or uses it for advertising needs your explicit confirmation.", "Sec-GPC: 1"},
	{"renewal", "Renewal only when you ask (a rule of this programme)", "Consent with an end date does not renew by itself: you are reminded before it ends and renew it yourself, on the same terms.", "POST /v1/me/exchanges/{id}/renew"},
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func fieldChanges(fcs []domain.FieldChange) []stmtFieldChange {
	out := []stmtFieldChange{}
	for _, f := range fcs {
		out = append(out, stmtFieldChange(f))
	}
	return out
}

func statementOf(st app.Statement) statementDTO {
	c := st.Contract
	t := c.Terms()
	in := app.InputOf(t)
	d := statementDTO{ContractID: c.ID(), FamilyID: c.FamilyID(), Version: c.Version(), Status: string(c.Status()),
		Title: t.Title, Summary: t.Summary, Retention: t.Retention.String(), Duration: in.Duration,
		PublishedAt: optTime(c.PublishedAt()), Items: []stmtItem{}, Recipients: []stmtRecipientSummary{}}
	d.RetentionPlain = "Recipients must delete your data within " + plainDuration(t.Retention) + " after the exchange ends."
	d.DurationPlain = "Your consent lasts until you cancel it."
	if t.Duration != nil {
		d.DurationPlain = "Your consent lasts " + plainDuration(*t.Duration) + " from when you join, unless you cancel it sooner. "
		if t.Notice().IsZero() {
			// Too short to have a renewal window (under two seconds).
			d.DurationPlain += "It does not renew: join again to consent anew."
		} else {
			d.DurationPlain += "It does not renew by itself: from " + plainDuration(t.Notice()) + " before it ends you are reminded and may renew it " +
				"for another " + plainDuration(*t.Duration) + " on the same terms, with a new receipt."
		}
	}
	if h := c.TermsHash(); h != "" {
		d.TermsHash = &h
		d.Terms = json.RawMessage(c.CanonicalTerms())
	}
	byRecipient := map[string]*stmtRecipientSummary{}
	for _, it := range t.Items {
		cat, _ := st.Catalog.Category(it.Category)
		pur, _ := st.Catalog.Purpose(it.Purpose)
		sc := stmtCategory{Key: cat.Key, Label: cat.Label, Description: cat.Description, Example: cat.Example,
			ExamplePlain: examplePlain(cat), Sensitive: cat.Sensitive, Derived: cat.Derived != nil}
		if cat.Derived != nil {
			sc.Reveals, sc.DoesNotReveal = &cat.Derived.Reveals, &cat.Derived.DoesNotReveal
		}
		item := stmtItem{Category: sc, Purpose: stmtPurpose{pur.Key, pur.Label, pur.Description, pur.Advertising, pur.DirectMarketing,
			nonNil(pur.AutomatedProcessing), purposeRights(pur)}}
		for _, rid := range it.Recipients {
			r := st.Recipients[rid]
			sr := stmtRecipient{r.ID, r.Name, string(r.Kind), r.Country, countryName(r.Country), r.PrivacyPolicyURL}
			item.Recipients = append(item.Recipients, sr)
			sum, ok := byRecipient[rid]
			if !ok {
				sum = &stmtRecipientSummary{stmtRecipient: sr}
				byRecipient[rid] = sum
			}
			sum.Receives = append(sum.Receives, stmtReceives{cat.Key, cat.Label, pur.Key, pur.Label})
		}
		d.Items = append(d.Items, item)
	}
	for _, sum := range byRecipient {
		d.Recipients = append(d.Recipients, *sum)
	}
	sort.Slice(d.Recipients, func(i, j int) bool { return d.Recipients[i].Name < d.Recipients[j].Name })

	r := t.Reward
	d.Reward = stmtReward{rewardDTO: rewardDTO(in.Reward)}
	if r.MaxPeriods > 0 {
		total := r.JoinBonus + r.PointsPerPeriod*int64(r.MaxPeriods)
		d.Reward.MaxTotalPoints = &total
	}
	d.Reward.Plain = plainReward(r)
	if e := t.PointsExpireAfter; e != nil {
		s := e.String()
		d.Reward.PointsExpireAfter = &s
		d.Reward.PointsExpiryPlain = "Points from this contract expire " + plainDuration(*e) + " after they are credited, unless you spend them first."
	} else if e := st.ProgrammePointsExpiry; !e.IsZero() {
		d.Reward.PointsExpiryPlain = "Points expire " + plainDuration(e) + " after they are credited (the programme's rule), unless you spend them first."
	}
	if st.RewardValue != nil {
		d.RewardValue = rewardValueOf(*st.RewardValue, true)
	}
	if e := in.ValueEstimate; e != nil {
		d.ValueEstimate = &valueEstimateDTO{Amount: e.Amount, Currency: e.Currency, Per: e.Per}
	}
	d.ValueMethod, d.ValueExplanation = in.ValueMethod, in.ValueExplanation
	d.AgeRule = ageRuleOf(st.Catalog, t, st.Recipients)
	d.Rights = append([]stmtRight(nil), memberRights...)
	if p := st.Programme; p != nil {
		d.Controller = controllerOf(*p)
		d.Rights = append(d.Rights, stmtRight{"complaint", "GDPR Art. 77",
			"You can complain to " + p.AuthorityName + ", the supervisory authority, if you think your data is handled unlawfully. You may first write to " +
				p.LegalName + " at " + p.ContactEmail + ".", p.ComplaintURL})
	}
	d.LegalBasis = legalBasisOf(st.Catalog, t)
	if in.ValueMethod != nil {
		label := valueMethodLabel(*in.ValueMethod)
		d.ValueMethodLabel = &label
	}
	d.RewardValuePlain, d.ValuePlain = valuePlain(t, st.RewardValue)
	if !c.IsDraft() {
		u := "/v1/contracts/" + c.ID() + "/notice"
		d.NoticeURL = &u
	}
	if at := c.PublishedAt(); at != nil {
		on := humanDate(*at)
		d.PublishedOn = &on
	}
	if d.TermsHash != nil {
		f := fingerprintPlain
		d.FingerprintPlain = &f
	}
	d.OnCancellation = "You can cancel at any time, as easily as you joined. Points stop at once: no period that ends after you cancel is paid"
	if r.JoinBonus > 0 {
		d.OnCancellation += fmt.Sprintf(", and a join bonus that has not vested yet (%d points) is voided", r.JoinBonus)
	}
	d.OnCancellation += ". Points you already earned stay yours. Every recipient must delete your data within " +
		plainDuration(t.Retention) + " and confirm it; you can see each confirmation."

	if ch := st.Changes; ch != nil {
		d.ChangesSincePrevious = &stmtChanges{PreviousVersion: ch.PreviousVersion,
			CategoriesAdded: nonNil(ch.CategoriesAdded), CategoriesRemoved: nonNil(ch.CategoriesRemoved),
			PurposesAdded: nonNil(ch.PurposesAdded), PurposesRemoved: nonNil(ch.PurposesRemoved),
			RecipientsAdded: nonNil(names(ch.RecipientsAdded, st)), RecipientsRemoved: nonNil(names(ch.RecipientsRemoved, st)),
			Reward: fieldChanges(ch.Reward), Durations: fieldChanges(ch.Durations), Wording: fieldChanges(ch.Wording),
			Eligibility: fieldChanges(ch.Eligibility), Material: ch.Material, MaterialReasons: append([]string{}, ch.MaterialReasons...),
			CategoriesAddedLabels: categoryLabels(st.Catalog, ch.CategoriesAdded), CategoriesRemovedLabels: categoryLabels(st.Catalog, ch.CategoriesRemoved),
			PurposesAddedLabels: purposeLabels(st.Catalog, ch.PurposesAdded), PurposesRemovedLabels: purposeLabels(st.Catalog, ch.PurposesRemoved)}
		// The reasons name what was added by key (domain.CompareTerms): a
		// member reads the label.
		for i, r := range d.ChangesSincePrevious.MaterialReasons {
			if k, ok := strings.CutPrefix(r, "adds category "); ok {
				d.ChangesSincePrevious.MaterialReasons[i] = "adds " + categoryLabels(st.Catalog, []string{k})[0]
			} else if k, ok := strings.CutPrefix(r, "adds purpose "); ok {
				d.ChangesSincePrevious.MaterialReasons[i] = "adds the purpose " + purposeLabels(st.Catalog, []string{k})[0]
			}
		}
	}
	return d
}

// names shows recipients, added or dropped, by name.
func names(ids []string, st app.Statement) []string {
	var out []string
	for _, id := range ids {
		r, ok := st.Recipients[id]
		if !ok {
			r, ok = st.Dropped[id]
		}
		if !ok {
			r.Name = id // not in the registry: never expected, but never blank
		}
		out = append(out, r.Name)
	}
	return out
}

func plainDuration(d domain.Duration) string {
	var parts []string
	add := func(n int, unit string) {
		if n == 1 {
			parts = append(parts, "1 "+unit)
		} else if n > 1 {
			parts = append(parts, fmt.Sprintf("%d %ss", n, unit))
		}
	}
	add(d.Years, "year")
	add(d.Months, "month")
	add(d.Weeks, "week")
	add(d.Days, "day")
	add(d.Hours, "hour")
	add(d.Minutes, "minute")
	add(d.Seconds, "second")
	if len(parts) == 0 {
		return "no time"
	}
	return strings.Join(parts, " ")
}

func plainReward(r domain.Reward) string {
	var parts []string
	if r.JoinBonus > 0 {
		s := fmt.Sprintf("%d points when you join", r.JoinBonus)
		if !r.Vesting.IsZero() {
			s += fmt.Sprintf(" (yours after %s of active consent)", plainDuration(r.Vesting))
		}
		parts = append(parts, s)
	}
	if r.PointsPerPeriod > 0 {
		s := fmt.Sprintf("%d points for every full %s your consent stays active", r.PointsPerPeriod, plainDuration(r.Period))
		if r.MaxPeriods > 0 {
			s += fmt.Sprintf(", for at most %d periods", r.MaxPeriods)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", and ") + "."
}

//go:embed transparency.html
var statementHTML string

var statementTemplate = template.Must(template.New("statement").Funcs(plainTemplateFuncs).Parse(statementHTML))

func (h *handlers) transparency(c *fiber.Ctx) error {
	id, err := idParam(c, domain.ErrContractNotFound)
	if err != nil {
		return err
	}
	html, ld := wantsHTML(c), wantsLD(c)
	p := optionalPrincipal(c)
	format := map[bool]string{true: "html", false: "json"}[html]
	if ld {
		format = "ld"
	}
	key := "transparency|" + id + "|" + format
	if p != nil {
		key = "" // a marketer may be previewing a draft: never shared
	}
	render := func() (cachedResponse, bool, error) {
		st, err := h.svc.Contracts.Transparency(c.UserContext(), p, id)
		if err != nil {
			return cachedResponse{}, false, err
		}
		dto := statementOf(st)
		// A published statement never changes except for its status (retired),
		// so caches may keep it briefly and then revalidate by ETag.
		r := cachedResponse{cacheControl: "public, max-age=60, must-revalidate", contentType: fiber.MIMEApplicationJSON}
		if st.Contract.IsDraft() {
			r.cacheControl = "private, no-store"
		}
		if ld {
			if r.body, err = jsonMarshal(statementLDOf(st)); err != nil {
				return cachedResponse{}, false, err
			}
			r.contentType = MIMEApplicationLDJSON
		} else if html {
			var buf bytes.Buffer
			if err := statementTemplate.Execute(&buf, dto); err != nil {
				return cachedResponse{}, false, err
			}
			r.body, r.contentType = buf.Bytes(), fiber.MIMETextHTMLCharsetUTF8
		} else if r.body, err = jsonMarshal(dto); err != nil {
			return cachedResponse{}, false, err
		}
		return r, key != "" && !st.Contract.IsDraft(), nil
	}
	if key == "" {
		r, _, err := render()
		if err != nil {
			return err
		}
		return r.send(c)
	}
	return h.cache.serve(c, key, render)
}

// wantsHTML is true when the client prefers text/html over JSON.
func wantsHTML(c *fiber.Ctx) bool {
	return c.Accepts(fiber.MIMEApplicationJSON, fiber.MIMETextHTML, MIMEApplicationLDJSON) == fiber.MIMETextHTML
}
