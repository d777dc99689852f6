// Package auth verifies bearer JWTs, mints development tokens and holds the
// key that signs consent receipts.
package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/go-jose/go-jose/v4"
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
	keys     []PublicKey
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

// PublicKey is one identity-provider key and the key id (`kid`) tokens
// signed with it may name.
type PublicKey struct {
	Key crypto.PublicKey
	// ID is the JWK's `kid` when the file is a JWK Set, otherwise (and when
	// a JWK has none) the key's RFC 7638 JWK thumbprint (SHA-256, base64url).
	ID string
}

// LoadPublicKeys reads an identity provider's public keys (RSA, ECDSA,
// Ed25519) from either a JWK Set (RFC 7517 §5, the document an identity
// provider publishes as jwks_uri; private members are refused) or a PEM file
// of PUBLIC KEY blocks.
func LoadPublicKeys(path string) ([]PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public keys: %w", err)
	}
	var keys []PublicKey
	if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 && trimmed[0] == '{' {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(trimmed, &set); err != nil {
			return nil, fmt.Errorf("parse JWK Set %s: %w", path, err)
		}
		for _, k := range set.Keys {
			if !k.IsPublic() {
				return nil, fmt.Errorf("JWK Set %s holds a private key (kid %q): give only public keys", path, k.KeyID)
			}
			key, err := publicKey(k.Key, k.KeyID)
			if err != nil {
				return nil, fmt.Errorf("JWK Set %s: %w", path, err)
			}
			keys = append(keys, key)
		}
	} else {
		for {
			var block *pem.Block
			block, raw = pem.Decode(raw)
			if block == nil {
				break
			}
			k, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse public key in %s: %w", path, err)
			}
			key, err := publicKey(k, "")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no public keys in %s (a JWK Set or PEM PUBLIC KEY blocks)", path)
	}
	return keys, nil
}

// publicKey keeps a key of a supported type under id, or its thumbprint.
func publicKey(k any, id string) (PublicKey, error) {
	switch k.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return PublicKey{}, fmt.Errorf("unsupported key type %T (RSA, ECDSA or Ed25519 public keys only)", k)
	}
	if id == "" {
		sum, err := (&jose.JSONWebKey{Key: k}).Thumbprint(crypto.SHA256)
		if err != nil {
			return PublicKey{}, err
		}
		id = base64.RawURLEncoding.EncodeToString(sum)
	}
	return PublicKey{Key: k, ID: id}, nil
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

// errUnknownKey refuses a token whose `kid` names no configured key.
var errUnknownKey = errors.New("the token's kid names no configured key")

// keyFor picks the keys a token may be verified with; the parser's
// allow-list has already refused any algorithm not configured. A token that
// names a key (`kid`, RFC 7515 §4.1.4) is verified only with that key, and
// refused when no configured key has that id: the development secret has
// no id, so an HS256 token naming one is refused too. A token without `kid`
// is tried against every configured key.
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	kid, named := t.Header["kid"]
	if _, ok := t.Method.(*jwt.SigningMethodHMAC); ok {
		if named {
			return nil, errUnknownKey
		}
		return v.secret, nil
	}
	id, _ := kid.(string)
	set := jwt.VerificationKeySet{}
	for _, k := range v.keys {
		if !named || (id != "" && k.ID == id) {
			set.Keys = append(set.Keys, k.Key)
		}
	}
	if len(set.Keys) == 0 {
		return nil, errUnknownKey
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
