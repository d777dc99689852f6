package app

import (
	"context"
	"time"

	"github.com/quidpro/quid/domain"
)

// AccessEntry is one logged read of a member's data.
type AccessEntry struct {
	ID           string
	MemberID     string
	AccessorRole string
	AccessorID   string
	AccessorName string
	Purpose      string
	Categories   []string
	ExchangeIDs  []string
	RequestID    string
	At           time.Time
	// Refused names why the attempt was refused (an error code such as
	// processing-restricted); empty when the data was disclosed.
	Refused string
}

// ActiveConsent is an exchange in force at read time, with its terms.
type ActiveConsent struct {
	ExchangeID string
	Terms      domain.Terms
}

// MemberSnapshot is what a partner read sees, read under the member's lock.
type MemberSnapshot struct {
	Attributes map[string]any
	Active     []ActiveConsent
	// Restricted is true while the member restricts processing (Art. 18).
	Restricted bool
	Now        time.Time
}

// AccessFilter narrows the audit trail.
type AccessFilter struct {
	// Own marks the member's own view (GET /v1/me/access-log), a list of
	// its own: its cursors are not the audit's.
	Own         bool
	MemberID    string
	AccessorID  string
	From, Until *time.Time
}

// DeletionAck is one recipient's confirmation owed for an ended exchange.
type DeletionAck struct {
	ExchangeID    string
	RecipientID   string
	RecipientName string
	MemberID      string
	DueAt         time.Time
	ConfirmedAt   *time.Time
}

// EnforcementRepository stores reads, acknowledgements and webhooks.
type EnforcementRepository interface {
	Enrolment
	MemberRecipients
	// GrantsAny says whether an active, unexpired exchange of memberID
	// grants recipientID something for purpose. It is one statement that
	// reads no member row, so it does the same work for an unknown member
	// as for a member who gave this recipient nothing: a refusal must not
	// take longer for members than for strangers.
	GrantsAny(ctx context.Context, memberID, recipientID, purpose string) (bool, error)
	// GrantedBefore lists the ended exchanges of memberID (newest first, at
	// most 10) whose terms granted recipientID something for purpose.
	GrantedBefore(ctx context.Context, memberID, recipientID, purpose string) ([]string, error)
	// ReadMember takes a shared lock on the member (so no cancellation can
	// commit halfway through), gives fn what is in force now, and writes the
	// access entry fn returns in the same transaction. When fn returns an
	// entry and an error, the entry (a refused attempt) is committed and
	// the error returned.
	ReadMember(ctx context.Context, memberID string, fn func(MemberSnapshot) (*AccessEntry, error)) error
	ListAccess(ctx context.Context, f AccessFilter, page Page) ([]AccessEntry, string, error)
	ConfirmDeletion(ctx context.Context, recipientID, exchangeID string) (DeletionAck, error)
	MemberDeletionAcks(ctx context.Context, memberID string) ([]DeletionAck, error)
	OverdueDeletions(ctx context.Context, page Page) ([]DeletionAck, string, error)
	SaveWebhook(ctx context.Context, w Webhook) error
	ListDeliveries(ctx context.Context, recipientID string, page Page) ([]Delivery, string, error)
}

// Enforcement is consent enforced: partner reads (partner.go), the access
// log and deletion acknowledgements (here), webhook registration
// (webhooks.go) and erasure (erasure.go).
type Enforcement struct {
	store      EnforcementRepository
	erasures   ErasureRepository
	recipients RecipientRepository
	catalog    domain.Catalog
	guard      URLGuard
	secrets    SecretMaker
}

// NewEnforcement wires consent enforcement: store keeps reads,
// acknowledgements and webhooks, erasures erases members, recipients is the
// registry partners must be in, catalog says what a purpose and a category
// are, guard vets webhook URLs and secrets makes and checks their secrets.
func NewEnforcement(store EnforcementRepository, erasures ErasureRepository, recipients RecipientRepository,
	catalog domain.Catalog, guard URLGuard, secrets SecretMaker) *Enforcement {
	return &Enforcement{store: store, erasures: erasures, recipients: recipients, catalog: catalog, guard: guard, secrets: secrets}
}

// MyAccessLog lists reads of the member's own data, newest first.
func (s *Enforcement) MyAccessLog(ctx context.Context, p Principal, page Page) ([]AccessEntry, string, error) {
	if err := p.Require(RoleMember); err != nil {
		return nil, "", err
	}
	if err := s.store.RequireEnrolled(ctx, p.Subject); err != nil {
		return nil, "", err
	}
	return s.store.ListAccess(ctx, AccessFilter{Own: true, MemberID: p.Subject}, page.Normalised())
}

// Audit lists every logged read for admins.
func (s *Enforcement) Audit(ctx context.Context, p Principal, f AccessFilter, page Page) ([]AccessEntry, string, error) {
	if err := p.Require(RoleAdmin); err != nil {
		return nil, "", err
	}
	return s.store.ListAccess(ctx, f, page.Normalised())
}

// ConfirmDeletion records that the partner deleted an ended exchange's data.
func (s *Enforcement) ConfirmDeletion(ctx context.Context, p Principal, exchangeID string) (DeletionAck, error) {
	if err := p.Require(RolePartner); err != nil {
		return DeletionAck{}, err
	}
	return s.store.ConfirmDeletion(ctx, p.Subject, exchangeID)
}

func (s *Enforcement) MyDeletionAcks(ctx context.Context, p Principal) ([]DeletionAck, error) {
	if err := p.Require(RoleMember); err != nil {
		return nil, err
	}
	return s.store.MemberDeletionAcks(ctx, p.Subject)
}

func (s *Enforcement) OverdueDeletions(ctx context.Context, p Principal, page Page) ([]DeletionAck, string, error) {
	if err := p.Require(RoleAdmin); err != nil {
		return nil, "", err
	}
	return s.store.OverdueDeletions(ctx, page.Normalised())
}
