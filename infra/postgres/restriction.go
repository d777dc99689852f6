package postgres

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
)

// SetRestriction implements app.RestrictionRepository. The period's time is
// read from the database clock after the member's row lock is taken: accrual
// holds the same lock while it settles periods, so every period it has
// settled ended before a restriction that starts now, and every period it
// settles later sees the restriction.
func (s *Store) SetRestriction(ctx context.Context, memberID string, restricted bool) (app.Restriction, error) {
	var out app.Restriction
	err := s.inMemberTx(ctx, memberID, memberLock{}, func(tx *gorm.DB, _ memberRecord) error {
		// Consent that lapsed is closed first, so that recipients whose
		// grant already ran out are not told about the restriction.
		if err := s.expireLapsed(tx, memberID); err != nil {
			return err
		}
		now, err := dbNow(tx)
		if err != nil {
			return err
		}
		open, err := restrictedNow(tx, memberID)
		if err != nil {
			return err
		}
		if open != restricted {
			stmt, event := `UPDATE member_restrictions SET ended_at = @now WHERE member_id = @member AND ended_at IS NULL`, "member.restriction_lifted"
			if restricted {
				stmt, event = `INSERT INTO member_restrictions (member_id, started_at) VALUES (@member, @now)`, "member.restricted"
			}
			named := map[string]any{"member": memberID, "now": now, "type": event}
			if err := tx.Exec(stmt, named).Error; err != nil {
				return err
			}
			if err := tx.Exec(restrictionEventsSQL, named).Error; err != nil {
				return err
			}
		}
		out, err = restrictionOf(tx, memberID)
		return err
	})
	return out, err
}

// restrictionEventsSQL tells every recipient that an active, unexpired
// exchange of @member grants data to that processing is restricted (or no
// longer is), with the exchanges concerned (GDPR Art. 19).
var restrictionEventsSQL = `
INSERT INTO webhook_outbox (id, recipient_id, event_type, payload, created_at, next_attempt_at)
SELECT gen_random_uuid(), g.recipient_id, @type, jsonb_build_object(
    'type', CAST(@type AS text),
    'timestamp', ` + utc("CAST(@now AS timestamptz)") + `,
    'data', jsonb_build_object('member_id', CAST(@member AS text),
        'restricted', CAST(@type AS text) = 'member.restricted',
        'exchanges', jsonb_agg(DISTINCT e.id),
        'at', ` + utc("CAST(@now AS timestamptz)") + `)),
    CAST(@now AS timestamptz), CAST(@now AS timestamptz)
FROM exchanges e JOIN contracts c ON c.id = e.contract_id ` + grantsByRecipient + `
WHERE e.member_id = @member AND e.status = 'active' AND (e.expires_at IS NULL OR e.expires_at > @now)
GROUP BY g.recipient_id`

// Restriction implements app.RestrictionRepository.
func (s *Store) Restriction(ctx context.Context, memberID string) (app.Restriction, error) {
	if err := s.RequireEnrolled(ctx, memberID); err != nil {
		return app.Restriction{}, err
	}
	return restrictionOf(s.db.WithContext(ctx), memberID)
}

func restrictionOf(tx *gorm.DB, memberID string) (app.Restriction, error) {
	var rows []struct {
		StartedAt time.Time
		EndedAt   *time.Time
	}
	if err := tx.Raw(`SELECT started_at, ended_at FROM member_restrictions WHERE member_id = ? ORDER BY started_at, id`, memberID).
		Scan(&rows).Error; err != nil {
		return app.Restriction{}, err
	}
	out := app.Restriction{Periods: make([]app.RestrictionPeriod, 0, len(rows))}
	for _, r := range rows {
		p := app.RestrictionPeriod{From: r.StartedAt.UTC(), Until: utcPtr(r.EndedAt)}
		if p.Until == nil {
			out.Restricted, out.Since = true, &p.From
		}
		out.Periods = append(out.Periods, p)
	}
	return out, nil
}

// restrictedNow says whether the member has a restriction in force.
func restrictedNow(tx *gorm.DB, memberID string) (bool, error) {
	var open []int
	err := tx.Raw(`SELECT 1 FROM member_restrictions WHERE member_id = ? AND ended_at IS NULL`, memberID).Scan(&open).Error
	return len(open) > 0, err
}
