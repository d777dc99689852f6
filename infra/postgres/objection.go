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
		res := tx.Exec(`WITH gone AS (DELETE FROM member_objections WHERE member_id = ? AND purpose = ? RETURNING member_id, purpose, created_at)
INSERT INTO lifted_objections (member_id, purpose, objected_at, lifted_at)
SELECT member_id, purpose, created_at, GREATEST(created_at, clock_timestamp()) FROM gone`, memberID, purpose)
		lifted = res.RowsAffected == 1
		return res.Error
	})
	return lifted, err
}

type objectionRow struct {
	Purpose   string
	CreatedAt time.Time
	LiftedAt  *time.Time
}

func (r objectionRow) objection() app.Objection {
	o := app.Objection{Purpose: r.Purpose, At: r.CreatedAt.UTC()}
	if r.LiftedAt != nil {
		t := r.LiftedAt.UTC()
		o.LiftedAt = &t
	}
	return o
}

// Objections implements app.ObjectionRepository: the standing objections,
// oldest first, one page at a time from a sealed (created_at, purpose)
// position.
func (s *Store) Objections(ctx context.Context, memberID string, page app.Page) ([]app.Objection, string, error) {
	scope := listScope("objections", memberID)
	q := s.db.WithContext(ctx).Table("member_objections").Select("purpose, created_at").Where("member_id = ?", memberID)
	if page.Cursor != "" {
		at, purpose, err := s.decodeCursor(ctx, scope, page.Cursor)
		if err != nil {
			return nil, "", err
		}
		q = q.Where("(created_at, purpose) > (?, ?)", at, purpose)
	}
	var rows []objectionRow
	if err := q.Order("created_at").Order("purpose").Limit(page.Limit + 1).Scan(&rows).Error; err != nil {
		return nil, "", err
	}
	next := ""
	if len(rows) > page.Limit {
		rows = rows[:page.Limit]
		last := rows[len(rows)-1]
		var err error
		if next, err = s.encodeCursor(ctx, scope, last.CreatedAt, last.Purpose); err != nil {
			return nil, "", err
		}
	}
	out := make([]app.Objection, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.objection())
	}
	return out, next, nil
}

// StandingObjections implements app.ObjectionRepository: the objections in
// force, which a member's offers page reads on every request.
func (s *Store) StandingObjections(ctx context.Context, memberID string) ([]app.Objection, error) {
	var rows []objectionRow
	if err := s.db.WithContext(ctx).Raw(`SELECT purpose, created_at FROM member_objections WHERE member_id = ? ORDER BY created_at, purpose`,
		memberID).Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]app.Objection, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.objection())
	}
	return out, nil
}

// ObjectionHistory implements app.ObjectionRepository: every objection the
// member made, standing or lifted, oldest first.
func (s *Store) ObjectionHistory(ctx context.Context, memberID string) ([]app.Objection, error) {
	var rows []objectionRow
	if err := s.db.WithContext(ctx).Raw(`SELECT purpose, created_at, NULL::timestamptz AS lifted_at FROM member_objections WHERE member_id = @m
UNION ALL
SELECT purpose, objected_at, lifted_at FROM lifted_objections WHERE member_id = @m
ORDER BY created_at, purpose, lifted_at NULLS LAST`, map[string]any{"m": memberID}).Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]app.Objection, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.objection())
	}
	return out, nil
}
