package http

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// chartSeries is a time series for renderChart and renderChartTable:
// one label per bucket (a date, shown as it is, escaped) and the named
// lines, each with one value per label. A withheld value (k-anonymity) is
// never drawn as a number: the line breaks there and the bucket is shaded.
type chartSeries struct {
	// ID names the chart's title and description elements (letters,
	// digits and '-' kept, anything else dropped); unique per page.
	ID          string
	Title       string
	Description string
	// MinCount is k, for the "fewer than k" notes.
	MinCount int64
	// LabelHeading heads the table's first column ("Day", "Week of", …).
	LabelHeading string
	Labels       []string
	Lines        []chartLine
}

// chartLine is one named line; Values has one count per label.
type chartLine struct {
	Name   string
	Values []domain.Count
}

// statsChart is the time series of st for renderChart and
// renderChartTable: joins, active exchanges and endings per bucket.
func statsChart(id, title string, st app.ContractStats) chartSeries {
	s := chartSeries{ID: id, Title: title, MinCount: st.MinCount, LabelHeading: "Day"}
	layout := "2 Jan 2006"
	switch st.Step {
	case domain.StatsWeek:
		s.LabelHeading = "Week from"
	case domain.StatsMonth:
		s.LabelHeading, layout = "Month", "Jan 2006"
	}
	joins, active, endings := chartLine{Name: "Joins"}, chartLine{Name: "Active"}, chartLine{Name: "Endings"}
	for _, b := range st.Series {
		s.Labels = append(s.Labels, b.Start.UTC().Format(layout))
		joins.Values = append(joins.Values, b.Joins)
		active.Values = append(active.Values, b.Active)
		endings.Values = append(endings.Values, b.Endings)
	}
	s.Lines = []chartLine{active, joins, endings}
	step := string(st.Step)
	if step == "" {
		step = "day"
	}
	s.Description = fmt.Sprintf("Exchanges joined, active at the end of each %s, and ended (cancelled, expired, terminated, erased or moved to a newer version), per %s, UTC.", step, step)
	return s
}

// withheldText is what a withheld count reads: below k, or withheld so
// that a count below k cannot be worked out from the others (the same
// words for both, or the difference would itself tell).
func withheldText(k int64) string { return fmt.Sprintf("fewer than %d or withheld", k) }

// Geometry of the chart in viewBox units; it scales to its container.
const (
	chartW, chartH = 720.0, 380.0
	plotL, plotR   = 56.0, 600.0 // the right margin holds the direct labels
	plotT, plotB   = 20.0, 290.0
	legendY        = 350.0
)

// lineStyles tell lines apart without colour: a dash pattern and a marker
// shape each (colours, dark enough for contrast, only help).
var lineStyles = []struct{ stroke, dash, marker string }{
	{"#1f3a93", "", "circle"},
	{"#8a3b00", "8 4", "square"},
	{"#1e5631", "2 3", "triangle"},
	{"#5b2c6f", "10 3 2 3", "diamond"},
}

var idChars = regexp.MustCompile(`[^a-zA-Z0-9-]`)

type chartPoint struct{ X, Y string }

type chartLineView struct {
	Name, Stroke, Dash, Marker string
	Path                       string
	Points                     []chartPoint
	LabelX, LabelY             string
	Labelled                   bool
	LegendX, LegendX2, LegendM string
	Note                       string
}

type chartView struct {
	ID, Title, Desc, Note string
	Width, Height         string
	PlotL, PlotR          string
	PlotT, PlotB          string
	PlotW, PlotH          string
	LegendY, LegendTextY  string
	XTicks, YTicks        []chartTick
	Bands                 []chartBand
	Lines                 []chartLineView
}

type chartTick struct{ X, Y, Label string }

type chartBand struct{ X, W, Title string }

func num(f float64) string { return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64) }

var chartTemplate = template.Must(template.New("chart").Funcs(template.FuncMap{"markerAt": markerAt}).Parse(`<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{{.ID}}-title {{.ID}}-desc" viewBox="0 0 {{.Width}} {{.Height}}" width="100%" preserveAspectRatio="xMidYMid meet" font-family="sans-serif" font-size="12">
<title id="{{.ID}}-title">{{.Title}}</title>
<desc id="{{.ID}}-desc">{{.Desc}}</desc>
<defs>
<pattern id="{{.ID}}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#9a9a9a" stroke-width="2"/></pattern>
</defs>
{{range .Bands}}<rect x="{{.X}}" y="{{$.PlotT}}" width="{{.W}}" height="{{$.PlotH}}" fill="url(#{{$.ID}}-hatch)" fill-opacity="0.5"><title>{{.Title}}</title></rect>
{{end}}{{range .YTicks}}<line x1="{{$.PlotL}}" y1="{{.Y}}" x2="{{$.PlotR}}" y2="{{.Y}}" stroke="#d0d0d0" stroke-width="1"/>
<text x="{{.X}}" y="{{.Y}}" text-anchor="end" dominant-baseline="middle" fill="#222">{{.Label}}</text>
{{end}}<line x1="{{.PlotL}}" y1="{{.PlotB}}" x2="{{.PlotR}}" y2="{{.PlotB}}" stroke="#222" stroke-width="1"/>
<line x1="{{.PlotL}}" y1="{{.PlotT}}" x2="{{.PlotL}}" y2="{{.PlotB}}" stroke="#222" stroke-width="1"/>
{{range .XTicks}}<line x1="{{.X}}" y1="{{$.PlotB}}" x2="{{.X}}" y2="{{.Y}}" stroke="#222" stroke-width="1"/>
<text x="{{.X}}" y="{{.Y}}" dy="14" text-anchor="middle" fill="#222">{{.Label}}</text>
{{end}}{{range .Lines}}<g stroke="{{.Stroke}}" fill="none" stroke-width="2">
{{if .Path}}<path d="{{.Path}}"{{if .Dash}} stroke-dasharray="{{.Dash}}"{{end}}/>
{{end}}{{$line := .}}{{range .Points}}{{template "marker" (markerAt $line.Marker .X .Y $line.Stroke)}}
{{end}}</g>
{{if .Labelled}}<text x="{{.LabelX}}" y="{{.LabelY}}" dominant-baseline="middle" fill="{{.Stroke}}" font-weight="bold">{{.Name}}</text>
{{end}}{{end}}<g aria-hidden="true">
{{range .Lines}}<line x1="{{.LegendX}}" y1="{{$.LegendY}}" x2="{{.LegendX2}}" y2="{{$.LegendY}}" stroke="{{.Stroke}}" stroke-width="2"{{if .Dash}} stroke-dasharray="{{.Dash}}"{{end}}/>
{{template "marker" (markerAt .Marker .LegendM $.LegendY .Stroke)}}
<text x="{{.LegendX2}}" y="{{$.LegendY}}" dx="6" dominant-baseline="middle" fill="#222">{{.Name}}{{.Note}}</text>
{{end}}</g>
{{if .Note}}<text x="{{.PlotL}}" y="{{.LegendTextY}}" fill="#222"><tspan font-weight="bold">Hatched:</tspan> {{.Note}}</text>
{{end}}</svg>
{{define "marker"}}{{if eq .Shape "circle"}}<circle cx="{{.X}}" cy="{{.Y}}" r="4" fill="{{.Stroke}}" stroke="{{.Stroke}}"/>{{else if eq .Shape "square"}}<rect x="{{.X0}}" y="{{.Y0}}" width="8" height="8" fill="#fff" stroke="{{.Stroke}}" stroke-width="2"/>{{else if eq .Shape "triangle"}}<path d="{{.Triangle}}" fill="{{.Stroke}}" stroke="{{.Stroke}}"/>{{else}}<path d="{{.Diamond}}" fill="#fff" stroke="{{.Stroke}}" stroke-width="2"/>{{end}}{{end}}`))

type marker struct {
	Shape, X, Y, X0, Y0, Triangle, Diamond, Stroke string
}

// markerAt places a marker of shape at (x, y).
func markerAt(shape, xs, ys, stroke string) marker {
	x, _ := strconv.ParseFloat(xs, 64)
	y, _ := strconv.ParseFloat(ys, 64)
	return marker{Shape: shape, X: xs, Y: ys, X0: num(x - 4), Y0: num(y - 4), Stroke: stroke,
		Triangle: fmt.Sprintf("M%s %sL%s %sL%s %sZ", num(x), num(y-5), num(x+5), num(y+4), num(x-5), num(y+4)),
		Diamond:  fmt.Sprintf("M%s %sL%s %sL%s %sL%s %sZ", num(x), num(y-5), num(x+5), num(y), num(x), num(y+5), num(x-5), num(y))}
}

// niceStep is a tick step of 1, 2 or 5 times a power of ten giving at
// most five steps up to top.
func niceStep(top int64) int64 {
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if top <= 5*m*p || p > math.MaxInt64/100 {
				return m * p
			}
		}
	}
}

// renderChart draws s as an SVG line chart, server-side and script-free:
// role="img" with <title> and <desc> (aria-labelledby), a viewBox at width
// 100% so it scales, axes with tick labels, a legend, and a label at the
// end of each line. Lines differ by dash pattern and marker shape, not only
// colour. A withheld value breaks its line (never drawn as zero) and
// hatches its bucket, with a "fewer than k or withheld" note. Only SVG
// presentation attributes, no style attribute (the CSP forbids inline
// styles). Labels and names are escaped by html/template. Pair it with
// renderChartTable for screen readers.
func renderChart(s chartSeries) (template.HTML, error) {
	n := len(s.Labels)
	id := idChars.ReplaceAllString(s.ID, "")
	if id == "" {
		id = "chart"
	}
	v := chartView{ID: id, Title: s.Title, Width: num(chartW), Height: num(chartH), PlotL: num(plotL), PlotR: num(plotR),
		PlotT: num(plotT), PlotB: num(plotB), PlotW: num(plotR - plotL), PlotH: num(plotB - plotT),
		LegendY: num(legendY), LegendTextY: num(legendY + 24)}
	var top int64
	withheldAt := make([]bool, n)
	for _, l := range s.Lines {
		for i := 0; i < n && i < len(l.Values); i++ {
			if c, ok := l.Values[i].Value(); ok {
				top = max(top, c)
			} else {
				withheldAt[i] = true
			}
		}
	}
	step := niceStep(max(top, 1))
	top = (max(top, 1) + step - 1) / step * step
	slot := (plotR - plotL) / float64(max(n, 1))
	xAt := func(i int) float64 { return plotL + slot*(float64(i)+0.5) }
	yAt := func(c int64) float64 { return plotB - (plotB-plotT)*float64(c)/float64(top) }
	for t := int64(0); t <= top; t += step {
		v.YTicks = append(v.YTicks, chartTick{X: num(plotL - 6), Y: num(yAt(t)), Label: strconv.FormatInt(t, 10)})
	}
	every := max(1, (n+7)/8) // at most eight date labels
	for i := 0; i < n; i += every {
		v.XTicks = append(v.XTicks, chartTick{X: num(xAt(i)), Y: num(plotB + 5), Label: s.Labels[i]})
	}
	anyWithheld := false
	for i, w := range withheldAt {
		if !w {
			continue
		}
		anyWithheld = true
		var names []string
		for _, l := range s.Lines {
			if i < len(l.Values) && l.Values[i].Withheld {
				names = append(names, l.Name)
			}
		}
		v.Bands = append(v.Bands, chartBand{X: num(plotL + slot*float64(i)), W: num(slot),
			Title: fmt.Sprintf("%s: %s %s", s.Labels[i], strings.Join(names, ", "), withheldText(s.MinCount))})
	}
	desc := s.Description
	if anyWithheld {
		v.Note = fmt.Sprintf("%s (k-anonymity); the lines break there.", withheldText(s.MinCount))
		desc += fmt.Sprintf(" Counts below %d are not shown, nor counts that would reveal one: those buckets are hatched and the lines break there.", s.MinCount)
	}
	v.Desc = strings.TrimSpace(desc)
	legendX := plotL
	var lastYs []float64
	for li, l := range s.Lines {
		st := lineStyles[li%len(lineStyles)]
		lv := chartLineView{Name: l.Name, Stroke: st.stroke, Dash: st.dash, Marker: st.marker}
		var path strings.Builder
		open := false
		for i := 0; i < n; i++ {
			c, ok := domain.Count{Withheld: true}.Value()
			if i < len(l.Values) {
				c, ok = l.Values[i].Value()
			}
			if !ok {
				open = false
				continue
			}
			x, y := xAt(i), yAt(c)
			if open {
				fmt.Fprintf(&path, "L%s %s", num(x), num(y))
			} else {
				fmt.Fprintf(&path, "M%s %s", num(x), num(y))
			}
			open = true
			lv.Points = append(lv.Points, chartPoint{num(x), num(y)})
			lv.LabelX, lv.Labelled = num(x+9), true
			lv.LabelY = num(y)
		}
		lv.Path = path.String()
		if !lv.Labelled {
			lv.Note = " (" + withheldText(s.MinCount) + " throughout)"
		} else {
			// Direct labels must not overlap: keep them 14 units apart.
			y, _ := strconv.ParseFloat(lv.LabelY, 64)
			for _, other := range lastYs {
				if math.Abs(other-y) < 14 {
					y = other + 14
				}
			}
			lastYs = append(lastYs, y)
			lv.LabelY = num(y)
		}
		lv.LegendX, lv.LegendX2, lv.LegendM = num(legendX), num(legendX+28), num(legendX+14)
		legendX += 40 + 7*float64(len([]rune(l.Name+lv.Note)))
		v.Lines = append(v.Lines, lv)
	}
	var b bytes.Buffer
	if err := chartTemplate.Execute(&b, v); err != nil {
		return "", fmt.Errorf("render chart: %w", err)
	}
	return template.HTML(b.String()), nil //nolint:gosec // built by html/template, which escaped every value
}

var chartTableTemplate = template.Must(template.New("table").Parse(`<table>
<caption>{{.Title}}{{if .Note}} <small>{{.Note}}</small>{{end}}</caption>
<thead><tr><th scope="col">{{.Heading}}</th>{{range .Names}}<th scope="col">{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range .Rows}}<tr><th scope="row">{{.Label}}</th>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{end}}</tbody>
</table>
`))

// renderChartTable is s as an HTML table, the same figures as renderChart
// for screen readers and anyone who prefers numbers: a caption, a header
// cell per line (scope col), a row per label (scope row), and a
// withheld count as "fewer than k or withheld", never a number.
func renderChartTable(s chartSeries) (template.HTML, error) {
	type row struct {
		Label string
		Cells []string
	}
	view := struct {
		Title, Note, Heading string
		Names                []string
		Rows                 []row
	}{Title: s.Title, Heading: s.LabelHeading}
	if view.Heading == "" {
		view.Heading = "Date"
	}
	for _, l := range s.Lines {
		view.Names = append(view.Names, l.Name)
	}
	for i, label := range s.Labels {
		r := row{Label: label}
		for _, l := range s.Lines {
			text := withheldText(s.MinCount)
			if i < len(l.Values) {
				if c, ok := l.Values[i].Value(); ok {
					text = strconv.FormatInt(c, 10)
				}
			}
			if text == withheldText(s.MinCount) {
				view.Note = fmt.Sprintf("Counts below %d are not shown, nor counts that would reveal one.", s.MinCount)
			}
			r.Cells = append(r.Cells, text)
		}
		view.Rows = append(view.Rows, r)
	}
	var b bytes.Buffer
	if err := chartTableTemplate.Execute(&b, view); err != nil {
		return "", fmt.Errorf("render chart table: %w", err)
	}
	return template.HTML(b.String()), nil //nolint:gosec // built by html/template, which escaped every value
}
