package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/piprate/json-gold/ld"

	"github.com/quidpro/quid/app"
)

// Issue 12, standard formats: each exchange as an ISO/IEC TS 27560 consent
// record (W3C DPV-27560 profile), the statement as JSON-LD with DPV terms.

type refuseNetwork struct{}

func (refuseNetwork) LoadDocument(u string) (*ld.RemoteDocument, error) {
	return nil, errors.New("network refused: " + u)
}

// expandOffline expands a JSON-LD document with json-gold and a loader that
// refuses the network, and returns the one top node.
func expandOffline(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	opts := ld.NewJsonLdOptions("")
	opts.DocumentLoader = refuseNetwork{}
	out, err := ld.NewJsonLdProcessor().Expand(doc, opts)
	if err != nil || len(out) != 1 {
		t.Fatalf("expand: %v (%d nodes)\n%s", err, len(out), body)
	}
	return out[0].(map[string]any)
}

// typesOf are the @type IRIs of every node object under p.
func typesOf(n map[string]any, p string) []string {
	var out []string
	l, _ := n[p].([]any)
	for _, v := range l {
		if m, ok := v.(map[string]any); ok {
			ts, _ := m["@type"].([]any)
			for _, x := range ts {
				out = append(out, x.(string))
			}
		}
	}
	return out
}

const dpvNS = "https://w3id.org/dpv#"

// lastState is the DPV consent state of a record's last event.
func lastState(t *testing.T, rec map[string]any) []string {
	t.Helper()
	l, _ := rec[dpvNS+"hasConsentStatus"].([]any)
	if len(l) == 0 {
		t.Fatalf("no consent event: %v", rec)
	}
	last := map[string]any{dpvNS + "x": []any{l[len(l)-1]}}
	return typesOf(last, dpvNS+"x")
}

func hasIRI(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// A member reads each of their exchanges as a consent record (JSON or
// JSON-LD, the same document) whose last event follows the exchange's
// status exactly; another member's record is not found, and every record is
// in the export.
func TestConsentRecordFollowsTheExchangeAndIsInTheExport(t *testing.T) {
	t.Parallel()
	a, f, contract, ex := withJoinedMember(t)
	active := ex["id"].(string)
	path := "/v1/me/exchanges/" + active + "/record"

	r := expect(t, a.do(req{Method: "GET", Path: path, Token: f.member, Headers: map[string]string{"Accept": "application/ld+json"}}), 200)
	if ct := r.Header.Get("Content-Type"); ct != "application/ld+json" || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("content type %q, cache %q", ct, r.Header.Get("Cache-Control"))
	}
	rec := expandOffline(t, r.Body)
	if got := lastState(t, rec); !hasIRI(got, dpvNS+"ConsentGiven") {
		t.Fatalf("active exchange: state %v", got)
	}
	plain := expect(t, a.do(req{Method: "GET", Path: path, Token: f.member}), 200)
	if !strings.HasPrefix(plain.Header.Get("Content-Type"), "application/json") || string(plain.Body) != string(r.Body) {
		t.Fatalf("JSON and JSON-LD differ: %s\n%s", plain.Header.Get("Content-Type"), plain.Body)
	}

	// Cross-member: bob (enrolled) sees no record of alice's exchange.
	bob := token(t, app.RoleMember, "bob")
	a.enrol(bob)
	expect(t, a.do(req{Method: "GET", Path: path, Token: bob}), 404)
	expect(t, a.do(req{Method: "GET", Path: "/v1/me/exchanges/00000000-0000-0000-0000-000000000000/record", Token: f.member}), 404)

	// Cancelled: withdrawn by the data subject.
	expect(t, a.do(req{Method: "DELETE", Path: "/v1/me/exchanges/" + active, Token: f.member}), 200)
	rec = expandOffline(t, expect(t, a.do(req{Method: "GET", Path: path, Token: f.member}), 200).Body)
	if got := lastState(t, rec); !hasIRI(got, dpvNS+"ConsentWithdrawn") {
		t.Fatalf("cancelled exchange: state %v", got)
	}

	// Terminated: the brand retired the version and ended its exchanges.
	second := a.joinContract(f.member, contract)["id"].(string)
	expect(t, a.do(req{Method: "POST", Path: "/v1/contracts/" + contract + "/retire", Token: f.marketer,
		Body: map[string]any{"terminate_active": true}}), 200)
	rec = expandOffline(t, expect(t, a.do(req{Method: "GET", Path: "/v1/me/exchanges/" + second + "/record", Token: f.member}), 200).Body)
	if got := lastState(t, rec); !hasIRI(got, dpvNS+"ConsentRevoked") {
		t.Fatalf("terminated exchange: state %v", got)
	}

	// The export holds every record, the same as the route serves.
	var export struct {
		ConsentRecords []json.RawMessage `json:"consent_records"`
	}
	expect(t, a.do(req{Method: "GET", Path: "/v1/me/export", Token: f.member}), 200).decode(t, &export)
	if len(export.ConsentRecords) != 2 {
		t.Fatalf("export has %d consent records, want 2", len(export.ConsentRecords))
	}
	ids := map[string]bool{}
	for _, raw := range export.ConsentRecords {
		n := expandOffline(t, raw)
		l, _ := n["http://purl.org/dc/terms/identifier"].([]any)
		if len(l) == 1 {
			ids[l[0].(map[string]any)["@value"].(string)] = true
		}
	}
	if !ids[active] || !ids[second] {
		t.Fatalf("export records %v, want %s and %s", ids, active, second)
	}
}

// The statement served with Accept: application/ld+json is JSON-LD that
// expands, with the network refused, to DPV IRIs for the purposes, the
// personal data, the legal basis and the controller; JSON and HTML are
// served as before.
func TestStatementIsServedAsJSONLDWithDPVTerms(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	id := a.publishContract(f, contractBody(f))
	path := "/v1/contracts/" + id + "/transparency"
	r := expect(t, a.do(req{Method: "GET", Path: path, Headers: map[string]string{"Accept": "application/ld+json"}}), 200)
	if ct := r.Header.Get("Content-Type"); ct != "application/ld+json" {
		t.Fatalf("content type %q", ct)
	}
	n := expandOffline(t, r.Body)
	var purposes, data []string
	procs, _ := n[dpvNS+"hasProcess"].([]any)
	for _, p := range procs {
		pm := p.(map[string]any)
		purposes = append(purposes, typesOf(pm, dpvNS+"hasPurpose")...)
		data = append(data, typesOf(pm, dpvNS+"hasPersonalData")...)
	}
	for _, w := range []string{dpvNS + "PersonalisedAdvertising", dpvNS + "ServiceProvision"} {
		if !hasIRI(purposes, w) {
			t.Errorf("purposes %v lack %s", purposes, w)
		}
	}
	for _, w := range []string{"https://w3id.org/dpv/pd#City", "https://w3id.org/dpv/pd#Purchase", "https://w3id.org/dpv/pd#AgeRange"} {
		if !hasIRI(data, w) {
			t.Errorf("personal data %v lack %s", data, w)
		}
	}
	basis, _ := n[dpvNS+"hasLegalBasis"].([]any)
	if len(basis) == 0 || !strings.Contains(string(mustJSON(t, basis)), "https://w3id.org/dpv/legal/eu/gdpr#A6-1-a") {
		t.Errorf("legal basis %v", basis)
	}
	if c, _ := n[dpvNS+"hasDataController"].([]any); len(c) == 0 {
		t.Errorf("no controller")
	}
	if ct := expect(t, a.do(req{Method: "GET", Path: path}), 200).Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("default is %q, want JSON", ct)
	}
	if ct := expect(t, a.do(req{Method: "GET", Path: path, Headers: map[string]string{"Accept": "text/html"}}), 200).Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("HTML is %q", ct)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
