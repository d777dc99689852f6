package domain

import (
	"net/url"
	"strconv"
	"strings"
)

// WebURLProblem says what is wrong with an address a recipient gives for
// people or for Quid to follow (a privacy policy, a webhook endpoint), or ""
// when it is an absolute http(s) URI (RFC 3986) of at most 2,000
// characters: a host, no user information, a port from 1 to 65535 when one
// is given, no fragment (it is never sent to a server), and only the
// characters a URI may hold — no white space, controls, quotes, angle
// brackets or other characters RFC 3986 §2 leaves out, and no non-ASCII
// (percent-encode an IRI first, RFC 3987 §3.1). Go's url.Parse takes all of
// these; a URI shown on a statement or dialled by a worker must not.
func WebURLProblem(raw string) string {
	const problem = "must be an absolute http(s) URL (RFC 3986) without credentials or fragment, at most 2000 characters"
	if len(raw) > 2000 {
		return problem
	}
	for i := 0; i < len(raw); i++ {
		if !uriByte(raw[i]) {
			return problem
		}
	}
	u, err := url.Parse(raw)
	// A zone identifier (RFC 6874) names an interface of the host that
	// reads the URL, meaningless to anyone else; RFC 3986 has none.
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Hostname() == "" ||
		u.User != nil || u.Opaque != "" || strings.Contains(raw, "#") || strings.Contains(u.Host, "%") {
		return problem
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return problem
		}
	}
	return ""
}

// uriByte is true for the unreserved, reserved and percent characters of
// RFC 3986 §2.
func uriByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("-._~:/?#[]@!$&'()*+,;=%", b) >= 0
}
