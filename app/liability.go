package app

import (
	"context"
	"fmt"

	"github.com/quidpro/quid/domain"
)

// LiabilityStore reads the points liability (domain.LiabilityFigures) of a
// period from the ledger, on one consistent snapshot.
type LiabilityStore interface {
	PointsLiability(ctx context.Context, p domain.ReportPeriod) (domain.LiabilityFigures, error)
}

// ProgrammeReader reads the programme identity in force (ok false before
// an admin has set one).
type ProgrammeReader interface {
	CurrentProgramme(ctx context.Context) (domain.Programme, bool, error)
}

// LiabilityReport is the points liability of a period, in points and, when
// the programme has a point value, in money (Valuer nil otherwise).
type LiabilityReport struct {
	Period  domain.ReportPeriod
	Figures domain.LiabilityFigures
	// PointValue is the programme's current point value the money figures
	// use; nil when no programme identity is set (points only).
	PointValue *domain.PointValue
	Valuer     *domain.Valuer
}

// Reports are the finance reports (admins only).
type Reports struct {
	store      LiabilityStore
	programmes ProgrammeReader
	currencies domain.Currencies
}

// NewReports wires the reports to the ledger, the programme identity (its
// point value) and the ISO 4217 minor units.
func NewReports(store LiabilityStore, programmes ProgrammeReader, currencies domain.Currencies) *Reports {
	return &Reports{store: store, programmes: programmes, currencies: currencies}
}

// PointsLiability is the contract liability for points over [from, to)
// (raw query values, see domain.ValidateReportPeriod): its roll-forward
// and what is outstanding at to by vintage and expiry month, valued at the
// programme's current point value (IFRS 15 measures the liability at the
// stand-alone selling price of the points; the programme's point value is
// the brand's statement of it). Admins only (403 otherwise); 422 naming
// /query/from or /query/to for a bad period.
func (r *Reports) PointsLiability(ctx context.Context, p Principal, from, to string) (LiabilityReport, error) {
	if err := p.Require(RoleAdmin); err != nil {
		return LiabilityReport{}, err
	}
	period, err := domain.ValidateReportPeriod(from, to)
	if err != nil {
		return LiabilityReport{}, err
	}
	figures, err := r.store.PointsLiability(ctx, period)
	if err != nil {
		return LiabilityReport{}, fmt.Errorf("read points liability: %w", err)
	}
	if !figures.Reconciles() {
		// The ledger's postings sum to zero (a database rule), so this is
		// a broken store, not a request: say so rather than publish it.
		return LiabilityReport{}, fmt.Errorf("points liability does not reconcile: %+v", figures)
	}
	out := LiabilityReport{Period: period, Figures: figures}
	prog, ok, err := r.programmes.CurrentProgramme(ctx)
	if err != nil {
		return LiabilityReport{}, fmt.Errorf("read programme: %w", err)
	}
	if ok {
		digits, known := r.currencies(prog.PointValue.Currency)
		v, valid := domain.NewValuer(prog.PointValue, digits)
		if !known || !valid {
			return LiabilityReport{}, fmt.Errorf("programme version %d: point value %s %s is not valid", prog.Version, prog.PointValue.Amount, prog.PointValue.Currency)
		}
		pv := prog.PointValue
		out.PointValue, out.Valuer = &pv, &v
	}
	return out, nil
}
