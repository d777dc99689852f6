package main

import (
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/quidpro/quid/app"
)

// The marketer's pages (issue 13): contracts with their versions, and per
// version its key terms and k-anonymous statistics with a chart.

// mkSession signs subject in with role through the session store, as the
// sign-in pages would, and returns the Cookie header that carries it.
func mkSession(a *api, subject string, role app.Role) string {
	a.t.Helper()
	return a.webSession(role, subject)
}

// mkPage sends a request with the session cookie and checks the answer
// against openapi.yaml; unlike a.do it takes an HTML page for a 4xx (past
// the pages' middleware, errors are pages). form, when not nil, is posted.
func mkPage(a *api, cookie, method, path string, form url.Values) response {
	a.t.Helper()
	r := req{Method: method, Path: path, Headers: map[string]string{"Cookie": cookie}}
	if form != nil {
		r.Body = form.Encode()
		r.Headers["Content-Type"] = "application/x-www-form-urlencoded"
	}
	return a.do(r)
}

// mkExpectPage fails unless r is an HTML page with the status.
func mkExpectPage(t testing.TB, r response, status int) string {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("Content-Type %q, want an HTML page", r.Header.Get("Content-Type"))
	}
	return string(r.Body)
}

// mkCSRF is the session's CSRF token, read from the sign-out form.
func mkCSRF(t testing.TB, page string) string {
	t.Helper()
	m := regexp.MustCompile(`<input type="hidden" name="csrf" value="([^"]+)">`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token on the page")
	}
	return html.UnescapeString(m[1])
}

func TestMarketerPagesRefuseAMemberWithA403Page(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	id := a.publishContract(f, contractBody(f))
	member := mkSession(a, "alice", app.RoleMember)
	for _, path := range []string{"/account/contracts", "/account/contracts?status=draft", "/account/contracts/" + id,
		"/account/contracts/" + id + "/retire", "/account/contracts/" + id + "/new-version"} {
		body := mkExpectPage(t, mkPage(a, member, "GET", path, nil), http.StatusForbidden)
		if strings.Contains(body, "Coffee club") {
			t.Errorf("GET %s: the 403 page shows the contract", path)
		}
	}
	// A member's form, even with the member's own CSRF token, changes nothing.
	csrf := mkCSRF(t, mkExpectPage(t, mkPage(a, member, "GET", "/account", nil), http.StatusOK))
	mkExpectPage(t, mkPage(a, member, "POST", "/account/contracts/"+id+"/retire", url.Values{"csrf": {csrf}}), http.StatusForbidden)
	if st := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id, Token: f.marketer}), 200).json(t)["status"]; st != "published" {
		t.Fatalf("a member's form retired the contract: %v", st)
	}
	// Signed out, the pages send the browser to sign in.
	if r := mkPage(a, "", "GET", "/account/contracts/"+id, nil); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/account/signin?") {
		t.Fatalf("signed out: %d %s", r.Status, r.Header.Get("Location"))
	}
}

func TestMarketerContractsPageListsEachFamilysVersionsNewestFirst(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	v1 := a.publishContract(f, contractBody(f))
	v2 := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + v1 + "/versions", Token: f.marketer}), 201).json(t)["id"].(string)
	other := contractBody(f)
	other["title"] = "Tea & <biscuits>"
	draft := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: other}), 201).json(t)["id"].(string)

	for _, role := range []app.Role{app.RoleMarketer, app.RoleAdmin} {
		page := mkExpectPage(t, mkPage(a, mkSession(a, "mark-"+string(role), role), "GET", "/account/contracts", nil), http.StatusOK)
		for _, id := range []string{v1, v2, draft} {
			if !strings.Contains(page, `href="/account/contracts/`+id+`"`) {
				t.Errorf("%s: no link to version %s", role, id)
			}
		}
		// One family, newest version first; the other family on its own.
		i2, i1 := strings.Index(page, `href="/account/contracts/`+v2+`"`), strings.Index(page, `href="/account/contracts/`+v1+`"`)
		if i2 < 0 || i1 < 0 || i2 > i1 {
			t.Errorf("%s: version 2 is not listed before version 1", role)
		}
		if n := strings.Count(page, `<section class="family"`); n != 2 {
			t.Errorf("%s: %d families, want 2", role, n)
		}
		if !strings.Contains(page, `href="/v1/contracts/`+v1+`/transparency"`) || strings.Contains(page, `href="/v1/contracts/`+draft+`/transparency"`) {
			t.Errorf("%s: the public statement is linked for the published version only", role)
		}
		for _, want := range []string{">published<", ">draft<", "Tea &amp; &lt;biscuits&gt;"} {
			if !strings.Contains(page, want) {
				t.Errorf("%s: the page lacks %q", role, want)
			}
		}
	}
	mark := mkSession(a, "mark", app.RoleMarketer)
	// Filtered and paged as GET /v1/contracts.
	drafts := mkExpectPage(t, mkPage(a, mark, "GET", "/account/contracts?status=draft", nil), http.StatusOK)
	if strings.Contains(drafts, `href="/account/contracts/`+v1+`"`) || !strings.Contains(drafts, `href="/account/contracts/`+draft+`"`) {
		t.Error("status=draft lists a published version or misses a draft")
	}
	first := mkExpectPage(t, mkPage(a, mark, "GET", "/account/contracts?limit=2", nil), http.StatusOK)
	next := regexp.MustCompile(`<a href="([^"]+)">Next page</a>`).FindStringSubmatch(first)
	if next == nil {
		t.Fatal("no next page with limit=2 and three versions")
	}
	second := mkExpectPage(t, mkPage(a, mark, "GET", html.UnescapeString(next[1]), nil), http.StatusOK)
	if !strings.Contains(second, `href="/account/contracts/`+v1+`"`) || strings.Contains(second, "Next page") {
		t.Error("the second page does not end the list with the oldest version")
	}
	mkExpectPage(t, mkPage(a, mark, "GET", "/account/contracts?status=gone", nil), http.StatusUnprocessableEntity)
	mkExpectPage(t, mkPage(a, mark, "GET", "/account/contracts?cursor=forged", nil), http.StatusUnprocessableEntity)
}

// countsTable is the table of counts by status: the statistics' first
// table, before the points issued.
func countsTable(t testing.TB, stats string) [][]string {
	t.Helper()
	end := strings.Index(stats, "<h3>Points issued</h3>")
	if end < 0 {
		t.Fatalf("no points issued in the statistics:\n%s", stats)
	}
	return mkRowRe.FindAllStringSubmatch(stats[:end], -1)
}

// statsSection is the statistics part of a version's page: from its
// heading to the actions (or the end of the main content).
func statsSection(t testing.TB, page string) string {
	t.Helper()
	i := strings.Index(page, `<h2 id="stats">`)
	if i < 0 {
		t.Fatalf("no statistics on the page:\n%s", page)
	}
	s := page[i:]
	if j := strings.Index(s, "<h2>Actions</h2>"); j >= 0 {
		s = s[:j]
	} else if j := strings.Index(s, "</main>"); j >= 0 {
		s = s[:j]
	}
	return s
}

var (
	mkTagRe    = regexp.MustCompile(`(?s)<[^>]*>`)
	mkCellRe   = regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`)
	mkRowRe    = regexp.MustCompile(`(?s)<tr><th scope="row">(.*?)</th><td>(.*?)</td></tr>`)
	mkNumberRe = regexp.MustCompile(`\d+(?:[.,]\d+)*`)
	// An axis tick: a number alone in an SVG text element. The axis is
	// scaled to the published counts only (the two pages compared below
	// show it does not move with a withheld one).
	mkTickRe = regexp.MustCompile(`<text [^>]*>\d+</text>`)
	// A date in the series' labels (2 Jan 2006, Jan 2006) and a version
	// number are the only numbers the statistics may show besides counts.
	mkDateRe = regexp.MustCompile(`\b(?:\d{1,2} )?(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]* \d{4}\b|\bversion \d+`)
)

// textOf is the text a reader gets from an HTML fragment: tags dropped
// (the SVG's among them, its <title>, <desc> and <text> kept as text),
// entities decoded, white space collapsed.
func textOf(fragment string) string {
	return strings.Join(strings.Fields(html.UnescapeString(mkTagRe.ReplaceAllString(fragment, " "))), " ")
}

// numbersBelow are the numbers below k in text once dates and version
// numbers are taken out, with what surrounds each.
func numbersBelow(text string, k int64) []string {
	text = mkDateRe.ReplaceAllString(text, " ")
	var out []string
	for _, m := range mkNumberRe.FindAllStringIndex(text, -1) {
		n, err := strconv.ParseInt(text[m[0]:m[1]], 10, 64)
		if err != nil || n >= k {
			continue // money amounts such as 0.10 are never counts
		}
		// "fewer than k" itself says k, never below it.
		out = append(out, fmt.Sprintf("%q", text[max(0, m[0]-40):min(len(text), m[1]+20)]))
	}
	return out
}

func TestContractPageWithFewerThanKMembersShowsNoCountBelowK(t *testing.T) {
	t.Parallel()
	const k = 5
	// One contract joined by one member, the other by k-1: each shows
	// every count as withheld, and the two pages' statistics are the same
	// word for word (no figure below k, nor any trace of one, is shown).
	a, f, one, _ := statsWorld(t, k, 1)
	body := contractBody(f)
	body["reward"] = map[string]any{"join_bonus": 7, "points_per_period": 0}
	few := a.publishContract(f, body)
	for i := range k - 1 {
		tok := token(t, app.RoleMember, fmt.Sprintf("few-%d", i))
		a.enrol(tok)
		a.joinContract(tok, few)
	}
	mark := mkSession(a, "mark", app.RoleMarketer)
	withheld := fmt.Sprintf("fewer than %d or withheld", k)
	sections := map[string]string{}
	for _, id := range []string{one, few} {
		page := mkExpectPage(t, mkPage(a, mark, "GET", "/account/contracts/"+id, nil), http.StatusOK)
		stats := statsSection(t, page)
		// Each count by status, and the points issued, read "fewer than k".
		rows := countsTable(t, stats)
		if len(rows) != 7 {
			t.Fatalf("%d rows of counts, want 7:\n%s", len(rows), stats)
		}
		for _, r := range rows {
			if got := textOf(r[2]); got != withheld {
				t.Errorf("%s reads %q, want %q", textOf(r[1]), got, withheld)
			}
		}
		if !strings.Contains(textOf(stats), "Points issued "+withheld+".") {
			t.Errorf("the points issued are not withheld:\n%s", textOf(stats))
		}
		// Every cell of the series' table too (its first column, a date, is
		// a row header).
		cells := 0
		for _, c := range mkCellRe.FindAllStringSubmatch(stats, -1) {
			cells++
			if got := textOf(c[1]); got != withheld {
				t.Errorf("a cell of the series reads %q, want %q", got, withheld)
			}
		}
		if cells < 3 {
			t.Errorf("%d cells in the series' table, want at least one day of joins, active and endings", cells)
		}
		if !strings.Contains(stats, "<svg") {
			t.Error("no chart")
		}
		// No number below k anywhere in the statistics, the chart's text
		// included, but dates and the version.
		if found := numbersBelow(textOf(mkTickRe.ReplaceAllString(stats, "")), k); len(found) > 0 {
			t.Errorf("numbers below k = %d in the statistics: %s", k, strings.Join(found, ", "))
		}
		// Nor in any attribute: the chart's geometry must not depend on a
		// withheld count (checked below by comparing the two pages whole).
		if !strings.Contains(textOf(stats), "could point to particular members") {
			t.Error("the page does not say why small counts are hidden")
		}
		sections[id] = strings.ReplaceAll(stats, id, "ID")
	}
	if sections[one] != sections[few] {
		t.Errorf("the statistics of 1 member and of %d members differ: a count below k shows through\n--- 1:\n%s\n--- %d:\n%s", k-1, sections[one], k-1, sections[few])
	}
	// The JSON says the same (GET /v1/contracts/{id}/stats is the same use case).
	st := expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + few + "/stats", Token: f.marketer}), 200).json(t)
	if st["joins"] != nil || st["min_count"] != float64(k) {
		t.Fatalf("stats %v", st)
	}
}

func TestContractPageWithKJoinsShowsTheFigures(t *testing.T) {
	t.Parallel()
	a, _, id, _ := statsWorld(t, 3, 3) // 3 members, 7 points each at 0.003 EUR
	page := mkExpectPage(t, mkPage(a, mkSession(a, "mark", app.RoleMarketer), "GET", "/account/contracts/"+id, nil), http.StatusOK)
	stats := statsSection(t, page)
	rows := map[string]string{}
	for _, r := range countsTable(t, stats) {
		rows[textOf(r[1])] = textOf(r[2])
	}
	if rows["Joined"] != "3" {
		t.Errorf("joined reads %q, want 3 (rows %v)", rows["Joined"], rows)
	}
	// Active would tell that every ending is 0 (3 joins, 3 active): withheld.
	if rows["Active now"] != "fewer than 3 or withheld" {
		t.Errorf("active reads %q", rows["Active now"])
	}
	if !strings.Contains(textOf(stats), "Points issued 21 points, worth 0.06 EUR.") {
		t.Errorf("the points and their value are not shown:\n%s", textOf(stats))
	}
	cells := mkCellRe.FindAllStringSubmatch(stats, -1)
	if len(cells) < 1 || textOf(cells[0][1]) == "" {
		t.Fatalf("no series table")
	}
	if !strings.Contains(stats, `<td>3</td>`) {
		t.Errorf("the day's 3 joins are not in the series' table:\n%s", stats)
	}
	// The key terms.
	for _, want := range []string{"Coffee club, version 1", ">published<", "Reward in points", "Reward in money", "Brand", "PartnerCo"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

func TestContractPageChartIsWellFormedSVGWithRoleImgAndTitle(t *testing.T) {
	t.Parallel()
	a, _, id, _ := statsWorld(t, 3, 4)
	page := mkExpectPage(t, mkPage(a, mkSession(a, "mark", app.RoleMarketer), "GET", "/account/contracts/"+id, nil), http.StatusOK)
	i, j := strings.Index(page, "<svg"), strings.Index(page, "</svg>")
	if i < 0 || j < i {
		t.Fatal("no SVG on the page")
	}
	svg := page[i : j+len("</svg>")]
	// Strict XML, read to the end: every element closed, attributes quoted,
	// no entity XML does not define.
	d := xml.NewDecoder(strings.NewReader(svg))
	d.Strict = true
	var root *xml.StartElement
	var title string
	depth := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v\n%s", err, svg)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			depth++
			if root == nil {
				e := el.Copy()
				root = &e
			} else if depth == 2 && el.Name.Local == "title" {
				var s string
				if err := d.DecodeElement(&s, &el); err != nil {
					t.Fatal(err)
				}
				title = s
				depth--
			}
		case xml.EndElement:
			depth--
		}
	}
	if root == nil || root.Name.Local != "svg" {
		t.Fatal("the chart's root is not svg")
	}
	attrs := map[string]string{}
	for _, at := range root.Attr {
		attrs[at.Name.Local] = at.Value
	}
	if attrs["role"] != "img" || attrs["aria-labelledby"] == "" {
		t.Errorf("svg attributes %v: want role=img labelled by its title", attrs)
	}
	if strings.TrimSpace(title) == "" {
		t.Error("the SVG has no <title>")
	}
	// Its text alternative: the same figures as a table with a caption.
	if !strings.Contains(statsSection(t, page), "<caption>") {
		t.Error("no table beside the chart")
	}
}

func TestMarketerPagesAnswerHostileIdsWith404Pages(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	mark := mkSession(a, "mark", app.RoleMarketer)
	for _, id := range []string{
		"00000000-0000-4000-8000-000000000000", // a UUID no version has
		"nope", "1", "%3Cscript%3Ealert(1)%3C%2Fscript%3E", "..%2F..%2Fsignout", "a%00b", "%C0%AE", "%E2%80%AE",
		"00000000-0000-4000-8000-00000000000G", strings.Repeat("9", 2000), "%27%20OR%201%3D1--",
	} {
		for _, path := range []string{"/account/contracts/" + id, "/account/contracts/" + id + "/publish", "/account/contracts/" + id + "/retire"} {
			body := mkExpectPage(t, mkPage(a, mark, "GET", path, nil), http.StatusNotFound)
			if strings.Contains(body, "<script>") {
				t.Errorf("GET %s: the page reflects the id as markup", path)
			}
		}
		csrf := mkCSRF(t, mkExpectPage(t, mkPage(a, mark, "GET", "/account/contracts", nil), http.StatusOK))
		mkExpectPage(t, mkPage(a, mark, "POST", "/account/contracts/"+id+"/new-version", url.Values{"csrf": {csrf}}), http.StatusNotFound)
	}
}

func TestMarketerActsOnAVersionFromItsPageThroughTheAPIsUseCases(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	draft := expect(t, a.do(req{Method: "POST", Path: "/v1/contracts", Token: f.marketer, Body: contractBody(f)}), 201).json(t)["id"].(string)
	mark := mkSession(a, "mark", app.RoleMarketer)
	status := func(id string) any {
		return expect(t, a.do(req{Method: "GET", Path: "/v1/contracts/" + id, Token: f.marketer}), 200).json(t)["status"]
	}
	// Publish: the version's page links to a confirmation page, whose form publishes.
	page := mkExpectPage(t, mkPage(a, mark, "GET", "/account/contracts/"+draft, nil), http.StatusOK)
	if !strings.Contains(page, `href="/account/contracts/`+draft+`/publish"`) {
		t.Fatal("a draft's page does not offer to publish it")
	}
	confirm := mkExpectPage(t, mkPage(a, mark, "GET", "/account/contracts/"+draft+"/publish", nil), http.StatusOK)
	if status(draft) != "draft" {
		t.Fatal("the confirmation page published the draft")
	}
	csrf := mkCSRF(t, confirm)
	mkExpectPage(t, mkPage(a, mark, "POST", "/account/contracts/"+draft+"/publish", url.Values{}), http.StatusForbidden) // no CSRF token
	r := mkPage(a, mark, "POST", "/account/contracts/"+draft+"/publish", url.Values{"csrf": {csrf}})
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/account/contracts/"+draft || status(draft) != "published" {
		t.Fatalf("publish: %d %s, status %v", r.Status, r.Header.Get("Location"), status(draft))
	}
	// Publishing again is the use case's 409, as a page.
	mkExpectPage(t, mkPage(a, mark, "POST", "/account/contracts/"+draft+"/publish", url.Values{"csrf": {csrf}}), http.StatusConflict)
	// A new version: a draft, shown on its own page.
	r = mkPage(a, mark, "POST", "/account/contracts/"+draft+"/new-version", url.Values{"csrf": {csrf}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("new version: %d %s", r.Status, r.Body)
	}
	next := strings.TrimPrefix(r.Header.Get("Location"), "/account/contracts/")
	if status(next) != "draft" || next == draft {
		t.Fatalf("new version %s: %v", next, status(next))
	}
	// Retire, with a field the form does not know refused.
	mkExpectPage(t, mkPage(a, mark, "POST", "/account/contracts/"+draft+"/retire", url.Values{"csrf": {csrf}, "terminate_active": {"maybe"}}), http.StatusUnprocessableEntity)
	r = mkPage(a, mark, "POST", "/account/contracts/"+draft+"/retire", url.Values{"csrf": {csrf}})
	if r.Status != http.StatusSeeOther || status(draft) != "retired" {
		t.Fatalf("retire: %d, status %v", r.Status, status(draft))
	}
	// An admin reads the pages but does not act, as in the API.
	admin := mkSession(a, "root", app.RoleAdmin)
	page = mkExpectPage(t, mkPage(a, admin, "GET", "/account/contracts/"+next, nil), http.StatusOK)
	if strings.Contains(page, "/publish\"") {
		t.Error("an admin is offered to publish")
	}
	mkExpectPage(t, mkPage(a, admin, "GET", "/account/contracts/"+next+"/publish", nil), http.StatusForbidden)
	mkExpectPage(t, mkPage(a, admin, "POST", "/account/contracts/"+next+"/publish", url.Values{"csrf": {mkCSRF(t, page)}}), http.StatusForbidden)
	if status(next) != "draft" {
		t.Fatal("an admin published a draft")
	}
}
