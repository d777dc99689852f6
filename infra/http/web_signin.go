package http

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gofiber/fiber/v2"
	"golang.org/x/oauth2"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// signInTTL bounds a sign-in in progress: the time a person has at the
// identity provider.
const signInTTL = 10 * time.Minute

// oidcClient runs the authorization code flow with PKCE (OpenID Connect
// Core 1.0 §3.1; RFC 7636) with go-oidc and x/oauth2. Discovery happens at
// the first sign-in and is retried on the next one when the provider was
// unreachable, so a provider outage never stops Quid from starting.
type oidcClient struct {
	opts     OIDCOptions
	sessions app.WebSessions

	mu       sync.Mutex
	provider *oidc.Provider
}

func newOIDCClient(opts OIDCOptions, sessions app.WebSessions) *oidcClient {
	if opts.RoleClaim == "" {
		opts.RoleClaim = "role"
	}
	return &oidcClient{opts: opts, sessions: sessions}
}

func (o *oidcClient) discover(ctx context.Context) (*oidc.Provider, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, o.opts.Issuer)
	if err != nil {
		return nil, providerUnavailable(fmt.Errorf("identity provider discovery: %w", err))
	}
	o.provider = p
	return p, nil
}

func (o *oidcClient) config(p *oidc.Provider) *oauth2.Config {
	redirect := *o.opts.PublicURL
	redirect.Path = strings.TrimSuffix(redirect.Path, "/") + webPrefix + "/signin/callback"
	redirect.RawQuery, redirect.Fragment = "", ""
	return &oauth2.Config{ClientID: o.opts.ClientID, ClientSecret: o.opts.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: redirect.String(), Scopes: []string{oidc.ScopeOpenID}}
}

func (w *web) signInRoutes(g fiber.Router) {
	g.Get("/signin", w.signInPage)
	g.Get("/signed-out", func(c *fiber.Ctx) error {
		return w.render(c, fiber.StatusOK, "signedout", "You are signed out", "", nil)
	})
	g.Post("/signout", w.signOut)
	if w.oidc != nil {
		g.Get("/signin/start", w.signInStart)
		g.Get("/signin/callback", w.signInCallback)
	}
	if w.opts.Demo {
		g.Post("/signin/demo", w.demoSignIn)
	}
}

type signInView struct {
	ReturnTo string
	OIDC     bool
	Demo     bool
	// AnonCSRF is the demo form's token, the same as its cookie (double
	// submit): a page on another site cannot sign a browser in as someone.
	AnonCSRF string
}

// signInPage offers the identity provider and, with --demo only, the
// development sign-in.
func (w *web) signInPage(c *fiber.Ctx) error {
	v := signInView{ReturnTo: safeReturn(c.Query("return_to")), OIDC: w.oidc != nil, Demo: w.opts.Demo}
	if w.opts.Demo {
		v.AnonCSRF = randomToken()
		w.setCookie(c, anonCSRFCookie, v.AnonCSRF, webPrefix+"/signin", signInTTL)
	}
	return w.render(c, fiber.StatusOK, "signin", "Sign in", "", v)
}

// signInStart sends the browser to the identity provider with a fresh
// state, nonce and PKCE verifier; the state is also set in a cookie, so
// the callback is accepted only in the browser that started it.
func (w *web) signInStart(c *fiber.Ctx) error {
	if c.Method() == fiber.MethodHead {
		// A HEAD (a link checker, a prefetch) starts nothing.
		return c.Redirect(webPrefix+"/signin", fiber.StatusSeeOther)
	}
	p, err := w.oidc.discover(c.UserContext())
	if err != nil {
		return err
	}
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	si := app.SignIn{CodeVerifier: verifier, Nonce: nonce, ReturnTo: safeReturn(c.Query("return_to")), ExpiresAt: time.Now().Add(signInTTL)}
	if err := w.opts.Sessions.SaveSignIn(c.UserContext(), hashToken(state), si); err != nil {
		return err
	}
	w.setCookie(c, signInCookie, state, webPrefix+"/signin", signInTTL)
	return c.Redirect(w.oidc.config(p).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), fiber.StatusSeeOther)
}

// signInCallback finishes the flow: the state must be this browser's and
// unused, the code is exchanged with the verifier, and the ID token is
// verified (signature, issuer, audience, expiry, nonce) before its sub
// becomes the session's member id — the same id the API's tokens carry.
func (w *web) signInCallback(c *fiber.Ctx) error {
	if c.Method() == fiber.MethodHead {
		// A HEAD must not use up the sign-in's one-time state.
		return c.Redirect(webPrefix+"/signin", fiber.StatusSeeOther)
	}
	refused := func(code, msg string) error {
		return &domain.Error{Kind: domain.KindUnauthenticated, Code: code, Message: msg}
	}
	if e := c.Query("error"); e != "" {
		return refused("signin-refused", "the identity provider did not sign you in; try again")
	}
	state := c.Query("state")
	cookie := c.Cookies(signInCookie)
	w.setCookie(c, signInCookie, "", webPrefix+"/signin", -1)
	if state == "" || cookie == "" || !hmac.Equal([]byte(state), []byte(cookie)) {
		return refused("signin-state", "this sign-in was not started in this browser or has expired; sign in again")
	}
	si, ok, err := w.opts.Sessions.TakeSignIn(c.UserContext(), hashToken(state))
	if err != nil {
		return err
	}
	if !ok {
		return refused("signin-state", "this sign-in was already used or has expired; sign in again")
	}
	p, err := w.oidc.discover(c.UserContext())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Second)
	defer cancel()
	tok, err := w.oidc.config(p).Exchange(ctx, c.Query("code"), oauth2.VerifierOption(si.CodeVerifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return refused("signin-code", "the identity provider refused this sign-in; sign in again")
		}
		return providerUnavailable(fmt.Errorf("identity provider token endpoint: %w", err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return refused("signin-token", "the identity provider sent no ID token")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: w.oidc.opts.ClientID}).Verify(ctx, raw)
	if err != nil || !hmac.Equal([]byte(idt.Nonce), []byte(si.Nonce)) {
		return refused("signin-token", "the identity provider's ID token could not be verified; sign in again")
	}
	role := app.RoleMember
	var claims map[string]json.RawMessage
	if err := idt.Claims(&claims); err == nil {
		if rc, ok := claims[w.oidc.opts.RoleClaim]; ok {
			var r string
			if json.Unmarshal(rc, &r) != nil || !app.Role(r).Valid() || app.Role(r) == app.RolePartner {
				return domain.Forbidden("wrong-role", "your account's role cannot use these pages")
			}
			role = app.Role(r)
		}
	}
	return w.startSession(c, app.Principal{Subject: idt.Subject, Role: role}, si.ReturnTo)
}

// startSession signs the browser in as p: a new random token in the
// cookie, its hash in the database.
func (w *web) startSession(c *fiber.Ctx, p app.Principal, returnTo string) error {
	if problem := domain.SubjectProblem(p.Subject); problem != "" {
		return &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid-subject", Message: "the account's id " + problem}
	}
	// A session already open in this browser ends: one browser, one person.
	if token := c.Cookies(w.cookieName(c)); token != "" && len(token) <= 64 {
		if err := w.opts.Sessions.EndSession(c.UserContext(), hashToken(token)); err != nil {
			return err
		}
	}
	token := randomToken()
	now := time.Now().UTC()
	if err := w.opts.Sessions.CreateSession(c.UserContext(), hashToken(token),
		app.WebSession{Principal: p, CreatedAt: now, ExpiresAt: now.Add(w.opts.SessionTTL)}); err != nil {
		return err
	}
	w.setCookie(c, w.cookieName(c), token, "/", w.opts.SessionTTL)
	return c.Redirect(safeReturn(returnTo), fiber.StatusSeeOther)
}

// demoSignIn is the development sign-in of `quid serve --demo`: any
// member id, as member or marketer. The route does not exist without
// --demo.
func (w *web) demoSignIn(c *fiber.Ctx) error {
	form, err := readForm(c)
	if err != nil {
		return err
	}
	cookie := c.Cookies(anonCSRFCookie)
	if cookie == "" || !hmac.Equal([]byte(form.Get(csrfField)), []byte(cookie)) {
		return domain.Forbidden("csrf", "this form has expired; open the sign-in page again")
	}
	role := app.Role(form.Get("role"))
	if role == "" {
		role = app.RoleMember
	}
	if role != app.RoleMember && role != app.RoleMarketer && role != app.RoleAdmin {
		return invalidInput("/form/role", "must be member, marketer or admin")
	}
	subject := strings.TrimSpace(form.Get("subject"))
	if problem := domain.SubjectProblem(subject); problem != "" {
		return invalidInput("/form/subject", "the member id "+problem)
	}
	w.setCookie(c, anonCSRFCookie, "", webPrefix+"/signin", -1)
	return w.startSession(c, app.Principal{Subject: subject, Role: role}, form.Get("return_to"))
}

// signOut ends the session everywhere (it is server side) and clears the
// cookie. It needs the CSRF token, so no other site can sign a member out.
func (w *web) signOut(c *fiber.Ctx) error {
	s, err := w.session(c)
	if err != nil {
		return err
	}
	if s != nil {
		form, err := readForm(c)
		if err != nil {
			return err
		}
		if !hmac.Equal([]byte(form.Get(csrfField)), []byte(s.csrf())) {
			return domain.Forbidden("csrf", "this form has expired; open the page again and resend it")
		}
		if err := w.opts.Sessions.EndSession(c.UserContext(), hashToken(s.token)); err != nil {
			return err
		}
		c.Locals(webSessionKey, nil)
	}
	w.setCookie(c, w.cookieName(c), "", "/", -1)
	return c.Redirect(webPrefix+"/signed-out", fiber.StatusSeeOther)
}

// providerUnavailable is a 503 that names the identity provider, not the
// database, as what cannot be reached; the cause is logged, never shown.
func providerUnavailable(cause error) error {
	return &httpError{status: fiber.StatusServiceUnavailable, code: "identity-provider-unavailable",
		detail: "the identity provider cannot be reached; try again in a moment", cause: cause}
}
