package app

import (
	"context"
	"time"

	"github.com/quidpro/quid/domain"
)

// Objection is a member's "no" to a purpose (GDPR Art. 21): standing
// while LiftedAt is nil.
type Objection struct {
	Purpose  string
	At       time.Time
	LiftedAt *time.Time
}

// ObjectionRepository stores objections.
type ObjectionRepository interface {
	Enrolment
	// Object locks the member, records the objection (created false when it
	// stood already) and ends every active exchange whose contract uses the
	// purpose as cancelled, actor "objection", with a member cancel's
	// effects, in one transaction; ended lists those exchanges.
	Object(ctx context.Context, memberID, purpose string) (o Objection, ended []string, created bool, err error)
	// LiftObjection ends the standing objection, keeping it with the time
	// it was lifted; false when there was none.
	LiftObjection(ctx context.Context, memberID, purpose string) (bool, error)
	// Objections is one page of the standing objections, oldest first;
	// a cursor that is not one this list issued is 400.
	Objections(ctx context.Context, memberID string, page Page) ([]Objection, string, error)
	// ObjectionHistory is every objection, standing or lifted, oldest
	// first.
	ObjectionHistory(ctx context.Context, memberID string) ([]Objection, error)
	// StandingObjections is every objection in force, oldest first (at
	// most one per catalogue purpose).
	StandingObjections(ctx context.Context, memberID string) ([]Objection, error)
}

// Objections is the right to object.
type Objections struct {
	store   ObjectionRepository
	catalog domain.Catalog
}

// NewObjections wires the objection use cases; catalog says which purposes
// exist.
func NewObjections(store ObjectionRepository, catalog domain.Catalog) *Objections {
	return &Objections{store: store, catalog: catalog}
}

// ObjectionResult is what objecting did.
type ObjectionResult struct {
	Objection Objection
	Created   bool
	Ended     []string
}

// Object records an objection to a catalogue purpose and ends what uses it.
func (s *Objections) Object(ctx context.Context, p Principal, purpose string) (ObjectionResult, error) {
	if err := p.Require(RoleMember); err != nil {
		return ObjectionResult{}, err
	}
	if _, ok := s.catalog.Purpose(purpose); !ok {
		return ObjectionResult{}, domain.Invalid("/purpose", "is not a purpose of the catalogue")
	}
	o, ended, created, err := s.store.Object(ctx, p.Subject, purpose)
	if err != nil {
		return ObjectionResult{}, err
	}
	return ObjectionResult{Objection: o, Created: created, Ended: ended}, nil
}

// errNoObjection answers lifting an objection that does not stand.
var errNoObjection = domain.NotFound("objection-not-found", "you have no objection to this purpose")

// Lift withdraws an objection: the purpose may be joined again.
func (s *Objections) Lift(ctx context.Context, p Principal, purpose string) error {
	if err := p.Require(RoleMember); err != nil {
		return err
	}
	lifted, err := s.store.LiftObjection(ctx, p.Subject, purpose)
	if err != nil {
		return err
	}
	if !lifted {
		return errNoObjection
	}
	return nil
}

// List is one page of the member's standing objections, oldest first.
func (s *Objections) List(ctx context.Context, p Principal, page Page) ([]Objection, string, error) {
	if err := p.Require(RoleMember); err != nil {
		return nil, "", err
	}
	if err := s.store.RequireEnrolled(ctx, p.Subject); err != nil {
		return nil, "", err
	}
	return s.store.Objections(ctx, p.Subject, page.Normalised())
}

// History is every objection the member made, standing or lifted, oldest
// first: the export's record of them.
func (s *Objections) History(ctx context.Context, p Principal) ([]Objection, error) {
	if err := p.Require(RoleMember); err != nil {
		return nil, err
	}
	if err := s.store.RequireEnrolled(ctx, p.Subject); err != nil {
		return nil, err
	}
	return s.store.ObjectionHistory(ctx, p.Subject)
}

// Get is the member's standing objection to purpose: 404
// objection-not-found when there is none (the Location a POST answered
// with, read after the objection was lifted).
func (s *Objections) Get(ctx context.Context, p Principal, purpose string) (Objection, error) {
	if err := p.Require(RoleMember); err != nil {
		return Objection{}, err
	}
	if err := s.store.RequireEnrolled(ctx, p.Subject); err != nil {
		return Objection{}, err
	}
	standing, err := s.store.StandingObjections(ctx, p.Subject)
	if err != nil {
		return Objection{}, err
	}
	for _, o := range standing {
		if o.Purpose == purpose {
			return o, nil
		}
	}
	return Objection{}, errNoObjection
}

// Objected is the set of purposes the member objects to now, for marking
// offers; a principal that is not a member objects to nothing.
func (s *Objections) Objected(ctx context.Context, p Principal) (map[string]bool, error) {
	if p.Role != RoleMember {
		return nil, nil
	}
	list, err := s.store.StandingObjections(ctx, p.Subject)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(list))
	for _, o := range list {
		out[o.Purpose] = true
	}
	return out, nil
}

// errObjectedPurpose refuses joining a contract that uses a purpose the
// member objects to.
func errObjectedPurpose(purposes []string) error {
	return domain.Conflict("objected-purpose", "you object to "+joinWords(purposes)+
		", which this contract uses; lift the objection (DELETE /v1/me/objections/{purpose}) to join it").At("/contract_id")
}

func joinWords(items []string) string {
	out := ""
	for i, it := range items {
		switch {
		case i == 0:
		case i == len(items)-1:
			out += " and "
		default:
			out += ", "
		}
		out += it
	}
	return out
}
