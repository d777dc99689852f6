package webhook

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quidpro/quid/app"
)

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func urlOf(a netip.Addr) string {
	if a.Is6() {
		return "http://[" + a.String() + "]:8080/hook"
	}
	return "http://" + a.String() + ":8080/hook"
}

// checkBoth asks the registration guard and the dial-time control about a.
func checkBoth(t *testing.T, a netip.Addr) (registration, dial error) {
	t.Helper()
	registration = Guard{}.Check(context.Background(), urlOf(a))
	dial = dialControl(false)("tcp", netip.AddrPortFrom(a, 443).String(), nil)
	return registration, dial
}

// TestEverySpecialPurposeAddressIsRefused walks every entry of the IANA
// IPv4 and IPv6 Special-Purpose Address Registries (first and last address
// of each block) and the IPv6 forms that embed an IPv4 address, at
// registration and at dial time (issue 8 item 16).
func TestEverySpecialPurposeAddressIsRefused(t *testing.T) {
	t.Parallel()
	var refused []netip.Addr
	for _, b := range specialPurpose {
		first, last := b.Prefix.Masked().Addr(), lastAddr(b.Prefix)
		refused = append(refused, first, last)
		if b.Embeds {
			continue // first and last embed 0.0.0.0 and 255.255.255.255: refused above
		}
		// A block refused as a whole: also its middle.
		if mid := first.Next(); b.Prefix.Contains(mid) {
			refused = append(refused, mid)
		}
	}
	for _, s := range []string{
		// The examples and their kin.
		"64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b::c612:1", "64:ff9b::a9fe:a9fe", "64:ff9b::ffff:ffff",
		"2002:7f00:1::", "2002:c0a8:101::1", "2002:808:808::1",
		"0.0.0.0", "0.1.2.3", "198.18.0.1", "198.19.255.255", "240.0.0.1", "255.255.255.254", "192.0.0.1", "255.255.255.255",
		// IPv4-mapped and IPv4-compatible forms.
		"::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:169.254.169.254", "::ffff:198.18.0.1", "::127.0.0.1", "::8.8.8.8",
		// NAT64 local-use prefix, 6to4 and Teredo of loopback.
		"64:ff9b:1:7f00:0:100::", "64:ff9b:1:808:8:800::", "2001:0:7f00:1::ffff:fffe", "2001:0:808:808:8000:63bf:80ff:fffe",
		// Multicast, site-local, unassigned IPv6 space.
		"224.0.0.1", "239.255.255.255", "ff02::1", "fec0::1", "4000::1", "::2",
	} {
		refused = append(refused, netip.MustParseAddr(s))
	}
	for _, a := range refused {
		reg, dial := checkBoth(t, a)
		if reg == nil || !errors.Is(reg, errSpecialAddress) {
			t.Errorf("registration of %s: %v, want refused", a, reg)
		}
		if dial == nil || !errors.Is(dial, errSpecialAddress) {
			t.Errorf("dial to %s: %v, want refused", a, dial)
		}
	}

	for _, s := range []string{
		"8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.0", "198.17.255.255", "198.20.0.0", "192.0.1.1",
		"223.255.255.255", "11.0.0.1", "172.32.0.1", "2606:4700:4700::1111", "2001:4860:4860::8888",
		"2001:200::1", "::ffff:8.8.8.8", "64:ff9b::808:808", "64:ff9b::1.1.1.1",
	} {
		a := netip.MustParseAddr(s)
		if reg, dial := checkBoth(t, a); reg != nil || dial != nil {
			t.Errorf("public %s refused: registration %v, dial %v", a, reg, dial)
		}
	}
}

func TestEmbeddedIPv4IsDecoded(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][]string{
		"::ffff:192.0.2.1":                     {"192.0.2.1"},
		"64:ff9b::7f00:1":                      {"127.0.0.1"},
		"64:ff9b:1:7f00:0:100::":               {"127.0.0.1"}, // RFC 6052 /48 layout skips the u octet
		"2002:7f00:1::":                        {"127.0.0.1"},
		"2001:0:4136:e378:8000:63bf:3fff:fdd2": {"65.54.227.120", "192.0.2.45"}, // RFC 4380 §4 example
		"2001:db8::1":                          nil,
	} {
		got := embeddedIPv4(netip.MustParseAddr(in))
		var gs []string
		for _, g := range got {
			gs = append(gs, g.String())
		}
		if strings.Join(gs, ",") != strings.Join(want, ",") {
			t.Errorf("%s embeds %v, want %v", in, gs, want)
		}
	}
}

type clock struct{}

func (clock) Now() time.Time { return time.Now() }

// TestSenderChecksTheAddressItDials delivers over a real listener on
// loopback: refused by the strict sender through its dialer (a hostname
// that resolves to loopback is what DNS rebinding gives), delivered when
// private addresses are allowed (QUID_WEBHOOK_ALLOW_PRIVATE=true).
func TestSenderChecksTheAddressItDials(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	secret, _ := Secrets{}.Generate()
	for _, target := range []string{srv.URL, "http://localhost:" + port} {
		msg := app.OutboxMessage{ID: "msg_1", URL: target + "/hook", Secret: secret, Payload: []byte(`{}`)}
		if _, err := NewSender(false, 2*time.Second, clock{}).Send(context.Background(), msg); !errors.Is(err, errSpecialAddress) {
			t.Errorf("strict sender to %s: %v, want refused at dial", target, err)
		}
		if status, err := NewSender(true, 2*time.Second, clock{}).Send(context.Background(), msg); err != nil || status != http.StatusOK {
			t.Errorf("sender allowing private addresses to %s: %d %v", target, status, err)
		}
		if err := (Guard{AllowPrivate: true}).Check(context.Background(), target); err != nil {
			t.Errorf("guard allowing private addresses refused %s: %v", target, err)
		}
	}
	if hits.Load() != 2 {
		t.Errorf("%d deliveries, want 2", hits.Load())
	}
}
