package main

import (
	"net/netip"
	"testing"

	"github.com/quidpro/quid/infra/config"
	"github.com/quidpro/quid/infra/webhook"
)

// TestWebhookRegistrationRefusesEverySpecialPurposeBlock registers, through
// PUT /v1/partner/webhook, the first address of every IANA special-purpose
// block and the IPv6 forms embedding an internal IPv4 address (issue 8 item
// 16); each is a 422 naming /url.
func TestWebhookRegistrationRefusesEverySpecialPurposeBlock(t *testing.T) {
	t.Parallel()
	a := newAPI(t, func(c *config.Config) { c.WebhookAllowPrivate = false })
	f := a.fixtures()
	var addrs []netip.Addr
	for _, p := range webhook.SpecialPurposePrefixes() {
		addrs = append(addrs, p.Masked().Addr())
	}
	for _, s := range []string{"64:ff9b::7f00:1", "2002:7f00:1::", "::ffff:127.0.0.1", "198.18.0.1", "240.0.0.1", "192.0.0.1", "255.255.255.255", "0.0.0.1"} {
		addrs = append(addrs, netip.MustParseAddr(s))
	}
	for _, ad := range addrs {
		host := ad.String()
		if ad.Is6() {
			host = "[" + host + "]"
		}
		problemAt(t, a.do(req{Method: "PUT", Path: "/v1/partner/webhook", Token: f.partner, Body: map[string]any{"url": "http://" + host + "/hook"}}), 422, "/url")
	}
	expect(t, a.do(req{Method: "PUT", Path: "/v1/partner/webhook", Token: f.partner, Body: map[string]any{"url": "http://[64:ff9b::808:808]/hook"}}), 200)
}
