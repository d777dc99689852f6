package postgres

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
)

// usesPurposeSQL is endExchanges' condition for the exchanges whose
// contract names @purpose in any item.
const usesPurposeSQL = `e.member_id = @member AND EXISTS (
    SELECT 1 FROM contracts c, jsonb_array_elements(c.terms->'items') i
    WHERE c.id = e.contract_id AND i->>'purpose' = @purpose)`

// Object implements app.ObjectionRepository: under the member's lock it
// records the objection and ends, with the set-based ending every other
// writer uses (bonus voiding, consent events, webhooks, deletion duties),
// every active exchange whose contract uses the purpose, as cancelled by
// the actor "objection". Consent that had already lapsed expires first, as
// for a member's cancel.
func (s *Store) Object(ctx context.Context, memberID, purpose string) (app.Objection, []string, bool, error) {
	var (
		out     app.Objection
		ended   []string
		created bool
	)
	err := s.inMemberTx(ctx, memberID, memberLock{}, func(tx *gorm.DB, _ memberRecord) error {
		if err := s.expireLapsed(tx, memberID); err != nil {
			return err
		}
		now, err := dbNow(tx)
		if err != nil {
			return err
		}
		res := tx.Exec(`INSERT INTO member_objections (member_id, purpose, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
			memberID, purpose, now)
		if res.Error != nil {
			return res.Error
		}
		created = res.RowsAffected == 1
		closed, err := endExchanges(tx, usesPurposeSQL, []any{"member", memberID, "purpose", purpose, "now", now},
			"cancelled", "CAST(@now AS timestamptz)", "objection")
		if err != nil {
			return err
		}
		if err := s.afterEnded(tx, closed, "exchange.cancelled"); err != nil {
			return err
		}
		for _, e := range closed {
			ended = append(ended, e.ID)
		}
		var at time.Time
		if err := tx.Raw(`SELECT created_at FROM member_objections WHERE member_id = ? AND purpose = ?`, memberID, purpose).
			Scan(&at).Error; err != nil {
			return err
		}
		out = app.Objection{Purpose: purpose, At: at.UTC()}
		return nil
	})
	return out, ended, created, err
}

// LiftObjection implements app.ObjectionRepository, under the member's
// lock (the lock a join reads objections under).
func (s *Store) LiftObjection(ctx context.Context, memberID, purpose string) (bool, error) {
	var lifted bool
	err := s.inMemberTx(ctx, memberID, memberLock{}, func(tx *gorm.DB, _ memberRecord) error {
		res := tx.Exec(`DELETE FROM member_objections WHERE member_id = ? AND purpose = ?`, memberID, purpose)
		lifted = res.RowsAffected == 1
		return res.Error
	})
	return lifted, err
}

// Objections implements app.ObjectionRepository, oldest first.
func (s *Store) Objections(ctx context.Context, memberID string) ([]app.Objection, error) {
	var rows []struct {
		Purpose   string
		CreatedAt time.Time
	}
	if err := s.db.WithContext(ctx).Raw(`SELECT purpose, created_at FROM member_objections WHERE member_id = ? ORDER BY created_at, purpose`,
		memberID).Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]app.Objection, 0, len(rows))
	for _, r := range rows {
		out = append(out, app.Objection{Purpose: r.Purpose, At: r.CreatedAt.UTC()})
	}
	return out, nil
}
