package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestLenientTokensAre401Problems sends tokens that golang-jwt alone would
// accept with a reading another parser may not share (issue 8 item 15) to
// routes of every role, and wants a 401 problem for each.
func TestLenientTokensAre401Problems(t *testing.T) {
	a := newAPI(t)
	now := time.Now().Unix()
	sign := func(payload string) string {
		enc := base64.RawURLEncoding
		s := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(payload))
		mac := hmac.New(sha256.New, []byte(testSecret))
		mac.Write([]byte(s))
		return s + "." + enc.EncodeToString(mac.Sum(nil))
	}
	tokens := map[string]string{
		"role twice":        fmt.Sprintf(`{"sub":"m1","role":"member","exp":%d,"role":"admin"}`, now+600),
		"ROLE beside role":  fmt.Sprintf(`{"sub":"m1","role":"member","exp":%d,"ROLE":"admin"}`, now+600),
		"exp as a string":   fmt.Sprintf(`{"sub":"m1","role":"admin","exp":"%d"}`, now+600),
		"nbf as a string":   fmt.Sprintf(`{"sub":"m1","role":"admin","exp":%d,"nbf":"%d"}`, now+600, now-5),
		"iat as a string":   fmt.Sprintf(`{"sub":"m1","role":"admin","exp":%d,"iat":"%d"}`, now+600, now-5),
		"role as an array":  fmt.Sprintf(`{"sub":"m1","role":["admin"],"exp":%d}`, now+600),
		"sub twice":         fmt.Sprintf(`{"sub":"m1","role":"admin","exp":%d,"sub":"m2"}`, now+600),
		"expired by 1 min":  fmt.Sprintf(`{"sub":"m1","role":"admin","exp":%d}`, now-60),
		"issued in 1 min":   fmt.Sprintf(`{"sub":"m1","role":"admin","exp":%d,"iat":%d}`, now+600, now+60),
		"duplicate nested":  fmt.Sprintf(`{"sub":"m1","role":"admin","exp":%d,"x":{"a":1,"a":2}}`, now+600),
		"no exp":            `{"sub":"m1","role":"admin"}`,
		"unknown role root": fmt.Sprintf(`{"sub":"m1","role":"root","exp":%d}`, now+600),
	}
	for _, path := range []string{"/v1/me", "/v1/contracts", "/v1/audit", "/v1/partner/deletions"} {
		method, body := http.MethodGet, any(nil)
		if path == "/v1/partner/deletions" {
			method, body = http.MethodPost, map[string]any{}
		}
		for name, payload := range tokens {
			r := a.do(req{Method: method, Path: path, Token: sign(payload), Body: body})
			if r.Status != http.StatusUnauthorized {
				t.Errorf("%s %s with %s: %d %s", method, path, name, r.Status, r.Body)
			}
		}
	}
	// The same signing accepted with a well-formed payload, so the 401s
	// above come from the payload and not from the test's signing.
	r := a.do(req{Method: http.MethodGet, Path: "/v1/contracts", Token: sign(fmt.Sprintf(`{"sub":"m1","role":"marketer","exp":%d}`, now+600))})
	expect(t, r, http.StatusOK)
}
