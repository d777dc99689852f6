package config_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/infra/config"
)

func env(overrides map[string]string) func(string) string {
	base := map[string]string{
		"DATABASE_URL":    "postgres://quid@127.0.0.1:5432/quid",
		"QUID_JWT_SECRET": "0123456789abcdef0123456789abcdef",
	}
	for k, v := range overrides {
		base[k] = v
	}
	return func(k string) string { return base[k] }
}

func TestLoadAppliesDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":8080" || cfg.MinRewardPeriod != time.Hour || cfg.AccrualInterval != time.Minute || cfg.WebhookAllowPrivate {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestLoadNamesEveryBadValue(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"DATABASE_URL":               "mysql://x",
		"QUID_JWT_SECRET":            "short",
		"QUID_MIN_REWARD_PERIOD":     "an hour",
		"QUID_ACCRUAL_INTERVAL":      "-1s",
		"QUID_WEBHOOK_ALLOW_PRIVATE": "maybe",
		"QUID_LOG_LEVEL":             "loud",
		"QUID_LOG_FORMAT":            "xml",
		"QUID_JWT_PUBLIC_KEYS":       "/no/such/file.pem",
	}
	_, err := config.Load(env(tests))
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for name := range tests {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
}

func TestLoadRequiresAWayToVerifyTokens(t *testing.T) {
	t.Parallel()
	_, err := config.Load(env(map[string]string{"QUID_JWT_SECRET": ""}))
	if err == nil || !strings.Contains(err.Error(), "QUID_JWT_SECRET or QUID_JWT_PUBLIC_KEYS") {
		t.Fatalf("got %v", err)
	}
}

func TestLogValueMasksSecrets(t *testing.T) {
	t.Parallel()
	for _, dbURL := range []string{
		"postgres://quid:hunter2@db:5432/quid",
		"postgresql://quid@db/quid?sslmode=disable&password=hunter2",
		"postgres://db/quid?PassWord=hunter2&sslpassword=hunter2",
		"host=db user=quid password=hunter2 dbname=quid",
		"host=db password = 'hunter2 with spaces' dbname=quid",
		`host=db password=a\ hunter2 dbname=quid`,
		"postgres://u:hunter2@dbone:5432,dbtwo/quid",
		"postgres://u:hunter2@[::1]:5432,[::2]:5432/db",
		"postgres://u:hunter2#x@db/quid",
		"postgres://u:hunter2@db/quid?sslmode=require&sslpassword=hunter2#frag",
	} {
		cfg, _ := config.Load(env(map[string]string{"DATABASE_URL": dbURL}))
		out := fmt.Sprint(cfg.LogValue())
		if strings.Contains(out, "hunter2") || strings.Contains(out, "0123456789abcdef") || !strings.Contains(out, "db") {
			t.Errorf("secret in log value of %q: %s", dbURL, out)
		}
	}
}

// The README's configuration table documents every variable Quid reads.
func TestReadmeDocumentsEveryVariable(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range config.Vars {
		if !strings.Contains(string(readme), "| `"+v.Name+"` |") {
			t.Errorf("README's configuration table lacks %s", v.Name)
		}
	}
}

func TestMaxHeaderBytesDefaultsAbove16KiBAndCanBeRaised(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxHeaderBytes < 16<<10 {
		t.Fatalf("default max header bytes %d, want at least 16 KiB", cfg.MaxHeaderBytes)
	}
	cfg, err = config.Load(env(map[string]string{"QUID_MAX_HEADER_BYTES": "65536"}))
	if err != nil || cfg.MaxHeaderBytes != 65536 {
		t.Fatalf("raised: %d, %v", cfg.MaxHeaderBytes, err)
	}
	for _, bad := range []string{"lots", "0", "100", "99999999"} {
		if _, err := config.Load(env(map[string]string{"QUID_MAX_HEADER_BYTES": bad})); err == nil || !strings.Contains(err.Error(), "QUID_MAX_HEADER_BYTES") {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
}

// The database session timeouts default to 60 s and 10 s, accept 0s (off)
// and refuse what PostgreSQL could not take as whole milliseconds.
func TestDatabaseSessionTimeouts(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(nil))
	if err != nil || cfg.DBStatementTimeout != time.Minute || cfg.DBIdleInTransactionTimeout != 10*time.Second {
		t.Fatalf("defaults: %v %v %v", cfg.DBStatementTimeout, cfg.DBIdleInTransactionTimeout, err)
	}
	cfg, err = config.Load(env(map[string]string{"QUID_DB_STATEMENT_TIMEOUT": "0s", "QUID_DB_IDLE_IN_TRANSACTION_TIMEOUT": "1500ms"}))
	if err != nil || cfg.DBStatementTimeout != 0 || cfg.DBIdleInTransactionTimeout != 1500*time.Millisecond {
		t.Fatalf("0s and 1500ms: %v %v %v", cfg.DBStatementTimeout, cfg.DBIdleInTransactionTimeout, err)
	}
	for _, bad := range []string{"-1s", "1.5ms", "soon", "25h"} {
		for _, name := range []string{"QUID_DB_STATEMENT_TIMEOUT", "QUID_DB_IDLE_IN_TRANSACTION_TIMEOUT"} {
			if _, err := config.Load(env(map[string]string{name: bad})); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%s: %v", name, bad, err)
			}
		}
	}
}

func TestRateLimitsParseQuotasOffAndTrustedProxies(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RateLimitPrincipal.Off() || cfg.RateLimitAddress.Off() || len(cfg.TrustedProxies) != 0 {
		t.Fatalf("defaults: principal %v, address %v, proxies %v", cfg.RateLimitPrincipal, cfg.RateLimitAddress, cfg.TrustedProxies)
	}
	// The address default must leave room for the principal default: one
	// member behind its own address is held by its token's quota first.
	rate := func(q config.Quota) float64 { return float64(q.Requests) / q.Window.Seconds() }
	if p, a := cfg.RateLimitPrincipal, cfg.RateLimitAddress; a.Requests < p.Requests || rate(a) < rate(p) {
		t.Fatalf("address default %v is tighter than the principal default %v", a, p)
	}
	cfg, err = config.Load(env(map[string]string{"QUID_RATE_LIMIT_PRINCIPAL": "5/1m", "QUID_RATE_LIMIT_ADDRESS": "0",
		"QUID_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7,::ffff:198.51.100.1, 2001:db8::/32"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RateLimitPrincipal != (config.Quota{Requests: 5, Window: time.Minute}) || !cfg.RateLimitAddress.Off() {
		t.Fatalf("parsed: principal %v, address %v", cfg.RateLimitPrincipal, cfg.RateLimitAddress)
	}
	if got := fmt.Sprint(cfg.TrustedProxies); got != "[10.0.0.0/8 192.0.2.7/32 198.51.100.1/32 2001:db8::/32]" {
		t.Fatalf("trusted proxies %s", got)
	}
	for _, bad := range []string{"5", "5/0s", "5/1500ms", "-1/1s", "0/1s", "x/1s", "5/48h", "2000000/1s"} {
		if _, err := config.Load(env(map[string]string{"QUID_RATE_LIMIT_ADDRESS": bad})); err == nil || !strings.Contains(err.Error(), "QUID_RATE_LIMIT_ADDRESS") {
			t.Errorf("QUID_RATE_LIMIT_ADDRESS=%q: %v", bad, err)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example", "fe80::1%eth0"} {
		if _, err := config.Load(env(map[string]string{"QUID_TRUSTED_PROXIES": bad})); err == nil || !strings.Contains(err.Error(), "QUID_TRUSTED_PROXIES") {
			t.Errorf("QUID_TRUSTED_PROXIES=%q: %v", bad, err)
		}
	}
}

// The event stream is off unless QUID_NATS_URL is set; its settings are
// checked only then, and an error or a logged configuration never repeats
// the URL's credentials.
func TestNATSSettingsAreCheckedAndItsCredentialsNeverShown(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(map[string]string{"QUID_NATS_STREAM": "not a stream"}))
	if err != nil || cfg.NATS.On() {
		t.Fatalf("without QUID_NATS_URL: on %v, %v", cfg.NATS.On(), err)
	}
	cfg, err = config.Load(env(map[string]string{"QUID_NATS_URL": "nats://quid:s3cret@nats-1.example:4222,tls://tok3n@nats-2.example"}))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.NATS.On() || cfg.NATS.Stream != "QUID_EVENTS" || cfg.NATS.Duplicates != 10*time.Minute || cfg.NATS.MaxAge != 168*time.Hour || cfg.NATS.Replicas != 1 {
		t.Fatalf("defaults: %+v", cfg.NATS)
	}
	logged := fmt.Sprint(cfg.LogValue())
	if strings.Contains(logged, "s3cret") || strings.Contains(logged, "tok3n") || !strings.Contains(logged, "nats-1.example:4222") {
		t.Fatalf("logged configuration: %s", logged)
	}
	bad := map[string]string{
		"QUID_NATS_URL":              "http://quid:s3cret@nats.example",
		"QUID_NATS_STREAM":           "quid.events",
		"QUID_NATS_DUPLICATE_WINDOW": "10s",
		"QUID_NATS_MAX_AGE":          "-1h",
		"QUID_NATS_REPLICAS":         "7",
		"QUID_NATS_CREDS":            "/no/such/file.creds",
	}
	_, err = config.Load(env(bad))
	if err == nil {
		t.Fatal("bad NATS settings accepted")
	}
	for name := range bad {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error repeats the URL's password:\n%v", err)
	}
}

func TestStatsMinCountDefaultsToTenAndRefusesOne(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(nil))
	if err != nil || cfg.StatsMinCount != 10 {
		t.Fatalf("default k %d, %v", cfg.StatsMinCount, err)
	}
	if cfg, err := config.Load(env(map[string]string{"QUID_STATS_MIN_COUNT": "2"})); err != nil || cfg.StatsMinCount != 2 {
		t.Fatalf("k=2: %d, %v", cfg.StatsMinCount, err)
	}
	for _, bad := range []string{"1", "0", "-3", "ten", "2.5"} {
		if _, err := config.Load(env(map[string]string{"QUID_STATS_MIN_COUNT": bad})); err == nil || !strings.Contains(err.Error(), "QUID_STATS_MIN_COUNT") {
			t.Errorf("k=%s accepted (%v)", bad, err)
		}
	}
}
