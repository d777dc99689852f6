package http

import (
	"html/template"
	"strconv"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// mkStats is a version's statistics as its page shows them: each figure
// already in words, a withheld one as withheldText(k), never a number.
// The rule that withholds them is domain.ContractCounts.Anonymise, through
// Contracts.Stats; this only words its result.
type mkStats struct {
	K      int64
	Counts []mkStatRow
	// Points and Value are the points issued and their money value, in
	// words; Value is "" when withheld or no point value is known.
	Points, Value string
	// Chart is the SVG of the series (renderChart) and Table the same
	// figures as a table (renderChartTable), its text alternative; both
	// empty without a series (nobody joined).
	Chart, Table template.HTML
}

type mkStatRow struct{ Label, Text string }

func itoa(n int) string { return strconv.Itoa(n) }

// countText is a published count in words: the number, or withheldText.
func countText(c domain.Count, k int64) string {
	n, ok := c.Value()
	if !ok {
		return withheldText(k)
	}
	return strconv.FormatInt(n, 10)
}

// statsOf words st (Contracts.Stats) for the version's page, with its
// series drawn by renderChart and tabled by renderChartTable.
func (w *web) statsOf(ct domain.Contract, st app.ContractStats) (mkStats, error) {
	k := st.MinCount
	out := mkStats{K: k, Points: countText(st.PointsIssued, k)}
	out.Counts = []mkStatRow{
		{"Joined", countText(st.Joins, k)},
		{"Active now", countText(st.Active, k)},
		{"Cancelled by the member", countText(st.Cancelled, k)},
		{"Expired", countText(st.Expired, k)},
		{"Ended by the brand (terminated)", countText(st.Terminated, k)},
		{"Moved to a newer version", countText(st.Superseded, k)},
		{"Ended by erasing the account", countText(st.Erased, k)},
	}
	if _, ok := st.PointsIssued.Value(); ok {
		out.Points += " points"
		if st.PointsValue != "" {
			out.Value = st.PointsValue + " " + st.Currency
		}
	}
	if len(st.Series) == 0 {
		return out, nil
	}
	s := statsChart("stats-"+ct.ID(), "Joins, active exchanges and endings of version "+itoa(ct.Version()), st)
	var err error
	if out.Chart, err = renderChart(s); err != nil {
		return mkStats{}, err
	}
	if out.Table, err = renderChartTable(s); err != nil {
		return mkStats{}, err
	}
	return out, nil
}
