package webhook

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// specialBlock is one entry of an IANA Special-Purpose Address Registry.
type specialBlock struct {
	Prefix netip.Prefix
	Name   string
	RFC    string
	// Embeds marks a translation prefix whose addresses carry an IPv4
	// address (decoded and checked by embeddedIPv4) rather than a
	// destination of their own.
	Embeds bool
}

func block(prefix, name, rfc string) specialBlock {
	return specialBlock{Prefix: netip.MustParsePrefix(prefix), Name: name, RFC: rfc}
}

// specialPurpose is every entry of the IANA IPv4 Special-Purpose Address
// Registry and the IANA IPv6 Special-Purpose Address Registry
// (iana-ipv4-special-registry, iana-ipv6-special-registry, as of 2025),
// plus the multicast and deprecated site-local blocks from the address
// space registries. A webhook may go to none of them, including the
// entries the registry marks globally reachable (anycast service addresses
// such as AS112 or TURN are never a partner's endpoint). The exceptions are
// the two pure translation prefixes ::ffff:0:0/96 and 64:ff9b::/96: their
// addresses are the IPv4 address they embed, which is checked instead.
var specialPurpose = []specialBlock{
	// IPv4 Special-Purpose Address Registry.
	block("0.0.0.0/8", `"This network"`, "RFC 791 §3.2"),
	block("0.0.0.0/32", `"This host on this network"`, "RFC 1122 §3.2.1.3"),
	block("10.0.0.0/8", "Private-Use", "RFC 1918"),
	block("100.64.0.0/10", "Shared Address Space", "RFC 6598"),
	block("127.0.0.0/8", "Loopback", "RFC 1122 §3.2.1.3"),
	block("169.254.0.0/16", "Link Local", "RFC 3927"),
	block("172.16.0.0/12", "Private-Use", "RFC 1918"),
	block("192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890 §2.1"),
	block("192.0.0.0/29", "IPv4 Service Continuity Prefix", "RFC 7335"),
	block("192.0.0.8/32", "IPv4 dummy address", "RFC 7600"),
	block("192.0.0.9/32", "Port Control Protocol Anycast", "RFC 7723"),
	block("192.0.0.10/32", "Traversal Using Relays around NAT Anycast", "RFC 8155"),
	block("192.0.0.170/32", "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050 §2.2"),
	block("192.0.0.171/32", "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050 §2.2"),
	block("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737"),
	block("192.31.196.0/24", "AS112-v4", "RFC 7535"),
	block("192.52.193.0/24", "AMT", "RFC 7450"),
	block("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC 7526"),
	block("192.88.99.2/32", "6a44-relay anycast address", "RFC 6751"),
	block("192.168.0.0/16", "Private-Use", "RFC 1918"),
	block("192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534"),
	block("198.18.0.0/15", "Benchmarking", "RFC 2544"),
	block("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737"),
	block("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737"),
	block("240.0.0.0/4", "Reserved", "RFC 1112 §4"),
	block("255.255.255.255/32", "Limited Broadcast", "RFC 8190, RFC 919 §7"),
	// IPv4 Multicast Address Space Registry.
	block("224.0.0.0/4", "Multicast", "RFC 5771"),

	// IPv6 Special-Purpose Address Registry.
	block("::1/128", "Loopback Address", "RFC 4291"),
	block("::/128", "Unspecified Address", "RFC 4291"),
	{Prefix: netip.MustParsePrefix("::ffff:0:0/96"), Name: "IPv4-mapped Address", RFC: "RFC 4291", Embeds: true},
	{Prefix: netip.MustParsePrefix("64:ff9b::/96"), Name: "IPv4-IPv6 Translat.", RFC: "RFC 6052", Embeds: true},
	block("64:ff9b:1::/48", "IPv4-IPv6 Translat. (local use)", "RFC 8215"),
	block("100::/64", "Discard-Only Address Block", "RFC 6666"),
	block("100:0:0:1::/64", "Dummy IPv6 Prefix", "RFC 9780"),
	block("2001::/23", "IETF Protocol Assignments", "RFC 2928"),
	block("2001::/32", "TEREDO", "RFC 4380, RFC 8190"),
	block("2001:1::1/128", "Port Control Protocol Anycast", "RFC 7723"),
	block("2001:1::2/128", "Traversal Using Relays around NAT Anycast", "RFC 8155"),
	block("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", "RFC 9665"),
	block("2001:2::/48", "Benchmarking", "RFC 5180, RFC Errata 1752"),
	block("2001:3::/32", "AMT", "RFC 7450"),
	block("2001:4:112::/48", "AS112-v6", "RFC 7535"),
	block("2001:10::/28", "Deprecated (previously ORCHID)", "RFC 4843"),
	block("2001:20::/28", "ORCHIDv2", "RFC 7343"),
	block("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374"),
	block("2001:db8::/32", "Documentation", "RFC 3849"),
	block("2002::/16", "6to4", "RFC 3056"),
	block("2620:4f:8000::/48", "Direct Delegation AS112 Service", "RFC 7534"),
	block("3fff::/20", "Documentation", "RFC 9637"),
	block("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602"),
	block("fc00::/7", "Unique-Local", "RFC 4193, RFC 8190"),
	block("fe80::/10", "Link-Local Unicast", "RFC 4291"),
	// IPv6 Address Space Registry: deprecated site-local and multicast.
	block("fec0::/10", "Site-Local (deprecated)", "RFC 3879"),
	block("ff00::/8", "Multicast", "RFC 4291"),
}

// globalUnicast is the only IPv6 space IANA allocates for global unicast
// (IPv6 Address Space Registry); everything outside it, such as the
// deprecated IPv4-compatible ::/96, is unassigned or reserved.
var globalUnicast = netip.MustParsePrefix("2000::/3")

// forbiddenReason says why a webhook may not connect to a, or "" when it may.
// IPv6 forms that carry an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo)
// are refused when the IPv4 address they carry is.
func forbiddenReason(a netip.Addr) string {
	if !a.IsValid() {
		return "not an IP address"
	}
	a = a.WithZone("")
	for _, v4 := range embeddedIPv4(a) {
		if r := forbiddenReason(v4); r != "" {
			return fmt.Sprintf("%s embeds %s, which is %s", a, v4, r)
		}
	}
	for _, b := range specialPurpose {
		if b.Prefix.Contains(a) {
			if b.Embeds {
				return "" // its IPv4 address passed above
			}
			return fmt.Sprintf("in %s (%s, %s)", b.Prefix, b.Name, b.RFC)
		}
	}
	if a.Is6() && !globalUnicast.Contains(a) {
		return "outside the IPv6 global unicast space 2000::/3"
	}
	return ""
}

var (
	nat64WellKnown = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local     = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour      = netip.MustParsePrefix("2002::/16")
	teredo         = netip.MustParsePrefix("2001::/32")
)

// embeddedIPv4 decodes the IPv4 addresses an IPv6 address carries:
// IPv4-mapped (RFC 4291 §2.5.5.2), NAT64 with the well-known /96 and the
// local-use /48 prefix (RFC 6052 §2.2), 6to4 (RFC 3056 §2) and Teredo's
// server and obfuscated client (RFC 4380 §4).
func embeddedIPv4(a netip.Addr) []netip.Addr {
	if !a.Is6() {
		return nil
	}
	b := a.As16()
	v4 := func(x []byte) netip.Addr { return netip.AddrFrom4([4]byte(x)) }
	switch {
	case a.Is4In6():
		return []netip.Addr{a.Unmap()}
	case nat64WellKnown.Contains(a):
		return []netip.Addr{v4(b[12:16])}
	case nat64Local.Contains(a):
		// /48: bits 48–63 and, after the zero u octet (bits 64–71), 72–87.
		return []netip.Addr{v4([]byte{b[6], b[7], b[9], b[10]})}
	case sixToFour.Contains(a):
		return []netip.Addr{v4(b[2:6])}
	case teredo.Contains(a):
		client := binary.BigEndian.Uint32(b[12:16]) ^ 0xffffffff
		var c [4]byte
		binary.BigEndian.PutUint32(c[:], client)
		return []netip.Addr{v4(b[4:8]), netip.AddrFrom4(c)}
	}
	return nil
}

// SpecialPurposePrefixes lists the blocks of specialPurpose, for tests that
// walk every entry through the API.
func SpecialPurposePrefixes() []netip.Prefix {
	out := make([]netip.Prefix, len(specialPurpose))
	for i, b := range specialPurpose {
		out[i] = b.Prefix
	}
	return out
}
