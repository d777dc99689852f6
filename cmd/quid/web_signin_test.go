package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/config"
)

// idpUser is a person at the test identity provider: sub, a role claim
// (nil: none), and what the provider gets wrong on purpose.
type idpUser struct {
	sub      string
	role     any
	nonce    string // overrides the nonce the request asked for
	audience string // overrides the audience (the client id)
}

func (u idpUser) ID() string { return u.sub }
func (u idpUser) Userinfo([]string) ([]byte, error) {
	return json.Marshal(map[string]string{"sub": u.sub})
}
func (u idpUser) Claims(_ []string, c *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	if u.nonce != "" {
		c.Nonce = u.nonce
	}
	if u.audience != "" {
		c.Audience = jwt.ClaimStrings{u.audience}
	}
	return &roleClaims{IDTokenClaims: c, Role: u.role}, nil
}

type roleClaims struct {
	*mockoidc.IDTokenClaims
	Role any `json:"role,omitempty"`
}

// testIDP is mockoidc with a record of the authorization and token
// requests, and a switch that tampers with the next ID token.
type testIDP struct {
	*mockoidc.MockOIDC
	mu        sync.Mutex
	authorize []url.Values
	token     []url.Values
	tamper    bool
}

func startIDP(t *testing.T, ln net.Listener) *testIDP {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &testIDP{MockOIDC: m}
	err = m.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != mockoidc.TokenEndpoint {
				if r.URL.Path == mockoidc.AuthorizationEndpoint {
					p.mu.Lock()
					p.authorize = append(p.authorize, r.URL.Query())
					p.mu.Unlock()
				}
				next.ServeHTTP(w, r)
				return
			}
			body, _ := io.ReadAll(r.Body)
			form, _ := url.ParseQuery(string(body))
			r.Body = io.NopCloser(bytes.NewReader(body))
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			out := rec.Body.Bytes()
			p.mu.Lock()
			p.token = append(p.token, form)
			if p.tamper && rec.Code == 200 {
				p.tamper = false
				var m map[string]any
				if json.Unmarshal(out, &m) == nil {
					parts := strings.Split(m["id_token"].(string), ".")
					claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
					claims = bytes.Replace(claims, []byte(`"sub":"`), []byte(`"sub":"x`), 1)
					parts[1] = base64.RawURLEncoding.EncodeToString(claims)
					m["id_token"] = strings.Join(parts, ".")
					out, _ = json.Marshal(m)
				}
			}
			p.mu.Unlock()
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			w.Write(out)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return p
}

// oidcQuid is Quid on a real listener, signing in with the identity
// provider at issuer (which may not be up yet).
type oidcQuid struct {
	*api
	base string
}

func newOIDCQuid(t *testing.T, issuer, clientID, secret string) *oidcQuid {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	pub, _ := url.Parse(base)
	a := newAPI(t, func(c *config.Config) {
		c.Web.Issuer, c.Web.ClientID, c.Web.ClientSecret, c.Web.PublicURL = issuer, clientID, secret, pub
	})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.svc.serve(ctx, ln, a.cfg) }()
	t.Cleanup(func() { stop(); <-done })
	return &oidcQuid{api: a, base: base}
}

// jarBrowser is an HTTP client with a cookie jar that follows redirects.
func jarBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// stopAtCallback makes b stop before Quid's callback, to replay or move it.
func stopAtCallback(b *http.Client) *http.Client {
	c := *b
	c.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
		if strings.HasSuffix(r.URL.Path, "/account/signin/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return &c
}

func fetch(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

// signedInAs is the principal of the session b's cookie holds, if any.
func (q *oidcQuid) signedInAs(t *testing.T, b *http.Client) (app.Principal, bool) {
	t.Helper()
	u, _ := url.Parse(q.base + "/account")
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == "quid-session" {
			sum := sha256.Sum256([]byte(c.Value))
			s, ok, err := q.svc.store.Session(context.Background(), sum[:])
			if err != nil {
				t.Fatal(err)
			}
			return s.Principal, ok
		}
	}
	return app.Principal{}, false
}

func (q *oidcQuid) sessions(t *testing.T) int {
	t.Helper()
	var n int
	if err := q.svc.db.Raw(`SELECT count(*) FROM web_sessions`).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOIDCSignInEndToEnd(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	idp := startIDP(t, ln)
	q := newOIDCQuid(t, idp.Issuer(), idp.ClientID, idp.ClientSecret)
	start := q.base + "/account/signin/start?return_to=%2Faccount"

	t.Run("the ID token's sub is the member, whatever its characters", func(t *testing.T) {
		for _, sub := range []string{"auth0|abc", "a&b", "josé", "a/b"} {
			idp.QueueUser(idpUser{sub: sub})
			b := jarBrowser(t)
			res, body := fetch(t, b, start)
			if res.StatusCode != 200 || res.Request.URL.Path != "/account" {
				t.Fatalf("%s: landed on %s with %d: %.300s", sub, res.Request.URL, res.StatusCode, body)
			}
			p, ok := q.signedInAs(t, b)
			if !ok || p.Subject != sub || p.Role != app.RoleMember {
				t.Errorf("%s: signed in as %+v (%v)", sub, p, ok)
			}
			// The same member the API knows: what the API wrote for a token
			// with this sub is what the session acts on.
			tok := token(t, app.RoleMember, sub)
			expect(t, q.do(req{Method: "PUT", Path: "/v1/me", Token: tok, Body: map[string]any{"attributes": map[string]any{"location.city": "Oslo"}}}), 201)
		}
	})

	t.Run("PKCE: S256 challenge in the authorization request, its verifier in the token request", func(t *testing.T) {
		idp.mu.Lock()
		idp.authorize, idp.token = nil, nil
		idp.mu.Unlock()
		idp.QueueUser(idpUser{sub: "pkce"})
		if res, body := fetch(t, jarBrowser(t), start); res.Request.URL.Path != "/account" {
			t.Fatalf("sign-in failed: %d %.300s", res.StatusCode, body)
		}
		idp.mu.Lock()
		defer idp.mu.Unlock()
		// x/oauth2 may try client_secret_basic, then client_secret_post: the
		// last token request is the one the provider granted.
		if len(idp.authorize) != 1 || len(idp.token) == 0 {
			t.Fatalf("%d authorization and %d token requests", len(idp.authorize), len(idp.token))
		}
		az, tk := idp.authorize[0], idp.token[len(idp.token)-1]
		sum := sha256.Sum256([]byte(tk.Get("code_verifier")))
		if az.Get("code_challenge_method") != "S256" || tk.Get("code_verifier") == "" ||
			az.Get("code_challenge") != base64.RawURLEncoding.EncodeToString(sum[:]) {
			t.Errorf("challenge %q (%s), verifier %q", az.Get("code_challenge"), az.Get("code_challenge_method"), tk.Get("code_verifier"))
		}
		if az.Get("nonce") == "" || az.Get("state") == "" || az.Get("redirect_uri") != q.base+"/account/signin/callback" {
			t.Errorf("authorization request %v", az)
		}
	})

	t.Run("the state binds the callback to the browser and is usable once", func(t *testing.T) {
		idp.QueueUser(idpUser{sub: "bound"})
		a := jarBrowser(t)
		res, _ := fetch(t, stopAtCallback(a), start)
		callback := res.Header.Get("Location")
		if !strings.Contains(callback, "/account/signin/callback?") {
			t.Fatalf("the provider sent the browser to %q", callback)
		}
		before := q.sessions(t)
		other := jarBrowser(t)
		res, body := fetch(t, other, callback)
		if res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Errorf("callback in another browser: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		if q.sessions(t) != before || strings.Contains(body, "Sign out") {
			t.Error("a callback in another browser signed it in")
		}
		cu, _ := url.Parse(callback)
		state := cu.Query().Get("state")
		if res, _ := fetch(t, a, callback); res.Request.URL.Path != "/account" || res.StatusCode != 200 {
			t.Fatalf("callback in the browser that started: %d at %s", res.StatusCode, res.Request.URL)
		}
		// Replayed with the state cookie put back: the sign-in is used up.
		replay := jarBrowser(t)
		replay.Jar.SetCookies(cu, []*http.Cookie{{Name: "quid-signin", Value: state, Path: "/account/signin"}})
		before = q.sessions(t)
		if res, _ := fetch(t, replay, callback); res.StatusCode != 401 {
			t.Errorf("replayed callback: %d, want 401", res.StatusCode)
		}
		if q.sessions(t) != before {
			t.Error("a replayed callback wrote a session")
		}
	})

	refused := func(t *testing.T, name string, status int) {
		t.Helper()
		b := jarBrowser(t)
		before := q.sessions(t)
		res, _ := fetch(t, b, start)
		if res.StatusCode != status || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s at %s, want a %d page", name, res.StatusCode, res.Header.Get("Content-Type"), res.Request.URL, status)
		}
		if _, ok := q.signedInAs(t, b); ok || q.sessions(t) != before {
			t.Errorf("%s: signed in anyway", name)
		}
	}
	t.Run("a wrong nonce, a tampered ID token, a wrong audience are refused", func(t *testing.T) {
		idp.QueueUser(idpUser{sub: "nonce", nonce: "not-the-one-asked"})
		refused(t, "wrong nonce", 401)
		idp.QueueUser(idpUser{sub: "aud", audience: "another-client"})
		refused(t, "wrong audience", 401)
		idp.mu.Lock()
		idp.tamper = true
		idp.mu.Unlock()
		idp.QueueUser(idpUser{sub: "tampered"})
		refused(t, "tampered ID token", 401)
	})

	t.Run("the role claim: marketer pages for a marketer, 403 for an unknown role", func(t *testing.T) {
		idp.QueueUser(idpUser{sub: "mark", role: "marketer"})
		b := jarBrowser(t)
		fetch(t, b, start)
		if p, ok := q.signedInAs(t, b); !ok || p.Role != app.RoleMarketer || p.Subject != "mark" {
			t.Errorf("marketer signed in as %+v (%v)", p, ok)
		}
		for _, role := range []any{"owner", "partner", 7, []string{"admin"}} {
			idp.QueueUser(idpUser{sub: "who", role: role})
			refused(t, "role claim "+string(mustJSON(t, role)), 403)
		}
	})

	t.Run("return_to never leaves /account", func(t *testing.T) {
		for _, to := range []string{"//evil.example", "https://evil.example", "/account@evil", "/\\evil", "/account/../v1/me",
			"/account/%2e%2e/v1/me", "/account\\@evil.example", "javascript:alert(1)", "/account/offers"} {
			idp.QueueUser(idpUser{sub: "walker"})
			b := stopAtCallback(jarBrowser(t))
			res, _ := fetch(t, b, q.base+"/account/signin/start?return_to="+url.QueryEscape(to))
			b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			res, _ = fetch(t, b, res.Header.Get("Location"))
			loc := res.Header.Get("Location")
			if res.StatusCode != 303 || !(loc == "/account" || strings.HasPrefix(loc, "/account/")) || strings.Contains(loc, "..") {
				t.Errorf("return_to %q: %d to %q", to, res.StatusCode, loc)
			}
		}
	})
}

// With the identity provider down at the first sign-in, the page says so
// (503) and Quid retries discovery at the next one.
func TestOIDCProviderDownAtFirstSignInThenBack(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	q := newOIDCQuid(t, "http://"+addr+mockoidc.IssuerBase, m.ClientID, m.ClientSecret)
	b := jarBrowser(t)
	res, page := fetch(t, b, q.base+"/account/signin/start")
	if res.StatusCode != 503 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || res.Header.Get("Retry-After") == "" {
		t.Fatalf("provider down: %d %s, want a 503 page with Retry-After", res.StatusCode, res.Header.Get("Content-Type"))
	}
	// It names what is down: the identity provider, not the database.
	if !strings.Contains(page, "identity provider cannot be reached") || strings.Contains(page, "database") {
		t.Fatalf("provider down, the page says:\n%s", page)
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err) // never seen; the check above already ran
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	m.QueueUser(idpUser{sub: "back"})
	res, body := fetch(t, b, q.base+"/account/signin/start")
	if res.StatusCode != 200 || res.Request.URL.Path != "/account" {
		t.Fatalf("provider back: %d at %s: %.300s", res.StatusCode, res.Request.URL, body)
	}
	if p, ok := q.signedInAs(t, b); !ok || p.Subject != "back" {
		t.Errorf("signed in as %+v (%v)", p, ok)
	}
}
