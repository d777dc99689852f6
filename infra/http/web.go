package http

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
	"mime"
	"net"
	"net/url"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// The web preference centre (issue 13): server-rendered pages under
// /account where a member sees and controls everything they share, and a
// marketer sees their contracts, signed in with OpenID Connect. The pages
// call the same use cases as the API (h.svc); no rule is implemented twice.
//
// Pages work without JavaScript and load nothing but /account/static/.
// Every state change is a POST form carrying a CSRF token bound to the
// session; a GET never writes.

// WebOptions turn the web pages on; nil leaves /account out.
type WebOptions struct {
	// Sessions keeps sessions and sign-ins in progress, server side.
	Sessions app.WebSessions
	// SessionTTL is how long a sign-in lasts (default 12 h).
	SessionTTL time.Duration
	// OIDC is the programme's identity provider; nil without one.
	OIDC *OIDCOptions
	// Demo offers a development sign-in (pick any member id), shown as
	// such on every page. Only `quid serve --demo` sets it.
	Demo bool
	// MinCount is k of the marketer pages' k-anonymous statistics
	// (QUID_STATS_MIN_COUNT, the k Contracts.Stats applies): the pages
	// word a withheld figure with the k its statistics carry, and name k
	// where they have none.
	MinCount int
	// PublicURL is where browsers reach Quid (QUID_PUBLIC_URL), or nil; with
	// OIDC it is OIDC.PublicURL. Its scheme decides the session cookie's
	// Secure flag and name, and its origin is the one forms may come from.
	PublicURL *url.URL
}

// OIDCOptions name the identity provider and this client (OpenID Connect
// Core 1.0, authorization code flow with PKCE, RFC 7636).
type OIDCOptions struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// PublicURL is where browsers reach Quid; the redirect URI is
	// PublicURL + /account/signin/callback.
	PublicURL *url.URL
	// RoleClaim is the ID token claim that holds the role (a string: member,
	// marketer, admin); absent means member.
	RoleClaim string
}

// webPolicy is the Content-Security-Policy of the web pages: only
// Quid's own stylesheet, forms that post only to Quid, no script at all,
// never framed (CSP Level 3; no 'unsafe-inline').
const webPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

const (
	webPrefix        = "/account"
	sessionCookieTLS = "__Host-quid-session" // RFC 6265bis §4.1.3.2: Secure, Path=/, no Domain
	sessionCookieRaw = "quid-session"        // on loopback over plain HTTP
	anonCSRFCookie   = "quid-csrf"
	signInCookie     = "quid-signin"
	csrfField        = "csrf"
)

type webKey int

const (
	webPageKey webKey = iota
	webSessionKey
)

//go:embed web
var webFiles embed.FS

// web holds the page templates and the session machinery.
type web struct {
	opts  WebOptions
	h     *handlers
	pages map[string]*template.Template
	css   []byte
	oidc  *oidcClient
}

// webSession is the signed-in browser a page is rendered for.
type webSession struct {
	app.WebSession
	token string
}

// csrf is the session's CSRF token: an HMAC of the session token, so it
// needs no storage and only the holder of the cookie can compute it.
func (s *webSession) csrf() string { return SessionCSRF(s.token) }

// SessionCSRF is the CSRF token every form of the session with the cookie
// value sessionToken carries in its csrf field (HMAC-SHA256, base64url).
// Exported for tests that post forms without parsing a page first.
func SessionCSRF(sessionToken string) string {
	m := hmac.New(sha256.New, []byte(sessionToken))
	m.Write([]byte("quid csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func newWeb(opts WebOptions, h *handlers) *web {
	if opts.SessionTTL == 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.MinCount == 0 {
		opts.MinCount = 10
	}
	w := &web{opts: opts, h: h, pages: map[string]*template.Template{}}
	css, err := webFiles.ReadFile("web/quid.css")
	if err != nil {
		panic(err)
	}
	w.css = css
	layout := template.Must(template.New("layout.html").Funcs(webFuncs).ParseFS(webFiles, "web/layout.html"))
	names, err := webFiles.ReadDir("web")
	if err != nil {
		panic(err)
	}
	for _, e := range names {
		name := e.Name()
		if !strings.HasSuffix(name, ".html") || name == "layout.html" {
			continue
		}
		w.pages[strings.TrimSuffix(name, ".html")] = template.Must(template.Must(layout.Clone()).ParseFS(webFiles, "web/"+name))
	}
	if opts.OIDC != nil {
		w.oidc = newOIDCClient(*opts.OIDC, opts.Sessions)
	}
	return w
}

// webFuncs are the template helpers every page may use.
var webFuncs = template.FuncMap{
	"date": func(t time.Time) string { return t.UTC().Format("2 January 2006") },
	"datetime": func(t time.Time) string {
		return t.UTC().Format("2 January 2006, 15:04 UTC")
	},
	"optdate": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format("2 January 2006")
	},
	"query": url.QueryEscape,
	"path":  url.PathEscape,
}

// wantsWebPage is true once a request reached the web pages' own
// middleware: its errors are shown as a page. Refusals at the edge before
// it (framing, query, body size) stay problem+json, as on every route.
func wantsWebPage(c *fiber.Ctx) bool {
	on, _ := c.Locals(webPageKey).(bool)
	return on
}

// routes registers the pages. limit is the per-principal write limit the
// API applies after authentication, applied here to signed-in posts.
func (w *web) routes(a *fiber.App, limit func(*fiber.Ctx) error) {
	g := a.Group(webPrefix, func(c *fiber.Ctx) error {
		c.Locals(webPageKey, true)
		c.Locals(webKeySelf{}, w)
		c.Set(fiber.HeaderContentSecurityPolicy, webPolicy)
		c.Set(fiber.HeaderCacheControl, "no-store")
		// Origin on the pages' own form posts, nothing to other sites;
		// no-referrer made browsers post every form with Origin: null.
		c.Set(fiber.HeaderReferrerPolicy, "same-origin")
		if c.Method() == fiber.MethodPost {
			if err := w.sameOrigin(c); err != nil {
				return err
			}
		}
		return c.Next()
	})
	g.Get("/static/quid.css", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "text/css; charset=utf-8")
		c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
		return c.Send(w.css)
	})
	w.signInRoutes(g)

	// Gates go on each route, never on a group: a fiber group's handlers
	// run for every path under its prefix, the sign-in pages included.
	g.Get("", w.signedIn(limit, app.RoleMember, app.RoleMarketer, app.RoleAdmin), w.home)
	w.memberRoutes(g, w.signedIn(limit, app.RoleMember))
	w.marketerRoutes(g, w.signedIn(limit, app.RoleMarketer, app.RoleAdmin))
}

// sameOrigin refuses a form posted from another site: Sec-Fetch-Site
// (Fetch Metadata) when the browser sends it, else Origin. It backs up
// the CSRF token and SameSite=Lax, which leave subdomains and old
// browsers open. Origin is compared with QUID_PUBLIC_URL when set (behind
// a reverse proxy the Host header may be the proxy's upstream name, and
// c.Hostname would trust X-Forwarded-Host from anyone when no proxy is
// configured), else with the request's Host; hosts compare case-blind and
// an opaque origin ("null": a sandboxed frame, a data: URL) is refused.
func (w *web) sameOrigin(c *fiber.Ctx) error {
	refuse := domain.Forbidden("cross-site-form", "this form was sent from another site; open the page here and send it again")
	switch c.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return refuse
	}
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" || u.User != nil {
		return refuse
	}
	if pub := w.publicURL(); pub != nil {
		if strings.EqualFold(u.Scheme, pub.Scheme) && strings.EqualFold(u.Host, pub.Host) {
			return nil
		}
	}
	if strings.EqualFold(u.Host, string(c.Request().Host())) {
		return nil
	}
	return refuse
}

// publicURL is QUID_PUBLIC_URL, or nil.
func (w *web) publicURL() *url.URL {
	if w.opts.OIDC != nil && w.opts.OIDC.PublicURL != nil {
		return w.opts.OIDC.PublicURL
	}
	return w.opts.PublicURL
}

// isLoopbackHost is true for localhost and loopback addresses: only there
// is a session cookie sent without Secure (plain HTTP in development).
func isLoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// plainHTTP is true when cookies go without Secure: only over plain HTTP
// on loopback. With QUID_PUBLIC_URL set its scheme decides, not the
// request: behind a TLS-terminating proxy that forwards to
// http://localhost the request looks like plain loopback HTTP, yet the
// browser speaks HTTPS on the public name, and the session cookie must be
// Secure there.
func (w *web) plainHTTP(c *fiber.Ctx) bool {
	if pub := w.publicURL(); pub != nil {
		return pub.Scheme == "http" && isLoopbackHost(pub.Host)
	}
	return isLoopbackHost(string(c.Request().Host())) && c.Protocol() == "http"
}

func (w *web) cookieName(c *fiber.Ctx) string {
	if w.plainHTTP(c) {
		return sessionCookieRaw
	}
	return sessionCookieTLS
}

// setCookie sets an HttpOnly, SameSite=Lax cookie, Secure except over
// plain HTTP on loopback. maxAge < 0 deletes it.
func (w *web) setCookie(c *fiber.Ctx, name, value, path string, maxAge time.Duration) {
	secure := !w.plainHTTP(c)
	ck := &fiber.Cookie{Name: name, Value: value, Path: path, HTTPOnly: true, Secure: secure, SameSite: fiber.CookieSameSiteLaxMode}
	if maxAge < 0 {
		ck.MaxAge, ck.Expires = -1, time.Unix(0, 0)
	} else {
		ck.MaxAge = int(maxAge / time.Second)
	}
	c.Cookie(ck)
}

// session reads the browser's session, if any.
func (w *web) session(c *fiber.Ctx) (*webSession, error) {
	if s, ok := c.Locals(webSessionKey).(*webSession); ok {
		return s, nil
	}
	token := c.Cookies(w.cookieName(c))
	if token == "" || len(token) > 64 {
		return nil, nil
	}
	ws, ok, err := w.opts.Sessions.Session(c.UserContext(), hashToken(token))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, nil
	}
	s := &webSession{WebSession: ws, token: token}
	c.Locals(webSessionKey, s)
	return s, nil
}

// signedIn admits a signed-in browser whose role is one of roles, with
// its principal where the API's handlers find it; anyone else is sent to
// sign in (GET) or refused (POST). A POST must carry the session's CSRF
// token in its form.
func (w *web) signedIn(limit func(*fiber.Ctx) error, roles ...app.Role) fiber.Handler {
	return func(c *fiber.Ctx) error {
		s, err := w.session(c)
		if err != nil {
			return err
		}
		if s == nil {
			if c.Method() == fiber.MethodGet || c.Method() == fiber.MethodHead {
				return c.Redirect(webPrefix+"/signin?return_to="+url.QueryEscape(c.OriginalURL()), fiber.StatusSeeOther)
			}
			return &domain.Error{Kind: domain.KindUnauthenticated, Code: "signed-out", Message: "you are signed out; sign in and send the form again"}
		}
		if err := s.Principal.Require(roles...); err != nil {
			return err
		}
		c.Locals(principalKey, s.Principal)
		if c.Method() == fiber.MethodPost {
			form, err := readForm(c)
			if err != nil {
				return err
			}
			if !hmac.Equal([]byte(form.Get(csrfField)), []byte(s.csrf())) {
				return domain.Forbidden("csrf", "this form has expired or was not sent from this site; open the page again and resend it")
			}
			if err := limit(c); err != nil {
				return err
			}
		}
		return c.Next()
	}
}

type webFormKey struct{}

// readForm parses an application/x-www-form-urlencoded body once, strictly:
// each field once, valid UTF-8 without NUL, so a page reads the same
// values any other parser would.
func readForm(c *fiber.Ctx) (url.Values, error) {
	if f, ok := c.Locals(webFormKey{}).(url.Values); ok {
		return f, nil
	}
	body := c.Body()
	if len(body) > 0 {
		// A charset other than UTF-8 would be read as UTF-8 all the same:
		// refused, so no client believes its UTF-16 form was understood.
		mt, params, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
		if cs, ok := params["charset"]; err != nil || mt != fiber.MIMEApplicationForm || ok && !strings.EqualFold(cs, "utf-8") {
			return nil, &httpError{status: fiber.StatusUnsupportedMediaType, code: "unsupported-media-type",
				detail: "send the form as application/x-www-form-urlencoded in UTF-8"}
		}
	}
	form := url.Values{}
	for _, pair := range bytes.Split(body, []byte("&")) {
		if len(pair) == 0 {
			continue
		}
		k, v, _ := strings.Cut(string(pair), "=")
		name, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		ptr := "/form/" + domain.PointerToken(name)
		switch {
		case err1 != nil || !utf8.ValidString(name) || strings.ContainsRune(name, 0) || len(name) > 64:
			return nil, invalidInput("/form", "a field name is not valid")
		case err2 != nil || !utf8.ValidString(value) || strings.ContainsRune(value, 0):
			return nil, invalidInput(ptr, "must be valid UTF-8 without NUL")
		case form.Has(name):
			return nil, invalidInput(ptr, "is given more than once")
		case len(form) >= 64:
			return nil, invalidInput("/form", "too many fields")
		}
		form.Set(name, value)
	}
	c.Locals(webFormKey{}, form)
	return form, nil
}

// webPage is what every page template gets.
type webPage struct {
	Title   string
	Session *webSession
	CSRF    string
	Demo    bool
	// Nav is the name of the current section, for aria-current.
	Nav  string
	Data any
}

// render writes a page with the layout around it.
func (w *web) render(c *fiber.Ctx, status int, name, title, nav string, data any) error {
	t, ok := w.pages[name]
	if !ok {
		panic("no page " + name)
	}
	s, _ := c.Locals(webSessionKey).(*webSession)
	p := webPage{Title: title, Session: s, Demo: w.opts.Demo, Nav: nav, Data: data}
	if s != nil {
		p.CSRF = s.csrf()
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", p); err != nil {
		return err
	}
	c.Status(status)
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Send(buf.Bytes())
}

// webErrorPage shows a problem as a page: the same status and words as the
// API's problem+json, in the layout.
func webErrorPage(c *fiber.Ctx, p problem) error {
	w, _ := c.Locals(webKeySelf{}).(*web)
	c.Set(fiber.HeaderContentSecurityPolicy, webPolicy)
	if w == nil {
		c.Status(p.Status)
		c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
		return c.SendString(p.Title + ": " + p.Detail)
	}
	if plain, ok := plainTitles[p.Status]; ok {
		p.Title = plain
	}
	return w.render(c, p.Status, "error", p.Title, "", p)
}

// plainTitles head an error page in plain words instead of the HTTP
// reason phrase ("Unprocessable Entity"); the status stays the API's.
var plainTitles = map[int]string{
	fiber.StatusBadRequest:            "This request could not be read",
	fiber.StatusUnauthorized:          "Please sign in",
	fiber.StatusForbidden:             "This is not allowed",
	fiber.StatusNotFound:              "Not found",
	fiber.StatusConflict:              "This cannot be done now",
	fiber.StatusRequestEntityTooLarge: "What you sent is too large",
	fiber.StatusUnsupportedMediaType:  "This form could not be read",
	fiber.StatusUnprocessableEntity:   "Please check what you entered",
	fiber.StatusTooManyRequests:       "Too many changes at once: wait a moment and try again",
	fiber.StatusServiceUnavailable:    "Temporarily unavailable: try again in a moment",
}

type webKeySelf struct{}

// home is the start page: what a member can do, or a marketer's contracts.
func (w *web) home(c *fiber.Ctx) error {
	s, _ := c.Locals(webSessionKey).(*webSession)
	if s != nil && s.Principal.Role != app.RoleMember {
		return c.Redirect(webPrefix+"/contracts", fiber.StatusSeeOther)
	}
	return w.render(c, fiber.StatusOK, "home", "Your data and rewards", "home", nil)
}

// safeReturn keeps a post-sign-in destination on the web pages: a local
// path under /account, never another host (open redirect).
func safeReturn(to string) string {
	if !strings.HasPrefix(to, webPrefix) || strings.HasPrefix(to, "//") || strings.ContainsAny(to, "\\\r\n\t") || len(to) > 512 {
		return webPrefix
	}
	u, err := url.Parse(to)
	if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(u.Path, webPrefix) {
		return webPrefix
	}
	if rest := strings.TrimPrefix(u.Path, webPrefix); rest != "" && rest[0] != '/' {
		return webPrefix
	}
	// Dot segments would climb out of /account once the browser resolves
	// them (/account/../v1/me); encoded ones too (%2e%2e).
	if clean := path.Clean(u.Path); clean != u.Path && clean+"/" != u.Path || strings.Contains(strings.ToLower(u.RawPath+u.Path), "%2e") {
		return webPrefix
	}
	return to
}
