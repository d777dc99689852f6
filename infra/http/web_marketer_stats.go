package http

import (
	"html/template"
	"strconv"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// mkStats is a version's statistics as its page shows them: each figure
// already in words ("fewer than k" when withheld, never a number).
type mkStats struct {
	K      int64
	Counts []mkStatRow
	// Points and Value are the points issued and their money value, in
	// words; Value is "" when no point value is known.
	Points, Value string
	// Chart is the SVG of the series and Table the same figures as a table
	// (the chart's text alternative); both "" without a series.
	Chart, Table template.HTML
	// Withheld is true when any figure on the page is withheld.
	Withheld bool
}

type mkStatRow struct{ Label, Text string }

func itoa(n int) string { return strconv.Itoa(n) }

// statsOf is PLACEHOLDER until the k-anonymous statistics land: it shows
// the raw counts.
func (w *web) statsOf(_ domain.Contract, st app.ContractStats) (mkStats, error) {
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	out := mkStats{K: int64(w.opts.MinCount), Points: n(st.PointsIssued)}
	out.Counts = []mkStatRow{{"Joined", n(st.Joins)}, {"Active now", n(st.Active)}, {"Cancelled", n(st.Cancelled)},
		{"Expired", n(st.Expired)}, {"Terminated", n(st.Terminated)}, {"Moved to a newer version", n(st.Superseded)}, {"Erased their account", n(st.Erased)}}
	return out, nil
}
