package http

import (
	"net/url"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// The marketer's pages (issue 13): the contracts with their status and
// versions, and per version its key terms and k-anonymous statistics.
// Each page calls the use case its /v1 handler calls: Contracts.List
// (GET /v1/contracts), Contracts.Stats (GET /v1/contracts/{id}/stats),
// Contracts.Transparency (the statement's view of the terms), and the
// actions Contracts.Publish, Retire and NewVersion (POST
// /v1/contracts/{id}/publish, /retire, /versions). Each action is a GET
// page that says what it will do, and the POST form on it.

// marketerRoutes registers the marketer's pages (role marketer or admin).
func (w *web) marketerRoutes(g fiber.Router, marketer fiber.Handler) {
	g.Get("/contracts", marketer, w.contractsPage)
	// The statistics' totals and series are read in one snapshot, as
	// GET /v1/contracts/{id}/stats reads them.
	g.Get("/contracts/:id", marketer, w.h.snapshot, w.contractPage)
	for _, a := range contractActions {
		g.Get("/contracts/:id/"+a.path, marketer, w.contractActionPage(a))
		g.Post("/contracts/:id/"+a.path, marketer, w.contractAction(a))
	}
}

// mkVersion is one contract version as the contracts page lists it.
type mkVersion struct {
	ID, Title, Status string
	Version           int
	CreatedAt         time.Time
	PublishedAt       *time.Time
	RetiredAt         *time.Time
	// Public is true when the version has a public statement and notice
	// (published or retired; a draft has neither).
	Public bool
}

// mkFamily is a contract's versions, newest first.
type mkFamily struct {
	FamilyID string
	Title    string
	Versions []mkVersion
}

type mkContractsData struct {
	Families []mkFamily
	// Status is the filter shown ("" for all); Next the next page's URL.
	Status string
	Next   string
	// First is false past the first page, so the page can link back to it.
	First bool
	// Statuses are the filters the page links to.
	Statuses []mkStatus
	// K is k of the statistics (WebOptions.MinCount), for the page's words.
	K int
}

type mkStatus struct{ Key, Label string }

// mkStatuses are the contract statuses the list filters by, in the words
// the page shows.
var mkStatuses = []mkStatus{{"", "All"}, {"draft", "Drafts"}, {"published", "Published"}, {"retired", "Retired"}}

// contractsPage is GET /account/contracts: the page of GET /v1/contracts
// (query status, cursor and limit as there, through Contracts.List), each
// family's versions together, newest version first.
func (w *web) contractsPage(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	status, err := enumQuery(c, "status")
	if err != nil {
		return err
	}
	cs, next, err := w.h.svc.Contracts.List(c.UserContext(), principal(c), status, page)
	if err != nil {
		return err
	}
	d := mkContractsData{Families: groupFamilies(cs), Status: status, First: page.Cursor == "", Statuses: mkStatuses, K: w.opts.MinCount}
	if next != "" {
		q := url.Values{"cursor": {next}}
		if status != "" {
			q.Set("status", status)
		}
		if page.Limit != 0 {
			q.Set("limit", c.Query("limit"))
		}
		d.Next = webPrefix + "/contracts?" + q.Encode()
	}
	return w.render(c, fiber.StatusOK, "contracts", "Contracts", "contracts", d)
}

// groupFamilies puts a page of versions (newest created first, as the
// store lists them) into families, in the order each family first appears,
// each family's versions newest first. A family whose versions span two
// pages appears on both.
func groupFamilies(cs []domain.Contract) []mkFamily {
	var out []mkFamily
	at := map[string]int{}
	for _, ct := range cs {
		i, ok := at[ct.FamilyID()]
		if !ok {
			i = len(out)
			at[ct.FamilyID()] = i
			out = append(out, mkFamily{FamilyID: ct.FamilyID(), Title: ct.Terms().Title})
		}
		out[i].Versions = append(out[i].Versions, mkVersion{ID: ct.ID(), Title: ct.Terms().Title, Status: string(ct.Status()),
			Version: ct.Version(), CreatedAt: ct.CreatedAt(), PublishedAt: ct.PublishedAt(), RetiredAt: ct.RetiredAt(), Public: !ct.IsDraft()})
	}
	for i := range out {
		slices.SortStableFunc(out[i].Versions, func(a, b mkVersion) int { return b.Version - a.Version })
		// The family is named by its newest version on this page.
		out[i].Title = out[i].Versions[0].Title
	}
	return out
}

type mkContractData struct {
	Terms statementDTO
	Stats mkStats
	// CanAct is true for a marketer (an admin reads, but only a marketer
	// publishes, retires and versions, as in the API).
	CanAct bool
}

// contractPage is GET /account/contracts/{id}: a version's key terms (the
// statement's view, Contracts.Transparency) and its k-anonymous
// statistics (Contracts.Stats, as GET /v1/contracts/{id}/stats). Stats
// comes first: it is the marketer or admin gate of the API, and 404 for
// no such version.
func (w *web) contractPage(c *fiber.Ctx) error {
	id, err := idParam(c, domain.ErrContractNotFound)
	if err != nil {
		return err
	}
	p := principal(c)
	ct, st, err := w.h.svc.Contracts.Stats(c.UserContext(), p, id)
	if err != nil {
		return err
	}
	stmt, err := w.h.svc.Contracts.Transparency(c.UserContext(), &p, id)
	if err != nil {
		return err
	}
	stats, err := w.statsOf(ct, st)
	if err != nil {
		return err
	}
	d := mkContractData{Terms: statementOf(stmt), Stats: stats, CanAct: p.Role == app.RoleMarketer}
	return w.render(c, fiber.StatusOK, "contract", d.Terms.Title+", version "+itoa(ct.Version()), "contracts", d)
}

// contractAction is one thing a marketer can do to a version from its
// page, through the use case the API's route calls.
type contractAction struct {
	path  string // under /account/contracts/{id}/
	title string // the confirmation page's heading
	do    func(w *web, c *fiber.Ctx, p app.Principal, id string, form url.Values) (string, error)
}

var contractActions = []contractAction{
	{path: "publish", title: "Publish this draft",
		do: func(w *web, c *fiber.Ctx, p app.Principal, id string, _ url.Values) (string, error) {
			ct, err := w.h.svc.Contracts.Publish(c.UserContext(), p, id)
			return ct.ID(), err
		}},
	{path: "retire", title: "Retire this version",
		do: func(w *web, c *fiber.Ctx, p app.Principal, id string, form url.Values) (string, error) {
			terminate, err := formBool(form, "terminate_active")
			if err != nil {
				return "", err
			}
			ct, _, err := w.h.svc.Contracts.Retire(c.UserContext(), p, id, terminate)
			return ct.ID(), err
		}},
	{path: "new-version", title: "Draft a new version",
		do: func(w *web, c *fiber.Ctx, p app.Principal, id string, _ url.Values) (string, error) {
			ct, err := w.h.svc.Contracts.NewVersion(c.UserContext(), p, id)
			return ct.ID(), err
		}},
}

// formBool reads an optional checkbox: absent is false, "yes" true.
func formBool(form url.Values, name string) (bool, error) {
	switch form.Get(name) {
	case "":
		return false, nil
	case "yes":
		return true, nil
	}
	return false, invalidInput("/form/"+name, `must be "yes" or left out`)
}

type mkActionData struct {
	Action string
	Title  string
	Terms  contractDTO
}

// contractActionPage is GET /account/contracts/{id}/<action>: what the
// action will do to the version, and the form that does it. It reads the
// version through Contracts.Get (as GET /v1/contracts/{id}).
func (w *web) contractActionPage(a contractAction) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := idParam(c, domain.ErrContractNotFound)
		if err != nil {
			return err
		}
		p := principal(c)
		if err := p.Require(app.RoleMarketer); err != nil {
			return err
		}
		ct, err := w.h.svc.Contracts.Get(c.UserContext(), &p, id)
		if err != nil {
			return err
		}
		view, err := w.h.contractView(c.UserContext(), ct)
		if err != nil {
			return err
		}
		return w.render(c, fiber.StatusOK, "contract-action", a.title, "contracts", mkActionData{Action: a.path, Title: a.title, Terms: view})
	}
}

// contractAction is POST /account/contracts/{id}/<action>: the action
// through its use case, then the version it made or changed.
func (w *web) contractAction(a contractAction) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := idParam(c, domain.ErrContractNotFound)
		if err != nil {
			return err
		}
		form, err := readForm(c)
		if err != nil {
			return err
		}
		out, err := a.do(w, c, principal(c), id, form)
		if err != nil {
			return err
		}
		return c.Redirect(webPrefix+"/contracts/"+url.PathEscape(out), fiber.StatusSeeOther)
	}
}
