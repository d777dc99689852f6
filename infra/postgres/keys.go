package postgres

import (
	"context"

	"gorm.io/gorm/clause"
)

// StoredKey is a receipt signing key as kept in the database (seed form).
type StoredKey struct {
	KID    string
	Seed   []byte
	Active bool
}

type signingKeyRecord struct {
	KID        string `gorm:"column:kid;primaryKey"`
	PrivateKey []byte
	PublicKey  []byte
	Active     bool
}

func (signingKeyRecord) TableName() string { return "signing_keys" }

// SigningKeys returns every stored key, the oldest active one first, so replicas agree on the signer.
func (s *Store) SigningKeys(ctx context.Context) ([]StoredKey, error) {
	var recs []signingKeyRecord
	if err := s.db.WithContext(ctx).Order("active DESC, created_at ASC, kid ASC").Find(&recs).Error; err != nil {
		return nil, err
	}
	out := make([]StoredKey, len(recs))
	for i, r := range recs {
		out[i] = StoredKey{KID: r.KID, Seed: r.PrivateKey, Active: r.Active}
	}
	return out, nil
}

// AddSigningKey stores a key unless one with the same kid exists. The first
// key is added under Exclusively, so replicas starting at once make one.
func (s *Store) AddSigningKey(ctx context.Context, kid string, seed, public []byte, active bool) error {
	return s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).
		Create(&signingKeyRecord{KID: kid, PrivateKey: seed, PublicKey: public, Active: active}).Error
}
