package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
	"github.com/quidpro/quid/infra/config"
)

func accrueCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("accrue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	once := fs.Bool("once", false, "run one full pass and exit (for cron)")
	batch := fs.Int("batch", 5000, "members per set-based batch")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: quid accrue --once [--batch N]\n\nCredits every fully earned period, vests due bonuses, expires exchanges whose duration ran out,\ndeletes stored Idempotency-Key responses older than 24 hours and removes the member id from\nmember.erasure_requested events past their 30-day deadline, delivered or not.\nSafe to run alongside servers and other accrue processes.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*once {
		fs.Usage()
		return errors.New("accrue: pass --once (the server runs accrual continuously)")
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log, flushLog := serviceLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	defer flushLog()
	svc, err := build(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer svc.close()
	svc.accrual.BatchSize = *batch
	r, err := svc.accrual.RunOnce(ctx)
	if err != nil {
		return err
	}
	if err := svc.accrual.Housekeeping(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "members=%d expired=%d vested=%d credits=%d points=%d\n", r.Members, r.Expired, r.Vested, r.Credits, r.Points)
	return nil
}

// The demo programme identity and value estimate: fictitious, on
// example.* addresses, so nobody mistakes the demo for a real controller.
var (
	demoProgramme = app.ProgrammeInput{LegalName: "Quid Coffee AS (demo)", Address: "Storgata 1, 0155 Oslo, Norway",
		ContactEmail: "privacy@coffee.example", DPOContact: "Data-protection officer, dpo@coffee.example",
		AuthorityName: "Datatilsynet", ComplaintURL: "https://www.datatilsynet.no/en/",
		PointValue: domain.PointValue{Currency: "EUR", Amount: "0.01"}, Jurisdictions: []string{"NO", "SE"}}
	demoValueMethod      = "revenue_attributable"
	demoValueExplanation = "Revenue from personalised offers in a year, divided by the members who share their city and purchases: 4.80 EUR each."
)

// seedDemo publishes a demo contract whose period is the shortest the
// deployment allows, so a person can watch points arrive. It returns what
// to log (key-value pairs) rather than logging: it runs under a lock.
func seedDemo(ctx context.Context, s *service) ([]any, error) {
	existing, _, err := s.contracts.Offers(ctx, app.Page{Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(existing) > 0 {
		return []any{"outcome", "an offer already exists", "contract_id", existing[0].ID()}, nil
	}
	admin := app.Principal{Subject: "demo-admin", Role: app.RoleAdmin}
	marketer := app.Principal{Subject: "demo-marketer", Role: app.RoleMarketer}
	brand, err := s.contracts.CreateRecipient(ctx, admin, app.RecipientInput{Name: "Quid Coffee", Kind: "first_party", Country: "NO", PrivacyPolicyURL: "https://coffee.example/privacy"})
	if err != nil {
		return nil, err
	}
	partner, err := s.contracts.CreateRecipient(ctx, admin, app.RecipientInput{Name: "PartnerCo Bakery", Kind: "third_party", Country: "SE", PrivacyPolicyURL: "https://partnerco.example/privacy"})
	if err != nil {
		return nil, err
	}
	// A contract is published under a programme identity: the demo's,
	// unless an admin has set one.
	if _, ok, err := s.contracts.Programme(ctx); err != nil {
		return nil, err
	} else if !ok {
		if _, err := s.contracts.PutProgramme(ctx, admin, demoProgramme); err != nil {
			return nil, err
		}
	}
	period := s.contracts.MinPeriod()
	periodISO := domain.Duration{Seconds: int(period.Seconds())}.String()
	if period >= 3600e9 {
		periodISO = domain.Duration{Hours: int(period.Hours())}.String()
	}
	vesting := periodISO
	duration := "P12M"
	draft, err := s.contracts.CreateDraft(ctx, marketer, app.TermsInput{
		Title:   "Coffee club: your city and purchases for free coffee",
		Summary: "Share your city and purchase history with Quid Coffee and PartnerCo Bakery for personalised offers.",
		Items: []app.ItemInput{
			{Category: "location.city", Purpose: "loyalty.personalised_offers", Recipients: []string{brand.ID, partner.ID}},
			{Category: "commerce.purchase_history", Purpose: "loyalty.personalised_offers", Recipients: []string{brand.ID}},
			{Category: "demographic.age_over_18", Purpose: "loyalty.programme_operation", Recipients: []string{brand.ID}},
		},
		Retention:     "P30D",
		Duration:      &duration,
		Reward:        app.RewardInput{JoinBonus: 200, Vesting: &vesting, PointsPerPeriod: 50, Period: &periodISO},
		ValueEstimate: &app.ValueEstimateInput{Amount: "4.80", Currency: "EUR", Per: "P1Y"},
		ValueMethod:   &demoValueMethod, ValueExplanation: &demoValueExplanation,
	})
	if err != nil {
		return nil, err
	}
	pub, err := s.contracts.Publish(ctx, marketer, draft.ID())
	if err != nil {
		return nil, err
	}
	return []any{"outcome", "published a contract", "contract_id", pub.ID(), "period", periodISO, "recipient_partner", partner.ID}, nil
}
