package http

import (
	"errors"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// The member's pages of what happens to their data (issue 13): who read
// it (/account/access-log), who holds it (/account/recipients), the
// profile (/account/profile) and the rights (/account/rights). Each reads
// and writes through the use cases the /v1/me handlers call, and reuses
// their views (accessOf, memberRecipientOf, memberRights, export), so the
// pages and the API cannot disagree.

// memberPagesB registers these pages, each gated by member.
func (w *web) memberPagesB(g fiber.Router, member fiber.Handler) {
	snap := w.h.snapshot
	svc := w.h.svc
	if svc.Enforcement != nil {
		g.Get("/access-log", member, snap, w.accessLogPage)
		g.Get("/recipients", member, snap, w.recipientsPage)
		g.Post("/rights/erase", member, w.eraseConfirmPage)
		g.Post("/rights/erase/confirm", member, w.eraseAccount)
	}
	g.Get("/erased", func(c *fiber.Ctx) error {
		return w.render(c, fiber.StatusOK, "erased", "Your account is erased", "", nil)
	})
	g.Get("/profile", member, snap, w.profilePage)
	g.Post("/profile", member, w.saveProfile)
	g.Post("/profile/remove", member, w.removeAttribute)
	g.Get("/rights", member, snap, w.rightsPage)
	g.Get("/rights/export", member, snap, w.h.export)
	if svc.Restrictions != nil {
		g.Post("/rights/restriction", member, w.setRestriction)
	}
	if svc.Objections != nil {
		g.Post("/rights/objections", member, w.objectToPurpose)
		g.Post("/rights/objections/lift", member, w.liftObjection)
	}
}

// notEnrolledYet is true for the error the use cases give a subject that
// has no member (never enrolled, or erased): the pages offer enrolment
// instead of an error.
func notEnrolledYet(err error) bool {
	var de *domain.Error
	return errors.As(err, &de) && de.Kind == domain.KindNotFound && de.Code == "member-not-enrolled"
}

// ---- Who read my data ----

type accessRowView struct {
	When       time.Time
	Who        string
	Purpose    string
	Categories []string
	Refused    bool
	Why        string
}

type accessLogView struct {
	Enrolled bool
	Rows     []accessRowView
	Older    string
	First    bool
}

// refusalWords says why a read was refused, by the code the access log
// records (app.AccessEntry.Refused).
func refusalWords(code string) string {
	switch code {
	case "processing-restricted":
		return "Refused: you had restricted the use of your data, so nothing was disclosed."
	case "no-consent":
		return "Refused: your consent had ended, so nothing was disclosed."
	default:
		return "Refused (" + code + "): nothing was disclosed."
	}
}

// accessLogPage is GET /v1/me/access-log as a page, newest first, one
// page at a time with the API's sealed cursor.
func (w *web) accessLogPage(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	es, next, err := w.h.svc.Enforcement.MyAccessLog(c.UserContext(), principal(c), page)
	if notEnrolledYet(err) {
		return w.render(c, fiber.StatusOK, "accesslog", "Who read my data", "access-log", accessLogView{})
	}
	if err != nil {
		return err
	}
	cat := w.h.svc.Catalog
	v := accessLogView{Enrolled: true, Older: next, First: page.Cursor == "", Rows: make([]accessRowView, 0, len(es))}
	for _, e := range accessList(es, "").Items {
		r := accessRowView{Who: e.Accessor, Categories: categoryLabels(cat, e.Categories)}
		r.When, _ = time.Parse(time.RFC3339Nano, e.At)
		if r.Who == "" {
			r.Who = e.Role
		}
		if e.Purpose != nil {
			r.Purpose = *e.Purpose
			if p, ok := cat.Purpose(*e.Purpose); ok {
				r.Purpose = p.Label
			}
		}
		if e.Refused != nil {
			r.Refused, r.Why = true, refusalWords(*e.Refused)
		}
		v.Rows = append(v.Rows, r)
	}
	return w.render(c, fiber.StatusOK, "accesslog", "Who read my data", "access-log", v)
}

// ---- Who holds my data ----

type grantView struct {
	ExchangeID string
	Title      string
	Version    int
	Status     string
	Categories []string
	Purposes   []string
	From       time.Time
	Until      *time.Time
	// Deletion is the deletion duty in words; Overdue marks it.
	Deletion string
	Overdue  bool
}

type recipientView struct {
	Name, Kind, Country, PolicyURL string
	Categories, Purposes           []string
	Active                         bool
	Reads                          int64
	LastRead                       *time.Time
	Summary                        string
	Grants                         []grantView
}

type recipientsView struct {
	Enrolled   bool
	Recipients []recipientView
	More       string
	First      bool
}

func parseOptTime(s *string) *time.Time {
	if s == nil {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return nil
	}
	return &t
}

// deletionWords says a grant's deletion state (memberRecipientOf's, the
// API's) in words: due by, confirmed on, overdue since.
func deletionWords(g recipientGrantDTO) string {
	due, done := parseOptTime(g.DeletionDueAt), parseOptTime(g.DeletionConfirmedAt)
	switch g.DeletionState {
	case "deleted":
		if done != nil {
			return "Deletion confirmed on " + humanDate(*done) + "."
		}
		return "Deletion confirmed."
	case "overdue":
		if due != nil {
			return "Deletion overdue: it was due by " + humanDate(*due) + " and is not confirmed."
		}
		return "Deletion overdue."
	case "due":
		if due != nil {
			return "Deletion due by " + humanDate(*due) + "."
		}
		return "Deletion due."
	}
	if g.Until == nil {
		return "In force: they may use this data while the exchange lasts."
	}
	return "No deletion duty recorded."
}

// exchangeTitles maps the member's exchanges to their contract titles,
// through the use case of GET /v1/me/transparency.
func (w *web) exchangeTitles(c *fiber.Ctx) (map[string]string, []app.ExchangeView, error) {
	st, err := w.h.svc.Exchanges.Transparency(c.UserContext(), principal(c))
	if err != nil {
		return nil, nil, err
	}
	titles := make(map[string]string, len(st.Exchanges))
	for _, v := range st.Exchanges {
		titles[v.Exchange.ID()] = v.Contract.Terms().Title
	}
	return titles, st.Exchanges, nil
}

// recipientsPage is GET /v1/me/recipients as a page.
func (w *web) recipientsPage(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	rs, next, err := w.h.svc.Enforcement.MyRecipients(c.UserContext(), principal(c), page)
	if notEnrolledYet(err) {
		return w.render(c, fiber.StatusOK, "recipients", "Who holds my data", "recipients", recipientsView{})
	}
	if err != nil {
		return err
	}
	titles, _, err := w.exchangeTitles(c)
	if err != nil {
		return err
	}
	cat := w.h.svc.Catalog
	now := time.Now()
	v := recipientsView{Enrolled: true, More: next, First: page.Cursor == ""}
	for _, r := range rs {
		d := memberRecipientOf(r, now)
		rv := recipientView{Name: d.Name, Kind: "Another company (third party)", Country: countryName(d.Country), PolicyURL: d.PrivacyPolicyURL,
			Categories: categoryLabels(cat, d.Categories), Purposes: purposeLabels(cat, d.Purposes), Active: d.Active,
			Reads: d.Reads, LastRead: parseOptTime(d.LastReadAt)}
		if d.Kind == string(domain.FirstParty) {
			rv.Kind = "The brand itself (first party)"
		}
		if d.Deletion.Owed > 0 {
			rv.Summary = strconv.Itoa(d.Deletion.Confirmed) + " of " + strconv.Itoa(d.Deletion.Owed) + " deletions confirmed"
			if d.Deletion.Overdue > 0 {
				rv.Summary += ", " + strconv.Itoa(d.Deletion.Overdue) + " overdue"
			}
		}
		for _, g := range d.Grants {
			gv := grantView{ExchangeID: g.ExchangeID, Title: titles[g.ExchangeID], Version: g.Version, Status: g.Status,
				Categories: categoryLabels(cat, g.Categories), Purposes: purposeLabels(cat, g.Purposes),
				Until: parseOptTime(g.Until), Deletion: deletionWords(g), Overdue: g.DeletionState == "overdue"}
			if f := parseOptTime(&g.From); f != nil {
				gv.From = *f
			}
			if gv.Title == "" {
				gv.Title = "Exchange"
			}
			rv.Grants = append(rv.Grants, gv)
		}
		v.Recipients = append(v.Recipients, rv)
	}
	return w.render(c, fiber.StatusOK, "recipients", "Who holds my data", "recipients", v)
}

// ---- My profile ----

// inputView is one input of an attribute, as the form shows it.
type inputView struct {
	// Kind is text, email, tel, date, number, country, list or address.
	Kind         string
	Value        string
	Street       string
	PostalCode   string
	City         string
	Country      string
	Autocomplete string
}

type exchangeRef struct{ ID, Title string }

type attributeView struct {
	Key, Label, Description, Example string
	// ID is the HTML id of its input (a fieldset for an address).
	ID     string
	Held   bool
	Shown  string
	Input  inputView
	UsedBy []exchangeRef
	Error  string
}

type profileErrorView struct {
	Anchor string
	Label  string
	Detail string
}

type profileView struct {
	Enrolled   bool
	Attributes []attributeView
	// Groups is the enrol form: every category a member can give, by area.
	Groups []attributeGroup
	// Addable are the categories the member can still add.
	Addable []attributeView
	Add     *attributeView
	Problem string
	Errors  []profileErrorView
	// Cancel are the active exchanges to cancel before a removal.
	Cancel []exchangeRef
	Saved  bool
	// Ended is how many exchanges the save ended (their terms no longer
	// hold for the corrected data).
	Ended int
}

type attributeGroup struct {
	Legend     string
	Attributes []attributeView
}

// groupLegends names the areas of the catalogue's keys.
var groupLegends = map[string]string{
	"identity": "Who you are", "contact": "How to reach you", "demographic": "About you", "location": "Where you are",
	"commerce": "Shopping", "behaviour": "Interests and habits", "health": "Health and fitness", "social": "Social media", "device": "Your device",
}

var groupOrder = []string{"identity", "contact", "demographic", "location", "commerce", "behaviour", "health", "social", "device"}

// autocompleteOf is the HTML autocomplete token of a category (WCAG 2.1
// SC 1.3.5, identify input purpose); "" when none fits.
var autocompleteOf = map[string]string{
	"contact.email": "email", "contact.phone": "tel", "identity.first_name": "given-name", "identity.last_name": "family-name",
	"identity.name": "name", "identity.username": "username", "demographic.birthdate": "bday", "demographic.gender": "sex",
	"demographic.language": "language", "demographic.occupation": "organization-title", "location.postal_code": "postal-code",
	"location.city": "address-level2", "location.region": "address-level1",
}

// storable says whether a member may set a category (not derived).
func storable(cat domain.Category) bool { return cat.Derived == nil && cat.Type != domain.TypeBoolean }

func fieldID(key string) string { return "attr-" + key }

// inputOf is the form input of a category holding value (nil: empty).
func inputOf(cat domain.Category, value any) inputView {
	in := inputView{Kind: "text", Autocomplete: autocompleteOf[cat.Key]}
	switch cat.Type {
	case domain.TypeEmail:
		in.Kind = "email"
	case domain.TypePhone:
		in.Kind = "tel"
	case domain.TypeDate:
		in.Kind = "date"
	case domain.TypeNumber:
		in.Kind = "number"
	case domain.TypeCountryCode:
		in.Kind, in.Autocomplete = "country", "country"
	case domain.TypeList:
		in.Kind = "list"
	case domain.TypeAddress:
		in.Kind = "address"
	}
	switch v := value.(type) {
	case string:
		in.Value = v
	case float64:
		in.Value = strconv.FormatFloat(v, 'f', -1, 64)
	case []any:
		lines := make([]string, 0, len(v))
		for _, x := range v {
			s, _ := x.(string)
			lines = append(lines, s)
		}
		in.Value = strings.Join(lines, "\n")
	case map[string]any:
		in.Street, _ = v["street"].(string)
		in.PostalCode, _ = v["postal_code"].(string)
		in.City, _ = v["city"].(string)
		in.Country, _ = v["country"].(string)
	}
	return in
}

// shownValue is a stored value as a person reads it.
func shownValue(cat domain.Category, value any) string {
	switch v := value.(type) {
	case string:
		switch cat.Type {
		case domain.TypeDate:
			if d, err := time.Parse(time.DateOnly, v); err == nil {
				return humanDate(d)
			}
		case domain.TypeCountryCode:
			return countryName(v)
		}
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case []any:
		parts := make([]string, 0, len(v))
		for _, x := range v {
			s, _ := x.(string)
			parts = append(parts, s)
		}
		return strings.Join(parts, ", ")
	case map[string]any:
		var parts []string
		for _, k := range []string{"street", "postal_code", "city"} {
			if s, _ := v[k].(string); s != "" {
				parts = append(parts, s)
			}
		}
		if s, _ := v["country"].(string); s != "" {
			parts = append(parts, countryName(s))
		}
		return strings.Join(parts, ", ")
	case bool:
		if v {
			return "yes"
		}
		return "no"
	}
	return ""
}

// jsonNumber is the grammar of a JSON number (RFC 8259 §6): what PUT
// /v1/me would decode as a number. Anything else typed in a number field
// reaches the use case as text, which refuses it with the API's words.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// formValue reads a category's value from a form as PUT /v1/me would
// carry it in JSON: text as typed, a number as a number, a list one item
// per line (blank lines skipped), an address from its four fields (empty
// ones left out). given is false when every field of it is empty or absent.
func formValue(cat domain.Category, form map[string][]string) (value any, given bool) {
	get := func(name string) string {
		if vs := form[name]; len(vs) > 0 {
			return vs[0]
		}
		return ""
	}
	switch cat.Type {
	case domain.TypeList:
		raw := get(cat.Key)
		items := []any{}
		for _, line := range strings.Split(raw, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				items = append(items, line)
			}
		}
		return items, raw != ""
	case domain.TypeAddress:
		a := map[string]any{}
		for _, f := range []string{"street", "postal_code", "city", "country"} {
			if s := get(cat.Key + "/" + f); s != "" {
				a[f] = s
			}
		}
		return a, len(a) > 0
	case domain.TypeNumber:
		raw := strings.TrimSpace(get(cat.Key))
		if jsonNumber.MatchString(raw) {
			if n, err := strconv.ParseFloat(raw, 64); err == nil {
				return n, true
			}
		}
		return raw, raw != ""
	}
	raw := get(cat.Key)
	return raw, raw != ""
}

// profileView builds the profile page: the attributes with the active
// exchanges that share each (GET /v1/me and GET /v1/me/transparency), or
// the enrol form.
func (w *web) profileView(c *fiber.Ctx, typed map[string][]string) (profileView, error) {
	cat := w.h.svc.Catalog
	m, err := w.h.svc.Members.Get(c.UserContext(), principal(c))
	if notEnrolledYet(err) {
		v := profileView{}
		groups := map[string][]attributeView{}
		for _, k := range cat.Categories() {
			if !storable(k) {
				continue
			}
			area, _, _ := strings.Cut(k.Key, ".")
			av := attributeView{Key: k.Key, Label: k.Label, Description: k.Description, Example: examplePlain(k), ID: fieldID(k.Key), Input: inputOf(k, nil)}
			if typed != nil {
				if val, ok := formValue(k, typed); ok {
					av.Input = inputOf(k, val)
					if s, isText := val.(string); isText {
						av.Input.Value = s
					}
				}
			}
			groups[area] = append(groups[area], av)
		}
		seen := map[string]bool{}
		for _, area := range groupOrder {
			if len(groups[area]) > 0 {
				v.Groups = append(v.Groups, attributeGroup{Legend: groupLegends[area], Attributes: groups[area]})
				seen[area] = true
			}
		}
		var rest []string
		for area := range groups {
			if !seen[area] {
				rest = append(rest, area)
			}
		}
		sort.Strings(rest)
		for _, area := range rest {
			v.Groups = append(v.Groups, attributeGroup{Legend: "Other: " + area, Attributes: groups[area]})
		}
		return v, nil
	}
	if err != nil {
		return profileView{}, err
	}
	_, views, err := w.exchangeTitles(c)
	if err != nil {
		return profileView{}, err
	}
	usedBy := map[string][]exchangeRef{}
	for _, ev := range views {
		if ev.Exchange.Status() != domain.ExchangeActive {
			continue
		}
		seen := map[string]bool{}
		for _, it := range ev.Contract.Terms().Items {
			src := cat.SourceOf(it.Category)
			if !seen[src] {
				seen[src] = true
				usedBy[src] = append(usedBy[src], exchangeRef{ID: ev.Exchange.ID(), Title: ev.Contract.Terms().Title})
			}
		}
	}
	v := profileView{Enrolled: true}
	keys := make([]string, 0, len(m.Attributes))
	for k := range m.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cg, ok := cat.Category(k)
		if !ok {
			cg = domain.Category{Key: k, Label: k, Type: domain.TypeString}
		}
		av := attributeView{Key: k, Label: cg.Label, Description: cg.Description, Example: examplePlain(cg), ID: fieldID(k), Held: true,
			Shown: shownValue(cg, m.Attributes[k]), Input: inputOf(cg, m.Attributes[k]), UsedBy: usedBy[k]}
		v.Attributes = append(v.Attributes, av)
	}
	want := c.Query("add")
	for _, k := range cat.Categories() {
		if !storable(k) {
			continue
		}
		if _, held := m.Attributes[k.Key]; held {
			continue
		}
		av := attributeView{Key: k.Key, Label: k.Label, Description: k.Description, Example: examplePlain(k), ID: fieldID(k.Key), Input: inputOf(k, nil)}
		v.Addable = append(v.Addable, av)
		if k.Key == want {
			add := av
			v.Add = &add
		}
	}
	return v, nil
}

// profilePage is the profile, or the enrol form for a subject with none.
func (w *web) profilePage(c *fiber.Ctx) error {
	v, err := w.profileView(c, nil)
	if err != nil {
		return err
	}
	v.Saved = c.Query("saved") == "1"
	if n, err := strconv.Atoi(c.Query("ended")); err == nil && n > 0 && n < 1000 {
		v.Ended = n
	}
	return w.render(c, fiber.StatusOK, "profile", "My profile", "profile", v)
}

// profileRefused shows the profile page again with the use case's
// refusal: each field error next to its input (pointer /attributes/<key>),
// and for a shared attribute the exchanges to cancel first. Errors that
// are not the use case's (a bad form) go to the error page.
func (w *web) profileRefused(c *fiber.Ctx, refusal error, typed map[string][]string, addKey string) error {
	var de *domain.Error
	if !errors.As(refusal, &de) || (de.Kind != domain.KindInvalid && de.Kind != domain.KindConflict) {
		return refusal
	}
	v, err := w.profileView(c, typed)
	if err != nil {
		return err
	}
	cat := w.h.svc.Catalog
	v.Problem = de.Message
	if de.Kind == domain.KindInvalid {
		v.Problem = "Some of what you entered cannot be saved. Correct it and send the form again."
	}
	if addKey != "" && v.Add == nil {
		for i := range v.Addable {
			if v.Addable[i].Key == addKey {
				add := v.Addable[i]
				v.Add = &add
			}
		}
	}
	for _, f := range de.Fields {
		key, _ := strings.CutPrefix(f.Pointer, "/attributes/")
		key = strings.ReplaceAll(strings.ReplaceAll(key, "~1", "/"), "~0", "~")
		label := key
		if cg, ok := cat.Category(key); ok {
			label = cg.Label
		}
		anchor := ""
		mark := func(list []attributeView) {
			for i := range list {
				if list[i].Key == key {
					list[i].Error = f.Reason
					anchor = list[i].ID
				}
			}
		}
		mark(v.Attributes)
		for gi := range v.Groups {
			mark(v.Groups[gi].Attributes)
		}
		if v.Add != nil && v.Add.Key == key {
			v.Add.Error = f.Reason
			if typed != nil {
				if cg, ok := cat.Category(key); ok {
					if val, given := formValue(cg, typed); given {
						v.Add.Input = inputOf(cg, val)
						if s, isText := val.(string); isText {
							v.Add.Input.Value = s
						}
					}
				}
			}
			anchor = v.Add.ID
		}
		if anchor != "" && typed != nil {
			// The attribute's input shows what was typed, not the stored value.
			for i := range v.Attributes {
				if v.Attributes[i].Key == key {
					if cg, ok := cat.Category(key); ok {
						if val, given := formValue(cg, typed); given {
							v.Attributes[i].Input = inputOf(cg, val)
							if s, isText := val.(string); isText {
								v.Attributes[i].Input.Value = s
							}
						}
					}
				}
			}
		}
		v.Errors = append(v.Errors, profileErrorView{Anchor: anchor, Label: label, Detail: f.Reason})
	}
	if len(de.ExchangeIDs) > 0 {
		titles, _, err := w.exchangeTitles(c)
		if err != nil {
			return err
		}
		for _, id := range de.ExchangeIDs {
			t := titles[id]
			if t == "" {
				t = "Exchange"
			}
			v.Cancel = append(v.Cancel, exchangeRef{ID: id, Title: t})
		}
	}
	return w.render(c, statusByKind[de.Kind], "profile", "My profile", "profile", v)
}

// saveProfile enrols or rectifies through the use case of PUT /v1/me. A
// form with a key field changes that one attribute (added or corrected),
// as typed; a form without one (the enrol form) gives every category
// whose fields are not empty.
func (w *web) saveProfile(c *fiber.Ctx) error {
	form, err := readForm(c)
	if err != nil {
		return err
	}
	cat := w.h.svc.Catalog
	attrs := map[string]any{}
	addKey := ""
	if form.Has("key") {
		key := form.Get("key")
		cg, ok := cat.Category(key)
		if !ok || !storable(cg) {
			// The use case names what is wrong with the key.
			attrs[key] = form.Get(key)
		} else {
			attrs[key], _ = formValue(cg, form)
		}
		if form.Get("add") == "1" {
			addKey = key
		}
	} else {
		for _, cg := range cat.Categories() {
			if !storable(cg) {
				continue
			}
			if val, given := formValue(cg, form); given {
				attrs[cg.Key] = val
			}
		}
	}
	saved, err := w.h.svc.Members.Enrol(c.UserContext(), principal(c), attrs)
	if err != nil {
		return w.profileRefused(c, err, form, addKey)
	}
	return c.Redirect(profileSavedURL(len(saved.Ended)), fiber.StatusSeeOther)
}

// removeAttribute removes one attribute (PUT /v1/me with null): refused
// while an active exchange shares it, naming the exchanges to cancel.
func (w *web) removeAttribute(c *fiber.Ctx) error {
	form, err := readForm(c)
	if err != nil {
		return err
	}
	key := form.Get("key")
	if key == "" {
		return invalidInput("/form/key", "is required: the attribute to remove")
	}
	saved, err := w.h.svc.Members.Enrol(c.UserContext(), principal(c), map[string]any{key: nil})
	if err != nil {
		return w.profileRefused(c, err, nil, "")
	}
	return c.Redirect(profileSavedURL(len(saved.Ended)), fiber.StatusSeeOther)
}

// profileSavedURL is the profile page after a save, saying how many
// exchanges the correction ended (a birthdate under a contract's minimum
// age ends it, as PUT /v1/me's ended_exchanges says): a member must never
// find an exchange ended without being told why.
func profileSavedURL(ended int) string {
	if ended > 0 {
		return webPrefix + "/profile?saved=1&ended=" + strconv.Itoa(ended)
	}
	return webPrefix + "/profile?saved=1"
}

// ---- My rights ----

type rightView struct {
	Key, Basis, Plain, Link, LinkText string
}

type objectionView struct {
	Purpose, Label string
	Since          time.Time
}

type purposeOption struct {
	Key, Label      string
	DirectMarketing bool
}

type rightsView struct {
	Enrolled     bool
	Rights       []rightView
	Restrictable bool
	Restricted   bool
	Since        *time.Time
	Objectable   bool
	Objections   []objectionView
	Purposes     []purposeOption
	Done         string
}

// rightLinks are where on these pages each right of the statement is used.
var rightLinks = map[string][2]string{
	"withdraw":      {"/account/exchanges", "My exchanges"},
	"access":        {"/account/access-log", "Who read my data"},
	"recipients":    {"/account/recipients", "Who holds my data"},
	"rectification": {"/account/profile", "My profile"},
	"erasure":       {"#erase", "Erase my account"},
	"restriction":   {"#restriction", "Restrict the use of my data"},
	"portability":   {"#export", "Download my data"},
	"objection":     {"#objections", "Object to a purpose"},
	"renewal":       {"/account/exchanges", "My exchanges"},
}

// rightsDone are the words shown after a right was used (?done=).
var rightsDone = map[string]string{
	"restricted": "The use of your data is restricted: no company can read it and you earn no points until you lift the restriction.",
	"lifted":     "The restriction is lifted: your exchanges work again.",
	"objected":   "Your objection is recorded: every exchange that used this purpose has ended.",
	"unobjected": "Your objection is lifted.",
}

func (w *web) rightsPage(c *fiber.Ctx) error {
	svc := w.h.svc
	p := principal(c)
	v := rightsView{Enrolled: true, Done: rightsDone[c.Query("done")]}
	for _, r := range memberRights {
		rv := rightView{Key: r.Key, Basis: r.Basis, Plain: r.Plain}
		if l, ok := rightLinks[r.Key]; ok {
			rv.Link, rv.LinkText = l[0], l[1]
		}
		v.Rights = append(v.Rights, rv)
	}
	if _, err := svc.Members.Get(c.UserContext(), p); notEnrolledYet(err) {
		v.Enrolled = false
		return w.render(c, fiber.StatusOK, "rights", "My rights", "rights", v)
	} else if err != nil {
		return err
	}
	if svc.Restrictions != nil {
		r, err := svc.Restrictions.Get(c.UserContext(), p)
		if err != nil {
			return err
		}
		v.Restrictable, v.Restricted, v.Since = true, r.Restricted, r.Since
	}
	if svc.Objections != nil {
		v.Objectable = true
		standing := map[string]bool{}
		for page := (app.Page{Limit: 100}); ; {
			os, next, err := svc.Objections.List(c.UserContext(), p, page)
			if err != nil {
				return err
			}
			for _, o := range os {
				d := w.h.objectionOf(o)
				standing[o.Purpose] = true
				v.Objections = append(v.Objections, objectionView{Purpose: d.Purpose, Label: d.PurposeLabel, Since: o.At})
			}
			if page.Cursor = next; next == "" {
				break
			}
		}
		for _, pur := range svc.Catalog.Purposes() {
			if !standing[pur.Key] {
				v.Purposes = append(v.Purposes, purposeOption{Key: pur.Key, Label: pur.Label, DirectMarketing: pur.DirectMarketing})
			}
		}
	}
	return w.render(c, fiber.StatusOK, "rights", "My rights", "rights", v)
}

// setRestriction is PUT /v1/me/restriction from a form: restricted=true
// restricts, false lifts.
func (w *web) setRestriction(c *fiber.Ctx) error {
	form, err := readForm(c)
	if err != nil {
		return err
	}
	var on bool
	switch form.Get("restricted") {
	case "true":
		on = true
	case "false":
	default:
		return invalidInput("/form/restricted", "must be true or false")
	}
	if _, err := w.h.svc.Restrictions.Set(c.UserContext(), principal(c), on); err != nil {
		return err
	}
	done := "lifted"
	if on {
		done = "restricted"
	}
	return c.Redirect(webPrefix+"/rights?done="+done+"#restriction", fiber.StatusSeeOther)
}

// objectToPurpose is POST /v1/me/objections from a form.
func (w *web) objectToPurpose(c *fiber.Ctx) error {
	form, err := readForm(c)
	if err != nil {
		return err
	}
	purpose := form.Get("purpose")
	if purpose == "" || len(purpose) > 255 {
		return invalidInput("/form/purpose", "choose a purpose from the list")
	}
	if _, err := w.h.svc.Objections.Object(c.UserContext(), principal(c), purpose); err != nil {
		return err
	}
	return c.Redirect(webPrefix+"/rights?done=objected#objections", fiber.StatusSeeOther)
}

// liftObjection is DELETE /v1/me/objections/{purpose} from a form.
func (w *web) liftObjection(c *fiber.Ctx) error {
	form, err := readForm(c)
	if err != nil {
		return err
	}
	purpose := form.Get("purpose")
	if problem := domain.IdentifierProblem(purpose); problem != "" {
		return invalidInput("/form/purpose", problem)
	}
	if err := w.h.svc.Objections.Lift(c.UserContext(), principal(c), purpose); err != nil {
		return err
	}
	return c.Redirect(webPrefix+"/rights?done=unobjected#objections", fiber.StatusSeeOther)
}

// ---- Erase my account ----

type eraseView struct {
	Active      int
	Available   int64
	Pending     int64
	Recipients  int
	Statement   string
	Reenrolment string
}

// eraseConfirmPage is the step before erasure: what is erased, what is
// kept and why, with this member's numbers. It writes nothing.
func (w *web) eraseConfirmPage(c *fiber.Ctx) error {
	svc := w.h.svc
	p := principal(c)
	m, err := svc.Members.Get(c.UserContext(), p)
	if err != nil {
		return err
	}
	_, views, err := w.exchangeTitles(c)
	if err != nil {
		return err
	}
	v := eraseView{Available: m.Balance.Available, Pending: m.Balance.Pending, Reenrolment: reenrolmentPlain}
	for _, ev := range views {
		if ev.Exchange.Status() == domain.ExchangeActive {
			v.Active++
		}
	}
	for page := (app.Page{Limit: 100}); ; {
		rs, next, err := svc.Enforcement.MyRecipients(c.UserContext(), p, page)
		if err != nil {
			return err
		}
		v.Recipients += len(rs)
		if page.Cursor = next; next == "" {
			break
		}
	}
	for _, r := range memberRights {
		if r.Key == "erasure" {
			v.Statement = r.Plain
		}
	}
	return w.render(c, fiber.StatusOK, "eraseconfirm", "Erase my account", "rights", v)
}

// reenrolmentPlain is the erasure answer's word on coming back
// (reenrolment), for a person rather than an app.
const reenrolmentPlain = "If you sign in again later and start a new profile, you start fresh, with no link to the erased data. " +
	"A join bonus you were already paid for a contract is not paid again: for that alone, a keyed hash (HMAC) of your sign-in id " +
	"and each such contract is kept, and nothing else."

// eraseAccount is DELETE /v1/me from the confirmation form. The erasure
// ends the member's web sessions in its transaction; the cookie is
// cleared too and the browser lands on a page saying the account is gone.
func (w *web) eraseAccount(c *fiber.Ctx) error {
	if _, err := w.h.svc.Enforcement.Erase(c.UserContext(), principal(c)); err != nil {
		return err
	}
	c.Locals(webSessionKey, nil)
	w.setCookie(c, w.cookieName(c), "", "/", -1)
	return c.Redirect(webPrefix+"/erased", fiber.StatusSeeOther)
}
