package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/quidpro/quid/infra/auth"
)

// rawToken signs a header and payload given as literal JSON text, so a test
// can say exactly what bytes a hostile client sends (duplicate keys, strings
// where numbers belong) — things jwt.NewWithClaims cannot produce.
func rawToken(t *testing.T, method jwt.SigningMethod, key any, header, payload string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	if method == nil {
		return signing + "."
	}
	sig, err := method.Sign(signing, key)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + enc.EncodeToString(sig)
}

// TestVerifierRefusesLenientlyParsedTokens is the table over the token kind
// of issue 8 item 15: anything that another JWT parser could read
// differently, or that the allow-list does not permit, is a 401.
func TestVerifierRefusesLenientlyParsedTokens(t *testing.T) {
	t.Parallel()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keysFile, pubPEM := writePublicKey(t, &rsaKey.PublicKey)
	thumb := thumbprint(t, &rsaKey.PublicKey)
	jwksFile := writeJWKS(t, `{"keys":[{"kty":"EC","crv":"P-256","kid":"idp-2026","x":"`+
		base64.RawURLEncoding.EncodeToString(ecKey.X.FillBytes(make([]byte, 32)))+`","y":"`+
		base64.RawURLEncoding.EncodeToString(ecKey.Y.FillBytes(make([]byte, 32)))+`"}]}`)

	const iss, aud = "https://idp.example", "quid"
	strict, err := auth.NewVerifier(auth.VerifierOptions{Secret: secret, Issuer: iss, Audience: aud, Leeway: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	both, err := auth.NewVerifier(auth.VerifierOptions{Secret: secret, PublicKeysFile: keysFile, Leeway: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := auth.NewVerifier(auth.VerifierOptions{PublicKeysFile: jwksFile, Leeway: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	wide, err := auth.NewVerifier(auth.VerifierOptions{Secret: secret, Issuer: iss, Audience: aud, Leeway: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}

	now := time.Now().Unix()
	hs := `{"alg":"HS256","typ":"JWT"}`
	valid := fmt.Sprintf(`{"sub":"alice","role":"member","iss":%q,"aud":%q,"iat":%d,"exp":%d}`, iss, aud, now, now+3600)
	// with is the valid payload with one member's text replaced.
	with := func(old, new string) string {
		if !strings.Contains(valid, old) {
			t.Fatalf("%s not in %s", old, valid)
		}
		return strings.Replace(valid, old, new, 1)
	}
	// plus is the valid payload with members added in front.
	plus := func(members string) string { return "{" + members + "," + valid[1:] }
	exp := fmt.Sprintf(`"exp":%d`, now+3600)
	iat := fmt.Sprintf(`"iat":%d`, now)
	key := []byte(secret)
	sign := func(payload string) string { return rawToken(t, jwt.SigningMethodHS256, key, hs, payload) }
	unsigned := func(header string) string { return rawToken(t, nil, nil, header, valid) }
	b64 := base64.RawURLEncoding.EncodeToString

	tests := []struct {
		name  string
		v     *auth.Verifier
		token string
		ok    bool
	}{
		{"valid", strict, sign(valid), true},
		{"valid with aud as an array", strict, sign(with(`"aud":"quid"`, `"aud":["quid","other"]`)), true},
		{"valid RS256 without a kid", both, rawToken(t, jwt.SigningMethodRS256, rsaKey, `{"alg":"RS256"}`, valid), true},
		{"valid RS256 whose kid is the PEM key's RFC 7638 thumbprint", both, rawToken(t, jwt.SigningMethodRS256, rsaKey, `{"alg":"RS256","kid":"`+thumb+`"}`, valid), true},
		{"valid ES256 whose kid is the JWK Set's", jwks, rawToken(t, jwt.SigningMethodES256, ecKey, `{"alg":"ES256","kid":"idp-2026"}`, valid), true},
		{"valid ES256 without a kid, JWK Set", jwks, rawToken(t, jwt.SigningMethodES256, ecKey, `{"alg":"ES256"}`, valid), true},
		{"valid with an unregistered claim of any type", strict, sign(plus(`"groups":["a","b"],"ext":{"n":1}`)), true},
		{"exp 10s ago, inside the 30s leeway", strict, sign(with(exp, fmt.Sprintf(`"exp":%d`, now-10))), true},
		{"exp 2m ago with a 5m leeway", wide, sign(with(exp, fmt.Sprintf(`"exp":%d`, now-120))), true},

		{"alg none", strict, unsigned(`{"alg":"none"}`), false},
		{"alg None", strict, unsigned(`{"alg":"None"}`), false},
		{"alg NONE", strict, unsigned(`{"alg":"NONE"}`), false},
		{"alg nOnE", strict, unsigned(`{"alg":"nOnE"}`), false},
		{"alg none keeping an HS256 signature", strict, strings.Replace(sign(valid), b64([]byte(hs)), b64([]byte(`{"alg":"none","typ":"JWT"}`)), 1), false},
		{"bad signature", strict, rawToken(t, jwt.SigningMethodHS256, []byte(secret+"x"), hs, valid), false},
		{"HS384 with the secret", strict, rawToken(t, jwt.SigningMethodHS384, key, `{"alg":"HS384"}`, valid), false},
		{"HS512 with the secret", strict, rawToken(t, jwt.SigningMethodHS512, key, `{"alg":"HS512"}`, valid), false},
		{"HS256 signed with the configured public key", both, rawToken(t, jwt.SigningMethodHS256, pubPEM, hs, valid), false},
		{"RS256 by an unknown key with an unknown kid", both, rawToken(t, jwt.SigningMethodRS256, otherRSA, `{"alg":"RS256","kid":"unknown"}`, valid), false},
		{"RS256 by the configured key naming an unknown kid", both, rawToken(t, jwt.SigningMethodRS256, rsaKey, `{"alg":"RS256","kid":"unknown"}`, valid), false},
		{"ES256 by the JWK Set's key naming another kid", jwks, rawToken(t, jwt.SigningMethodES256, ecKey, `{"alg":"ES256","kid":"idp-2025"}`, valid), false},
		{"ES256 by the JWK Set's key with a kid that is not a string", jwks, rawToken(t, jwt.SigningMethodES256, ecKey, `{"alg":"ES256","kid":7}`, valid), false},
		{"HS256 with the secret naming a kid (the secret has none)", strict, rawToken(t, jwt.SigningMethodHS256, key, `{"alg":"HS256","kid":"k1"}`, valid), false},
		{"ES256 by an unknown key", both, rawToken(t, jwt.SigningMethodES256, ecKey, `{"alg":"ES256","kid":"nope"}`, valid), false},
		{"expired beyond the leeway", strict, sign(with(exp, fmt.Sprintf(`"exp":%d`, now-31))), false},
		{"nbf beyond the leeway", strict, sign(plus(fmt.Sprintf(`"nbf":%d`, now+90))), false},
		{"iat beyond the leeway", strict, sign(with(iat, fmt.Sprintf(`"iat":%d`, now+90))), false},
		{"missing exp", strict, sign(with(","+exp, "")), false},
		{"exp as a string", strict, sign(with(exp, fmt.Sprintf(`"exp":"%d"`, now+3600))), false},
		{"nbf as a string", strict, sign(plus(fmt.Sprintf(`"nbf":"%d"`, now-10))), false},
		{"iat as a string", strict, sign(with(iat, fmt.Sprintf(`"iat":"%d"`, now))), false},
		{"exp as null", strict, sign(with(exp, `"exp":null`)), false},
		{"exp as a boolean", strict, sign(with(exp, `"exp":true`)), false},
		{"role twice, last admin", strict, sign(valid[:len(valid)-1] + `,"role":"admin"}`), false},
		{"role twice, first admin", strict, sign(plus(`"role":"admin"`)), false},
		{"sub twice", strict, sign(plus(`"sub":"mallory"`)), false},
		{"exp twice", strict, sign(plus(fmt.Sprintf(`"exp":%d`, now+99999))), false},
		{"aud twice", strict, sign(plus(`"aud":"other"`)), false},
		{"an unregistered claim twice", strict, sign(plus(`"groups":["a"],"groups":["b"]`)), false},
		{"a duplicate key inside a nested claim", strict, sign(plus(`"ext":{"tenant":"a","tenant":"b"}`)), false},
		{"ROLE beside role (encoding/json folds case)", strict, sign(valid[:len(valid)-1] + `,"ROLE":"admin"}`), false},
		{"Role instead of role", strict, sign(with(`"role"`, `"Role"`)), false},
		{"long-s sub beside sub (folds to SUB)", strict, sign(valid[:len(valid)-1] + `,"ſub":"mallory"}`), false},
		{"role as an array", strict, sign(with(`"role":"member"`, `"role":["member"]`)), false},
		{"role as an array holding admin", strict, sign(with(`"role":"member"`, `"role":["member","admin"]`)), false},
		{"role unknown", strict, sign(with(`"role":"member"`, `"role":"root"`)), false},
		{"role as a number", strict, sign(with(`"role":"member"`, `"role":1`)), false},
		{"role as null", strict, sign(with(`"role":"member"`, `"role":null`)), false},
		{"sub as a number", strict, sign(with(`"sub":"alice"`, `"sub":42`)), false},
		{"aud as a number", strict, sign(with(`"aud":"quid"`, `"aud":7`)), false},
		{"aud as an array holding a number", strict, sign(with(`"aud":"quid"`, `"aud":["quid",7]`)), false},
		{"iss mismatch", strict, sign(with(iss, "https://evil.example")), false},
		{"aud mismatch", strict, sign(with(`"aud":"quid"`, `"aud":"other"`)), false},
		{"crit header naming b64 (RFC 7797)", strict, rawToken(t, jwt.SigningMethodHS256, key, `{"alg":"HS256","b64":false,"crit":["b64"]}`, valid), false},
		{"alg twice in the header", strict, rawToken(t, jwt.SigningMethodHS256, key, `{"alg":"HS256","alg":"none"}`, valid), false},
		{"invalid UTF-8 in a claim", strict, sign(plus(`"name":"a` + "\xff" + `b"`)), false},
		{"data after the claims object", strict, sign(valid + `{}`), false},
		{"claims not an object", strict, sign(`["alice"]`), false},
		{"padded base64", strict, strings.Replace(sign(valid), ".", "=.", 1), false},
		{"four parts", strict, sign(valid) + ".x", false},
		{"LF inside the signature", strict, sign(valid)[:len(sign(valid))-5] + "\n" + sign(valid)[len(sign(valid))-5:], false},
		{"CR LF inside the payload", strict, strings.Replace(sign(valid), ".ey", ".e\r\ny", 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkVerdict(t, tt.v, tt.token, tt.ok)
		})
	}
}

// thumbprint is the RFC 7638 §3 JWK thumbprint of an RSA public key, spelled
// out from the RFC (required members in lexicographic order, no white space)
// rather than by the library the verifier uses.
func thumbprint(t *testing.T, k *rsa.PublicKey) string {
	t.Helper()
	enc := base64.RawURLEncoding
	e := big.NewInt(int64(k.E)).Bytes()
	sum := sha256.Sum256([]byte(`{"e":"` + enc.EncodeToString(e) + `","kty":"RSA","n":"` + enc.EncodeToString(k.N.Bytes()) + `"}`))
	return enc.EncodeToString(sum[:])
}

func writeJWKS(t *testing.T, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A JWK Set holding a private key is a configuration mistake that would
// put a signing secret on every replica: refused at start, naming the kid.
func TestPublicKeysRefuseAJWKSetWithAPrivateKey(t *testing.T) {
	t.Parallel()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	enc := base64.RawURLEncoding.EncodeToString
	doc := `{"keys":[{"kty":"EC","crv":"P-256","kid":"leaked","x":"` + enc(k.X.FillBytes(make([]byte, 32))) +
		`","y":"` + enc(k.Y.FillBytes(make([]byte, 32))) + `","d":"` + enc(mustBytes(t, k)) + `"}]}`
	_, err := auth.NewVerifier(auth.VerifierOptions{PublicKeysFile: writeJWKS(t, doc)})
	if err == nil || !strings.Contains(err.Error(), "leaked") {
		t.Fatalf("a JWK Set with a private key: %v", err)
	}
	if _, err := auth.NewVerifier(auth.VerifierOptions{PublicKeysFile: writeJWKS(t, `{"keys":[]}`)}); err == nil {
		t.Fatal("an empty JWK Set was accepted")
	}
}

func mustBytes(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	d, err := k.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
