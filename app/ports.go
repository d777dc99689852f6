package app

import (
	"context"
	"time"

	"github.com/quidpro/quid/domain"
)

// Page asks for one page of a list; Cursor is opaque, from a previous page.
// Feed asks an incremental list (audit, access log, webhook deliveries) for
// commit order instead of newest first: oldest first, only rows whose
// transaction has finished before every still-running one began, so
// following the cursor never skips a committed row and never repeats one.
type Page struct {
	Cursor string
	Limit  int
	Feed   bool
}

// Normalised clamps the limit to 1..100, default 20.
func (p Page) Normalised() Page {
	if p.Limit <= 0 {
		p.Limit = 20
	}
	if p.Limit > 100 {
		p.Limit = 100
	}
	return p
}

// Clock tells the time; tests and the database may supply their own.
type Clock interface {
	Now() time.Time
}

// IDs mints new identifiers.
type IDs interface {
	NewID() string
}

// Enrolment tells whether a member exists and is not erased, so that the
// member's own lists answer "not enrolled" instead of an empty page.
type Enrolment interface {
	RequireEnrolled(ctx context.Context, memberID string) error
}

// RecipientRepository stores the recipients registry.
type RecipientRepository interface {
	CreateRecipient(ctx context.Context, r domain.Recipient) error
	GetRecipient(ctx context.Context, id string) (domain.Recipient, error)
	ListRecipients(ctx context.Context, page Page) ([]domain.Recipient, string, error)
	RecipientsByID(ctx context.Context, ids []string) (map[string]domain.Recipient, error)
}

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
	ContractStats(ctx context.Context, id string) (ContractStats, error)
}

// ContractStats are aggregates only: never a member id or an attribute.
type ContractStats struct {
	Joins        int64
	Active       int64
	Cancelled    int64
	Expired      int64
	Terminated   int64
	Superseded   int64
	Erased       int64
	PointsIssued int64
}
