package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// The store's answers to requests it refuses are part of the API (their
// code and message become the problem+json body): moving them into
// sentinels and running member writes through one transaction runner must
// leave every one as it was, and findable with errors.Is/As however wrapped.
func TestStoreRefusalsKeepTheirCodesAndMessages(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	c := w.publish(offer{perPeriod: 5, period: "P1D"})
	ann := w.enrol("ann")
	ex := w.join(ann, c)
	w.enrol("gone")
	if _, err := w.store.EraseMember(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	noEntry := func(app.MemberSnapshot) (*app.AccessEntry, error) { return nil, nil }
	cases := []struct {
		name          string
		call          func() error
		kind          domain.Kind
		code, message string
	}{
		{"erasing a subject without a member", func() error { _, err := w.store.EraseMember(ctx, "nobody"); return err },
			domain.KindNotFound, "nothing-to-erase", "nothing to erase: no member is enrolled under this subject, or its data was erased already"},
		{"erasing an erased member again", func() error { _, err := w.store.EraseMember(ctx, "gone"); return err },
			domain.KindNotFound, "nothing-to-erase", "nothing to erase: no member is enrolled under this subject, or its data was erased already"},
		{"reading an unknown member", func() error { return w.store.ReadMember(ctx, "nobody", noEntry) },
			domain.KindNotFound, "member-not-found", "no member with this id"},
		{"reading an erased member", func() error { return w.store.ReadMember(ctx, "gone", noEntry) },
			domain.KindNotFound, "member-not-found", "no member with this id"},
		{"confirming deletion for an active exchange", func() error { _, err := w.store.ConfirmDeletion(ctx, w.brand.ID, ex.ID()); return err },
			domain.KindConflict, "exchange-active", "this exchange is still active; delete the data once it ends"},
		{"confirming deletion for an exchange that is not one", func() error { _, err := w.store.ConfirmDeletion(ctx, w.brand.ID, "x"); return err },
			domain.KindNotFound, "exchange-not-found", "no exchange that named you as a recipient has this id"},
		{"confirming deletion for an unknown exchange", func() error {
			_, err := w.store.ConfirmDeletion(ctx, w.brand.ID, "00000000-0000-0000-0000-000000000000")
			return err
		}, domain.KindNotFound, "exchange-not-found", "no exchange that named you as a recipient has this id"},
		{"an id that cannot be a contract", func() error { _, err := w.store.GetContract(ctx, "x"); return err },
			domain.KindNotFound, "contract-not-found", "no contract with this id"},
		{"an unknown contract", func() error { _, err := w.store.GetContract(ctx, "00000000-0000-0000-0000-000000000000"); return err },
			domain.KindNotFound, "contract-not-found", "no contract with this id"},
		{"an id that cannot be a recipient", func() error { _, err := w.store.GetRecipient(ctx, "x"); return err },
			domain.KindNotFound, "recipient-not-found", "no recipient with this id"},
		{"retiring an unknown contract", func() error {
			_, _, err := w.store.RetireContract(ctx, "00000000-0000-0000-0000-000000000000", true, func(*domain.Contract) error { return nil })
			return err
		}, domain.KindNotFound, "contract-not-found", "no contract with this id"},
		{"joining an unknown contract", func() error {
			_, _, err := w.exchanges.Join(ctx, ann, "00000000-0000-0000-0000-000000000000", nil)
			return err
		}, domain.KindInvalid, "validation-failed", "the request is not valid"},
		{"joining a version again", func() error { _, _, err := w.exchanges.Join(ctx, ann, c.ID(), nil); return err },
			domain.KindConflict, "already-joined", "you already have an active exchange on this version"},
	}
	for _, tc := range cases {
		err := tc.call()
		var de *domain.Error
		if !errors.As(err, &de) {
			t.Errorf("%s: %v, want a domain error", tc.name, err)
			continue
		}
		if de.Kind != tc.kind || de.Code != tc.code || de.Message != tc.message {
			t.Errorf("%s: %s %s %q, want %s %s %q", tc.name, de.Kind, de.Code, de.Message, tc.kind, tc.code, tc.message)
		}
	}
	if _, err := w.store.GetContract(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, domain.ErrContractNotFound) {
		t.Errorf("an unknown contract is not domain.ErrContractNotFound: %v", err)
	}
}

// An internal failure in the middle of a multi-step write says which step
// failed, and is no domain error (the HTTP layer answers 500 and logs it).
func TestFailedStepIsNamedInTheError(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.enrol("ann")
	if err := w.db.Exec(`ALTER TABLE access_log RENAME TO access_log_elsewhere`).Error; err != nil {
		t.Fatal(err)
	}
	err := w.store.ReadMember(context.Background(), "ann", func(m app.MemberSnapshot) (*app.AccessEntry, error) {
		return &app.AccessEntry{MemberID: "ann", AccessorRole: "partner", AccessorID: w.brand.ID, AccessorName: w.brand.Name,
			Purpose: "loyalty.personalised_offers", RequestID: "r", At: m.Now}, nil
	})
	if err == nil || !strings.HasPrefix(err.Error(), "log access: ") {
		t.Fatalf("%v, want the error to start with the failed step", err)
	}
	if de := (*domain.Error)(nil); errors.As(err, &de) {
		t.Fatalf("an internal failure became a domain error: %v", de)
	}
}
