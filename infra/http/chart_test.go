package http

import (
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

func shown(n int64) domain.Count { return domain.Count{N: n} }

var withheld = domain.Count{Withheld: true}

func hostileSeries() chartSeries {
	return chartSeries{ID: `c"1 onload=alert(1)`, Title: `Joins <script>alert("t")</script> & 'more'`, Description: `desc ]]> <b>`,
		MinCount: 10, Labels: []string{`<script>alert(1)</script>`, `"quoted" ]]>`, `o'brien & josé`, "2026-11-30"},
		Lines: []chartLine{
			{Name: `Active <img src=x onerror=alert(1)>`, Values: []domain.Count{shown(12), shown(15), withheld, shown(20)}},
			{Name: `Joins "x" ]]>`, Values: []domain.Count{shown(12), withheld, shown(11), shown(14)}},
			{Name: "Endings", Values: []domain.Count{withheld, withheld, withheld, withheld}},
		}}
}

// wellFormed decodes out as XML to its end, and finds no element or
// attribute that a label could have smuggled in.
func wellFormed(t *testing.T, out string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(out))
	d.Strict = true
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, out)
		}
		if el, ok := tok.(xml.StartElement); ok {
			if el.Name.Local == "script" || el.Name.Local == "img" || el.Name.Local == "b" {
				t.Fatalf("element %s smuggled in:\n%s", el.Name.Local, out)
			}
			for _, a := range el.Attr {
				if strings.HasPrefix(a.Name.Local, "on") || a.Name.Local == "style" {
					t.Fatalf("attribute %s on %s:\n%s", a.Name.Local, el.Name.Local, out)
				}
			}
		}
	}
}

func TestChartEscapesHostileLabelsAndStaysWellFormedXML(t *testing.T) {
	t.Parallel()
	s := hostileSeries()
	svg, err := renderChart(s)
	if err != nil {
		t.Fatal(err)
	}
	table, err := renderChartTable(s)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"svg": string(svg), "table": string(table)} {
		wellFormed(t, out)
		for _, bad := range []string{"<script", "<img", "<b>", "]]>", `"quoted"`, `"t"`} {
			if strings.Contains(out, bad) {
				t.Errorf("%s holds %q unescaped:\n%s", name, bad, out)
			}
		}
		if strings.Contains(out, "style=") {
			t.Errorf("%s has a style attribute, which the CSP forbids", name)
		}
		if !strings.Contains(out, "o&#39;brien &amp; josé") {
			t.Errorf("%s lost a label:\n%s", name, out)
		}
	}
	for _, want := range []string{`role="img"`, `aria-labelledby="c1onloadalert1-title c1onloadalert1-desc"`, `<title id="c1onloadalert1-title">`,
		`<desc id="c1onloadalert1-desc">`, `viewBox="0 0 720 380"`, `width="100%"`} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("svg lacks %s", want)
		}
	}
}

func TestChartDrawsWithheldBucketsAsGapsNeverAsZero(t *testing.T) {
	t.Parallel()
	s := chartSeries{ID: "c", Title: "T", MinCount: 10, Labels: []string{"d1", "d2", "d3", "d4"},
		Lines: []chartLine{{Name: "Active", Values: []domain.Count{shown(40), withheld, shown(40), shown(40)}}}}
	svg, err := renderChart(s)
	if err != nil {
		t.Fatal(err)
	}
	out := string(svg)
	// One path, two runs (d1, then d3-d4): the line breaks at d2.
	paths := regexp.MustCompile(`<path d="([^"]*)"`).FindAllStringSubmatch(out, -1)
	if len(paths) != 1 || strings.Count(paths[0][1], "M") != 2 || strings.Count(paths[0][1], "L") != 1 {
		t.Fatalf("paths %q: want one line broken at the withheld bucket", paths)
	}
	// Three markers, all at 40, and the legend's: nothing at the zero
	// line for d2.
	marks := regexp.MustCompile(`<circle cx="[^"]*" cy="([^"]*)"`).FindAllStringSubmatch(out, -1)
	if len(marks) != 4 {
		t.Fatalf("%d markers, want 3 and the legend's (none for the withheld bucket)", len(marks))
	}
	for _, m := range marks {
		if m[1] == "290" { // plotB: the zero line
			t.Fatalf("a point drawn at zero:\n%s", out)
		}
	}
	if !strings.Contains(out, "fewer than 10 or withheld") || strings.Count(out, `fill="url(#c-hatch)"`) != 1 {
		t.Fatalf("the withheld bucket is not hatched with its note:\n%s", out)
	}
	table, err := renderChartTable(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(table), `<tr><th scope="row">d2</th><td>fewer than 10 or withheld</td></tr>`) {
		t.Fatalf("table:\n%s", table)
	}
}

func TestChartTellsLinesApartWithoutColour(t *testing.T) {
	t.Parallel()
	s := chartSeries{ID: "c", Title: "T", MinCount: 10, Labels: []string{"a", "b"}, Lines: []chartLine{
		{Name: "Active", Values: []domain.Count{shown(10), shown(20)}},
		{Name: "Joins", Values: []domain.Count{shown(10), shown(20)}},
		{Name: "Endings", Values: []domain.Count{shown(10), shown(20)}}}}
	svg, err := renderChart(s)
	if err != nil {
		t.Fatal(err)
	}
	out := string(svg)
	if strings.Count(out, "stroke-dasharray=") < 4 { // two dashed lines, in the plot and the legend
		t.Errorf("lines are not dashed apart:\n%s", out)
	}
	if !strings.Contains(out, "<circle") || !strings.Contains(out, "<rect x=") || !strings.Contains(out, `<path d="M`) {
		t.Errorf("markers are not of different shapes:\n%s", out)
	}
	// Direct labels at the line ends (at the same height: nudged apart), and a legend.
	for _, name := range []string{">Active</text>", ">Joins</text>", ">Endings</text>"} {
		if strings.Count(out, name) != 2 {
			t.Errorf("%s should appear as a direct label and in the legend", name)
		}
	}
	ys := regexp.MustCompile(`<text x="[^"]*" y="([^"]*)" dominant-baseline="middle" fill="#[0-9a-f]+" font-weight="bold">`).FindAllStringSubmatch(out, -1)
	if len(ys) != 3 || ys[0][1] == ys[1][1] || ys[1][1] == ys[2][1] {
		t.Errorf("direct labels overlap: %q", ys)
	}
	if !strings.Contains(out, `text-anchor="end" dominant-baseline="middle" fill="#222">20</text>`) {
		t.Errorf("no y tick label at 20:\n%s", out)
	}
	if strings.Contains(out, "Hatched") {
		t.Error("a note about withheld buckets where there are none")
	}
}

func TestStatsChartTakesTheSeriesOfContractStats(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	st := app.ContractStats{Step: domain.StatsDay, PublishedStats: domain.PublishedStats{MinCount: 10,
		Series: []domain.PublishedBucket{{Start: day, End: day.AddDate(0, 0, 1), Joins: shown(12), Active: withheld, Endings: withheld}}}}
	s := statsChart("contract-1", "Coffee club", st)
	if len(s.Labels) != 1 || s.Labels[0] != "30 Nov 2026" || len(s.Lines) != 3 || s.Lines[1].Name != "Joins" || s.Lines[1].Values[0] != shown(12) {
		t.Fatalf("%+v", s)
	}
	if _, err := renderChart(s); err != nil {
		t.Fatal(err)
	}
}
