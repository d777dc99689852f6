package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
)

// Hashes travel as hex and are decoded by PostgreSQL: gorm expands a
// []byte argument into a list of values.

// CreateSession stores a web session (migration 00032) and, on the way,
// deletes expired sessions and sign-ins, so neither table grows without a
// job to prune it.
func (s *Store) CreateSession(ctx context.Context, tokenHash []byte, ws app.WebSession) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`DELETE FROM web_sessions WHERE expires_at < clock_timestamp()`).Error; err != nil {
			return err
		}
		if err := tx.Exec(`DELETE FROM web_sign_ins WHERE expires_at < clock_timestamp()`).Error; err != nil {
			return err
		}
		return tx.Exec(`INSERT INTO web_sessions (token_hash, subject, role, created_at, expires_at) VALUES (decode(?, 'hex'), ?, ?, ?, ?)`,
			hex.EncodeToString(tokenHash), ws.Principal.Subject, string(ws.Principal.Role), ws.CreatedAt, ws.ExpiresAt).Error
	})
}

// Session reads an unexpired web session by its token's hash.
func (s *Store) Session(ctx context.Context, tokenHash []byte) (app.WebSession, bool, error) {
	var row struct {
		Subject   string
		Role      string
		CreatedAt time.Time
		ExpiresAt time.Time
	}
	err := s.db.WithContext(ctx).Raw(`SELECT subject, role, created_at, expires_at FROM web_sessions
		WHERE token_hash = decode(?, 'hex') AND expires_at > clock_timestamp()`, hex.EncodeToString(tokenHash)).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return app.WebSession{}, false, nil
	}
	if err != nil {
		return app.WebSession{}, false, err
	}
	return app.WebSession{Principal: app.Principal{Subject: row.Subject, Role: app.Role(row.Role)},
		CreatedAt: row.CreatedAt.UTC(), ExpiresAt: row.ExpiresAt.UTC()}, true, nil
}

// EndSession deletes a web session (logout).
func (s *Store) EndSession(ctx context.Context, tokenHash []byte) error {
	return s.db.WithContext(ctx).Exec(`DELETE FROM web_sessions WHERE token_hash = decode(?, 'hex')`, hex.EncodeToString(tokenHash)).Error
}

// SaveSignIn stores a sign-in in progress.
func (s *Store) SaveSignIn(ctx context.Context, stateHash []byte, si app.SignIn) error {
	return s.db.WithContext(ctx).Exec(`INSERT INTO web_sign_ins (state_hash, code_verifier, nonce, return_to, expires_at) VALUES (decode(?, 'hex'), ?, ?, ?, ?)`,
		hex.EncodeToString(stateHash), si.CodeVerifier, si.Nonce, si.ReturnTo, si.ExpiresAt).Error
}

// TakeSignIn deletes and returns an unexpired sign-in in progress: a state
// is good for one callback, even when two arrive at once on two replicas.
func (s *Store) TakeSignIn(ctx context.Context, stateHash []byte) (app.SignIn, bool, error) {
	var rows []struct {
		CodeVerifier string
		Nonce        string
		ReturnTo     string
		ExpiresAt    time.Time
	}
	err := s.db.WithContext(ctx).Raw(`DELETE FROM web_sign_ins WHERE state_hash = decode(?, 'hex')
		RETURNING code_verifier, nonce, return_to, expires_at`, hex.EncodeToString(stateHash)).Scan(&rows).Error
	if err != nil || len(rows) == 0 || !rows[0].ExpiresAt.After(time.Now()) {
		return app.SignIn{}, false, err
	}
	r := rows[0]
	return app.SignIn{CodeVerifier: r.CodeVerifier, Nonce: r.Nonce, ReturnTo: r.ReturnTo, ExpiresAt: r.ExpiresAt.UTC()}, true, nil
}
