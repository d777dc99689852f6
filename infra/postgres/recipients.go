package postgres

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

type recipientRecord struct {
	ID               string `gorm:"primaryKey"`
	Name             string
	Kind             string
	Country          string
	PrivacyPolicyURL string `gorm:"column:privacy_policy_url"`
	CreatedAt        time.Time
}

func (recipientRecord) TableName() string { return "recipients" }

func (r recipientRecord) toDomain() domain.Recipient {
	return domain.Recipient{ID: r.ID, Name: r.Name, Kind: domain.RecipientKind(r.Kind), Country: r.Country,
		PrivacyPolicyURL: r.PrivacyPolicyURL, CreatedAt: r.CreatedAt.UTC()}
}

func (s *Store) CreateRecipient(ctx context.Context, r domain.Recipient) error {
	rec := recipientRecord{r.ID, r.Name, string(r.Kind), r.Country, r.PrivacyPolicyURL, r.CreatedAt}
	return translate(s.db.WithContext(ctx).Create(&rec).Error, "recipient")
}

func (s *Store) GetRecipient(ctx context.Context, id string) (domain.Recipient, error) {
	if !isRecipientID(id) {
		return domain.Recipient{}, domain.ErrRecipientNotFound
	}
	var rec recipientRecord
	if err := s.db.WithContext(ctx).First(&rec, "id = ?", id).Error; err != nil {
		return domain.Recipient{}, translate(err, "recipient")
	}
	return rec.toDomain(), nil
}

func (s *Store) ListRecipients(ctx context.Context, page app.Page) ([]domain.Recipient, string, error) {
	recs, next, err := findPage(s, "recipients", s.db.WithContext(ctx).Model(&recipientRecord{}), "created_at", page,
		func(r recipientRecord) (time.Time, string) { return r.CreatedAt, r.ID })
	return mapAll(recs, recipientRecord.toDomain), next, err
}

func (s *Store) RecipientsByID(ctx context.Context, ids []string) (map[string]domain.Recipient, error) {
	return s.recipientsByID(s.db.WithContext(ctx), ids)
}

// recipientsByID reads through the cache on db, which may be a transaction.
func (s *Store) recipientsByID(db *gorm.DB, ids []string) (map[string]domain.Recipient, error) {
	out := map[string]domain.Recipient{}
	var valid []string
	for _, id := range ids {
		if r, ok := s.recipients.Load(id); ok {
			out[id] = r.(domain.Recipient)
		} else if isUUID(id) {
			valid = append(valid, id)
		}
	}
	if len(valid) == 0 {
		return out, nil
	}
	var recs []recipientRecord
	if err := db.Where("id IN ?", valid).Find(&recs).Error; err != nil {
		return nil, err
	}
	for _, r := range recs {
		out[r.ID] = r.toDomain()
		s.recipients.Store(r.ID, out[r.ID])
	}
	return out, nil
}
