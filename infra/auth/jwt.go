// Package auth verifies bearer JWTs, mints development tokens and holds the
// key that signs consent receipts.
package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// Claims are the claims Quid reads from a bearer token.
type Claims struct {
	Role string `json:"role"`
	jwt.RegisteredClaims
}

// Verifier checks bearer tokens against an explicit algorithm allow-list: HS256
// only with the development secret, asymmetric algorithms only with the
// identity provider's public keys, so a token "signed" with a public key as an
// HMAC secret never verifies.
type Verifier struct {
	secret   []byte
	keys     []crypto.PublicKey
	issuer   string
	audience string
	methods  []string
	leeway   time.Duration
}

// VerifierOptions configure a Verifier.
type VerifierOptions struct {
	Secret         string
	PublicKeysFile string
	Issuer         string
	Audience       string
	// Leeway is the clock skew allowed for exp, nbf and iat (QUID_JWT_LEEWAY).
	Leeway time.Duration
}

// NewVerifier loads keys and fixes the allowed algorithms.
func NewVerifier(opts VerifierOptions) (*Verifier, error) {
	v := &Verifier{issuer: opts.Issuer, audience: opts.Audience, leeway: opts.Leeway}
	if opts.Secret != "" {
		v.secret = []byte(opts.Secret)
		v.methods = append(v.methods, "HS256")
	}
	if opts.PublicKeysFile != "" {
		keys, err := LoadPublicKeys(opts.PublicKeysFile)
		if err != nil {
			return nil, err
		}
		v.keys = keys
		v.methods = append(v.methods, "RS256", "ES256", "EdDSA")
	}
	if len(v.methods) == 0 {
		return nil, errors.New("auth: no secret and no public keys configured")
	}
	return v, nil
}

// LoadPublicKeys reads every PUBLIC KEY block of a PEM file.
func LoadPublicKeys(path string) ([]crypto.PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public keys: %w", err)
	}
	var keys []crypto.PublicKey
	for {
		var block *pem.Block
		block, raw = pem.Decode(raw)
		if block == nil {
			break
		}
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse public key in %s: %w", path, err)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no PEM public keys in %s", path)
	}
	return keys, nil
}

// Verify returns the principal of a valid token or an unauthenticated error.
func (v *Verifier) Verify(token string) (app.Principal, error) {
	if err := checkRawToken(token); err != nil {
		return app.Principal{}, unauthenticated(fmt.Errorf("%w: %w", jwt.ErrTokenMalformed, err))
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), // a token issued in the future is forged or from a broken clock
		jwt.WithLeeway(v.leeway),
		jwt.WithStrictDecoding(),
	}
	if v.issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.issuer))
	}
	if v.audience != "" {
		opts = append(opts, jwt.WithAudience(v.audience))
	}
	var claims Claims
	_, err := jwt.ParseWithClaims(token, &claims, v.keyFor, opts...)
	if err != nil {
		return app.Principal{}, unauthenticated(err)
	}
	return principalOf(claims)
}

// keyFor picks the keys of the token's algorithm family; the parser's
// allow-list has already refused any algorithm not configured.
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	if _, ok := t.Method.(*jwt.SigningMethodHMAC); ok {
		return v.secret, nil
	}
	set := jwt.VerificationKeySet{}
	for _, k := range v.keys {
		switch k.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
			set.Keys = append(set.Keys, k)
		}
	}
	return set, nil
}

func principalOf(c Claims) (app.Principal, error) {
	role := app.Role(c.Role)
	// The subject becomes the member id (or names the recipient): one an
	// index cannot hold or a log line would misprint, or one shaped like an
	// erased member's pseudonym, is refused here.
	if problem := domain.SubjectProblem(c.Subject); problem != "" {
		return app.Principal{}, &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid-token",
			Message: "the bearer token's sub " + problem}
	}
	if !role.Valid() {
		return app.Principal{}, unauthenticated(errors.New("token has no known role"))
	}
	return app.Principal{Subject: c.Subject, Role: role}, nil
}

func unauthenticated(cause error) error {
	msg := "the bearer token is not valid"
	switch {
	case errors.Is(cause, jwt.ErrTokenExpired):
		msg = "the bearer token has expired"
	case errors.Is(cause, jwt.ErrTokenNotValidYet), errors.Is(cause, jwt.ErrTokenUsedBeforeIssued):
		msg = "the bearer token is not valid yet"
	case errors.Is(cause, jwt.ErrTokenInvalidIssuer):
		msg = "the bearer token has the wrong issuer"
	case errors.Is(cause, jwt.ErrTokenInvalidAudience):
		msg = "the bearer token has the wrong audience"
	case errors.Is(cause, jwt.ErrTokenSignatureInvalid):
		msg = "the bearer token's signature does not verify"
	case errors.Is(cause, jwt.ErrTokenRequiredClaimMissing):
		msg = "the bearer token lacks a required claim (exp)"
	}
	return &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid-token", Message: msg}
}

// Mint issues an HS256 development token.
func Mint(secret string, p app.Principal, ttl time.Duration, issuer, audience string, now time.Time) (string, error) {
	claims := Claims{Role: string(p.Role), RegisteredClaims: jwt.RegisteredClaims{
		Subject:   p.Subject,
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		Issuer:    issuer,
	}}
	if audience != "" {
		claims.Audience = jwt.ClaimStrings{audience}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
}
