package domain

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds of a reward's fields (openapi.yaml RewardInput says the same).
const (
	MaxRewardName        = 200
	MaxRewardDescription = 2000
	// MaxRewardCost, MaxRewardStock and MaxRewardLimit keep every count
	// far from int64 overflow however many units are redeemed.
	MaxRewardCost  = 1_000_000_000_000
	MaxRewardStock = 1_000_000_000
	MaxRewardLimit = 1_000_000
)

// CatalogueReward is an item of the catalogue that members redeem points for.
// Stock is how many units were made (nil: unlimited) and StockLeft how
// many are still to be had; PerMemberLimit caps how many of them one
// member may hold at once (active redemptions; nil: no cap). It can be
// redeemed from ValidFrom (inclusive) until ValidUntil (exclusive), each
// open when nil, unless it is retired.
type CatalogueReward struct {
	ID             string
	Name           string
	Description    string
	ImageURL       string
	Cost           int64
	Stock          *int64
	StockLeft      *int64
	PerMemberLimit *int64
	ValidFrom      *time.Time
	ValidUntil     *time.Time
	RetiredAt      *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Validate reports every problem of r's marketer-set fields at once, at
// the JSON pointers of POST /v1/rewards.
func (r CatalogueReward) Validate() error {
	var v Violations
	if s := strings.TrimSpace(r.Name); s == "" || utf8.RuneCountInString(r.Name) > MaxRewardName {
		v.Add("/name", "must be 1 to 200 characters, not only white space")
	} else if hidesLine(r.Name) {
		v.Add("/name", "must not hold control characters or bidirectional overrides")
	}
	if utf8.RuneCountInString(r.Description) > MaxRewardDescription {
		v.Add("/description", "must be at most 2000 characters")
	} else if hidesText(r.Description) {
		v.Add("/description", "must not hold control characters (other than line breaks and tabs) or bidirectional overrides")
	}
	if r.ImageURL != "" {
		if problem := WebURLProblem(r.ImageURL); problem != "" {
			v.Add("/image_url", problem)
		} else if !strings.HasPrefix(r.ImageURL, "https://") {
			v.Add("/image_url", "must be an https URL (a member's browser would refuse mixed content)")
		}
	}
	if r.Cost < 1 || r.Cost > MaxRewardCost {
		v.Add("/cost", "must be a whole number of points from 1 to 1000000000000")
	}
	if r.Stock != nil && (*r.Stock < 0 || *r.Stock > MaxRewardStock) {
		v.Add("/stock", "must be a whole number from 0 to 1000000000, or null for unlimited")
	}
	if r.PerMemberLimit != nil && (*r.PerMemberLimit < 1 || *r.PerMemberLimit > MaxRewardLimit) {
		v.Add("/per_member_limit", "must be a whole number from 1 to 1000000, or null for no limit")
	}
	if r.ValidFrom != nil && r.ValidUntil != nil && !r.ValidUntil.After(*r.ValidFrom) {
		v.Add("/valid_until", "must be later than valid_from")
	}
	return v.Err()
}

// AvailableAt tells whether r can be redeemed at t, and if not, the
// conflict that says why.
func (r CatalogueReward) AvailableAt(t time.Time) error {
	switch {
	case r.RetiredAt != nil:
		return ErrRewardRetired
	case r.ValidFrom != nil && t.Before(*r.ValidFrom), r.ValidUntil != nil && !t.Before(*r.ValidUntil):
		return ErrRewardNotValid
	case r.StockLeft != nil && *r.StockLeft <= 0:
		return ErrRewardOutOfStock
	}
	return nil
}

// Errors of the catalogue (the problem types of openapi.yaml).
var (
	ErrRewardNotFound   = NotFound("reward-not-found", "no reward with this id")
	ErrRewardRetired    = Conflict("reward-retired", "this reward is retired and can no longer be redeemed or changed")
	ErrRewardNotValid   = Conflict("reward-not-valid-now", "this reward cannot be redeemed at this time (see valid_from and valid_until)")
	ErrRewardOutOfStock = Conflict("reward-out-of-stock", "this reward is out of stock")
	ErrRewardLimit      = Conflict("reward-limit-reached", "you already hold as many redemptions of this reward as one member may (per_member_limit)")
	ErrStockBelowHeld   = &Error{Kind: KindConflict, Code: "stock-below-redeemed",
		Message: "stock cannot be less than the units active redemptions hold",
		Fields:  []FieldError{{Pointer: "/stock", Reason: "is less than the units active redemptions of this reward hold"}}}
	ErrRedemptionNotFound     = NotFound("redemption-not-found", "no redemption of yours with this id")
	ErrRedemptionCancelled    = Conflict("redemption-already-cancelled", "this redemption is already cancelled; its points were returned then")
	ErrRedemptionWindowClosed = Conflict("cancel-window-closed", "this redemption can no longer be cancelled: its cancellation window (QUID_REDEMPTION_CANCEL_WINDOW) has passed")
)

// Redemption statuses.
const (
	RedemptionActive    = "active"
	RedemptionCancelled = "cancelled"
)

// RewardRedemption is a member's redemption of a reward: the points it
// took (the reward's cost then), the code the member shows to claim it,
// and whether it still stands.
type RewardRedemption struct {
	ID          string
	RewardID    string
	RewardName  string
	Code        string
	Points      int64
	Status      string
	EntryID     string
	ReversalID  string
	CreatedAt   time.Time
	CancelledAt *time.Time
	// CancellableUntil is when the cancellation window closes.
	CancellableUntil time.Time
}
