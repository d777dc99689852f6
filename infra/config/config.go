// Package config turns the process environment into one typed, validated
// Config. Nothing else in Quid reads environment variables.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/quidpro/quid/domain"
)

// Config is everything the service can be told at start.
type Config struct {
	DatabaseURL         string
	Addr                string
	JWTSecret           string
	JWTPublicKeysFile   string
	JWTIssuer           string
	JWTAudience         string
	JWTLeeway           time.Duration
	MinRewardPeriod     time.Duration
	AccrualInterval     time.Duration
	WebhookInterval     time.Duration
	LogLevel            slog.Level
	LogFormat           string
	SigningKeyFile      string
	WebhookAllowPrivate bool
	ShutdownTimeout     time.Duration
	PublicCacheTTL      time.Duration
	PprofAddr           string
	// MaxHeaderBytes bounds a request's line and headers together.
	MaxHeaderBytes int
	// DBStatementTimeout and DBIdleInTransactionTimeout are the PostgreSQL
	// session settings statement_timeout and
	// idle_in_transaction_session_timeout of every connection the service
	// opens (0: off). Migrations run without them.
	DBStatementTimeout         time.Duration
	DBIdleInTransactionTimeout time.Duration
	// RateLimitPrincipal and RateLimitAddress bound writes per token
	// (subject and role) and per client address; a zero Quota is off.
	RateLimitPrincipal Quota
	RateLimitAddress   Quota
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// PointsExpireAfter is how long after it is credited a point expires
	// (each credit opens a lot that expires then); zero: never.
	PointsExpireAfter domain.Duration
	// PointsExpiringNotice is how long before points expire the brand is
	// sent points.expiring; zero: never.
	PointsExpiringNotice domain.Duration
	// NATS is the event stream's connection (issue 15); off when URL is empty.
	NATS NATS
	// RedemptionCancelWindow is how long after redeeming a reward a
	// member may cancel the redemption; zero: never.
	RedemptionCancelWindow domain.Duration
	// Web configures the web preference centre's sign-in (issue 13).
	Web Web
	// StatsMinCount is k of the k-anonymous contract statistics: no count
	// below it is shown (domain.ContractCounts.Anonymise).
	StatsMinCount int64
}

// Web configures sign-in to the pages under /account: OpenID Connect
// against the programme's identity provider (authorization code + PKCE).
type Web struct {
	// PublicURL is where browsers reach Quid (scheme, host, optional path).
	PublicURL *url.URL
	// Issuer, ClientID and ClientSecret name the provider and this client;
	// without Issuer there is no OpenID Connect sign-in.
	Issuer, ClientID, ClientSecret string
	// RoleClaim is the ID token claim holding the role.
	RoleClaim string
	// SessionTTL is how long a sign-in lasts.
	SessionTTL time.Duration
	// DemoSignIn is the development sign-in (any member id). No variable
	// sets it: only `quid serve --demo`.
	DemoSignIn bool
}

// OIDC is true when an identity provider is configured.
func (w Web) OIDC() bool { return w.Issuer != "" }

// NATS configures the optional event stream: every outbox event published
// to JetStream subject quid.events.<type>.
type NATS struct {
	// URL lists the servers (nats://, tls://, ws://, wss://; comma-separated),
	// possibly with a user and password or token. Empty: no event stream.
	URL string
	// CredsFile is a NATS credentials file (user JWT and NKey seed).
	CredsFile string
	// Stream is the JetStream stream: used when it exists (it must take
	// quid.events.>), created when it does not.
	Stream string
	// Duplicates and MaxAge are the duplicate window and message age limit
	// of a stream Quid creates (MaxAge 0: kept for ever).
	Duplicates time.Duration
	MaxAge     time.Duration
	// Replicas is the replica count of a stream Quid creates.
	Replicas int
}

// On reports whether the event stream is configured.
func (n NATS) On() bool { return n.URL != "" }

// Quota is at most Requests within any Window, refilled evenly; the zero
// value means no limit.
type Quota struct {
	Requests int
	Window   time.Duration
}

// Off reports whether the quota limits nothing.
func (q Quota) Off() bool { return q.Requests == 0 }

func (q Quota) String() string {
	if q.Off() {
		return "0"
	}
	return strconv.Itoa(q.Requests) + "/" + q.Window.String()
}

// parseQuota reads "N/WINDOW" (N from 1 to 1,000,000, WINDOW a Go duration
// of whole seconds from 1s to 24h), or "0" or "off" for no limit. The window
// is whole seconds because the RateLimit-Policy header states it so.
func parseQuota(s string) (Quota, bool) {
	if s == "0" || strings.EqualFold(s, "off") {
		return Quota{}, true
	}
	n, w, ok := strings.Cut(s, "/")
	if !ok {
		return Quota{}, false
	}
	requests, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || requests < 1 || requests > 1_000_000 {
		return Quota{}, false
	}
	window, err := time.ParseDuration(strings.TrimSpace(w))
	if err != nil || window < time.Second || window > 24*time.Hour || window%time.Second != 0 {
		return Quota{}, false
	}
	return Quota{Requests: requests, Window: window}, true
}

// parseProxies reads a comma-separated list of IP addresses and CIDR prefixes.
func parseProxies(s string) ([]netip.Prefix, bool) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil || a.Zone() != "" {
			return nil, false
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, true
}

// Var documents one environment variable; the README table mirrors this list.
type Var struct {
	Name, Default, Meaning string
}

// Vars lists every variable Quid reads.
var Vars = []Var{
	{"DATABASE_URL", "", "PostgreSQL connection URL (required by the binary; make run/test start a private cluster when unset)"},
	{"QUID_ADDR", ":8080", "HTTP listen address"},
	{"QUID_JWT_SECRET", "", "HS256 secret for development tokens (at least 32 bytes)"},
	{"QUID_JWT_PUBLIC_KEYS", "", "path to the identity provider's public keys (RS256, ES256, EdDSA): its JWK Set (the `jwks_uri` document, whose `kid`s tokens name) or a PEM file of PUBLIC KEY blocks (each named by its RFC 7638 thumbprint). A token naming a `kid` is checked with that key only, and refused when no key has it"},
	{"QUID_JWT_ISSUER", "", "required `iss` claim, checked when set"},
	{"QUID_JWT_AUDIENCE", "", "required `aud` claim, checked when set"},
	{"QUID_JWT_LEEWAY", "30s", "clock skew allowed when checking a token's exp, nbf and iat (0s to 5m)"},
	{"QUID_MIN_REWARD_PERIOD", "1h", "shortest reward `period` a contract may use"},
	{"QUID_ACCRUAL_INTERVAL", "1m", "how often the in-process accrual worker runs"},
	{"QUID_POINTS_EXPIRING_NOTICE", "P14D", "how long before points expire (QUID_POINTS_EXPIRE_AFTER) the brand (the first-party recipients of the contract that earned them) is sent points.expiring, once per lot, as an ISO 8601 duration; zero (PT0S): never"},
	{"QUID_POINTS_EXPIRE_AFTER", "", "how long after it is credited a point expires, as an ISO 8601 duration (e.g. P24M): each credit to a member's available balance opens a lot that expires then, redemptions take from the lots that expire first, and the accrual worker expires what is due; empty or zero: points never expire. A change applies to points credited after it. A contract may shorten it for its own points (points_expire_after, at most this)"},
	{"QUID_REDEMPTION_CANCEL_WINDOW", "P14D", "how long after redeeming a reward of the catalogue a member may cancel the redemption (POST /v1/me/redemptions/{id}/cancel: points back to the lots they came from, stock unit back), as an ISO 8601 duration; zero (PT0S): never. A change applies to every redemption not yet cancelled"},
	{"QUID_WEBHOOK_INTERVAL", "1s", "how often the webhook outbox is polled"},
	{"QUID_SIGNING_KEY", "", "path to a PEM (PKCS#8) Ed25519 private key for consent receipts; generated and stored in the database when unset"},
	{"QUID_WEBHOOK_ALLOW_PRIVATE", "false", "allow webhook URLs on loopback, private or link-local addresses (development only)"},
	{"QUID_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"QUID_LOG_FORMAT", "json", "json or text"},
	{"QUID_SHUTDOWN_TIMEOUT", "15s", "how long in-flight requests may take to finish on SIGTERM"},
	{"QUID_PPROF_ADDR", "", "serve Go's pprof profiles on this address (e.g. 127.0.0.1:6060) for profiling; off when empty"},
	{"QUID_PUBLIC_CACHE_TTL", "1s", "how long rendered offers and transparency statements are reused in memory"},
	{"QUID_DB_STATEMENT_TIMEOUT", "60s", "PostgreSQL statement_timeout of the service's sessions: a statement running longer is cancelled (0s: off; migrations are exempt)"},
	{"QUID_DB_IDLE_IN_TRANSACTION_TIMEOUT", "10s", "PostgreSQL idle_in_transaction_session_timeout of the service's sessions: a session idle this long inside a transaction is ended and its locks released (0s: off)"},
	{"QUID_RATE_LIMIT_PRINCIPAL", "60/10s", "writes (POST, PUT, PATCH, DELETE) one token's subject and role may make: N/WINDOW, at most N within any WINDOW (whole seconds), refilled evenly; 0 turns it off. Per replica"},
	{"QUID_RATE_LIMIT_ADDRESS", "1000/10s", "writes one client address (an IPv6 /64) may make, as QUID_RATE_LIMIT_PRINCIPAL; 0 turns it off. Behind a proxy set QUID_TRUSTED_PROXIES, or every client shares the proxy's address"},
	{"QUID_TRUSTED_PROXIES", "", "comma-separated IPs or CIDR prefixes of reverse proxies whose X-Forwarded-For names the client address; empty: the TCP peer is the client"},
	{"QUID_NATS_URL", "", "NATS server URL(s) of the optional event stream (`nats://`, `tls://`, comma-separated; a user and password or token may be in the URL, never logged): every outbox event is also published to JetStream subject `quid.events.<type>` with the event id as `Nats-Msg-Id`, at least once. Empty: no event stream"},
	{"QUID_NATS_CREDS", "", "path to a NATS credentials file (user JWT and NKey seed) for `QUID_NATS_URL`"},
	{"QUID_NATS_STREAM", "QUID_EVENTS", "JetStream stream that holds the events: used as it is when it exists (its subjects must take `quid.events.>`), created on first connection otherwise"},
	{"QUID_NATS_DUPLICATE_WINDOW", "10m", "duplicate window of a stream Quid creates (1m to 24h): an event published again within it (a replica died between publishing and recording it) is dropped by id"},
	{"QUID_NATS_MAX_AGE", "168h", "how long a stream Quid creates keeps an event (0s: for ever). Published events carry member ids as webhooks do, and erasure cannot reach them: keep this short"},
	{"QUID_NATS_REPLICAS", "1", "replica count (1 to 5) of a stream Quid creates; 3 on a three-server JetStream cluster"},
	{"QUID_PUBLIC_URL", "", "where browsers reach Quid (https://…, or http:// on loopback only), for the web pages' OpenID Connect redirect URI: QUID_PUBLIC_URL + /account/signin/callback. Required with QUID_OIDC_ISSUER"},
	{"QUID_OIDC_ISSUER", "", "issuer URL of the programme's OpenID Connect identity provider (discovered at the first sign-in): members and marketers sign in to the pages under /account with it (authorization code + PKCE); the ID token's sub is the member id, the same as the API's. Empty: no sign-in to the web pages (except `quid serve --demo`'s development sign-in)"},
	{"QUID_OIDC_CLIENT_ID", "", "this client's id at the identity provider; required with QUID_OIDC_ISSUER"},
	{"QUID_OIDC_CLIENT_SECRET", "", "this client's secret at the identity provider (empty for a public client, which PKCE protects); never logged"},
	{"QUID_OIDC_ROLE_CLAIM", "role", "ID token claim that holds the role (a string: member, marketer or admin); without it the person signs in as a member"},
	{"QUID_WEB_SESSION_TTL", "12h", "how long a web sign-in lasts (5m to 720h); sessions are kept server side, so signing out or erasure ends them on every replica at once"},
	{"QUID_STATS_MIN_COUNT", "10", "k of the k-anonymous contract statistics (`GET /v1/contracts/{id}/stats`, the marketer pages), at least 2: a count below it, zero included, is shown as \"fewer than k\" (JSON null, named in `suppressed`), and so is any count that would let one be worked out from the others; the points issued and their value are withheld when fewer than k members earned them"},
	{"QUID_MAX_HEADER_BYTES", "16384", "largest request line plus headers accepted, in bytes (1024 to 1048576); larger requests get 431. Raise it for identity-provider tokens with many claims"},
}

// Load reads the environment through getenv and reports every bad value at once.
func Load(getenv func(string) string) (Config, error) {
	get := func(name string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		for _, v := range Vars {
			if v.Name == name {
				return v.Default
			}
		}
		return ""
	}
	var errs []error
	duration := func(name string) time.Duration {
		d, err := time.ParseDuration(get(name))
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a positive duration such as 1h or 30s", name, get(name)))
		}
		return d
	}
	cfg := Config{
		DatabaseURL:       get("DATABASE_URL"),
		Addr:              get("QUID_ADDR"),
		JWTSecret:         get("QUID_JWT_SECRET"),
		JWTPublicKeysFile: get("QUID_JWT_PUBLIC_KEYS"),
		JWTIssuer:         get("QUID_JWT_ISSUER"),
		JWTAudience:       get("QUID_JWT_AUDIENCE"),
		MinRewardPeriod:   duration("QUID_MIN_REWARD_PERIOD"),
		AccrualInterval:   duration("QUID_ACCRUAL_INTERVAL"),
		WebhookInterval:   duration("QUID_WEBHOOK_INTERVAL"),
		ShutdownTimeout:   duration("QUID_SHUTDOWN_TIMEOUT"),
		PublicCacheTTL:    duration("QUID_PUBLIC_CACHE_TTL"),
		PprofAddr:         get("QUID_PPROF_ADDR"),
		SigningKeyFile:    get("QUID_SIGNING_KEY"),
		LogFormat:         get("QUID_LOG_FORMAT"),
	}
	if cfg.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL: required (postgres://user@host:port/db)"))
	} else if u, err := url.Parse(cfg.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		errs = append(errs, errors.New("DATABASE_URL: must be a postgres:// URL"))
	}
	if cfg.JWTSecret == "" && cfg.JWTPublicKeysFile == "" {
		errs = append(errs, errors.New("QUID_JWT_SECRET or QUID_JWT_PUBLIC_KEYS: one is required to verify tokens"))
	}
	if cfg.JWTSecret != "" && len(cfg.JWTSecret) < 32 {
		errs = append(errs, errors.New("QUID_JWT_SECRET: must be at least 32 bytes"))
	}
	if cfg.JWTPublicKeysFile != "" {
		if _, err := os.Stat(cfg.JWTPublicKeysFile); err != nil {
			errs = append(errs, fmt.Errorf("QUID_JWT_PUBLIC_KEYS: cannot read %s", cfg.JWTPublicKeysFile))
		}
	}
	if cfg.SigningKeyFile != "" {
		if _, err := os.Stat(cfg.SigningKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("QUID_SIGNING_KEY: cannot read %s", cfg.SigningKeyFile))
		}
	}
	if d, err := time.ParseDuration(get("QUID_JWT_LEEWAY")); err != nil || d < 0 || d > 5*time.Minute {
		errs = append(errs, fmt.Errorf("QUID_JWT_LEEWAY: %q is not a duration from 0s to 5m", get("QUID_JWT_LEEWAY")))
	} else {
		cfg.JWTLeeway = d
	}
	// Zero turns a PostgreSQL timeout off; whole milliseconds, as PostgreSQL counts them.
	dbTimeout := func(name string) time.Duration {
		d, err := time.ParseDuration(get(name))
		if err != nil || d < 0 || d%time.Millisecond != 0 || d > 24*time.Hour {
			errs = append(errs, fmt.Errorf("%s: %q is not a duration from 0s (off) to 24h in whole milliseconds", name, get(name)))
		}
		return d
	}
	cfg.DBStatementTimeout = dbTimeout("QUID_DB_STATEMENT_TIMEOUT")
	cfg.DBIdleInTransactionTimeout = dbTimeout("QUID_DB_IDLE_IN_TRANSACTION_TIMEOUT")
	allow, err := strconv.ParseBool(get("QUID_WEBHOOK_ALLOW_PRIVATE"))
	if err != nil {
		errs = append(errs, fmt.Errorf("QUID_WEBHOOK_ALLOW_PRIVATE: %q is not true or false", get("QUID_WEBHOOK_ALLOW_PRIVATE")))
	}
	cfg.WebhookAllowPrivate = allow
	maxHeader, err := strconv.Atoi(get("QUID_MAX_HEADER_BYTES"))
	if err != nil || maxHeader < 1<<10 || maxHeader > 1<<20 {
		errs = append(errs, fmt.Errorf("QUID_MAX_HEADER_BYTES: %q is not a number of bytes from 1024 to 1048576", get("QUID_MAX_HEADER_BYTES")))
	}
	cfg.MaxHeaderBytes = maxHeader
	if k, err := strconv.ParseInt(get("QUID_STATS_MIN_COUNT"), 10, 64); err != nil || k < domain.MinStatsMinCount || k > 1_000_000 {
		errs = append(errs, fmt.Errorf("QUID_STATS_MIN_COUNT: %q is not a whole number from %d to 1000000", get("QUID_STATS_MIN_COUNT"), domain.MinStatsMinCount))
	} else {
		cfg.StatsMinCount = k
	}
	for _, q := range []struct {
		name string
		into *Quota
	}{{"QUID_RATE_LIMIT_PRINCIPAL", &cfg.RateLimitPrincipal}, {"QUID_RATE_LIMIT_ADDRESS", &cfg.RateLimitAddress}} {
		v, ok := parseQuota(get(q.name))
		if !ok {
			errs = append(errs, fmt.Errorf("%s: %q is not N/WINDOW (such as 60/10s: N from 1 to 1000000, WINDOW whole seconds from 1s to 24h) or 0", q.name, get(q.name)))
		}
		*q.into = v
	}
	proxies, ok := parseProxies(get("QUID_TRUSTED_PROXIES"))
	if !ok {
		errs = append(errs, fmt.Errorf("QUID_TRUSTED_PROXIES: %q is not a comma-separated list of IP addresses and CIDR prefixes", get("QUID_TRUSTED_PROXIES")))
	}
	cfg.TrustedProxies = proxies
	if err := cfg.LogLevel.UnmarshalText([]byte(get("QUID_LOG_LEVEL"))); err != nil {
		errs = append(errs, fmt.Errorf("QUID_LOG_LEVEL: %q is not debug, info, warn or error", get("QUID_LOG_LEVEL")))
	}
	if v := get("QUID_POINTS_EXPIRE_AFTER"); v != "" {
		d, err := domain.ParseOptionalDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("QUID_POINTS_EXPIRE_AFTER: %w", err))
		}
		cfg.PointsExpireAfter = d
	}
	if d, err := domain.ParseOptionalDuration(get("QUID_POINTS_EXPIRING_NOTICE")); err != nil {
		errs = append(errs, fmt.Errorf("QUID_POINTS_EXPIRING_NOTICE: %w", err))
	} else {
		cfg.PointsExpiringNotice = d
	}
	cfg.NATS = loadNATS(get, &errs)
	if d, err := domain.ParseOptionalDuration(get("QUID_REDEMPTION_CANCEL_WINDOW")); err != nil {
		errs = append(errs, fmt.Errorf("QUID_REDEMPTION_CANCEL_WINDOW: %w", err))
	} else if d.Exceeds(domain.MustParseDuration("P10Y")) {
		errs = append(errs, fmt.Errorf("QUID_REDEMPTION_CANCEL_WINDOW: %q is longer than P10Y", get("QUID_REDEMPTION_CANCEL_WINDOW")))
	} else {
		cfg.RedemptionCancelWindow = d
	}
	cfg.Web = loadWeb(get, &errs)
	if cfg.LogFormat != "json" && cfg.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("QUID_LOG_FORMAT: %q is not json or text", cfg.LogFormat))
	}
	return cfg, errors.Join(errs...)
}

// LogValue masks secrets so a Config can be logged safely at start.
func (c Config) LogValue() slog.Value {
	masked := func(s string) string {
		if s == "" {
			return ""
		}
		return "***"
	}
	return slog.GroupValue(
		slog.String("database_url", redactDatabaseURL(c.DatabaseURL)),
		slog.String("addr", c.Addr),
		slog.String("jwt_secret", masked(c.JWTSecret)),
		slog.String("jwt_public_keys", c.JWTPublicKeysFile),
		slog.String("jwt_issuer", c.JWTIssuer),
		slog.String("jwt_audience", c.JWTAudience),
		slog.Duration("jwt_leeway", c.JWTLeeway),
		slog.Duration("min_reward_period", c.MinRewardPeriod),
		slog.Duration("accrual_interval", c.AccrualInterval),
		slog.String("points_expire_after", c.PointsExpireAfter.String()),
		slog.String("points_expiring_notice", c.PointsExpiringNotice.String()),
		slog.String("redemption_cancel_window", c.RedemptionCancelWindow.String()),
		slog.Bool("webhook_allow_private", c.WebhookAllowPrivate),
		slog.Int("max_header_bytes", c.MaxHeaderBytes),
		slog.Int64("stats_min_count", c.StatsMinCount),
		slog.Duration("db_statement_timeout", c.DBStatementTimeout),
		slog.Duration("db_idle_in_transaction_timeout", c.DBIdleInTransactionTimeout),
		slog.String("rate_limit_principal", c.RateLimitPrincipal.String()),
		slog.String("rate_limit_address", c.RateLimitAddress.String()),
		slog.Int("trusted_proxies", len(c.TrustedProxies)),
		slog.String("log_level", c.LogLevel.String()),
		slog.String("nats_url", redactNATSURL(c.NATS.URL)),
		slog.String("nats_creds", c.NATS.CredsFile),
		slog.String("nats_stream", c.NATS.Stream),
		slog.String("oidc_issuer", c.Web.Issuer),
		slog.String("oidc_client_secret", masked(c.Web.ClientSecret)),
	)
}

var (
	// dsnSecret is a secret in key=value form: a value is quoted (with
	// backslash escapes) or runs to the first unescaped whitespace.
	dsnSecret = regexp.MustCompile(`(?i)\b((?:ssl)?password)\s*=\s*('(?:[^'\\]|\\.)*'|(?:[^\s\\]|\\.)+)`)
	// urlQuerySecret is a secret in a URL's query.
	urlQuerySecret = regexp.MustCompile(`(?i)([?&](?:ssl)?password=)[^&#]*`)
)

// redactDatabaseURL hides passwords wherever libpq and pgx accept them: in
// a URL's user info, in its query, and in key=value form. It works on the
// text rather than on a parsed URL, because pgx accepts URLs (several hosts,
// unescaped characters) that net/url rejects; when unsure it hides more.
func redactDatabaseURL(raw string) string {
	scheme, rest, isURL := strings.Cut(raw, "://")
	if !isURL || !strings.EqualFold(scheme, "postgres") && !strings.EqualFold(scheme, "postgresql") {
		return dsnSecret.ReplaceAllString(raw, "$1=***")
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if user, _, hasPassword := strings.Cut(rest[:at], ":"); hasPassword {
			rest = user + ":***" + rest[at:]
		}
	}
	return scheme + "://" + urlQuerySecret.ReplaceAllString(rest, "${1}***")
}

// loadWeb reads QUID_PUBLIC_URL, QUID_OIDC_* and QUID_WEB_SESSION_TTL.
func loadWeb(get func(string) string, errs *[]error) Web {
	w := Web{Issuer: get("QUID_OIDC_ISSUER"), ClientID: get("QUID_OIDC_CLIENT_ID"), ClientSecret: get("QUID_OIDC_CLIENT_SECRET"),
		RoleClaim: get("QUID_OIDC_ROLE_CLAIM")}
	if raw := get("QUID_PUBLIC_URL"); raw != "" {
		u, err := url.Parse(raw)
		switch {
		case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
			*errs = append(*errs, fmt.Errorf("QUID_PUBLIC_URL: %q is not an absolute URL without user, query or fragment", raw))
		case u.Scheme == "https":
		case u.Scheme == "http" && loopback(u.Hostname()):
		default:
			*errs = append(*errs, fmt.Errorf("QUID_PUBLIC_URL: %q must be https:// (http:// only on loopback): session cookies are Secure", raw))
		}
		w.PublicURL = u
	}
	if w.Issuer != "" {
		if u, err := url.Parse(w.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname()))) {
			*errs = append(*errs, fmt.Errorf("QUID_OIDC_ISSUER: %q is not an https:// URL (http:// only on loopback)", w.Issuer))
		}
		if w.ClientID == "" {
			*errs = append(*errs, errors.New("QUID_OIDC_CLIENT_ID: required with QUID_OIDC_ISSUER"))
		}
		if w.PublicURL == nil {
			*errs = append(*errs, errors.New("QUID_PUBLIC_URL: required with QUID_OIDC_ISSUER (it makes the redirect URI)"))
		}
	}
	if !claimName.MatchString(w.RoleClaim) {
		*errs = append(*errs, fmt.Errorf("QUID_OIDC_ROLE_CLAIM: %q is not a claim name (1 to 64 letters, digits, '_', '-', '.', ':' or '/')", w.RoleClaim))
	}
	if d, err := time.ParseDuration(get("QUID_WEB_SESSION_TTL")); err != nil || d < 5*time.Minute || d > 720*time.Hour {
		*errs = append(*errs, fmt.Errorf("QUID_WEB_SESSION_TTL: %q is not a duration from 5m to 720h", get("QUID_WEB_SESSION_TTL")))
	} else {
		w.SessionTTL = d
	}
	return w
}

var claimName = regexp.MustCompile(`^[A-Za-z0-9_.:/-]{1,64}$`)

// loopback is true for localhost and loopback addresses.
func loopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

var streamName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// loadNATS reads the QUID_NATS_* variables; they are checked only when
// QUID_NATS_URL is set.
func loadNATS(get func(string) string, errs *[]error) NATS {
	n := NATS{URL: get("QUID_NATS_URL"), CredsFile: get("QUID_NATS_CREDS"), Stream: get("QUID_NATS_STREAM")}
	if n.URL == "" {
		return n
	}
	for part := range strings.SplitSeq(n.URL, ",") {
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil || u.Host == "" || (u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss") {
			// The value is not repeated: it may hold a password.
			*errs = append(*errs, errors.New("QUID_NATS_URL: must be nats://, tls://, ws:// or wss:// URLs with a host, comma-separated"))
			break
		}
	}
	if n.CredsFile != "" {
		if _, err := os.Stat(n.CredsFile); err != nil {
			*errs = append(*errs, fmt.Errorf("QUID_NATS_CREDS: cannot read %s", n.CredsFile))
		}
	}
	if !streamName.MatchString(n.Stream) {
		*errs = append(*errs, fmt.Errorf("QUID_NATS_STREAM: %q is not 1 to 64 letters, digits, '_' or '-'", n.Stream))
	}
	if d, err := time.ParseDuration(get("QUID_NATS_DUPLICATE_WINDOW")); err != nil || d < time.Minute || d > 24*time.Hour {
		*errs = append(*errs, fmt.Errorf("QUID_NATS_DUPLICATE_WINDOW: %q is not a duration from 1m to 24h", get("QUID_NATS_DUPLICATE_WINDOW")))
	} else {
		n.Duplicates = d
	}
	if d, err := time.ParseDuration(get("QUID_NATS_MAX_AGE")); err != nil || d < 0 || (d > 0 && d < n.Duplicates) {
		*errs = append(*errs, fmt.Errorf("QUID_NATS_MAX_AGE: %q is not 0s (for ever) or a duration at least QUID_NATS_DUPLICATE_WINDOW", get("QUID_NATS_MAX_AGE")))
	} else {
		n.MaxAge = d
	}
	if r, err := strconv.Atoi(get("QUID_NATS_REPLICAS")); err != nil || r < 1 || r > 5 {
		*errs = append(*errs, fmt.Errorf("QUID_NATS_REPLICAS: %q is not a number from 1 to 5", get("QUID_NATS_REPLICAS")))
	} else {
		n.Replicas = r
	}
	return n
}

// redactNATSURL keeps only each server's scheme and host: a NATS URL may
// carry a user and password or a token.
func redactNATSURL(raw string) string {
	if raw == "" {
		return ""
	}
	var hosts []string
	for part := range strings.SplitSeq(raw, ",") {
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil || u.Host == "" {
			hosts = append(hosts, "***")
			continue
		}
		hosts = append(hosts, u.Scheme+"://"+u.Host)
	}
	return strings.Join(hosts, ",")
}
