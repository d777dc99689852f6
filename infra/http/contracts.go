package http

import (
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

func (h *handlers) contractRoutes(v1 fiber.Router, auth roleGate, optional fiber.Handler) {
	v1.Get("/catalog/categories", h.categories)
	v1.Get("/catalog/purposes", h.purposes)
	v1.Get("/offers", optional, h.offers)
	v1.Get("/programme", h.getProgramme)
	v1.Put("/programme", auth(app.RoleAdmin), h.putProgramme)

	v1.Post("/recipients", auth(app.RoleAdmin), h.createRecipient)
	v1.Get("/recipients", auth(app.RoleAdmin, app.RoleMarketer), h.listRecipients)
	v1.Get("/recipients/:id", auth(app.RoleAdmin, app.RoleMarketer), h.getRecipient)

	v1.Post("/contracts", auth(app.RoleMarketer), h.createContract)
	v1.Get("/contracts", auth(app.RoleMarketer, app.RoleAdmin), h.listContracts)
	v1.Get("/contracts/:id", optional, h.getContract)
	v1.Patch("/contracts/:id", auth(app.RoleMarketer), h.patchContract)
	v1.Post("/contracts/:id/publish", auth(app.RoleMarketer), noBody, h.publishContract)
	v1.Post("/contracts/:id/retire", auth(app.RoleMarketer), h.retireContract)
	v1.Post("/contracts/:id/versions", auth(app.RoleMarketer), noBody, h.newVersion)
	v1.Get("/contracts/:id/stats", auth(app.RoleMarketer, app.RoleAdmin), h.snapshot, h.contractStats)
	v1.Get("/contracts/:id/transparency", optional, h.transparency)
	v1.Get("/contracts/:id/notice", h.notice)
}

type categoryDTO struct {
	Key         string         `json:"key"`
	Group       string         `json:"group"`
	Label       string         `json:"label"`
	Description string         `json:"description"`
	Example     string         `json:"example"`
	Type        string         `json:"type"`
	Sensitive   bool           `json:"sensitive"`
	Fideslang   string         `json:"fideslang"`
	DPV         string         `json:"dpv"`
	Derived     *derivationDTO `json:"derived,omitempty"`
}

type derivationDTO struct {
	From          string `json:"from"`
	Rule          string `json:"rule"`
	Reveals       string `json:"reveals"`
	DoesNotReveal string `json:"does_not_reveal"`
}

func categoryOf(c domain.Category) categoryDTO {
	group, _, _ := cutDot(c.Key)
	d := categoryDTO{Key: c.Key, Group: group, Label: c.Label, Description: c.Description, Example: c.Example,
		Type: string(c.Type), Sensitive: c.Sensitive, Fideslang: c.Fideslang, DPV: c.DPV}
	if c.Derived != nil {
		d.Derived = &derivationDTO{From: c.Derived.From, Rule: c.Derived.Rule, Reveals: c.Derived.Reveals, DoesNotReveal: c.Derived.DoesNotReveal}
	}
	return d
}

func cutDot(key string) (string, string, bool) {
	for i := 0; i < len(key); i++ {
		if key[i] == '.' {
			return key[:i], key[i+1:], true
		}
	}
	return key, "", false
}

type purposeDTO struct {
	Key         string `json:"key"`
	Label       string `json:"label"`
	Description string `json:"description"`
	Fideslang   string `json:"fideslang"`
	DPV         string `json:"dpv"`
	// Advertising purposes carry the age floor and the GPC rule (DESIGN
	// rule 10). DirectMarketing purposes can be objected to at any time
	// (GDPR Art. 21(2)); AutomatedProcessing lists the DPV terms of the
	// profiling or automated decisions a purpose involves (Art. 22).
	Advertising         bool     `json:"advertising"`
	DirectMarketing     bool     `json:"direct_marketing"`
	AutomatedProcessing []string `json:"automated_processing"`
}

func purposeOf(p domain.Purpose) purposeDTO {
	return purposeDTO{p.Key, p.Label, p.Description, p.Fideslang, p.DPV, p.Advertising, p.DirectMarketing, nonNil(p.AutomatedProcessing)}
}

func (h *handlers) categories(c *fiber.Ctx) error {
	out := list[categoryDTO]{Items: []categoryDTO{}}
	for _, cat := range h.svc.Catalog.Categories() {
		out.Items = append(out.Items, categoryOf(cat))
	}
	c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
	return c.JSON(out)
}

func (h *handlers) purposes(c *fiber.Ctx) error {
	out := list[purposeDTO]{Items: []purposeDTO{}}
	for _, p := range h.svc.Catalog.Purposes() {
		out.Items = append(out.Items, purposeOf(p))
	}
	c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
	return c.JSON(out)
}

type itemDTO struct {
	Category   string   `json:"category" validate:"required"`
	Purpose    string   `json:"purpose" validate:"required"`
	Recipients []string `json:"recipients" validate:"required,min=1,dive,required"`
}

type rewardDTO struct {
	JoinBonus       int64   `json:"join_bonus"`
	Vesting         *string `json:"vesting"`
	PointsPerPeriod int64   `json:"points_per_period"`
	Period          *string `json:"period"`
	MaxPeriods      *int    `json:"max_periods"`
}

type contractIn struct {
	Title     string    `json:"title" validate:"required"`
	Summary   string    `json:"summary" validate:"max=2000"`
	Items     []itemDTO `json:"items" validate:"required,dive"`
	Retention string    `json:"retention" validate:"required"`
	Duration  *string   `json:"duration"`
	// RenewalNotice: absent or null takes the default (domain.DefaultNoticeFor).
	RenewalNotice *string    `json:"renewal_notice"`
	Reward        *rewardDTO `json:"reward" validate:"required"`
	MinAge        *int       `json:"min_age"`
	// PointsExpireAfter: absent or null, the programme's points expiry applies.
	PointsExpireAfter *string `json:"points_expire_after"`
	// The value of the data: optional in a draft, required to publish.
	ValueEstimate    *valueEstimateDTO `json:"value_estimate"`
	ValueMethod      *string           `json:"value_method"`
	ValueExplanation *string           `json:"value_explanation"`
}

type valueEstimateDTO struct {
	Amount   string `json:"amount" validate:"required"`
	Currency string `json:"currency" validate:"required"`
	Per      string `json:"per" validate:"required"`
}

func (e *valueEstimateDTO) input() *app.ValueEstimateInput {
	if e == nil {
		return nil
	}
	return &app.ValueEstimateInput{Amount: e.Amount, Currency: e.Currency, Per: e.Per}
}

func (in contractIn) toInput() app.TermsInput {
	t := app.TermsInput{Title: in.Title, Summary: in.Summary, Retention: in.Retention, Duration: in.Duration,
		RenewalNotice: in.RenewalNotice, Reward: app.RewardInput(*in.Reward), MinAge: in.MinAge,
		PointsExpireAfter: in.PointsExpireAfter, ValueEstimate: in.ValueEstimate.input(), ValueMethod: in.ValueMethod, ValueExplanation: in.ValueExplanation}
	for _, it := range in.Items {
		t.Items = append(t.Items, app.ItemInput(it))
	}
	return t
}

// nullable distinguishes an absent field from an explicit null in a PATCH.
// Its fields have no JSON name: an error inside Value points at the
// PATCH field itself (/value_estimate/per, never /value_estimate/Value/per).
type nullable[T any] struct {
	Set   bool `json:"-"`
	Value *T   `json:"-"`
}

// nullableElem tells the body scanner what a non-null value must be, so a
// value of the wrong type is refused at its exact pointer like any other.
func (nullable[T]) nullableElem() reflect.Type { return reflect.TypeFor[T]() }

func (n *nullable[T]) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	n.Value = &v
	return nil
}

type rewardPatch struct {
	JoinBonus       *int64           `json:"join_bonus"`
	Vesting         nullable[string] `json:"vesting"`
	PointsPerPeriod *int64           `json:"points_per_period"`
	Period          nullable[string] `json:"period"`
	MaxPeriods      nullable[int]    `json:"max_periods"`
}

type contractPatch struct {
	Title     *string          `json:"title"`
	Summary   *string          `json:"summary" validate:"omitempty,max=2000"`
	Items     *[]itemDTO       `json:"items" validate:"omitempty,dive"`
	Retention *string          `json:"retention"`
	Duration  nullable[string] `json:"duration"`
	// RenewalNotice: null returns to the default (domain.DefaultNoticeFor).
	RenewalNotice nullable[string] `json:"renewal_notice"`
	Reward        *rewardPatch     `json:"reward"`
	MinAge        nullable[int]    `json:"min_age"`
	// PointsExpireAfter: null returns to the programme's points expiry.
	PointsExpireAfter nullable[string] `json:"points_expire_after"`
	// The value fields: null clears them (a draft may lack them).
	ValueEstimate    nullable[valueEstimateDTO] `json:"value_estimate"`
	ValueMethod      nullable[string]           `json:"value_method"`
	ValueExplanation nullable[string]           `json:"value_explanation"`
}

// notNullable are the PATCH fields a draft cannot be without: null is refused
// for them rather than read as "leave unchanged".
var notNullable = map[string][]string{
	"":        {"title", "summary", "items", "retention", "reward"},
	"/reward": {"join_bonus", "points_per_period"},
}

// explicitNulls finds the fields of an already-decoded PATCH body that are
// null where null means nothing.
func explicitNulls(body []byte) error {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return nil
	}
	objects := map[string]map[string]json.RawMessage{"": top}
	for key, raw := range top {
		if strings.EqualFold(key, "reward") {
			var reward map[string]json.RawMessage
			_ = json.Unmarshal(raw, &reward)
			objects["/reward"] = reward
		}
	}
	he := &httpError{status: fiber.StatusUnprocessableEntity, code: "validation-failed", detail: "the request is not valid"}
	for _, prefix := range []string{"", "/reward"} {
		for _, name := range notNullable[prefix] {
			// encoding/json matches field names regardless of case, so must this.
			for key, raw := range objects[prefix] {
				if strings.EqualFold(key, name) && string(raw) == "null" {
					he.fields = append(he.fields, problemField{Pointer: prefix + "/" + name, Detail: "must not be null"})
					break
				}
			}
		}
	}
	if len(he.fields) == 0 {
		return nil
	}
	return he
}

// apply merges the patch onto the stored terms: present fields replace, an
// explicit null clears an optional field.
func (p contractPatch) apply(t app.TermsInput) app.TermsInput {
	if p.Title != nil {
		t.Title = *p.Title
	}
	if p.Summary != nil {
		t.Summary = *p.Summary
	}
	if p.Items != nil {
		t.Items = nil
		for _, it := range *p.Items {
			t.Items = append(t.Items, app.ItemInput(it))
		}
	}
	if p.Retention != nil {
		t.Retention = *p.Retention
	}
	if p.Duration.Set {
		t.Duration = p.Duration.Value
	}
	if p.MinAge.Set {
		t.MinAge = p.MinAge.Value
	}
	if p.RenewalNotice.Set {
		t.RenewalNotice = p.RenewalNotice.Value
	}
	if p.PointsExpireAfter.Set {
		t.PointsExpireAfter = p.PointsExpireAfter.Value
	}
	if p.ValueEstimate.Set {
		t.ValueEstimate = p.ValueEstimate.Value.input()
	}
	if p.ValueMethod.Set {
		t.ValueMethod = p.ValueMethod.Value
	}
	if p.ValueExplanation.Set {
		t.ValueExplanation = p.ValueExplanation.Value
	}
	if r := p.Reward; r != nil {
		if r.JoinBonus != nil {
			t.Reward.JoinBonus = *r.JoinBonus
		}
		if r.PointsPerPeriod != nil {
			t.Reward.PointsPerPeriod = *r.PointsPerPeriod
		}
		if r.Vesting.Set {
			t.Reward.Vesting = r.Vesting.Value
		}
		if r.Period.Set {
			t.Reward.Period = r.Period.Value
		}
		if r.MaxPeriods.Set {
			t.Reward.MaxPeriods = r.MaxPeriods.Value
		}
	}
	return t
}

type contractDTO struct {
	ID        string    `json:"id"`
	FamilyID  string    `json:"family_id"`
	Version   int       `json:"version"`
	Status    string    `json:"status"`
	Title     string    `json:"title"`
	Summary   string    `json:"summary"`
	Items     []itemDTO `json:"items"`
	Retention string    `json:"retention"`
	Duration  *string   `json:"duration"`
	// RenewalNotice is the notice that applies (the default included),
	// null without a duration.
	RenewalNotice *string   `json:"renewal_notice"`
	Reward        rewardDTO `json:"reward"`
	MinAge        *int      `json:"min_age"`
	// RequiredAge is the youngest age that may join: min_age, raised to 16
	// when the contract shares with a third party or for advertising (GDPR
	// Art. 8, CCPA's under-16 rule); null when no age rule applies.
	RequiredAge *int `json:"required_age"`
	// PointsExpireAfter is how long after it is credited a point this
	// contract pays expires, when the contract shortens the programme's
	// points expiry; null: the programme's applies.
	PointsExpireAfter *string `json:"points_expire_after"`
	// ValueEstimate, ValueMethod and ValueExplanation: what the brand
	// estimates the data is worth and how (null in drafts that lack them
	// and in versions published before they existed).
	ValueEstimate    *valueEstimateDTO `json:"value_estimate"`
	ValueMethod      *string           `json:"value_method"`
	ValueExplanation *string           `json:"value_explanation"`
	// RewardValue is the reward in money; null while no programme
	// identity gives points a value.
	RewardValue *rewardValueDTO `json:"reward_value"`
	// ProgrammeVersion is the programme identity version the terms were
	// published under (null for drafts and earlier versions).
	ProgrammeVersion *int    `json:"programme_version"`
	TermsHash        *string `json:"terms_hash"`
	CreatedAt        string  `json:"created_at"`
	PublishedAt      *string `json:"published_at"`
	RetiredAt        *string `json:"retired_at"`
	// NoticeURL is the version's Notice of Financial Incentive (null for a
	// draft, which has none).
	NoticeURL *string `json:"notice_url"`
	// ConflictsWithObjection marks, for a member's own GET /v1/offers, an
	// offer that uses a purpose the member objects to.
	ConflictsWithObjection *bool `json:"conflicts_with_objection,omitempty"`
}

// rewardValueDTO is a reward in money: each figure a decimal string with
// exactly the currency's minor units, computed exactly and rounded half to
// even (domain.FormatMoney).
type rewardValueDTO struct {
	Currency   string  `json:"currency"`
	PointValue string  `json:"point_value"`
	JoinBonus  string  `json:"join_bonus"`
	PerPeriod  string  `json:"per_period"`
	MaxTotal   *string `json:"max_total"`
}

func rewardValueOf(v domain.RewardValue, ok bool) *rewardValueDTO {
	if !ok {
		return nil
	}
	d := &rewardValueDTO{Currency: v.Currency, PointValue: v.Point, JoinBonus: v.JoinBonus, PerPeriod: v.PerPeriod}
	if v.MaxTotal != "" {
		d.MaxTotal = &v.MaxTotal
	}
	return d
}

// contractOf is the view of c; age is the age it requires (0 for none).
func contractOf(c domain.Contract, age int, value *rewardValueDTO) contractDTO {
	in := app.InputOf(c.Terms())
	d := contractDTO{ID: c.ID(), FamilyID: c.FamilyID(), Version: c.Version(), Status: string(c.Status()),
		Title: in.Title, Summary: in.Summary, Retention: in.Retention, Duration: in.Duration,
		Reward: rewardDTO(in.Reward), MinAge: in.MinAge, PointsExpireAfter: in.PointsExpireAfter, CreatedAt: timeText(c.CreatedAt()),
		PublishedAt: optTime(c.PublishedAt()), RetiredAt: optTime(c.RetiredAt()), Items: []itemDTO{}}
	for _, it := range in.Items {
		d.Items = append(d.Items, itemDTO(it))
	}
	if h := c.TermsHash(); h != "" {
		d.TermsHash = &h
	}
	if age > 0 {
		d.RequiredAge = &age
	}
	if e := in.ValueEstimate; e != nil {
		d.ValueEstimate = &valueEstimateDTO{Amount: e.Amount, Currency: e.Currency, Per: e.Per}
	}
	d.ValueMethod, d.ValueExplanation, d.RewardValue = in.ValueMethod, in.ValueExplanation, value
	if p := c.Terms().Programme; p != nil {
		v := p.Version
		d.ProgrammeVersion = &v
	}
	if !c.IsDraft() {
		u := "/v1/contracts/" + c.ID() + "/notice"
		d.NoticeURL = &u
	}
	if t := c.Terms(); t.Duration != nil {
		n := t.Notice().String()
		d.RenewalNotice = &n
	}
	return d
}

// contractList is the views of cs, each with the age it requires.
func (h *handlers) contractList(ctx context.Context, cs []domain.Contract, next string) (list[contractDTO], error) {
	out := list[contractDTO]{Items: make([]contractDTO, 0, len(cs)), NextCursor: next}
	ages, err := h.svc.Contracts.RequiredAges(ctx, cs...)
	if err != nil {
		return out, err
	}
	values, err := h.svc.Contracts.RewardValues(ctx, cs...)
	if err != nil {
		return out, err
	}
	for _, c := range cs {
		v, ok := values[c.ID()]
		out.Items = append(out.Items, contractOf(c, ages[c.ID()], rewardValueOf(v, ok)))
	}
	return out, nil
}

// contractView is the view of one contract with the age it requires.
func (h *handlers) contractView(ctx context.Context, ct domain.Contract) (contractDTO, error) {
	l, err := h.contractList(ctx, []domain.Contract{ct}, "")
	if err != nil {
		return contractDTO{}, err
	}
	return l.Items[0], nil
}

func (h *handlers) createContract(c *fiber.Ctx) error {
	var in contractIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	ct, err := h.svc.Contracts.CreateDraft(c.UserContext(), principal(c), in.toInput())
	if err != nil {
		return err
	}
	c.Location(resourcePath("/v1/contracts", ct.ID()))
	view, err := h.contractView(c.UserContext(), ct)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(view)
}

func (h *handlers) patchContract(c *fiber.Ctx) error {
	id, err := idParam(c, domain.ErrContractNotFound)
	if err != nil {
		return err
	}
	var p contractPatch
	if err := decodeJSON(c, &p); err != nil {
		return err
	}
	if err := explicitNulls(c.Body()); err != nil {
		return err
	}
	ct, err := h.svc.Contracts.EditDraft(c.UserContext(), principal(c), id, p.apply)
	if err != nil {
		return err
	}
	view, err := h.contractView(c.UserContext(), ct)
	if err != nil {
		return err
	}
	return c.JSON(view)
}

func (h *handlers) getContract(c *fiber.Ctx) error {
	id, err := idParam(c, domain.ErrContractNotFound)
	if err != nil {
		return err
	}
	ct, err := h.svc.Contracts.Get(c.UserContext(), optionalPrincipal(c), id)
	if err != nil {
		return err
	}
	view, err := h.contractView(c.UserContext(), ct)
	if err != nil {
		return err
	}
	return c.JSON(view)
}

func (h *handlers) listContracts(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	status, err := enumQuery(c, "status")
	if err != nil {
		return err
	}
	cs, next, err := h.svc.Contracts.List(c.UserContext(), principal(c), status, page)
	if err != nil {
		return err
	}
	out, err := h.contractList(c.UserContext(), cs, next)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (h *handlers) offers(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	// The answer depends on the token: shared caches must key on it.
	defer c.Vary(fiber.HeaderAuthorization)
	if p := optionalPrincipal(c); p != nil && p.Role == app.RoleMember && h.svc.Objections != nil {
		return h.memberOffers(c, *p, page)
	}
	return h.cache.serve(c, "offers|"+page.Cursor+"|"+strconv.Itoa(page.Limit), func() (cachedResponse, bool, error) {
		cs, next, err := h.svc.Contracts.Offers(c.UserContext(), page)
		if err != nil {
			return cachedResponse{}, false, err
		}
		out, err := h.contractList(c.UserContext(), cs, next)
		if err != nil {
			return cachedResponse{}, false, err
		}
		body, err := jsonMarshal(out)
		return cachedResponse{body: body, contentType: fiber.MIMEApplicationJSON, cacheControl: "public, max-age=5"}, true, err
	})
}

// memberOffers is the offer list as one member sees it: each offer says
// whether it uses a purpose the member objects to. It is rendered for the
// request, never stored in the shared response cache, and marked private so
// no shared HTTP cache keeps it either.
func (h *handlers) memberOffers(c *fiber.Ctx, p app.Principal, page app.Page) error {
	objected, err := h.svc.Objections.Objected(c.UserContext(), p)
	if err != nil {
		return err
	}
	cs, next, err := h.svc.Contracts.Offers(c.UserContext(), page)
	if err != nil {
		return err
	}
	out, err := h.contractList(c.UserContext(), cs, next)
	if err != nil {
		return err
	}
	for i, ct := range cs {
		conflicts := len(domain.ObjectedPurposes(ct.Terms(), objected)) > 0
		out.Items[i].ConflictsWithObjection = &conflicts
	}
	body, err := jsonMarshal(out)
	if err != nil {
		return err
	}
	return cachedResponse{body: body, contentType: fiber.MIMEApplicationJSON, cacheControl: "private, no-store"}.send(c)
}

func (h *handlers) publishContract(c *fiber.Ctx) error {
	id, err := idParam(c, domain.ErrContractNotFound)
	if err != nil {
		return err
	}
	ct, err := h.svc.Contracts.Publish(c.UserContext(), principal(c), id)
	if err != nil {
		return err
	}
	view, err := h.contractView(c.UserContext(), ct)
	if err != nil {
		return err
	}
	return c.JSON(view)
}

type retireIn struct {
	TerminateActive bool `json:"terminate_active"`
}

type retireOut struct {
	contractDTO
	Terminated int `json:"terminated_exchanges"`
}

func (h *handlers) retireContract(c *fiber.Ctx) error {
	id, err := idParam(c, domain.ErrContractNotFound)
	if err != nil {
		return err
	}
	var in retireIn
	if len(c.Body()) > 0 {
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
	}
	ct, n, err := h.svc.Contracts.Retire(c.UserContext(), principal(c), id, in.TerminateActive)
	if err != nil {
		return err
	}
	view, err := h.contractView(c.UserContext(), ct)
	if err != nil {
		return err
	}
	return c.JSON(retireOut{view, n})
}

func (h *handlers) newVersion(c *fiber.Ctx) error {
	id, err := idParam(c, domain.ErrContractNotFound)
	if err != nil {
		return err
	}
	ct, err := h.svc.Contracts.NewVersion(c.UserContext(), principal(c), id)
	if err != nil {
		return err
	}
	c.Location(resourcePath("/v1/contracts", ct.ID()))
	view, err := h.contractView(c.UserContext(), ct)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(view)
}

// statsDTO is GET /v1/contracts/{id}/stats: k-anonymous aggregates
// (app.ContractStats). A withheld count is null and named in Suppressed,
// never a number; MinCount is k.
type statsDTO struct {
	ContractID   string          `json:"contract_id"`
	Version      int             `json:"version"`
	Status       string          `json:"status"`
	MinCount     int64           `json:"min_count"`
	Suppressed   []string        `json:"suppressed"`
	Joins        *int64          `json:"joins"`
	Active       *int64          `json:"active"`
	Cancelled    *int64          `json:"cancelled"`
	Expired      *int64          `json:"expired"`
	Terminated   *int64          `json:"terminated"`
	Superseded   *int64          `json:"superseded"`
	Erased       *int64          `json:"erased"`
	PointsIssued *int64          `json:"points_issued"`
	PointsValue  *moneyAmountDTO `json:"points_value"`
	Series       statsSeriesDTO  `json:"series"`
}

type statsSeriesDTO struct {
	Step  *string          `json:"step"`
	Items []statsBucketDTO `json:"items"`
}

type statsBucketDTO struct {
	Start      string   `json:"start"`
	End        string   `json:"end"`
	Joins      *int64   `json:"joins"`
	Active     *int64   `json:"active"`
	Endings    *int64   `json:"endings"`
	Suppressed []string `json:"suppressed"`
}

// countOf is a published count, nil when withheld; a withheld count's name
// is added to suppressed.
func countOf(c domain.Count, name string, suppressed *[]string) *int64 {
	n, ok := c.Value()
	if !ok {
		*suppressed = append(*suppressed, name)
		return nil
	}
	return &n
}

func statsOf(ct domain.Contract, st app.ContractStats) statsDTO {
	d := statsDTO{ContractID: ct.ID(), Version: ct.Version(), Status: string(ct.Status()), MinCount: st.MinCount, Suppressed: []string{}}
	d.Joins = countOf(st.Joins, "joins", &d.Suppressed)
	d.Active = countOf(st.Active, "active", &d.Suppressed)
	d.Cancelled = countOf(st.Cancelled, "cancelled", &d.Suppressed)
	d.Expired = countOf(st.Expired, "expired", &d.Suppressed)
	d.Terminated = countOf(st.Terminated, "terminated", &d.Suppressed)
	d.Superseded = countOf(st.Superseded, "superseded", &d.Suppressed)
	d.Erased = countOf(st.Erased, "erased", &d.Suppressed)
	d.PointsIssued = countOf(st.PointsIssued, "points_issued", &d.Suppressed)
	if d.PointsIssued == nil {
		d.Suppressed = append(d.Suppressed, "points_value")
	} else if st.PointsValue != "" {
		d.PointsValue = &moneyAmountDTO{Currency: st.Currency, Amount: st.PointsValue}
	}
	d.Series.Items = make([]statsBucketDTO, len(st.Series))
	if st.Step != "" {
		step := string(st.Step)
		d.Series.Step = &step
	}
	for i, b := range st.Series {
		item := statsBucketDTO{Start: timeText(b.Start), End: timeText(b.End), Suppressed: []string{}}
		item.Joins = countOf(b.Joins, "joins", &item.Suppressed)
		item.Active = countOf(b.Active, "active", &item.Suppressed)
		item.Endings = countOf(b.Endings, "endings", &item.Suppressed)
		d.Series.Items[i] = item
	}
	return d
}

func (h *handlers) contractStats(c *fiber.Ctx) error {
	id, err := idParam(c, domain.ErrContractNotFound)
	if err != nil {
		return err
	}
	ct, st, err := h.svc.Contracts.Stats(c.UserContext(), principal(c), id)
	if err != nil {
		return err
	}
	return c.JSON(statsOf(ct, st))
}
