package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/domain"
	"github.com/quidpro/quid/infra/auth"
)

// The fuzz targets' verifier: the HS256 secret, an issuer and an audience,
// and the default leeway. Their seeds (testdata/fuzz) are tokens signed with
// fuzzSecret that expire in 2100.
const (
	fuzzSecret   = "fuzz-secret-fuzz-secret-fuzz-secret!"
	fuzzIssuer   = "https://idp.example"
	fuzzAudience = "quid"
	fuzzLeeway   = 30 * time.Second
)

func fuzzVerifier(f *testing.F) *auth.Verifier {
	v, err := auth.NewVerifier(auth.VerifierOptions{Secret: fuzzSecret, Issuer: fuzzIssuer, Audience: fuzzAudience, Leeway: fuzzLeeway})
	if err != nil {
		f.Fatal(err)
	}
	return v
}

func fuzzSign(signing string) string {
	m := hmac.New(sha256.New, []byte(fuzzSecret))
	m.Write([]byte(signing))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// FuzzVerifyToken feeds arbitrary text as a bearer token. The fuzzer cannot
// compute the HMAC, so the verifier must never accept anything but the
// exact text the secret signed (one spelling of header, payload and
// signature), and must never panic; every refusal is unauthenticated.
func FuzzVerifyToken(f *testing.F) {
	v := fuzzVerifier(f)
	f.Fuzz(func(t *testing.T, token string) {
		p, err := v.Verify(token)
		if err != nil {
			if !domainUnauthenticated(err) {
				t.Fatalf("%q: %v, want an unauthenticated error", token, err)
			}
			return
		}
		i := strings.LastIndexByte(token, '.')
		if i < 0 || token[i+1:] != fuzzSign(token[:i]) {
			t.Fatalf("accepted %q (as %+v), which the secret did not sign", token, p)
		}
	})
}

// FuzzVerifySignedClaims signs an arbitrary header and payload with the
// secret, so the fuzzer explores what the verifier reads from a token whose
// signature is good. Whatever it accepts, a plain strict reading of the same
// JSON must agree with: alg exactly HS256; no key twice and none that
// differs from a claim only in case; sub and role strings equal to the
// principal's; a numeric exp not past (beyond the leeway); iat and nbf, when
// present, numeric and not in the future (beyond the leeway); the issuer
// and the audience configured; and sub a valid subject.
func FuzzVerifySignedClaims(f *testing.F) {
	v := fuzzVerifier(f)
	enc := base64.RawURLEncoding.EncodeToString
	f.Fuzz(func(t *testing.T, header, payload string) {
		signing := enc([]byte(header)) + "." + enc([]byte(payload))
		p, err := v.Verify(signing + "." + fuzzSign(signing))
		if err != nil {
			if !domainUnauthenticated(err) {
				t.Fatalf("header %q payload %q: %v, want an unauthenticated error", header, payload, err)
			}
			return
		}
		fail := func(why string) { t.Fatalf("accepted header %q payload %q as %+v: %s", header, payload, p, why) }
		h, ok := strictObject(header)
		if !ok || h["alg"] != "HS256" {
			fail("alg is not exactly HS256 in a plain JSON object")
		}
		c, ok := strictObject(payload)
		if !ok {
			fail("the payload is not one plain JSON object without repeated or case-folded keys")
		}
		if c["sub"] != p.Subject || c["role"] != string(p.Role) || domain.SubjectProblem(p.Subject) != "" {
			fail("sub or role read differently, or an invalid subject")
		}
		now := float64(time.Now().Unix())
		leeway := fuzzLeeway.Seconds() + 1
		exp, ok := c["exp"].(json.Number)
		if e, err := exp.Float64(); !ok || err != nil || e < now-leeway {
			fail("exp missing, not a number or past")
		}
		for _, claim := range []string{"iat", "nbf"} {
			if raw, present := c[claim]; present {
				n, ok := raw.(json.Number)
				if x, err := n.Float64(); !ok || err != nil || x > now+leeway {
					fail(claim + " not a number or in the future")
				}
			}
		}
		if c["iss"] != fuzzIssuer {
			fail("iss is not the configured issuer")
		}
		switch aud := c["aud"].(type) {
		case string:
			if aud != fuzzAudience {
				fail("aud is not the configured audience")
			}
		case []any:
			found := false
			for _, a := range aud {
				found = found || a == fuzzAudience
			}
			if !found {
				fail("aud does not hold the configured audience")
			}
		default:
			fail("aud missing or of the wrong type")
		}
	})
}

// strictObject decodes one JSON object's top level, refusing a key given
// twice or in two cases (encoding/json would fold them into one field).
func strictObject(s string) (map[string]any, bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	out := map[string]any{}
	folded := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key := tok.(string)
		fold := strings.ToLower(strings.ToUpper(key)) // ſ and K fold as encoding/json folds them
		if folded[fold] {
			return nil, false
		}
		folded[fold] = true
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		out[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return out, true
}

func domainUnauthenticated(err error) bool {
	return errors.Is(err, domain.ErrUnauthenticated)
}
