package postgres

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// rewardRecord is a row of rewards (migration 00026).
type rewardRecord struct {
	ID             string
	Name           string
	Description    string
	ImageURL       *string
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

const rewardColumns = `id, name, description, image_url, cost, stock, stock_left, per_member_limit, valid_from, valid_until, retired_at, created_at, updated_at`

func (r rewardRecord) toDomain() domain.CatalogueReward {
	return domain.CatalogueReward{ID: r.ID, Name: r.Name, Description: r.Description, ImageURL: deref(r.ImageURL), Cost: r.Cost,
		Stock: r.Stock, StockLeft: r.StockLeft, PerMemberLimit: r.PerMemberLimit, ValidFrom: utcPtr(r.ValidFrom),
		ValidUntil: utcPtr(r.ValidUntil), RetiredAt: utcPtr(r.RetiredAt), CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

func rewardArgs(r domain.CatalogueReward) map[string]any {
	return map[string]any{"id": r.ID, "name": r.Name, "description": r.Description, "image_url": nilIfBlank(r.ImageURL),
		"cost": r.Cost, "stock": r.Stock, "stock_left": r.StockLeft, "per_member_limit": r.PerMemberLimit,
		"valid_from": r.ValidFrom, "valid_until": r.ValidUntil, "retired_at": r.RetiredAt, "created_at": r.CreatedAt, "updated_at": r.UpdatedAt}
}

func nilIfBlank(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// CreateReward implements app.RewardRepository.
func (s *Store) CreateReward(ctx context.Context, r domain.CatalogueReward) (domain.CatalogueReward, error) {
	err := s.db.WithContext(ctx).Exec(`INSERT INTO rewards (`+rewardColumns+`) VALUES (@id, @name, @description, @image_url, @cost,
		@stock, @stock_left, @per_member_limit, @valid_from, @valid_until, @retired_at, @created_at, @updated_at)`, rewardArgs(r)).Error
	if err != nil {
		return domain.CatalogueReward{}, markUnreachable(err)
	}
	return s.GetReward(ctx, r.ID)
}

// GetReward implements app.RewardRepository.
func (s *Store) GetReward(ctx context.Context, id string) (domain.CatalogueReward, error) {
	if !isUUID(id) {
		return domain.CatalogueReward{}, domain.ErrRewardNotFound
	}
	var recs []rewardRecord
	if err := s.db.WithContext(ctx).Raw(`SELECT `+rewardColumns+` FROM rewards WHERE id = ?`, id).Scan(&recs).Error; err != nil {
		return domain.CatalogueReward{}, markUnreachable(err)
	}
	if len(recs) == 0 {
		return domain.CatalogueReward{}, domain.ErrRewardNotFound
	}
	return recs[0].toDomain(), nil
}

// rewardListedSQL is what the public catalogue shows: not retired, valid
// at the database clock, in stock.
const rewardListedSQL = `retired_at IS NULL AND (valid_from IS NULL OR valid_from <= clock_timestamp())
	AND (valid_until IS NULL OR valid_until > clock_timestamp()) AND (stock_left IS NULL OR stock_left > 0)`

// ListRewards implements app.RewardRepository.
func (s *Store) ListRewards(ctx context.Context, all bool, page app.Page) ([]domain.CatalogueReward, string, error) {
	q := s.db.WithContext(ctx).Table("rewards").Select(rewardColumns)
	scope := "rewards\x00all"
	if !all {
		q, scope = q.Where(rewardListedSQL), "rewards"
	}
	recs, next, err := findPage(s, scope, q, "created_at", page, func(r rewardRecord) (time.Time, string) { return r.CreatedAt, r.ID })
	if err != nil {
		return nil, "", markUnreachable(err)
	}
	return mapAll(recs, rewardRecord.toDomain), next, nil
}

// lockReward reads a reward under a row lock inside tx: FOR UPDATE when it
// counts stock (the caller is about to move it; concurrent redemptions of
// its last units queue here, so it is never oversold), FOR SHARE when it
// is unlimited (redemptions of it run side by side, while a marketer's
// change, which takes FOR UPDATE, waits for them and they for it). A stock
// added between the unlocked read and the shared lock is seen after it:
// the shared lock is given back (rolled back to its savepoint, so two such
// redemptions cannot deadlock upgrading it) and the exclusive one taken.
func lockReward(tx *gorm.DB, id string) (rewardRecord, error) {
	if !isUUID(id) {
		return rewardRecord{}, domain.ErrRewardNotFound
	}
	read := func(lock string) (rewardRecord, error) {
		var recs []rewardRecord
		if err := tx.Raw(`SELECT `+rewardColumns+` FROM rewards WHERE id = ? `+lock, id).Scan(&recs).Error; err != nil {
			return rewardRecord{}, err
		}
		if len(recs) == 0 {
			return rewardRecord{}, domain.ErrRewardNotFound
		}
		return recs[0], nil
	}
	r, err := read("")
	if err != nil || r.Stock != nil {
		if err != nil {
			return r, err
		}
		return read("FOR UPDATE")
	}
	if err := tx.SavePoint("reward_share").Error; err != nil {
		return r, err
	}
	if r, err = read("FOR SHARE"); err != nil || r.Stock == nil {
		return r, err
	}
	if err := tx.RollbackTo("reward_share").Error; err != nil {
		return r, err
	}
	return read("FOR UPDATE")
}

// heldUnits counts the units of a reward its active redemptions hold.
func heldUnits(tx *gorm.DB, rewardID string) (int64, error) {
	var n int64
	err := tx.Raw(`SELECT count(*) FROM reward_redemptions WHERE reward_id = ? AND status = 'active'`, rewardID).Scan(&n).Error
	return n, err
}

// EditReward implements app.RewardRepository: the reward is locked FOR
// UPDATE, so no redemption or cancellation of it runs meanwhile and held
// is exact.
func (s *Store) EditReward(ctx context.Context, id string, fn func(*domain.CatalogueReward, int64, time.Time) error) (domain.CatalogueReward, error) {
	var out domain.CatalogueReward
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if !isUUID(id) {
			return domain.ErrRewardNotFound
		}
		var recs []rewardRecord
		if err := tx.Raw(`SELECT `+rewardColumns+` FROM rewards WHERE id = ? FOR UPDATE`, id).Scan(&recs).Error; err != nil {
			return err
		}
		if len(recs) == 0 {
			return domain.ErrRewardNotFound
		}
		held, err := heldUnits(tx, id)
		if err != nil {
			return err
		}
		now, err := dbNow(tx)
		if err != nil {
			return err
		}
		r := recs[0].toDomain()
		if err := fn(&r, held, now); err != nil {
			return err
		}
		out = r
		return tx.Exec(`UPDATE rewards SET name = @name, description = @description, image_url = @image_url, cost = @cost,
			stock = @stock, stock_left = @stock_left, per_member_limit = @per_member_limit, valid_from = @valid_from,
			valid_until = @valid_until, retired_at = @retired_at, updated_at = @updated_at WHERE id = @id`, rewardArgs(r)).Error
	})
	return out, markUnreachable(err)
}

// redemptionRecord is a row of reward_redemptions with its reward's name
// and, for the member's view, when its cancellation window closes.
type redemptionRecord struct {
	ID               string
	RewardID         string
	RewardName       string
	Code             string
	Points           int64
	Status           string
	EntryID          string
	ReversalID       *string
	CreatedAt        time.Time
	CancelledAt      *time.Time
	CancellableUntil time.Time
}

func (r redemptionRecord) toDomain() domain.RewardRedemption {
	return domain.RewardRedemption{ID: r.ID, RewardID: r.RewardID, RewardName: r.RewardName, Code: r.Code, Points: r.Points,
		Status: r.Status, EntryID: r.EntryID, ReversalID: deref(r.ReversalID), CreatedAt: r.CreatedAt.UTC(),
		CancelledAt: utcPtr(r.CancelledAt), CancellableUntil: r.CancellableUntil.UTC()}
}

// redemptionsSQL reads redemptions with their reward's name, their
// member (their entry's) and the end of their cancellation window.
const redemptionsSQL = `(SELECT x.id, x.reward_id, w.name AS reward_name, x.code, x.points, x.status, x.entry_id, x.reversal_id,
	x.created_at, x.cancelled_at, x.created_at + CAST(? AS interval) AS cancellable_until, e.member_id
	FROM reward_redemptions x JOIN ledger_entries e ON e.id = x.entry_id JOIN rewards w ON w.id = x.reward_id) AS r`

// rewardRedemptionStored is the response stored for an Idempotency-Key.
type rewardRedemptionStored struct {
	Redemption redemptionRecord
	Entry      entryRecord
	Balance    domain.Balance
}

// RedeemReward implements app.RewardRepository. Lock order: the member's
// row, then the reward's (lockReward); marketers' changes take the
// reward's only, so none of them deadlock. Under both locks every check
// and every move is exact: the reward can be redeemed now, the member
// holds fewer than its per-member limit, the points (after expiring what
// is due) cover its cost; then the redemption entry (the lots trigger takes
// its points FEFO), the balance, the stock (stock_left >= 0 is a CHECK
// besides) and the redemption row with its code. Stored under the same
// Idempotency-Key scope as points-only redemptions: one endpoint.
func (s *Store) RedeemReward(ctx context.Context, memberID, rewardID string, code func() (string, error), window domain.Duration,
	idem *app.IdempotencyKey) (app.RewardRedemptionResult, bool, error) {
	var res rewardRedemptionStored
	// Everything that needs only the member's lock comes first, so the
	// reward's lock (which every redemption of a counted stock queues on)
	// is held for the writes alone: inRedemptionTx expires the points due,
	// and the member's active redemptions of the reward are counted from
	// their own entries (the limit; only this member's transactions change
	// it, and they wait for this lock).
	replayed, err := s.inRedemptionTx(ctx, memberID, idem, &res, func(tx *gorm.DB, now time.Time, bal domain.Balance) error {
		var held int64
		if isUUID(rewardID) {
			if err := tx.Raw(`SELECT count(*) FROM ledger_entries e JOIN reward_redemptions x ON x.entry_id = e.id
				WHERE e.member_id = ? AND e.kind = 'redemption' AND x.reward_id = ? AND x.status = 'active'`, memberID, rewardID).Scan(&held).Error; err != nil {
				return err
			}
		}
		rw, err := lockReward(tx, rewardID)
		if err != nil {
			return err
		}
		reward := rw.toDomain()
		if err := reward.AvailableAt(now); err != nil {
			return err
		}
		if reward.PerMemberLimit != nil && held >= *reward.PerMemberLimit {
			return domain.ErrRewardLimit
		}
		after, err := bal.Redeem(reward.Cost)
		if err != nil {
			return errInsufficientForReward
		}
		entry, err := writeRedemption(tx, memberID, reward.Cost, nil, now, after)
		if err != nil {
			return err
		}
		if reward.Stock != nil {
			if err := tx.Exec(`UPDATE rewards SET stock_left = stock_left - 1 WHERE id = ?`, reward.ID).Error; err != nil {
				return err
			}
		}
		c, err := code()
		if err != nil {
			return err
		}
		rec := redemptionRecord{RewardID: reward.ID, RewardName: reward.Name, Code: c, Points: reward.Cost, Status: domain.RedemptionActive,
			EntryID: entry.ID, CreatedAt: now, CancellableUntil: window.AddTo(now, 1)}
		if err := tx.Raw(`INSERT INTO reward_redemptions (id, reward_id, entry_id, code, points, status, created_at)
			VALUES (gen_random_uuid(), ?, ?, ?, ?, 'active', ?) RETURNING id, created_at + CAST(? AS interval) AS cancellable_until`,
			reward.ID, entry.ID, c, reward.Cost, now, window.String()).Row().Scan(&rec.ID, &rec.CancellableUntil); err != nil {
			return err
		}
		res = rewardRedemptionStored{Redemption: rec, Entry: entry, Balance: after}
		return nil
	})
	return app.RewardRedemptionResult{Redemption: res.Redemption.toDomain(), Entry: res.Entry.toDomain(), Balance: res.Balance},
		replayed, translateRewardErr(err)
}

// errInsufficientForReward is insufficient-points at the field this body has.
var errInsufficientForReward = &domain.Error{Kind: domain.KindInvalid, Code: "insufficient-points", Message: "the balance is too low for this",
	Fields: []domain.FieldError{{Pointer: "/reward_id", Reason: "costs more points than are available"}}}

// translateRewardErr keeps the domain's answers and maps the rest.
func translateRewardErr(err error) error {
	var de *domain.Error
	if err == nil || errors.As(err, &de) {
		return err
	}
	return markUnreachable(err)
}

// CancelRedemption implements app.RewardRepository: under the member's
// lock and the reward's, a redemption of the member's that is active and
// within its window gets a reversal entry naming it (the lots trigger
// gives its points back to the lots it took them from, which keep their
// expiry: points restored to a lot already past it are expired at once,
// as the expiry job would have), its stock unit back and the status
// cancelled, which frees its place in the per-member limit.
func (s *Store) CancelRedemption(ctx context.Context, memberID, id string, window domain.Duration) (domain.RewardRedemption, domain.Balance, error) {
	var out redemptionRecord
	var bal domain.Balance
	err := s.inMemberTx(ctx, memberID, memberLock{}, func(tx *gorm.DB, m memberRecord) error {
		if !isUUID(id) {
			return domain.ErrRedemptionNotFound
		}
		var recs []redemptionRecord
		if err := tx.Raw(`SELECT r.id, r.reward_id, r.reward_name, r.code, r.points, r.status, r.entry_id, r.reversal_id,
			r.created_at, r.cancelled_at, r.cancellable_until, r.member_id FROM `+redemptionsSQL+` WHERE r.id = ? AND r.member_id = ?`, window.String(), id, memberID).Scan(&recs).Error; err != nil {
			return err
		}
		if len(recs) == 0 {
			return domain.ErrRedemptionNotFound
		}
		rec := recs[0]
		if rec.Status != domain.RedemptionActive {
			return domain.ErrRedemptionCancelled
		}
		rw, err := lockReward(tx, rec.RewardID)
		if err != nil {
			return err
		}
		now, err := dbNow(tx)
		if err != nil {
			return err
		}
		if !now.Before(rec.CancellableUntil) {
			return domain.ErrRedemptionWindowClosed
		}
		var reversal string
		if err := tx.Raw(`INSERT INTO ledger_entries (member_id, kind, points, reverses, created_at) VALUES (?, 'reversal', ?, ?, ?) RETURNING id`,
			memberID, rec.Points, rec.EntryID, now).Scan(&reversal).Error; err != nil {
			return err
		}
		available := m.Available + rec.Points
		_, expired, err := expirePoints(tx, textArray([]string{memberID}), now)
		if err != nil {
			return err
		}
		if err := tx.Exec(`UPDATE members SET available = available + ? WHERE id = ?`, rec.Points, memberID).Error; err != nil {
			return err
		}
		if rw.Stock != nil {
			if err := tx.Exec(`UPDATE rewards SET stock_left = stock_left + 1 WHERE id = ?`, rw.ID).Error; err != nil {
				return err
			}
		}
		if err := tx.Exec(`UPDATE reward_redemptions SET status = 'cancelled', cancelled_at = ?, reversal_id = ? WHERE id = ?`,
			now, reversal, rec.ID).Error; err != nil {
			return err
		}
		rec.Status, rec.CancelledAt, rec.ReversalID = domain.RedemptionCancelled, &now, &reversal
		out, bal = rec, domain.Balance{Available: available - expired, Pending: m.Pending}
		return nil
	})
	return out.toDomain(), bal, translateRewardErr(err)
}

// ListRedemptions implements app.RewardRepository.
func (s *Store) ListRedemptions(ctx context.Context, memberID string, window domain.Duration, page app.Page) ([]domain.RewardRedemption, string, error) {
	q := s.db.WithContext(ctx).Table(redemptionsSQL, window.String()).Where("r.member_id = ?", memberID)
	recs, next, err := findPage(s, listScope("redemptions", memberID), q, "created_at", page,
		func(r redemptionRecord) (time.Time, string) { return r.CreatedAt, r.ID })
	if err != nil {
		return nil, "", markUnreachable(err)
	}
	return mapAll(recs, redemptionRecord.toDomain), next, nil
}
