package app

import (
	"context"
	"errors"
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

// Webhook is a partner's delivery endpoint.
type Webhook struct {
	RecipientID string
	URL         string
	Secret      string
}

// Delivery is the state of one outbox event.
type Delivery struct {
	ID          string
	RecipientID string
	EventType   string
	CreatedAt   time.Time
	Attempts    int
	NextAttempt time.Time
	DeliveredAt *time.Time
	FailedAt    *time.Time
	LastStatus  *int
	LastError   string
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
	// ReadMember takes a shared lock on the member (so no cancellation can
	// commit halfway through), gives fn what is in force now, and writes the
	// access entry fn returns in the same transaction.
	ReadMember(ctx context.Context, memberID string, fn func(MemberSnapshot) (*AccessEntry, error)) error
	ListAccess(ctx context.Context, f AccessFilter, page Page) ([]AccessEntry, string, error)
	ConfirmDeletion(ctx context.Context, recipientID, exchangeID string) (DeletionAck, error)
	MemberDeletionAcks(ctx context.Context, memberID string) ([]DeletionAck, error)
	OverdueDeletions(ctx context.Context, page Page) ([]DeletionAck, string, error)
	SaveWebhook(ctx context.Context, w Webhook) error
	ListDeliveries(ctx context.Context, recipientID string, page Page) ([]Delivery, string, error)
}

// URLGuard refuses webhook URLs that must not be called.
type URLGuard interface {
	Check(ctx context.Context, rawURL string) error
}

// SecretMaker validates and generates webhook signing secrets.
type SecretMaker interface {
	Validate(secret string) error
	Generate() (string, error)
}

// Enforcement is consent enforced: partner reads, the access log, deletion
// acknowledgements and webhook registration.
type Enforcement struct {
	Repo       EnforcementRepository
	Erasures   ErasureRepository
	Recipients RecipientRepository
	Catalog    domain.Catalog
	Guard      URLGuard
	Secrets    SecretMaker
}

// PartnerRead is what a partner may see of a member for a purpose.
type PartnerRead struct {
	MemberID    string
	Purpose     string
	Attributes  map[string]any
	ExchangeIDs []string
}

// ReadMemberData returns only the categories that active exchanges grant
// to this partner for this purpose, and logs the read where the member sees it.
func (s *Enforcement) ReadMemberData(ctx context.Context, p Principal, memberID, purpose, requestID string) (PartnerRead, error) {
	if err := p.Require(RolePartner); err != nil {
		return PartnerRead{}, err
	}
	if purpose == "" {
		return PartnerRead{}, domain.Invalid("/query/purpose", "is required: say why you read the data")
	}
	if _, ok := s.Catalog.Purpose(purpose); !ok {
		return PartnerRead{}, domain.Invalid("/query/purpose", "is not a purpose of the catalogue")
	}
	recipients, err := s.Recipients.RecipientsByID(ctx, []string{p.Subject})
	if err != nil {
		return PartnerRead{}, err
	}
	partner, known := recipients[p.Subject]
	if !known {
		return PartnerRead{}, errNoConsent
	}
	// Refuse before the member is touched: loading a member and its
	// exchanges only to refuse would make members slower to refuse than
	// strangers, a timing oracle for membership. The grant is checked again
	// below, under the member's lock.
	if granted, err := s.Repo.GrantsAny(ctx, memberID, p.Subject, purpose); err != nil {
		return PartnerRead{}, err
	} else if !granted {
		return PartnerRead{}, errNoConsent
	}
	var out PartnerRead
	err = s.Repo.ReadMember(ctx, memberID, func(m MemberSnapshot) (*AccessEntry, error) {
		granted := map[string]bool{}
		var exchanges []string
		for _, a := range m.Active {
			cats := domain.GrantedCategories(a.Terms, p.Subject, purpose)
			if len(cats) == 0 {
				continue
			}
			exchanges = append(exchanges, a.ExchangeID)
			for _, c := range cats {
				granted[c] = true
			}
		}
		if len(exchanges) == 0 {
			return nil, errNoConsent
		}
		keys := make([]string, 0, len(granted))
		for k := range granted {
			keys = append(keys, k)
		}
		values := s.Catalog.Disclose(keys, m.Attributes, m.Now)
		out = PartnerRead{MemberID: memberID, Purpose: purpose, Attributes: values, ExchangeIDs: exchanges}
		return &AccessEntry{MemberID: memberID, AccessorRole: "partner", AccessorID: p.Subject, AccessorName: partner.Name,
			Purpose: purpose, Categories: domain.DisclosedKeys(values), ExchangeIDs: exchanges, RequestID: requestID, At: m.Now}, nil
	})
	if de := (*domain.Error)(nil); errors.As(err, &de) && de.Kind == domain.KindNotFound {
		// An unknown or erased member answers exactly as a member who gave
		// this partner nothing: the answer must not tell who is a member.
		return PartnerRead{}, errNoConsent
	}
	return out, err
}

// errNoConsent is the one answer a partner gets for every member it may not
// read: unknown, erased, never consented, consent ended, or another purpose.
var errNoConsent = domain.Forbidden("no-consent", "no active consent of this member grants you any data for this purpose")

// MyAccessLog lists reads of the member's own data, newest first.
func (s *Enforcement) MyAccessLog(ctx context.Context, p Principal, page Page) ([]AccessEntry, string, error) {
	if err := p.Require(RoleMember); err != nil {
		return nil, "", err
	}
	if err := s.Repo.RequireEnrolled(ctx, p.Subject); err != nil {
		return nil, "", err
	}
	return s.Repo.ListAccess(ctx, AccessFilter{Own: true, MemberID: p.Subject}, page.Normalised())
}

// Audit lists every logged read for admins.
func (s *Enforcement) Audit(ctx context.Context, p Principal, f AccessFilter, page Page) ([]AccessEntry, string, error) {
	if err := p.Require(RoleAdmin); err != nil {
		return nil, "", err
	}
	return s.Repo.ListAccess(ctx, f, page.Normalised())
}

// ConfirmDeletion records that the partner deleted an ended exchange's data.
func (s *Enforcement) ConfirmDeletion(ctx context.Context, p Principal, exchangeID string) (DeletionAck, error) {
	if err := p.Require(RolePartner); err != nil {
		return DeletionAck{}, err
	}
	return s.Repo.ConfirmDeletion(ctx, p.Subject, exchangeID)
}

func (s *Enforcement) MyDeletionAcks(ctx context.Context, p Principal) ([]DeletionAck, error) {
	if err := p.Require(RoleMember); err != nil {
		return nil, err
	}
	return s.Repo.MemberDeletionAcks(ctx, p.Subject)
}

func (s *Enforcement) OverdueDeletions(ctx context.Context, p Principal, page Page) ([]DeletionAck, string, error) {
	if err := p.Require(RoleAdmin); err != nil {
		return nil, "", err
	}
	return s.Repo.OverdueDeletions(ctx, page.Normalised())
}

// RegisterWebhook sets the partner's endpoint. An empty secret is generated
// and returned once; it is never shown again.
func (s *Enforcement) RegisterWebhook(ctx context.Context, p Principal, url, secret string) (Webhook, error) {
	if err := p.Require(RolePartner); err != nil {
		return Webhook{}, err
	}
	if _, err := s.Recipients.GetRecipient(ctx, p.Subject); errors.Is(err, domain.ErrNotFound) {
		return Webhook{}, domain.Forbidden("unknown-recipient", "your token's subject is not a registered recipient")
	} else if err != nil {
		return Webhook{}, err
	}
	var v domain.Violations
	if err := s.Guard.Check(ctx, url); err != nil {
		v.Add("/url", err.Error())
	}
	if secret == "" {
		generated, err := s.Secrets.Generate()
		if err != nil {
			return Webhook{}, err
		}
		secret = generated
	} else if err := s.Secrets.Validate(secret); err != nil {
		v.Add("/secret", err.Error())
	}
	if err := v.Err(); err != nil {
		return Webhook{}, err
	}
	w := Webhook{RecipientID: p.Subject, URL: url, Secret: secret}
	return w, s.Repo.SaveWebhook(ctx, w)
}

// Deliveries shows admins the delivery state of a recipient's events.
func (s *Enforcement) Deliveries(ctx context.Context, p Principal, recipientID string, page Page) ([]Delivery, string, error) {
	if err := p.Require(RoleAdmin); err != nil {
		return nil, "", err
	}
	return s.Repo.ListDeliveries(ctx, recipientID, page.Normalised())
}

// Erasure is what erasing a member did.
type Erasure struct {
	ErasedAt           time.Time
	ExchangesEnded     int
	RecipientsNotified int
	// BonusFamilies is how many contract families' join bonus the subject
	// was paid (under this or an earlier erased identity) and so will not
	// be paid again after enrolling anew: only a keyed hash of (family,
	// subject) is kept for each.
	BonusFamilies int
}

// ErasureRepository erases a member in one transaction.
type ErasureRepository interface {
	EraseMember(ctx context.Context, memberID string) (Erasure, error)
}

// Erase is the right to erasure: every active exchange ends, attributes are
// wiped, and every recipient that received the member's data is asked to
// delete it. The ledger and the logs keep only the pseudonymous member id.
func (s *Enforcement) Erase(ctx context.Context, p Principal) (Erasure, error) {
	if err := p.Require(RoleMember); err != nil {
		return Erasure{}, err
	}
	return s.Erasures.EraseMember(ctx, p.Subject)
}
