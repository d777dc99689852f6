package app

import (
	"context"
	"fmt"

	"github.com/quidpro/quid/domain"
)

// ProgrammeInput is a programme identity as an admin sends it.
type ProgrammeInput struct {
	LegalName, Address, ContactEmail, DPOContact string
	AuthorityName, ComplaintURL                  string
	PointValue                                   domain.PointValue
	Jurisdictions                                []string
}

// PutProgramme records a new version of the programme identity (admins
// only); earlier versions stay, as contracts published under them name
// them. The store numbers the version.
func (s *Contracts) PutProgramme(ctx context.Context, p Principal, in ProgrammeInput) (domain.Programme, error) {
	if err := p.Require(RoleAdmin); err != nil {
		return domain.Programme{}, err
	}
	prog, err := s.policy.Catalog.ValidateProgramme(domain.Programme{LegalName: in.LegalName, Address: in.Address,
		ContactEmail: in.ContactEmail, DPOContact: in.DPOContact, AuthorityName: in.AuthorityName, ComplaintURL: in.ComplaintURL,
		PointValue: in.PointValue, Jurisdictions: in.Jurisdictions, CreatedAt: s.clock.Now()})
	if err != nil {
		return domain.Programme{}, err
	}
	out, err := s.store.AddProgramme(ctx, prog)
	if err != nil {
		return domain.Programme{}, fmt.Errorf("add programme version: %w", err)
	}
	return out, nil
}

// Programme is the programme identity in force; ok is false before an
// admin has set one.
func (s *Contracts) Programme(ctx context.Context) (domain.Programme, bool, error) {
	return s.store.CurrentProgramme(ctx)
}

// RewardValues maps each contract's id to its reward in money. A published
// version is valued at the point value frozen into its terms (what it
// promised); a draft, or a version published before programme identities
// existed, at the programme's current one. Contracts missing from the map
// have no point value to go by (no programme identity set yet).
func (s *Contracts) RewardValues(ctx context.Context, cs ...domain.Contract) (map[string]domain.RewardValue, error) {
	out := make(map[string]domain.RewardValue, len(cs))
	var current *domain.Programme
	needCurrent := false
	for _, c := range cs {
		needCurrent = needCurrent || c.Terms().Programme == nil
	}
	if needCurrent {
		p, ok, err := s.store.CurrentProgramme(ctx)
		if err != nil {
			return nil, fmt.Errorf("read programme: %w", err)
		}
		if ok {
			current = &p
		}
	}
	for _, c := range cs {
		prog := c.Terms().Programme
		if prog == nil {
			prog = current
		}
		if prog == nil {
			continue
		}
		digits, ok := s.policy.Catalog.Currency(prog.PointValue.Currency)
		if !ok {
			return nil, fmt.Errorf("programme version %d: currency %s is unknown", prog.Version, prog.PointValue.Currency)
		}
		v, err := c.Terms().ValueOf(prog.PointValue, digits)
		if err != nil {
			return nil, err
		}
		out[c.ID()] = v
	}
	return out, nil
}
