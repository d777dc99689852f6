package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// A token's header and payload are checked once, strictly, before
// golang-jwt reads them: golang-jwt (through encoding/json) is lenient in
// ways another parser would read differently — a duplicate key takes the
// last value, a key matches a claim whatever its case ("ROLE"), a numeric
// date may be a JSON string ("exp": "1700000000"), invalid UTF-8 is
// replaced. A token any of these apply to is refused, so every parser that
// sees the same token reads the same claims.

// jsonKind is the JSON type a registered claim must have.
type jsonKind int

const (
	kindNumber jsonKind = iota
	kindString
	kindStringOrStrings // aud: one string or an array of strings (RFC 7519 §4.1.3)
)

// strictClaims are the claims Quid reads, with the only type each may have.
var strictClaims = map[string]jsonKind{
	"exp": kindNumber, "nbf": kindNumber, "iat": kindNumber,
	"iss": kindString, "sub": kindString, "jti": kindString,
	"aud": kindStringOrStrings, "role": kindString,
}

// strictHeader are the header parameters golang-jwt reads.
var strictHeader = map[string]jsonKind{"alg": kindString, "kid": kindString, "typ": kindString}

// maxJSONDepth bounds nesting inside a token (claims are flat in practice).
const maxJSONDepth = 32

// checkRawToken validates the compact serialization: only base64url
// characters and dots; in the header and payload, canonical base64url,
// valid UTF-8, one JSON object each, no duplicate keys at any depth, no key
// that differs only in case from a claim Quid reads, and the JSON type
// RFC 7519 gives each registered claim.
func checkRawToken(token string) error {
	// Go's base64 decoders skip CR and LF even in strict mode, so without
	// this a token would verify with line breaks inside its signature.
	if i := strings.IndexFunc(token, func(r rune) bool { return !isBase64URL(r) && r != '.' }); i >= 0 {
		return fmt.Errorf("token has a character outside base64url at byte %d", i)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("token is not three dot-separated parts")
	}
	for i, spec := range []map[string]jsonKind{strictHeader, strictClaims} {
		raw, err := base64.RawURLEncoding.Strict().DecodeString(parts[i])
		if err != nil {
			return fmt.Errorf("token part %d is not canonical base64url: %w", i, err)
		}
		if err := checkObject(raw, spec); err != nil {
			return err
		}
		// RFC 7515 §4.1.11: a "crit" header names extensions (such as
		// RFC 7797's unencoded payload) that must be understood; golang-jwt
		// understands none and would ignore them, so such a token is refused.
		if i == 0 {
			var h map[string]json.RawMessage
			if err := json.Unmarshal(raw, &h); err != nil || h["crit"] != nil {
				return errors.New("token header has crit extensions Quid does not understand")
			}
		}
	}
	return nil
}

func isBase64URL(r rune) bool {
	return 'A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '_'
}

// checkObject checks one JSON object against spec.
func checkObject(raw []byte, spec map[string]jsonKind) error {
	if !utf8.Valid(raw) {
		return errors.New("token JSON is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("token JSON is not an object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if seen[key] {
			return fmt.Errorf("token JSON has the key %q twice", key)
		}
		seen[key] = true
		for name := range spec {
			if key != name && strings.EqualFold(key, name) {
				return fmt.Errorf("token JSON has %q, which a case-insensitive parser reads as %q", key, name)
			}
		}
		first, strs, err := scanValue(dec, 1)
		if err != nil {
			return err
		}
		want, registered := spec[key]
		if !registered {
			continue
		}
		_, isNumber := first.(json.Number)
		_, isString := first.(string)
		ok := false
		switch want {
		case kindNumber:
			ok = isNumber
		case kindString:
			ok = isString
		case kindStringOrStrings:
			ok = isString || (first == json.Delim('[') && strs)
		}
		if !ok {
			return fmt.Errorf("token claim %q has the wrong JSON type", key)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("token JSON has data after the object")
	}
	return nil
}

// scanValue consumes one JSON value, checking nested objects for duplicate
// keys. It returns the value's first token and, for an array, whether every
// element is a string.
func scanValue(dec *json.Decoder, depth int) (first json.Token, allStrings bool, err error) {
	if depth > maxJSONDepth {
		return nil, false, errors.New("token JSON is nested too deeply")
	}
	first, err = dec.Token()
	if err != nil {
		return nil, false, err
	}
	switch first {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, false, err
			}
			key, _ := tok.(string)
			if seen[key] {
				return nil, false, fmt.Errorf("token JSON has the key %q twice", key)
			}
			seen[key] = true
			if _, _, err := scanValue(dec, depth+1); err != nil {
				return nil, false, err
			}
		}
		_, err = dec.Token()
		return first, false, err
	case json.Delim('['):
		allStrings = true
		for dec.More() {
			elem, _, err := scanValue(dec, depth+1)
			if err != nil {
				return nil, false, err
			}
			if _, ok := elem.(string); !ok {
				allStrings = false
			}
		}
		_, err = dec.Token()
		return first, allStrings, err
	}
	return first, false, nil
}
