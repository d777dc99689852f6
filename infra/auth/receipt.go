package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/quidpro/quid/app"
)

// SigningKey is an Ed25519 key that signs consent receipts.
type SigningKey struct {
	KID     string
	Private ed25519.PrivateKey
}

// Public is the verifying half.
func (k SigningKey) Public() ed25519.PublicKey { return k.Private.Public().(ed25519.PublicKey) }

// GenerateSigningKey makes a new key whose kid is derived from its public key.
func GenerateSigningKey() (SigningKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return SigningKey{}, err
	}
	return newSigningKey(priv), nil
}

func newSigningKey(priv ed25519.PrivateKey) SigningKey {
	sum := sha256.Sum256(priv.Public().(ed25519.PublicKey))
	return SigningKey{KID: "quid-" + hex.EncodeToString(sum[:8]), Private: priv}
}

// SigningKeyFromSeed rebuilds a stored key.
func SigningKeyFromSeed(kid string, seed []byte) (SigningKey, error) {
	if len(seed) != ed25519.SeedSize {
		return SigningKey{}, errors.New("signing key: bad seed length")
	}
	return SigningKey{KID: kid, Private: ed25519.NewKeyFromSeed(seed)}, nil
}

// LoadSigningKeyFile reads a PKCS#8 PEM Ed25519 private key (QUID_SIGNING_KEY).
func LoadSigningKeyFile(path string) (SigningKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return SigningKey{}, fmt.Errorf("signing key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return SigningKey{}, fmt.Errorf("signing key: %s holds no PEM block", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return SigningKey{}, fmt.Errorf("signing key: %w", err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return SigningKey{}, fmt.Errorf("signing key: %s is not an Ed25519 key", path)
	}
	return newSigningKey(priv), nil
}

// ReceiptSigner signs receipts with the active key and publishes every key
// it was given, so old receipts stay verifiable after a rotation.
type ReceiptSigner struct {
	active SigningKey
	all    []SigningKey
}

// NewReceiptSigner signs with active and publishes active and others.
func NewReceiptSigner(active SigningKey, others ...SigningKey) *ReceiptSigner {
	all := []SigningKey{active}
	for _, k := range others {
		if k.KID != active.KID {
			all = append(all, k)
		}
	}
	return &ReceiptSigner{active: active, all: all}
}

type receiptItem struct {
	Category   string   `json:"category"`
	Purpose    string   `json:"purpose"`
	Recipients []string `json:"recipients"`
}

type receiptReward struct {
	JoinBonus       int64   `json:"join_bonus"`
	Vesting         *string `json:"vesting"`
	PointsPerPeriod int64   `json:"points_per_period"`
	Period          *string `json:"period"`
	MaxPeriods      *int    `json:"max_periods"`
}

// receiptRewardValue is the reward in money, decimal strings in the
// currency's minor units (the same figures as reward_value in the API).
type receiptRewardValue struct {
	Currency   string  `json:"currency"`
	PointValue string  `json:"point_value"`
	JoinBonus  string  `json:"join_bonus"`
	PerPeriod  string  `json:"per_period"`
	MaxTotal   *string `json:"max_total"`
}

type receiptClaims struct {
	ExchangeID string        `json:"exchange_id"`
	ContractID string        `json:"contract_id"`
	FamilyID   string        `json:"family_id"`
	Version    int           `json:"version"`
	TermsHash  string        `json:"terms_hash"`
	Title      string        `json:"title"`
	Items      []receiptItem `json:"items"`
	Reward     receiptReward `json:"reward"`
	// RewardValue is omitted for terms that froze no point value.
	RewardValue *receiptRewardValue `json:"reward_value,omitempty"`
	Duration    *string             `json:"duration"`
	Retention   string              `json:"retention"`
	JoinedAt    string              `json:"joined_at"`
	ExpiresAt   *string             `json:"expires_at"`
	RenewedAt   *string             `json:"renewed_at,omitempty"`
	Renewal     int                 `json:"renewal,omitempty"`
	jwt.RegisteredClaims
}

// SignReceipt returns a compact JWS (EdDSA) of what the member agreed to.
func (s *ReceiptSigner) SignReceipt(r app.Receipt) (string, error) {
	opt := func(present bool, v string) *string {
		if !present {
			return nil
		}
		return &v
	}
	c := receiptClaims{
		ExchangeID: r.ExchangeID, ContractID: r.ContractID, FamilyID: r.FamilyID, Version: r.Version,
		TermsHash: r.TermsHash, Title: r.Title, Retention: r.Retention.String(),
		JoinedAt: r.JoinedAt.UTC().Format(time.RFC3339Nano),
		Reward: receiptReward{JoinBonus: r.Reward.JoinBonus, PointsPerPeriod: r.Reward.PointsPerPeriod,
			Vesting: opt(!r.Reward.Vesting.IsZero(), r.Reward.Vesting.String()),
			Period:  opt(!r.Reward.Period.IsZero(), r.Reward.Period.String())},
		RegisteredClaims: jwt.RegisteredClaims{ID: r.ID, Issuer: "quid", Subject: r.MemberID, IssuedAt: jwt.NewNumericDate(r.IssuedAt)},
	}
	if r.Reward.MaxPeriods > 0 {
		m := r.Reward.MaxPeriods
		c.Reward.MaxPeriods = &m
	}
	if v := r.RewardValue; v != nil {
		c.RewardValue = &receiptRewardValue{Currency: v.Currency, PointValue: v.Point, JoinBonus: v.JoinBonus, PerPeriod: v.PerPeriod,
			MaxTotal: opt(v.MaxTotal != "", v.MaxTotal)}
	}
	if r.Duration != nil {
		c.Duration = opt(true, r.Duration.String())
	}
	if r.ExpiresAt != nil {
		c.ExpiresAt = opt(true, r.ExpiresAt.UTC().Format(time.RFC3339Nano))
	}
	if r.RenewedAt != nil {
		c.RenewedAt, c.Renewal = opt(true, r.RenewedAt.UTC().Format(time.RFC3339Nano)), r.Renewal
	}
	for _, it := range r.Items {
		c.Items = append(c.Items, receiptItem(it))
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"] = s.active.KID
	tok.Header["typ"] = "consent-receipt+jwt"
	return tok.SignedString(s.active.Private)
}

// JWK is one public key in a JSON Web Key Set.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS lists every receipt key's public half.
func (s *ReceiptSigner) JWKS() []JWK {
	out := make([]JWK, 0, len(s.all))
	for _, k := range s.all {
		out = append(out, JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k.Public()), Kid: k.KID, Alg: "EdDSA", Use: "sig"})
	}
	return out
}
