package http

import (
	"bytes"
	"encoding/csv"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

func (h *handlers) reportRoutes(v1 fiber.Router, auth roleGate) {
	v1.Get("/reports/points-liability", auth(app.RoleAdmin), h.snapshot, h.pointsLiability)
}

// liabilityPointsDTO is an amount of points and its value (a decimal string in the
// report's currency; null when no point value is set).
type liabilityPointsDTO struct {
	Points int64   `json:"points"`
	Value  *string `json:"value"`
}

type liabilityBalanceDTO struct {
	Points    int64   `json:"points"`
	Value     *string `json:"value"`
	Available int64   `json:"available"`
	Pending   int64   `json:"pending"`
}

type contractIssuedDTO struct {
	ContractID *string `json:"contract_id"`
	Title      string  `json:"title"`
	Points     int64   `json:"points"`
	Value      *string `json:"value"`
}

type issuedDTO struct {
	Points     int64               `json:"points"`
	Value      *string             `json:"value"`
	ByContract []contractIssuedDTO `json:"by_contract"`
}

type monthDTO struct {
	Month  *string `json:"month"`
	Points int64   `json:"points"`
	Value  *string `json:"value"`
}

type rollForwardDTO struct {
	Opening  liabilityBalanceDTO `json:"opening"`
	Issued   issuedDTO           `json:"issued"`
	Vested   liabilityPointsDTO  `json:"vested"`
	Voided   liabilityPointsDTO  `json:"voided"`
	Redeemed liabilityPointsDTO  `json:"redeemed"`
	Expired  liabilityPointsDTO  `json:"expired"`
	Closing  liabilityBalanceDTO `json:"closing"`
}

type outstandingDTO struct {
	ByVintage []monthDTO `json:"by_vintage"`
	ByExpiry  []monthDTO `json:"by_expiry"`
}

type liabilityDTO struct {
	From        string          `json:"from"`
	To          string          `json:"to"`
	AsOf        string          `json:"as_of"`
	Provisional bool            `json:"provisional"`
	PointValue  *moneyAmountDTO `json:"point_value"`
	RollForward rollForwardDTO  `json:"roll_forward"`
	Outstanding outstandingDTO  `json:"outstanding"`
}

func liabilityOf(r app.LiabilityReport) liabilityDTO {
	value := func(points int64) *string {
		if r.Valuer == nil {
			return nil
		}
		s := r.Valuer.Of(points)
		return &s
	}
	pts := func(n int64) liabilityPointsDTO { return liabilityPointsDTO{Points: n, Value: value(n)} }
	bal := func(b domain.LiabilityBalance) liabilityBalanceDTO {
		return liabilityBalanceDTO{Points: b.Total(), Value: value(b.Total()), Available: b.Available, Pending: b.Pending}
	}
	f := r.Figures
	out := liabilityDTO{From: timeText(r.Period.From), To: timeText(r.Period.To), AsOf: timeText(f.AsOf), Provisional: f.Provisional(r.Period)}
	if r.PointValue != nil {
		out.PointValue = &moneyAmountDTO{Currency: r.PointValue.Currency, Amount: r.PointValue.Amount}
	}
	issued := issuedDTO{Points: f.IssuedTotal(), Value: value(f.IssuedTotal()), ByContract: []contractIssuedDTO{}}
	for _, c := range f.Issued {
		row := contractIssuedDTO{Title: c.Title, Points: c.Points, Value: value(c.Points)}
		if c.ContractID != "" {
			id := c.ContractID
			row.ContractID = &id
		}
		issued.ByContract = append(issued.ByContract, row)
	}
	out.RollForward = rollForwardDTO{Opening: bal(f.Opening), Issued: issued, Vested: pts(f.Vested), Voided: pts(f.Voided),
		Redeemed: pts(f.Redeemed), Expired: pts(f.Expired), Closing: bal(f.Closing)}
	months := func(ms []domain.MonthPoints) []monthDTO {
		out := make([]monthDTO, 0, len(ms))
		for _, m := range ms {
			row := monthDTO{Points: m.Points, Value: value(m.Points)}
			if m.Month != "" {
				month := m.Month
				row.Month = &month
			}
			out = append(out, row)
		}
		return out
	}
	out.Outstanding = outstandingDTO{ByVintage: months(f.ByVintage), ByExpiry: months(f.ByExpiry)}
	return out
}

func (h *handlers) pointsLiability(c *fiber.Ctx) error {
	format, err := enumQuery(c, "format")
	if err != nil {
		return err
	}
	if format != "" && format != "json" && format != "csv" {
		return domain.Invalid("/query/format", "must be json or csv")
	}
	r, err := h.svc.Reports.PointsLiability(c.UserContext(), principal(c), c.Query("from"), c.Query("to"))
	if err != nil {
		return err
	}
	if format != "csv" {
		return c.JSON(liabilityOf(r))
	}
	body, err := liabilityCSV(liabilityOf(r))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8; header=present")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="points-liability.csv"`)
	return c.Send(body)
}

// liabilityCSV is the report as one table (RFC 4180, header row): section,
// line, contract_id, month, points, value, currency. Every figure of the
// JSON is one row, in its order; the roll-forward's opening and closing
// have their available and pending rows too. Values are decimal strings,
// empty without a point value.
func liabilityCSV(r liabilityDTO) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	currency := ""
	if r.PointValue != nil {
		currency = r.PointValue.Currency
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	row := func(section, line, contract, month string, points int64, value *string) {
		_ = w.Write([]string{section, safeCell(line), contract, month, strconv.FormatInt(points, 10), str(value), currency})
	}
	_ = w.Write([]string{"section", "line", "contract_id", "month", "points", "value", "currency"})
	rf := r.RollForward
	row("period", r.From+" to "+r.To, "", "", 0, nil)
	status := "final"
	if r.Provisional {
		status = "provisional"
	}
	row("period", status+" as of "+r.AsOf, "", "", 0, nil)
	row("roll_forward", "opening", "", "", rf.Opening.Points, rf.Opening.Value)
	row("roll_forward", "opening_available", "", "", rf.Opening.Available, nil)
	row("roll_forward", "opening_pending", "", "", rf.Opening.Pending, nil)
	row("roll_forward", "issued", "", "", rf.Issued.Points, rf.Issued.Value)
	for _, c := range rf.Issued.ByContract {
		row("issued_by_contract", c.Title, str(c.ContractID), "", c.Points, c.Value)
	}
	row("roll_forward", "vested", "", "", rf.Vested.Points, rf.Vested.Value)
	row("roll_forward", "voided", "", "", rf.Voided.Points, rf.Voided.Value)
	row("roll_forward", "redeemed", "", "", rf.Redeemed.Points, rf.Redeemed.Value)
	row("roll_forward", "expired", "", "", rf.Expired.Points, rf.Expired.Value)
	row("roll_forward", "closing", "", "", rf.Closing.Points, rf.Closing.Value)
	row("roll_forward", "closing_available", "", "", rf.Closing.Available, nil)
	row("roll_forward", "closing_pending", "", "", rf.Closing.Pending, nil)
	for _, m := range r.Outstanding.ByVintage {
		row("outstanding_by_vintage", "earned", "", str(m.Month), m.Points, m.Value)
	}
	for _, m := range r.Outstanding.ByExpiry {
		line := "expires"
		if m.Month == nil {
			line = "never_expires"
		}
		row("outstanding_by_expiry", line, "", str(m.Month), m.Points, m.Value)
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// safeCell neutralises a free-text cell a spreadsheet would run as a
// formula (OWASP "CSV Injection"): one starting with = + - @, a tab or a
// carriage return gets a leading apostrophe, which spreadsheets show as
// text and do not evaluate. Numbers and Quid's own words never start so;
// only contract titles, which marketers write, can.
func safeCell(s string) string {
	if s != "" && bytes.IndexByte([]byte("=+-@\t\r"), s[0]) >= 0 {
		return "'" + s
	}
	return s
}
