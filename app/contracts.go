package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/quidpro/quid/domain"
)

// Contracts is the marketer's and the public's side of contracts.
type Contracts struct {
	Contracts  ContractRepository
	Recipients RecipientRepository
	Policy     domain.ContractPolicy
	Clock      Clock
	IDs        IDs
}

// RecipientInput registers a recipient.
type RecipientInput struct {
	Name, Kind, Country, PrivacyPolicyURL string
}

func (s *Contracts) CreateRecipient(ctx context.Context, p Principal, in RecipientInput) (domain.Recipient, error) {
	if err := p.Require(RoleAdmin); err != nil {
		return domain.Recipient{}, err
	}
	r, err := domain.NewRecipient(s.IDs.NewID(), in.Name, domain.RecipientKind(in.Kind), in.Country, in.PrivacyPolicyURL, s.Clock.Now())
	if err != nil {
		return domain.Recipient{}, err
	}
	if err := s.Recipients.CreateRecipient(ctx, r); err != nil {
		return domain.Recipient{}, fmt.Errorf("create recipient: %w", err)
	}
	return r, nil
}

func (s *Contracts) GetRecipient(ctx context.Context, p Principal, id string) (domain.Recipient, error) {
	if err := p.Require(RoleAdmin, RoleMarketer); err != nil {
		return domain.Recipient{}, err
	}
	return s.Recipients.GetRecipient(ctx, id)
}

func (s *Contracts) ListRecipients(ctx context.Context, p Principal, page Page) ([]domain.Recipient, string, error) {
	if err := p.Require(RoleAdmin, RoleMarketer); err != nil {
		return nil, "", err
	}
	return s.Recipients.ListRecipients(ctx, page.Normalised())
}

// TermsInput is a contract's terms as a client sends them.
type TermsInput struct {
	Title     string
	Summary   string
	Items     []ItemInput
	Retention string
	Duration  *string
	Reward    RewardInput
	MinAge    *int // nil: the contract sets no minimum age of its own
}

type ItemInput struct {
	Category   string
	Purpose    string
	Recipients []string
}

type RewardInput struct {
	JoinBonus       int64
	Vesting         *string
	PointsPerPeriod int64
	Period          *string
	MaxPeriods      *int
}

// terms parses durations and checks the terms against the catalogue, the
// registry and the minimum period, reporting every problem at once.
func (s *Contracts) terms(ctx context.Context, in TermsInput) (domain.Terms, error) {
	var v domain.Violations
	parse := func(ptr, raw string) domain.Duration {
		d, err := domain.ParseDuration(raw)
		if err != nil {
			v.Add(ptr, err.Error())
		}
		return d
	}
	t := domain.Terms{Title: strings.TrimSpace(in.Title), Summary: strings.TrimSpace(in.Summary)}
	for _, it := range in.Items {
		t.Items = append(t.Items, domain.Item{Category: it.Category, Purpose: it.Purpose, Recipients: append([]string(nil), it.Recipients...)})
	}
	if in.Retention == "" {
		v.Add("/retention", "is required: how long recipients may keep the data after the exchange ends")
	} else {
		t.Retention = parse("/retention", in.Retention)
	}
	if in.Duration != nil {
		d := parse("/duration", *in.Duration)
		t.Duration = &d
	}
	t.Reward = domain.Reward{JoinBonus: in.Reward.JoinBonus, PointsPerPeriod: in.Reward.PointsPerPeriod}
	if in.Reward.Vesting != nil {
		// Zero (PT0S) means the same as null: the bonus vests in the join.
		d, err := domain.ParseOptionalDuration(*in.Reward.Vesting)
		if err != nil {
			v.Add("/reward/vesting", err.Error())
		}
		t.Reward.Vesting = d
	}
	if in.Reward.Period != nil {
		t.Reward.Period = parse("/reward/period", *in.Reward.Period)
	}
	if in.Reward.MaxPeriods != nil {
		if *in.Reward.MaxPeriods < 1 {
			v.Add("/reward/max_periods", "must be at least 1, or null for no cap")
		}
		t.Reward.MaxPeriods = *in.Reward.MaxPeriods
	}
	if in.MinAge != nil {
		if *in.MinAge < 1 {
			v.Add("/min_age", fmt.Sprintf("must be between 1 and %d, or null for none", domain.MaxMinAge))
		} else {
			t.MinAge = *in.MinAge
		}
	}
	known, err := s.Recipients.RecipientsByID(ctx, t.RecipientIDs())
	if err != nil {
		return domain.Terms{}, fmt.Errorf("look up recipients: %w", err)
	}
	if err := s.Policy.ValidateTerms(t, func(id string) bool { _, ok := known[id]; return ok }); err != nil {
		v.Merge("", err)
	}
	if err := v.Err(); err != nil {
		return domain.Terms{}, err
	}
	return t, nil
}

func (s *Contracts) CreateDraft(ctx context.Context, p Principal, in TermsInput) (domain.Contract, error) {
	if err := p.Require(RoleMarketer); err != nil {
		return domain.Contract{}, err
	}
	t, err := s.terms(ctx, in)
	if err != nil {
		return domain.Contract{}, err
	}
	c := domain.NewDraft(s.IDs.NewID(), s.IDs.NewID(), 1, t, s.Clock.Now())
	if err := s.Contracts.CreateContract(ctx, c); err != nil {
		return domain.Contract{}, fmt.Errorf("create contract: %w", err)
	}
	return c, nil
}

// EditDraft applies patch to the stored terms and validates the result.
func (s *Contracts) EditDraft(ctx context.Context, p Principal, id string, patch func(TermsInput) TermsInput) (domain.Contract, error) {
	if err := p.Require(RoleMarketer); err != nil {
		return domain.Contract{}, err
	}
	current, err := s.Contracts.GetContract(ctx, id)
	if err != nil {
		return domain.Contract{}, err
	}
	if !current.IsDraft() {
		return domain.Contract{}, current.Edit(current.Terms())
	}
	t, err := s.terms(ctx, patch(InputOf(current.Terms())))
	if err != nil {
		return domain.Contract{}, err
	}
	return s.Contracts.UpdateContract(ctx, id, func(c *domain.Contract) error { return c.Edit(t) })
}

// InputOf turns stored terms back into input form, the base a patch edits.
func InputOf(t domain.Terms) TermsInput {
	in := TermsInput{Title: t.Title, Summary: t.Summary, Retention: t.Retention.String()}
	for _, it := range t.Items {
		in.Items = append(in.Items, ItemInput{it.Category, it.Purpose, append([]string(nil), it.Recipients...)})
	}
	if t.Duration != nil {
		d := t.Duration.String()
		in.Duration = &d
	}
	in.Reward = RewardInput{JoinBonus: t.Reward.JoinBonus, PointsPerPeriod: t.Reward.PointsPerPeriod}
	if !t.Reward.Vesting.IsZero() {
		v := t.Reward.Vesting.String()
		in.Reward.Vesting = &v
	}
	if !t.Reward.Period.IsZero() {
		v := t.Reward.Period.String()
		in.Reward.Period = &v
	}
	if t.Reward.MaxPeriods > 0 {
		m := t.Reward.MaxPeriods
		in.Reward.MaxPeriods = &m
	}
	if t.MinAge > 0 {
		a := t.MinAge
		in.MinAge = &a
	}
	return in
}

func (s *Contracts) Publish(ctx context.Context, p Principal, id string) (domain.Contract, error) {
	if err := p.Require(RoleMarketer); err != nil {
		return domain.Contract{}, err
	}
	current, err := s.Contracts.GetContract(ctx, id)
	if err != nil {
		return domain.Contract{}, err
	}
	recipients, err := s.Recipients.RecipientsByID(ctx, current.RecipientIDs())
	if err != nil {
		return domain.Contract{}, err
	}
	now := s.Clock.Now()
	return s.Contracts.PublishContract(ctx, id, func(c *domain.Contract) error { return c.Publish(recipients, now) })
}

// Retire closes a version to new joins; terminate also ends its active
// exchanges. It returns how many exchanges were terminated.
func (s *Contracts) Retire(ctx context.Context, p Principal, id string, terminate bool) (domain.Contract, int, error) {
	if err := p.Require(RoleMarketer); err != nil {
		return domain.Contract{}, 0, err
	}
	now := s.Clock.Now()
	return s.Contracts.RetireContract(ctx, id, terminate, func(c *domain.Contract) error { return c.Retire(now) })
}

func (s *Contracts) NewVersion(ctx context.Context, p Principal, id string) (domain.Contract, error) {
	if err := p.Require(RoleMarketer); err != nil {
		return domain.Contract{}, err
	}
	return s.Contracts.CreateNextVersion(ctx, id, func(from domain.Contract) (domain.Contract, error) {
		return from.NextVersion(s.IDs.NewID(), s.Clock.Now())
	})
}

// Get returns a version; drafts are visible only to marketers and admins.
func (s *Contracts) Get(ctx context.Context, p *Principal, id string) (domain.Contract, error) {
	c, err := s.Contracts.GetContract(ctx, id)
	if err != nil {
		return domain.Contract{}, err
	}
	if c.IsDraft() && (p == nil || p.Require(RoleMarketer, RoleAdmin) != nil) {
		return domain.Contract{}, domain.NotFound("contract-not-found", "no contract with this id")
	}
	return c, nil
}

func (s *Contracts) List(ctx context.Context, p Principal, status string, page Page) ([]domain.Contract, string, error) {
	if err := p.Require(RoleMarketer, RoleAdmin); err != nil {
		return nil, "", err
	}
	switch domain.ContractStatus(status) {
	case "", domain.ContractDraft, domain.ContractPublished, domain.ContractRetired:
	default:
		return nil, "", domain.Invalid("/status", "must be draft, published or retired")
	}
	return s.Contracts.ListContracts(ctx, domain.ContractStatus(status), page.Normalised())
}

func (s *Contracts) Offers(ctx context.Context, page Page) ([]domain.Contract, string, error) {
	return s.Contracts.ListOffers(ctx, page.Normalised())
}

func (s *Contracts) Stats(ctx context.Context, p Principal, id string) (domain.Contract, ContractStats, error) {
	if err := p.Require(RoleMarketer, RoleAdmin); err != nil {
		return domain.Contract{}, ContractStats{}, err
	}
	c, err := s.Contracts.GetContract(ctx, id)
	if err != nil {
		return domain.Contract{}, ContractStats{}, err
	}
	st, err := s.Contracts.ContractStats(ctx, id)
	return c, st, err
}

// Statement is everything the transparency statement shows.
type Statement struct {
	Contract   domain.Contract
	Recipients map[string]domain.Recipient
	Catalog    domain.Catalog
	Changes    *domain.Changes
	// Dropped are the recipients the previous version named and this one
	// does not, so the changes can name them.
	Dropped map[string]domain.Recipient
}

func (s *Contracts) Transparency(ctx context.Context, p *Principal, id string) (Statement, error) {
	c, err := s.Get(ctx, p, id)
	if err != nil {
		return Statement{}, err
	}
	recipients, err := s.Recipients.RecipientsByID(ctx, c.RecipientIDs())
	if err != nil {
		return Statement{}, err
	}
	st := Statement{Contract: c, Recipients: recipients, Catalog: s.Policy.Catalog}
	if c.Version() > 1 {
		prev, ok, err := s.Contracts.ContractVersion(ctx, c.FamilyID(), c.Version()-1)
		if err != nil {
			return Statement{}, err
		}
		if ok {
			ch := domain.CompareTerms(prev.Version(), prev.Terms(), c.Terms(), func(id string) string { return recipients[id].Name })
			st.Changes = &ch
			if st.Dropped, err = s.Recipients.RecipientsByID(ctx, ch.RecipientsRemoved); err != nil {
				return Statement{}, err
			}
		}
	}
	return st, nil
}
