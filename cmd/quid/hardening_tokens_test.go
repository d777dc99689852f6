package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/config"
)

// tokenAttack builds one hostile bearer token for a principal (role, sub):
// the tour decides who calls each route, the attack decides what is wrong
// with the token.
type tokenAttack struct {
	name  string
	build func(role, sub string) string
}

// attackKit signs literal header and payload JSON, so a case says exactly
// what bytes a hostile client sends (duplicate keys, strings where numbers
// belong) — what jwt.NewWithClaims cannot produce.
type attackKit struct {
	t      testing.TB
	now    int64
	leeway int64 // seconds
	pubPEM []byte
	signer *ecdsa.PrivateKey // the identity provider's key (configured)
	other  *ecdsa.PrivateKey // a key Quid does not know
	kid    string            // the signer's key id: its RFC 7638 thumbprint, as Quid names a PEM key
}

func (k attackKit) raw(method jwt.SigningMethod, key any, header, payload string) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	if method == nil {
		return signing + "."
	}
	sig, err := method.Sign(signing, key)
	if err != nil {
		k.t.Fatal(err)
	}
	return signing + "." + enc.EncodeToString(sig)
}

// claims is a valid payload for (role, sub) with members replaced (a nil
// value removes one) and literal members appended.
func (k attackKit) claims(role, sub string, set map[string]any, extra string) string {
	c := map[string]any{"sub": sub, "role": role, "iat": k.now, "exp": k.now + 3600}
	for name, v := range set {
		if v == nil {
			delete(c, name)
		} else {
			c[name] = v
		}
	}
	raw, err := json.Marshal(c)
	if err != nil {
		k.t.Fatal(err)
	}
	if extra != "" {
		raw = append(raw[:len(raw)-1], ","+extra+"}"...)
	}
	return string(raw)
}

const hs256Header = `{"alg":"HS256","typ":"JWT"}`

func (k attackKit) hs(payload string) string {
	return k.raw(jwt.SigningMethodHS256, []byte(testSecret), hs256Header, payload)
}

// with is a case signed correctly with HS256 whose claims differ from a
// valid token's as set and extra say.
func (k attackKit) with(name string, set map[string]any, extra string) tokenAttack {
	return tokenAttack{name, func(role, sub string) string { return k.hs(k.claims(role, sub, set, extra)) }}
}

// tokenAttacks is the token attack table of issue 9: each case is refused
// with 401 by a service with the HS256 secret and an ES256 public key
// configured, no issuer or audience, and the default leeway.
func (k attackKit) tokenAttacks() []tokenAttack {
	unsigned := func(alg string) tokenAttack {
		return tokenAttack{"alg " + alg, func(role, sub string) string {
			return k.raw(nil, nil, `{"alg":"`+alg+`","typ":"JWT"}`, k.claims(role, sub, nil, ""))
		}}
	}
	signedAs := func(name string, m jwt.SigningMethod, key any, header string) tokenAttack {
		return tokenAttack{name, func(role, sub string) string { return k.raw(m, key, header, k.claims(role, sub, nil, "")) }}
	}
	beyond := k.leeway + 60
	return []tokenAttack{
		unsigned("none"), unsigned("None"), unsigned("NONE"), unsigned("nOnE"),
		{"alg none keeping a valid HS256 signature", func(role, sub string) string {
			good := k.hs(k.claims(role, sub, nil, ""))
			enc := base64.RawURLEncoding.EncodeToString
			return strings.Replace(good, enc([]byte(hs256Header)), enc([]byte(`{"alg":"none","typ":"JWT"}`)), 1)
		}},
		signedAs("bad signature (another secret)", jwt.SigningMethodHS256, []byte(testSecret+"x"), hs256Header),
		{"signature of another payload", func(role, sub string) string {
			good, other := k.hs(k.claims(role, sub, nil, "")), k.hs(k.claims(role, sub, map[string]any{"exp": k.now + 60}, ""))
			return good[:strings.LastIndexByte(good, '.')] + other[strings.LastIndexByte(other, '.'):]
		}},
		signedAs("HS384 with the secret", jwt.SigningMethodHS384, []byte(testSecret), `{"alg":"HS384","typ":"JWT"}`),
		signedAs("HS512 with the secret", jwt.SigningMethodHS512, []byte(testSecret), `{"alg":"HS512","typ":"JWT"}`),
		signedAs("HS256 with the configured public key as the HMAC secret", jwt.SigningMethodHS256, k.pubPEM, hs256Header),
		signedAs("ES256 by an unknown key with an unknown kid", jwt.SigningMethodES256, k.other, `{"alg":"ES256","kid":"unknown-kid"}`),
		signedAs("ES256 by the configured key naming an unknown kid", jwt.SigningMethodES256, k.signer, `{"alg":"ES256","kid":"unknown-kid"}`),
		signedAs("ES256 by the configured key with a kid that is not a string", jwt.SigningMethodES256, k.signer, `{"alg":"ES256","kid":["`+k.kid+`"]}`),
		signedAs("HS256 with the secret naming a kid (the secret has none)", jwt.SigningMethodHS256, []byte(testSecret), `{"alg":"HS256","kid":"`+k.kid+`"}`),
		signedAs("kid naming /dev/null, HS256 with an empty key", jwt.SigningMethodHS256, []byte{}, `{"alg":"HS256","kid":"../../../../../dev/null"}`),
		signedAs("kid with SQL, HS256 with the key the SQL selects", jwt.SigningMethodHS256, []byte("x"), `{"alg":"HS256","kid":"' UNION SELECT 'x' --"}`),
		signedAs("ES256 by the configured key with alg HS256 in the header", jwt.SigningMethodES256, k.signer, hs256Header),
		k.with(fmt.Sprintf("exp %ds ago (leeway %ds)", beyond, k.leeway), map[string]any{"exp": k.now - beyond}, ""),
		k.with(fmt.Sprintf("nbf in %ds (leeway %ds)", beyond, k.leeway), nil, fmt.Sprintf(`"nbf":%d`, k.now+beyond)),
		k.with(fmt.Sprintf("iat in %ds (leeway %ds)", beyond, k.leeway), map[string]any{"iat": k.now + beyond}, ""),
		k.with("missing exp", map[string]any{"exp": nil}, ""),
		k.with("exp as a string", map[string]any{"exp": fmt.Sprint(k.now + 3600)}, ""),
		k.with("exp as null", map[string]any{"exp": nil}, `"exp":null`),
		k.with("nbf as a string", nil, fmt.Sprintf(`"nbf":"%d"`, k.now-10)),
		k.with("iat as a string", map[string]any{"iat": fmt.Sprint(k.now)}, ""),
		k.with("role twice, the last admin", nil, `"role":"admin"`),
		k.with("sub twice", nil, `"sub":"mallory"`),
		k.with("exp twice, the last far away", nil, fmt.Sprintf(`"exp":%d`, k.now+10*365*86400)),
		k.with("ROLE beside role", nil, `"ROLE":"admin"`),
		k.with("a duplicate key inside a nested claim", nil, `"ext":{"tenant":"a","tenant":"b"}`),
		{"role as an array", func(role, sub string) string {
			return k.hs(k.claims(role, sub, map[string]any{"role": []string{role}}, ""))
		}},
		{"role as an array holding admin", func(role, sub string) string {
			return k.hs(k.claims(role, sub, map[string]any{"role": []string{role, "admin"}}, ""))
		}},
		k.with("role unknown", map[string]any{"role": "root"}, ""),
		k.with("role in another case", map[string]any{"role": "ADMIN"}, ""),
		k.with("role missing", map[string]any{"role": nil}, ""),
		k.with("sub empty", map[string]any{"sub": ""}, ""),
		k.with("sub only spaces", map[string]any{"sub": "   "}, ""),
		{"sub with CR", func(role, sub string) string { return k.hs(k.claims(role, sub+"\rX", nil, "")) }},
		{"sub with LF", func(role, sub string) string { return k.hs(k.claims(role, sub+"\nX", nil, "")) }},
		{"sub with NUL", func(role, sub string) string { return k.hs(k.claims(role, sub+"\x00", nil, "")) }},
		k.with("sub over 255 characters", map[string]any{"sub": strings.Repeat("s", 256)}, ""),
		k.with("sub missing", map[string]any{"sub": nil}, ""),
		k.with("sub shaped like an erased member's pseudonym", map[string]any{"sub": "erased:0b6f0c2e-3c1e-4a8e-9a64-3f0e4c1b2a7d"}, ""),
		k.with("sub as a number", map[string]any{"sub": 42}, ""),
		{"claims not base64url", func(role, sub string) string { return "eyJhbGciOiJIUzI1NiJ9.!!!." + strings.Repeat("A", 43) }},
		{"four parts", func(role, sub string) string { return k.hs(k.claims(role, sub, nil, "")) + ".x" }},
	}
}

// roleAndSub reads the (unverified) role and sub of a token the tour minted.
func roleAndSub(t testing.TB, tok string) (string, string) {
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Role, Sub string }
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c.Role, c.Sub
}

func newAttackKit(t testing.TB, leeway time.Duration) (attackKit, string) {
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.MarshalPKIXPublicKey(&signer.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	path := filepath.Join(t.TempDir(), "idp-keys.pem")
	if err := os.WriteFile(path, pubPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	sum, err := (&jose.JSONWebKey{Key: &signer.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return attackKit{t: t, now: time.Now().Unix(), leeway: int64(leeway / time.Second), pubPEM: pubPEM, signer: signer, other: other,
		kid: base64.RawURLEncoding.EncodeToString(sum)}, path
}

// Every case of the token attack table, used in place of the caller's token
// on every authenticated route (the tour), is a 401 problem+json and writes
// nothing; the service has both an HS256 secret and an identity provider's
// ES256 key configured, so key-confusion cases are real.
func TestTokenAttacksAre401OnEveryRouteAndWriteNothing(t *testing.T) {
	t.Parallel()
	kit, keys := newAttackKit(t, 30*time.Second)
	a := newAPI(t, func(c *config.Config) { c.JWTPublicKeysFile = keys })
	if a.cfg.JWTLeeway != 30*time.Second {
		t.Fatalf("QUID_JWT_LEEWAY default is %s; README and this table say 30s", a.cfg.JWTLeeway)
	}
	w := a.world()
	// The web pages' calls are sent with a forged cookie (forgedSession):
	// the tour need not sign anyone in, which would write a session.
	w.session = func(app.Role, string) string { return webCookie("unused") }
	attacks := kit.tokenAttacks()
	calls := 0
	for i := range attacks {
		// The table is rebuilt for each case, so its times are relative to
		// when the case runs, however slow the machine.
		kit.now = time.Now().Unix()
		attack := kit.tokenAttacks()[i]
		toured := map[string]bool{}
		a.unchangedBy(attack.name, func() {
			tour(w, "alice", func(c routeCall) response {
				toured[c.route] = true
				if c.web != "" {
					return a.forgedSession(t, c) // no token; the page's cookie is attacked
				}
				if c.r.Token == "" {
					return response{Status: http.StatusTeapot} // a public route: no token to attack
				}
				calls++
				c.r.Token = attack.build(roleAndSub(t, c.r.Token))
				r := a.do(c.r)
				if r.Status != http.StatusUnauthorized {
					t.Errorf("%s with %s: %d, want 401: %.200s", c.route, attack.name, r.Status, r.Body)
				}
				return r
			})
		})
		checkTourCoversEveryRoute(t, a, toured)
	}
	t.Logf("%d token attacks × authenticated routes = %d refused calls", len(attacks), calls)

	// The same signing and claims builder, untampered, is accepted: the
	// 401s above come from what each case changes. Tokens inside the leeway
	// and from the configured identity provider's key are accepted too.
	inside := kit.leeway - 10
	kit.now = time.Now().Unix()
	for _, ok := range []tokenAttack{
		kit.with("valid HS256", nil, ""),
		kit.with(fmt.Sprintf("exp %ds ago, inside the leeway", inside), map[string]any{"exp": kit.now - inside}, ""),
		kit.with(fmt.Sprintf("nbf in %ds, inside the leeway", inside), nil, fmt.Sprintf(`"nbf":%d`, kit.now+inside)),
		kit.with(fmt.Sprintf("iat in %ds, inside the leeway", inside), map[string]any{"iat": kit.now + inside}, ""),
		{"ES256 by the configured key naming its thumbprint", func(role, sub string) string {
			return kit.raw(jwt.SigningMethodES256, kit.signer, `{"alg":"ES256","kid":"`+kit.kid+`"}`, kit.claims(role, sub, nil, ""))
		}},
		{"ES256 by the configured key without a kid", func(role, sub string) string {
			return kit.raw(jwt.SigningMethodES256, kit.signer, `{"alg":"ES256"}`, kit.claims(role, sub, nil, ""))
		}},
	} {
		r := a.do(req{Method: "GET", Path: "/v1/me", Token: ok.build(string(app.RoleMember), "alice")})
		if r.Status != http.StatusOK {
			t.Errorf("%s: %d, want 200: %s", ok.name, r.Status, r.Body)
		}
	}
	before := a.dbFingerprint()
	expect(t, a.do(req{Method: "PUT", Path: "/v1/me", Token: kit.with("valid", nil, "").build("member", "bob"),
		Body: map[string]any{"attributes": joinableProfile()}}), 201)
	if len(before.diff(a.dbFingerprint())) == 0 {
		t.Fatal("a valid token's write changed nothing: the fingerprint cannot see writes")
	}
}

// An issuer and audience, when configured, must both be in the token; the
// leeway is the configured one, not a constant: QUID_JWT_LEEWAY=2m accepts
// a clock 90 s ahead and refuses one 150 s ahead.
func TestTokenIssuerAudienceAndLeewayFollowTheConfiguration(t *testing.T) {
	t.Parallel()
	const iss, aud = "https://idp.example", "quid"
	kit, _ := newAttackKit(t, 2*time.Minute)
	a := newAPI(t, func(c *config.Config) { c.JWTIssuer, c.JWTAudience, c.JWTLeeway = iss, aud, 2*time.Minute })
	good := map[string]any{"iss": iss, "aud": aud}
	set := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	enrol := func(tok string) response {
		return a.do(req{Method: "PUT", Path: "/v1/me", Token: tok, Body: map[string]any{"attributes": joinableProfile()}})
	}
	refused := []tokenAttack{
		kit.with("iss mismatch", set("iss", "https://evil.example"), ""),
		kit.with("iss in another case", set("iss", "https://IDP.example"), ""),
		kit.with("iss missing", set("iss", nil), ""),
		kit.with("aud mismatch", set("aud", "other"), ""),
		kit.with("aud as an array without quid", set("aud", []string{"other", "quid2"}), ""),
		kit.with("aud missing", set("aud", nil), ""),
		kit.with("iat 150 s ahead with a 2m leeway", set("iat", kit.now+150), ""),
		kit.with("exp 150 s ago with a 2m leeway", set("exp", kit.now-150), ""),
	}
	for _, attack := range refused {
		a.unchangedBy(attack.name, func() {
			if r := enrol(attack.build("member", "carol")); r.Status != http.StatusUnauthorized {
				t.Errorf("%s: %d, want 401: %s", attack.name, r.Status, r.Body)
			}
		})
	}
	for i, ok := range []tokenAttack{
		kit.with("iss and aud as configured", set(), ""),
		kit.with("aud as an array holding quid", set("aud", []string{"other", aud}), ""),
		kit.with("iat 90 s ahead with a 2m leeway", set("iat", kit.now+90), ""),
		kit.with("exp 90 s ago with a 2m leeway", set("exp", kit.now-90), ""),
	} {
		if r := enrol(ok.build("member", fmt.Sprintf("dave-%d", i))); r.Status != http.StatusCreated {
			t.Errorf("%s: %d, want 201: %s", ok.name, r.Status, r.Body)
		}
	}
}

// forgedSession sends a web page call with a session cookie nobody was
// given (a token the server never issued): a page is a redirect to sign in
// and a form a 401 page, as for a browser signed out.
func (a *api) forgedSession(t *testing.T, c routeCall) response {
	t.Helper()
	forged := webCookie("forged-" + strings.Repeat("x", 40))
	c.r.Headers["Cookie"] = forged
	if c.r.Method == "POST" {
		c.r.Body = url.Values{"csrf": {webCSRF(forged)}}.Encode()
	}
	r := a.do(c.r)
	switch {
	case c.route == "POST /account/signout":
		// Signing out a browser nobody signed in: nothing to end.
		if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/account/signed-out" {
			t.Errorf("%s with a forged session: %d to %q, want 303 to /account/signed-out", c.route, r.Status, r.Header.Get("Location"))
		}
	case c.r.Method == "POST":
		checkWebPage(t, c.route+" with a forged session", r, http.StatusUnauthorized)
	case r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/account/signin?return_to="):
		t.Errorf("%s with a forged session: %d to %q, want 303 to sign in", c.route, r.Status, r.Header.Get("Location"))
	}
	return r
}
