package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/quidpro/quid/domain"
)

// ContractRepository stores contract versions. Methods that change a
// contract lock it, call fn with the current state, and save what fn left,
// all in one transaction.
type ContractRepository interface {
	CreateContract(ctx context.Context, c domain.Contract) error
	GetContract(ctx context.Context, id string) (domain.Contract, error)
	ListContracts(ctx context.Context, status domain.ContractStatus, page Page) ([]domain.Contract, string, error)
	ListOffers(ctx context.Context, page Page) ([]domain.Contract, string, error)
	UpdateContract(ctx context.Context, id string, fn func(c *domain.Contract) error) (domain.Contract, error)
	// PublishContract also retires the family's previously published
	// version in the same transaction.
	PublishContract(ctx context.Context, id string, fn func(c *domain.Contract) error) (domain.Contract, error)
	// RetireContract retires a version and, when terminate is set, ends every
	// active exchange on it as terminated, in one transaction.
	RetireContract(ctx context.Context, id string, terminate bool, fn func(c *domain.Contract) error) (domain.Contract, int, error)
	CreateNextVersion(ctx context.Context, fromID string, fn func(from domain.Contract) (domain.Contract, error)) (domain.Contract, error)
	// ContractVersion finds a version of a family; ok is false when absent.
	ContractVersion(ctx context.Context, familyID string, version int) (c domain.Contract, ok bool, err error)
	// ContractStats reads a version's raw aggregates (no series) and when
	// its first exchange joined (zero when none did); ContractSeries its
	// time series over the buckets [from, to] of step.
	ContractStats(ctx context.Context, id string) (domain.ContractCounts, time.Time, error)
	ContractSeries(ctx context.Context, id string, step domain.StatsStep, from, to time.Time) ([]domain.StatsBucket, error)
	// AddProgramme stores p as the next version of the programme identity
	// and returns it numbered; CurrentProgramme reads the latest (ok false
	// before the first).
	AddProgramme(ctx context.Context, p domain.Programme) (domain.Programme, error)
	CurrentProgramme(ctx context.Context) (p domain.Programme, ok bool, err error)
}

// ContractStats are a version's aggregates made k-anonymous
// (domain.ContractCounts.Anonymise): never a member id, an attribute, nor
// a count below MinCount. Step is the width of Series' buckets ("" with no
// series: nobody joined). PointsValue is PointsIssued in money at the
// version's point value (domain.RewardValue.PointsWorth, as the exchange
// views show points), "" when the points are withheld or no point value is
// known; Currency is its ISO 4217 code.
type ContractStats struct {
	domain.PublishedStats
	Step                  domain.StatsStep
	PointsValue, Currency string
}

// Contracts is the marketer's and the public's side of contracts, and the
// admin's registry of the recipients contracts name.
type Contracts struct {
	store      ContractRepository
	recipients RecipientRepository
	policy     domain.ContractPolicy
	clock      Clock
	ids        IDs
}

// NewContracts wires the contract use cases: store keeps contract versions,
// recipients the registry, policy says what terms may hold (catalogue and
// shortest reward period), clock and ids stamp and name what is created.
func NewContracts(store ContractRepository, recipients RecipientRepository, policy domain.ContractPolicy, clock Clock, ids IDs) *Contracts {
	return &Contracts{store: store, recipients: recipients, policy: policy, clock: clock, ids: ids}
}

// MinPeriod is the shortest reward period this deployment accepts.
func (s *Contracts) MinPeriod() time.Duration { return s.policy.MinPeriod }

// TermsInput is a contract's terms as a client sends them.
type TermsInput struct {
	Title     string
	Summary   string
	Items     []ItemInput
	Retention string
	Duration  *string
	// RenewalNotice is an ISO 8601 duration; nil takes the default
	// (domain.DefaultNoticeFor the duration).
	RenewalNotice *string
	Reward        RewardInput
	MinAge        *int // nil: the contract sets no minimum age of its own
	// PointsExpireAfter is an ISO 8601 duration no longer than the
	// programme's points expiry; nil: the programme's applies.
	PointsExpireAfter *string
	// ValueEstimate, ValueMethod and ValueExplanation may be nil in a
	// draft; publishing requires them.
	ValueEstimate    *ValueEstimateInput
	ValueMethod      *string
	ValueExplanation *string
}

// ValueEstimateInput is a value estimate as a client sends it.
type ValueEstimateInput struct {
	Amount, Currency, Per string
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
	// unread are the fields whose value could not be read: the rules over
	// the terms would report them again as missing (and what depends on
	// them as wrong), so only the reading error is reported.
	unread := map[string]bool{}
	parse := func(ptr, raw string) domain.Duration {
		d, err := domain.ParseDuration(raw)
		if err != nil {
			v.Add(ptr, err.Error())
			unread[ptr] = true
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
	if in.RenewalNotice != nil {
		d := parse("/renewal_notice", *in.RenewalNotice)
		t.RenewalNotice = &d
	}
	if in.PointsExpireAfter != nil {
		d := parse("/points_expire_after", *in.PointsExpireAfter)
		t.PointsExpireAfter = &d
	}
	t.Reward = domain.Reward{JoinBonus: in.Reward.JoinBonus, PointsPerPeriod: in.Reward.PointsPerPeriod}
	if in.Reward.Vesting != nil {
		// Zero (PT0S) means the same as null: the bonus vests in the join.
		d, err := domain.ParseOptionalDuration(*in.Reward.Vesting)
		if err != nil {
			v.Add("/reward/vesting", err.Error())
			unread["/reward/vesting"] = true
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
	if e := in.ValueEstimate; e != nil {
		prog, ok, err := s.store.CurrentProgramme(ctx)
		if err != nil {
			return domain.Terms{}, fmt.Errorf("read programme: %w", err)
		}
		pointCurrency := ""
		if ok {
			pointCurrency = prog.PointValue.Currency
		}
		var per domain.Duration
		if e.Per != "" {
			per = parse("/value_estimate/per", e.Per)
		}
		var ev domain.Violations
		est := domain.ValidateValueEstimate(domain.ValueEstimate{Amount: e.Amount, Currency: e.Currency, Per: per},
			pointCurrency, s.policy.Catalog.Currency, &ev)
		var de *domain.Error
		if errors.As(ev.Err(), &de) {
			for _, f := range de.Fields {
				if !unread[f.Pointer] { // an unreadable per is reported once
					v.Add(f.Pointer, f.Reason)
				}
			}
		}
		t.Value = &est
	}
	if in.ValueMethod != nil {
		t.ValueMethod = *in.ValueMethod
		if t.ValueMethod == "" {
			v.Add("/value_method", "must be one of "+strings.Join(domain.ValueMethods, ", ")+", or null")
		}
	}
	if in.ValueExplanation != nil {
		t.ValueExplanation = strings.TrimSpace(*in.ValueExplanation)
		if t.ValueExplanation == "" {
			v.Add("/value_explanation", "must say in words how the estimate was calculated, or be null")
		}
	}
	known, err := s.recipients.RecipientsByID(ctx, t.RecipientIDs())
	if err != nil {
		return domain.Terms{}, fmt.Errorf("look up recipients: %w", err)
	}
	if unread["/duration"] {
		unread["/renewal_notice"] = true // its rules read the duration
	}
	var de *domain.Error
	if err := s.policy.ValidateTerms(t, func(id string) bool { _, ok := known[id]; return ok }); errors.As(err, &de) {
		for _, f := range de.Fields {
			if !unread[f.Pointer] {
				v.Add(f.Pointer, f.Reason)
			}
		}
	} else if err != nil {
		return domain.Terms{}, err
	}
	// Consent with a duration is renewed, not left to lapse silently: the
	// brand (a first-party recipient) is the one reminded before it ends.
	if t.Duration != nil && !slices.ContainsFunc(t.RecipientIDs(), func(id string) bool { return known[id].Kind == domain.FirstParty }) {
		v.Add("/duration", "a contract with a duration must name a first-party recipient (the brand), who is reminded before consent lapses (exchange.expiring)")
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
	c := domain.NewDraft(s.ids.NewID(), s.ids.NewID(), 1, t, s.clock.Now())
	if err := s.store.CreateContract(ctx, c); err != nil {
		return domain.Contract{}, fmt.Errorf("create contract: %w", err)
	}
	return c, nil
}

// EditDraft applies patch to the stored terms and validates the result.
func (s *Contracts) EditDraft(ctx context.Context, p Principal, id string, patch func(TermsInput) TermsInput) (domain.Contract, error) {
	if err := p.Require(RoleMarketer); err != nil {
		return domain.Contract{}, err
	}
	current, err := s.store.GetContract(ctx, id)
	if err != nil {
		return domain.Contract{}, fmt.Errorf("read contract: %w", err)
	}
	if !current.IsDraft() {
		return domain.Contract{}, current.Edit(current.Terms())
	}
	t, err := s.terms(ctx, patch(InputOf(current.Terms())))
	if err != nil {
		return domain.Contract{}, err
	}
	return s.store.UpdateContract(ctx, id, func(c *domain.Contract) error { return c.Edit(t) })
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
	if t.RenewalNotice != nil {
		d := t.RenewalNotice.String()
		in.RenewalNotice = &d
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
	if t.PointsExpireAfter != nil {
		d := t.PointsExpireAfter.String()
		in.PointsExpireAfter = &d
	}
	if e := t.Value; e != nil {
		in.ValueEstimate = &ValueEstimateInput{Amount: e.Amount, Currency: e.Currency, Per: e.Per.String()}
	}
	if t.ValueMethod != "" {
		m := t.ValueMethod
		in.ValueMethod = &m
	}
	if t.ValueExplanation != "" {
		x := t.ValueExplanation
		in.ValueExplanation = &x
	}
	return in
}

func (s *Contracts) Publish(ctx context.Context, p Principal, id string) (domain.Contract, error) {
	if err := p.Require(RoleMarketer); err != nil {
		return domain.Contract{}, err
	}
	current, err := s.store.GetContract(ctx, id)
	if err != nil {
		return domain.Contract{}, fmt.Errorf("read contract: %w", err)
	}
	recipients, err := s.recipients.RecipientsByID(ctx, current.RecipientIDs())
	if err != nil {
		return domain.Contract{}, fmt.Errorf("look up recipients: %w", err)
	}
	var programme *domain.Programme
	if p, ok, err := s.store.CurrentProgramme(ctx); err != nil {
		return domain.Contract{}, fmt.Errorf("read programme: %w", err)
	} else if ok {
		programme = &p
	}
	now := s.clock.Now()
	return s.store.PublishContract(ctx, id, func(c *domain.Contract) error { return c.Publish(recipients, programme, now) })
}

// Retire closes a version to new joins; terminate also ends its active
// exchanges. It returns how many exchanges were terminated.
func (s *Contracts) Retire(ctx context.Context, p Principal, id string, terminate bool) (domain.Contract, int, error) {
	if err := p.Require(RoleMarketer); err != nil {
		return domain.Contract{}, 0, err
	}
	now := s.clock.Now()
	return s.store.RetireContract(ctx, id, terminate, func(c *domain.Contract) error { return c.Retire(now) })
}

func (s *Contracts) NewVersion(ctx context.Context, p Principal, id string) (domain.Contract, error) {
	if err := p.Require(RoleMarketer); err != nil {
		return domain.Contract{}, err
	}
	return s.store.CreateNextVersion(ctx, id, func(from domain.Contract) (domain.Contract, error) {
		return from.NextVersion(s.ids.NewID(), s.clock.Now())
	})
}

// Get returns a version; drafts are visible only to marketers and admins.
func (s *Contracts) Get(ctx context.Context, p *Principal, id string) (domain.Contract, error) {
	c, err := s.store.GetContract(ctx, id)
	if err != nil {
		return domain.Contract{}, err
	}
	if c.IsDraft() && (p == nil || p.Require(RoleMarketer, RoleAdmin) != nil) {
		return domain.Contract{}, domain.ErrContractNotFound
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
		return nil, "", domain.Invalid("/query/status", "must be draft, published or retired")
	}
	return s.store.ListContracts(ctx, domain.ContractStatus(status), page.Normalised())
}

// RequiredAges maps each contract's id to the youngest age that may join
// it (domain.Catalog.AgeRequirement over its terms and recipients, DESIGN
// rule 10), 0 where no age rule applies. Recipients are read through the
// recipient cache, once for all of cs.
func (s *Contracts) RequiredAges(ctx context.Context, cs ...domain.Contract) (map[string]int, error) {
	recipients, err := s.RecipientsOf(ctx, cs...)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(cs))
	for _, c := range cs {
		out[c.ID()] = s.policy.Catalog.AgeRequirement(c.Terms(), recipients)
	}
	return out, nil
}

func (s *Contracts) Offers(ctx context.Context, page Page) ([]domain.Contract, string, error) {
	return s.store.ListOffers(ctx, page.Normalised())
}

// Stats are the k-anonymous aggregates of a version, any version (drafts
// too), for marketers and admins (403 for anyone else; 404 for no such
// version): counts by status, the points issued and their money value,
// and the time series of joins, active exchanges and endings
// (domain.StatsSeriesPlan chooses its buckets). k is the deployment's
// QUID_STATS_MIN_COUNT (ContractPolicy.StatsMinCount).
func (s *Contracts) Stats(ctx context.Context, p Principal, id string) (domain.Contract, ContractStats, error) {
	if err := p.Require(RoleMarketer, RoleAdmin); err != nil {
		return domain.Contract{}, ContractStats{}, err
	}
	c, err := s.store.GetContract(ctx, id)
	if err != nil {
		return domain.Contract{}, ContractStats{}, fmt.Errorf("read contract: %w", err)
	}
	counts, first, err := s.store.ContractStats(ctx, id)
	if err != nil {
		return domain.Contract{}, ContractStats{}, fmt.Errorf("contract stats: %w", err)
	}
	step, from, to, ok := domain.StatsSeriesPlan(first, s.clock.Now())
	if ok {
		if counts.Series, err = s.store.ContractSeries(ctx, id, step, from, to); err != nil {
			return domain.Contract{}, ContractStats{}, fmt.Errorf("contract series: %w", err)
		}
	}
	k := s.policy.StatsMinCount
	if k == 0 {
		k = domain.DefaultStatsMinCount
	}
	out := ContractStats{PublishedStats: counts.Anonymise(k), Step: step}
	if points, shown := out.PointsIssued.Value(); shown {
		values, err := s.RewardValues(ctx, c)
		if err != nil {
			return domain.Contract{}, ContractStats{}, fmt.Errorf("value points: %w", err)
		}
		if v, valued := values[c.ID()]; valued {
			out.PointsValue, out.Currency = v.PointsWorth(points), v.Currency
		}
	}
	return c, out, nil
}
