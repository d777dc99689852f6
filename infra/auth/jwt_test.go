package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
	"github.com/quidpro/quid/infra/auth"
)

const secret = "test-secret-test-secret-test-secret!"

func claims(mod func(*auth.Claims)) auth.Claims {
	now := time.Now()
	c := auth.Claims{Role: "member", RegisteredClaims: jwt.RegisteredClaims{
		Subject: "alice", Issuer: "https://idp.example", Audience: jwt.ClaimStrings{"quid"},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}}
	if mod != nil {
		mod(&c)
	}
	return c
}

func hs256(t *testing.T, key []byte, c auth.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writePublicKey(t *testing.T, pub any) (string, []byte) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	path := filepath.Join(t.TempDir(), "keys.pem")
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, pemBytes
}

func TestVerifierAcceptsOnlyValidTokensOfAllowedAlgorithms(t *testing.T) {
	t.Parallel()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keysFile, pubPEM := writePublicKey(t, &rsaKey.PublicKey)

	withSecret, err := auth.NewVerifier(auth.VerifierOptions{Secret: secret, Issuer: "https://idp.example", Audience: "quid"})
	if err != nil {
		t.Fatal(err)
	}
	withKeys, err := auth.NewVerifier(auth.VerifierOptions{PublicKeysFile: keysFile})
	if err != nil {
		t.Fatal(err)
	}
	rs256 := func(c auth.Claims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, c).SignedString(rsaKey)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	es256Unknown, _ := jwt.NewWithClaims(jwt.SigningMethodES256, claims(nil)).SignedString(ecKey)

	tests := []struct {
		name     string
		verifier *auth.Verifier
		token    string
		ok       bool
	}{
		{"valid HS256", withSecret, hs256(t, []byte(secret), claims(nil)), true},
		{"valid RS256 from the identity provider", withKeys, rs256(claims(nil)), true},
		{"alg none", withSecret, none, false},
		{"HS256 forged with the public key as secret", withKeys, hs256(t, pubPEM, claims(nil)), false},
		{"HS256 when only public keys are configured", withKeys, hs256(t, []byte(secret), claims(nil)), false},
		{"ES256 signed by an unknown key", withKeys, es256Unknown, false},
		{"bad signature", withSecret, hs256(t, []byte(secret+"x"), claims(nil)), false},
		{"expired", withSecret, hs256(t, []byte(secret), claims(func(c *auth.Claims) {
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute))
		})), false},
		{"not yet valid", withSecret, hs256(t, []byte(secret), claims(func(c *auth.Claims) {
			c.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour))
		})), false},
		{"issued in the future", withSecret, hs256(t, []byte(secret), claims(func(c *auth.Claims) {
			c.IssuedAt = jwt.NewNumericDate(time.Now().Add(time.Hour))
		})), false},
		{"no exp", withSecret, hs256(t, []byte(secret), claims(func(c *auth.Claims) { c.ExpiresAt = nil })), false},
		{"wrong issuer", withSecret, hs256(t, []byte(secret), claims(func(c *auth.Claims) { c.Issuer = "https://evil.example" })), false},
		{"wrong audience", withSecret, hs256(t, []byte(secret), claims(func(c *auth.Claims) { c.Audience = jwt.ClaimStrings{"other"} })), false},
		{"unknown role", withSecret, hs256(t, []byte(secret), claims(func(c *auth.Claims) { c.Role = "root" })), false},
		{"no subject", withSecret, hs256(t, []byte(secret), claims(func(c *auth.Claims) { c.Subject = "" })), false},
		{"garbage", withSecret, "not.a.token", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkVerdict(t, tt.verifier, tt.token, tt.ok)
		})
	}
}

func TestMintedTokenVerifies(t *testing.T) {
	t.Parallel()
	v, _ := auth.NewVerifier(auth.VerifierOptions{Secret: secret})
	tok, err := auth.Mint(secret, app.Principal{Subject: "bob", Role: app.RoleAdmin}, time.Minute, "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(tok)
	if err != nil || p.Subject != "bob" || p.Role != app.RoleAdmin {
		t.Fatalf("got %+v, %v", p, err)
	}
}

// checkVerdict asserts that v accepts token as alice the member when ok,
// and otherwise refuses it as unauthenticated.
func checkVerdict(t *testing.T, v *auth.Verifier, token string, ok bool) {
	t.Helper()
	p, err := v.Verify(token)
	if ok {
		if err != nil {
			t.Fatalf("want valid, got %v", err)
		}
		if p.Subject != "alice" || p.Role != app.RoleMember {
			t.Fatalf("principal = %+v", p)
		}
		return
	}
	if !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("want unauthenticated error, got principal %+v, err %v", p, err)
	}
}
