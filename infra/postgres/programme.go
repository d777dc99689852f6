package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/quidpro/quid/domain"
)

type programmeRow struct {
	Version       int
	LegalName     string
	Address       string
	ContactEmail  string
	DPOContact    string `gorm:"column:dpo_contact"`
	AuthorityName string
	ComplaintURL  string
	PointCurrency string
	PointAmount   string
	Jurisdictions string // JSON: to_json(jurisdictions)
	CreatedAt     time.Time
}

func (r programmeRow) toDomain() (domain.Programme, error) {
	var jur []string
	if err := json.Unmarshal([]byte(r.Jurisdictions), &jur); err != nil {
		return domain.Programme{}, fmt.Errorf("programme version %d jurisdictions: %w", r.Version, err)
	}
	return domain.Programme{Version: r.Version, LegalName: r.LegalName, Address: r.Address, ContactEmail: r.ContactEmail,
		DPOContact: r.DPOContact, AuthorityName: r.AuthorityName, ComplaintURL: r.ComplaintURL,
		PointValue:    domain.PointValue{Currency: r.PointCurrency, Amount: r.PointAmount},
		Jurisdictions: jur, CreatedAt: r.CreatedAt.UTC()}, nil
}

// AddProgramme numbers p one above the latest version and stores it. The
// transaction-scoped advisory lock orders concurrent PUTs, so two never
// take the same number.
func (s *Store) AddProgramme(ctx context.Context, p domain.Programme) (domain.Programme, error) {
	var out domain.Programme
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtextextended('programme_versions', 0))`).Error; err != nil {
			return err
		}
		var row programmeRow
		err := tx.Raw(`
INSERT INTO programme_versions (version, legal_name, address, contact_email, dpo_contact, authority_name, complaint_url,
                                point_currency, point_amount, jurisdictions, created_at)
SELECT coalesce(max(version), 0) + 1, @legal_name, @address, @contact_email, @dpo_contact, @authority_name, @complaint_url,
       @point_currency, CAST(@point_amount AS numeric), CAST(@jurisdictions AS text[]), @created_at
FROM programme_versions
RETURNING version, legal_name, address, contact_email, dpo_contact, authority_name, complaint_url,
          point_currency, point_amount::text AS point_amount, to_json(jurisdictions)::text AS jurisdictions, created_at`,
			map[string]any{"legal_name": p.LegalName, "address": p.Address, "contact_email": p.ContactEmail,
				"dpo_contact": p.DPOContact, "authority_name": p.AuthorityName, "complaint_url": p.ComplaintURL,
				"point_currency": p.PointValue.Currency, "point_amount": p.PointValue.Amount,
				"jurisdictions": textArray(p.Jurisdictions), "created_at": p.CreatedAt}).Scan(&row).Error
		if err != nil {
			return err
		}
		out, err = row.toDomain()
		return err
	})
	return out, translate(err, "programme")
}

// CurrentProgramme reads the latest programme identity version.
func (s *Store) CurrentProgramme(ctx context.Context) (domain.Programme, bool, error) {
	var rows []programmeRow
	err := s.db.WithContext(ctx).Raw(`
SELECT version, legal_name, address, contact_email, dpo_contact, authority_name, complaint_url,
       point_currency, point_amount::text AS point_amount, to_json(jurisdictions)::text AS jurisdictions, created_at
FROM programme_versions ORDER BY version DESC LIMIT 1`).Scan(&rows).Error
	if err != nil || len(rows) == 0 {
		return domain.Programme{}, false, translate(err, "programme")
	}
	p, err := rows[0].toDomain()
	return p, err == nil, err
}
