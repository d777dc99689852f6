// Package webhook delivers outbox events to partners, signed per the
// Standard Webhooks specification, and guards where they may be sent.
package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// Guard refuses URLs whose host resolves to an address of the IANA
// special-purpose registries (loopback, private, link-local, reserved, …, see
// specialPurpose), unless AllowPrivate is set (development and tests).
type Guard struct {
	AllowPrivate bool
	Resolver     *net.Resolver
}

// errSpecialAddress is returned when an address is a special-purpose one.
var errSpecialAddress = errors.New("webhooks go to public endpoints")

// errNotPublic is what a partner is told about a host that does not
// resolve, or resolves to a special-purpose address.
var errNotPublic = errors.New("must name a host that resolves only to public addresses")

// notPublic says errNotPublic to the partner and keeps the cause for errors.Is.
type notPublic struct{ cause error }

func (notPublic) Error() string   { return errNotPublic.Error() }
func (e notPublic) Unwrap() error { return e.cause }

// checkAddr refuses every special-purpose address.
func checkAddr(a netip.Addr) error {
	if reason := forbiddenReason(a); reason != "" {
		return fmt.Errorf("resolves to %s, %s: %w", a, reason, errSpecialAddress)
	}
	return nil
}

// Check validates the URL's form and where its host resolves to.
func (g Guard) Check(ctx context.Context, raw string) error {
	if problem := domain.WebURLProblem(raw); problem != "" {
		return errors.New(problem)
	}
	u, _ := url.Parse(raw)
	if g.AllowPrivate {
		return nil
	}
	resolver := g.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	// One answer whether the host does not resolve or resolves to an
	// internal address, naming neither: the partner must not learn how
	// Quid's own resolver sees internal names. The dialer logs details.
	addrs, err := resolver.LookupNetIP(ctx, "ip", u.Hostname())
	if err != nil || len(addrs) == 0 {
		return errNotPublic
	}
	for _, a := range addrs {
		if err := checkAddr(a); err != nil {
			return notPublic{err}
		}
	}
	return nil
}

// Secrets handles Standard Webhooks secrets ("whsec_" + base64 of 24–64 bytes).
type Secrets struct{}

func (Secrets) Validate(secret string) error {
	if len(secret) < 6 || secret[:6] != "whsec_" {
		return errors.New(`must have the form "whsec_" followed by base64`)
	}
	// Canonical base64 only (what encoding the bytes gives back): the
	// decoder would skip line breaks and ignore stray trailing bits, and
	// the stored secret must be the one openapi.yaml's pattern describes.
	raw, err := base64.StdEncoding.Strict().DecodeString(secret[6:])
	if err != nil || base64.StdEncoding.EncodeToString(raw) != secret[6:] || len(raw) < 24 || len(raw) > 64 {
		return errors.New("must hold 24 to 64 bytes of base64 after whsec_")
	}
	_, err = standardwebhooks.NewWebhook(secret)
	return err
}

func (Secrets) Generate() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b), nil
}

// Sender posts events with the webhook-id, webhook-timestamp and
// webhook-signature headers. Its dialer re-checks every address it connects
// to, so DNS that changes after registration cannot reach internal hosts.
type Sender struct {
	client *http.Client
	clock  app.Clock
}

// NewSender builds a sender with timeouts on every stage of a delivery.
func NewSender(allowPrivate bool, timeout time.Duration, clock app.Clock) *Sender {
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: dialControl(allowPrivate)}
	transport := &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: 5 * time.Second,
		ResponseHeaderTimeout: timeout, MaxIdleConnsPerHost: 4, Proxy: nil}
	return &Sender{clock: clock, client: &http.Client{Timeout: timeout, Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// dialControl checks the address a connection is about to be made to,
// after DNS resolution, so a name that resolves differently at delivery
// than at registration (DNS rebinding) still cannot reach a special-purpose
// address.
func dialControl(allowPrivate bool) func(network, address string, _ syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("dial %q: %w", address, errSpecialAddress)
		}
		return checkAddr(ap.Addr())
	}
}

// Send signs and posts one event.
func (s *Sender) Send(ctx context.Context, m app.OutboxMessage) (int, error) {
	wh, err := standardwebhooks.NewWebhook(m.Secret)
	if err != nil {
		return 0, fmt.Errorf("secret: %w", err)
	}
	now := s.clock.Now()
	sig, err := wh.Sign(m.ID, now, m.Payload)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.URL, bytes.NewReader(m.Payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Quid-Webhooks/1")
	req.Header.Set(standardwebhooks.HeaderWebhookID, m.ID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	res, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	return res.StatusCode, nil
}
