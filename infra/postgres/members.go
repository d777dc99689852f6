package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

type memberRecord struct {
	ID         string `gorm:"primaryKey"`
	Attributes []byte `gorm:"type:jsonb"`
	Available  int64
	Pending    int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ErasedAt   *time.Time
}

func (memberRecord) TableName() string { return "members" }

func (r memberRecord) toApp() (app.Member, error) {
	attrs := map[string]any{}
	if len(r.Attributes) > 0 {
		if err := json.Unmarshal(r.Attributes, &attrs); err != nil {
			return app.Member{}, err
		}
	}
	return app.Member{ID: r.ID, Attributes: attrs, Balance: domain.Balance{Available: r.Available, Pending: r.Pending},
		CreatedAt: r.CreatedAt.UTC()}, nil
}

// balanceNowColumns selects a member row with its available balance as of
// now: the stored balance less what the member's lots past their expiry
// (expires_at <= now) still hold, points the accrual worker has not
// expired yet but that every redemption expires first (expirePoints, under
// the member's lock). Every member-facing read of the balance selects it,
// so no view shows points the member can no longer spend, however late the
// worker runs, and no read writes.
const balanceNowColumns = `members.id, members.attributes, members.pending, members.created_at, members.updated_at, members.erased_at,
    members.available - (SELECT coalesce(sum(l.remaining), 0) FROM ledger_entries c JOIN points_lots l ON l.entry_id = c.id
                         WHERE c.member_id = members.id AND l.remaining > 0 AND l.expires_at <= clock_timestamp()) AS available`

var errNotEnrolled = domain.NotFound("member-not-enrolled", "you are not enrolled yet: PUT /v1/me first")

// activeSharesSQL lists the member's active exchanges that have not lapsed
// with the categories each one's contract shares; SaveProfile runs it under
// the member's row lock, which every join takes too, so no join can start
// sharing an attribute between this read and the removal.
const activeSharesSQL = `SELECT e.id, e.contract_id, ARRAY(SELECT DISTINCT i->>'category' FROM jsonb_array_elements(c.terms->'items') AS i) AS categories
FROM exchanges e JOIN contracts c ON c.id = e.contract_id
WHERE e.member_id = ? AND e.status = 'active' AND (e.expires_at IS NULL OR e.expires_at > clock_timestamp())
ORDER BY e.id`

func (s *Store) activeShares(tx *gorm.DB, memberID string) ([]domain.Share, error) {
	rows, err := tx.Raw(activeSharesSQL, memberID).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.Share
	var contracts []string
	for rows.Next() {
		var sh domain.Share
		var contractID string
		var cats pgtype.FlatArray[string]
		if err := rows.Scan(&sh.ExchangeID, &contractID, &cats); err != nil {
			return nil, err
		}
		sh.Categories = cats
		out = append(out, sh)
		contracts = append(contracts, contractID)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	// The age each exchange requires follows from its frozen terms and
	// their recipients.
	for i, id := range contracts {
		c, err := s.frozenContract(tx, id, domain.ContractPublished)
		if err != nil {
			return nil, fmt.Errorf("read contract %s: %w", id, err)
		}
		recipients, err := s.recipientsByID(tx, c.RecipientIDs())
		if err != nil {
			return nil, fmt.Errorf("read recipients: %w", err)
		}
		out[i].Terms, out[i].Recipients = c.Terms(), recipients
	}
	return out, nil
}

// enrolAttempts bounds how often SaveProfile enrols again after the row
// its insert met was erased while it waited for the row's lock: each retry
// needs another erasure of the same subject to commit in between.
const enrolAttempts = 3

// enrolOrLock enrols memberID unless a row has that id and locks the row.
// An erasure holding the row's lock replaces its id by a pseudonym: the
// insert, which met the row before that, did nothing, and the lock, taken
// once the erasure committed, finds the row no longer has the id (READ
// COMMITTED re-reads the row the lock waited for). The next statement sees
// the erasure, so the insert is retried and enrols the subject afresh, as a
// PUT after the erasure would.
func enrolOrLock(tx *gorm.DB, memberID string, now time.Time) (memberRecord, bool, error) {
	for attempt := 1; ; attempt++ {
		ins := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&memberRecord{ID: memberID, Attributes: []byte("{}"), CreatedAt: now, UpdatedAt: now})
		if ins.Error != nil {
			return memberRecord{}, false, fmt.Errorf("enrol member: %w", ins.Error)
		}
		var rec memberRecord
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).First(&rec, "id = ?", memberID).Error
		if errors.Is(err, gorm.ErrRecordNotFound) && attempt < enrolAttempts {
			continue
		}
		if err != nil {
			return memberRecord{}, false, fmt.Errorf("lock member: %w", translate(err, "member"))
		}
		return rec, ins.RowsAffected == 1, nil
	}
}

func (s *Store) SaveProfile(ctx context.Context, memberID string, changes map[string]any, guard app.ProfileGuard,
	rectified func([]string) []string) (app.ProfileSave, error) {
	out := app.ProfileSave{Ended: []string{}}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now, err := dbNow(tx)
		if err != nil {
			return fmt.Errorf("read clock: %w", err)
		}
		rec, created, err := enrolOrLock(tx, memberID, now)
		if err != nil {
			return err
		}
		if rec.ErasedAt != nil {
			// Erased by an older release, which kept the subject as the
			// row's id: pseudonymise it now and enrol afresh.
			if err := reclaimErasedSubject(tx, memberID, rec.ErasedAt.UTC()); err != nil {
				return fmt.Errorf("pseudonymise a member erased by an older release: %w", err)
			}
			if err := tx.Create(&memberRecord{ID: memberID, Attributes: []byte("{}"), CreatedAt: now, UpdatedAt: now}).Error; err != nil {
				return fmt.Errorf("enrol member afresh: %w", err)
			}
			created = true
			rec = memberRecord{}
			if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).First(&rec, "id = ?", memberID).Error; err != nil {
				return fmt.Errorf("lock member: %w", translate(err, "member"))
			}
		}
		m, err := rec.toApp()
		if err != nil {
			return fmt.Errorf("member attributes: %w", err)
		}
		var removed []string
		for k, v := range changes {
			if _, had := m.Attributes[k]; had && v == nil {
				removed = append(removed, k)
			}
		}
		if guard != nil {
			var active []domain.Share
			_, birthdate := changes[domain.BirthdateCategory]
			if len(removed) > 0 || birthdate {
				sort.Strings(removed)
				if active, err = s.activeShares(tx, memberID); err != nil {
					return fmt.Errorf("read active exchanges: %w", err)
				}
			}
			after := make(map[string]any, len(m.Attributes)+len(changes))
			for k, v := range m.Attributes {
				after[k] = v
			}
			for k, v := range changes {
				if v == nil {
					delete(after, k)
				} else {
					after[k] = v
				}
			}
			end, err := guard(removed, after, active, now)
			if err != nil {
				return err
			}
			if len(end) > 0 {
				// A corrected birthdate below an exchange's age rule ends
				// it as a member's cancel would, before the recipients
				// still granted the birthdate are told of the change.
				closed, err := endExchanges(tx, "e.member_id = @member AND e.id = ANY(CAST(@ids AS uuid[]))",
					[]any{"member", memberID, "ids", textArray(end), "now", now}, "cancelled", "CAST(@now AS timestamptz)", "age_rule")
				if err != nil {
					return fmt.Errorf("end exchanges whose age rule no longer holds: %w", err)
				}
				if err := s.afterEnded(tx, closed, "exchange.cancelled"); err != nil {
					return fmt.Errorf("notify cancellations: %w", err)
				}
				for _, e := range closed {
					out.Ended = append(out.Ended, e.ID)
				}
				sort.Strings(out.Ended)
			}
		}
		var changed []string
		for k, v := range changes {
			old, had := m.Attributes[k]
			switch {
			case v == nil && had:
				delete(m.Attributes, k)
				changed = append(changed, k)
			case v != nil && (!had || !reflect.DeepEqual(old, v)):
				m.Attributes[k] = v
				changed = append(changed, k)
			}
		}
		sort.Strings(changed)
		if created {
			if err := tx.Exec(`INSERT INTO member_events (member_id, kind, at) VALUES (?, 'enrolled', ?)`, memberID, now).Error; err != nil {
				return fmt.Errorf("log enrolment: %w", err)
			}
		}
		if len(changed) > 0 {
			raw, err := json.Marshal(m.Attributes)
			if err != nil {
				return fmt.Errorf("encode attributes: %w", err)
			}
			if err := tx.Model(&memberRecord{}).Where("id = ?", memberID).
				Updates(map[string]any{"attributes": raw, "updated_at": now}).Error; err != nil {
				return fmt.Errorf("save attributes: %w", err)
			}
			if err := tx.Exec(`INSERT INTO member_events (member_id, kind, changed_keys, at) VALUES (?, 'attributes_changed', ?, ?)`,
				memberID, textArray(changed), now).Error; err != nil {
				return fmt.Errorf("log changed keys: %w", err)
			}
			affected := changed
			if rectified != nil {
				affected = rectified(changed)
			}
			if err := notifyRectified(tx, memberID, affected, now); err != nil {
				return fmt.Errorf("tell recipients of the rectification: %w", err)
			}
		}
		if out.Restricted, err = restrictedNow(tx, memberID); err != nil {
			return fmt.Errorf("read restriction: %w", err)
		}
		var held memberRecord
		if err := tx.Select(balanceNowColumns).First(&held, "id = ?", memberID).Error; err != nil {
			return fmt.Errorf("read balance: %w", err)
		}
		m.Balance = domain.Balance{Available: held.Available, Pending: held.Pending}
		out.Member, out.Created = m, created
		return nil
	})
	if err != nil {
		return app.ProfileSave{}, err
	}
	return out, nil
}

func (s *Store) RequireEnrolled(ctx context.Context, memberID string) error {
	var enrolled bool
	if err := s.db.WithContext(ctx).Raw(`SELECT EXISTS (SELECT 1 FROM members WHERE id = ? AND erased_at IS NULL)`, memberID).
		Scan(&enrolled).Error; err != nil {
		return err
	}
	if !enrolled {
		return errNotEnrolled
	}
	return nil
}

func (s *Store) GetMember(ctx context.Context, memberID string) (app.Member, error) {
	var rec memberRecord
	err := s.db.WithContext(ctx).Select(balanceNowColumns).First(&rec, "id = ? AND erased_at IS NULL", memberID).Error
	if err != nil {
		if translate(err, "member") != err {
			return app.Member{}, errNotEnrolled
		}
		return app.Member{}, err
	}
	return rec.toApp()
}

// dbNow reads the database clock. Every consent and ledger time comes from
// it, so app servers with skewed clocks cannot reorder a cancellation and a
// period credit.
func dbNow(tx *gorm.DB) (time.Time, error) {
	var now time.Time
	err := tx.Raw("SELECT clock_timestamp()").Scan(&now).Error
	return now.UTC(), err
}

// textArray hands items to pgx as one array parameter, for a text[] or
// uuid[] placeholder, encoded by the driver: no literal is built by hand,
// so any character in an item arrives as it was. (gorm would expand a bare
// slice into a parenthesised list; pgtype.Array is a struct, so gorm binds
// it as one value and pgx encodes it.)
func textArray(items []string) pgtype.Array[string] {
	return pgtype.Array[string]{Elements: items, Valid: true,
		Dims: []pgtype.ArrayDimension{{Length: int32(len(items)), LowerBound: 1}}}
}
