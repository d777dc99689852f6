package http

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/piprate/json-gold/ld"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
	"github.com/quidpro/quid/infra/catalog"
)

const (
	nsDPV    = "https://w3id.org/dpv#"
	nsPD     = "https://w3id.org/dpv/pd#"
	nsGDPR   = "https://w3id.org/dpv/legal/eu/gdpr#"
	nsDCT    = "http://purl.org/dc/terms/"
	nsSchema = "https://schema.org/"
)

// offlineLoader refuses every remote document: the inline @context must be
// enough, and a test must never reach the network.
type offlineLoader struct{}

func (offlineLoader) LoadDocument(u string) (*ld.RemoteDocument, error) {
	return nil, errors.New("network refused: " + u)
}

// expandLD expands a JSON-LD document with json-gold, offline, and returns
// its expanded form (an array of node objects keyed by full IRIs).
func expandLD(t testing.TB, doc []byte) []any {
	t.Helper()
	var in any
	if err := json.Unmarshal(doc, &in); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	opts := ld.NewJsonLdOptions("")
	opts.DocumentLoader = offlineLoader{}
	out, err := ld.NewJsonLdProcessor().Expand(in, opts)
	if err != nil {
		t.Fatalf("JSON-LD expansion failed: %v\n%s", err, doc)
	}
	if len(out) != 1 {
		t.Fatalf("expanded to %d top nodes, want 1", len(out))
	}
	return out
}

// node is one expanded node object.
type node map[string]any

func top(t testing.TB, expanded []any) node { return node(expanded[0].(map[string]any)) }

// objects are the node objects under property p.
func (n node) objects(p string) []node {
	var out []node
	for _, v := range asList(n[p]) {
		if m, ok := v.(map[string]any); ok {
			out = append(out, node(m))
		}
	}
	return out
}

// iris are the @id or @type IRIs under p ("@type" for the node's types).
func (n node) iris(p string) []string {
	var out []string
	for _, v := range asList(n[p]) {
		switch x := v.(type) {
		case string:
			out = append(out, x)
		case map[string]any:
			if id, ok := x["@id"].(string); ok {
				out = append(out, id)
			}
		}
	}
	return out
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// dpv27560Mandatory are the fields the DPV-27560 profile marks MUST for a
// consent record (https://w3id.org/dpv/guides/consent-27560, section
// "DPV-27560 Consent Record"), as the expanded property IRIs that carry
// them, by where they sit: the record, each notice, each process, each
// entity other than the data subject, and each consent event.
var dpv27560Mandatory = map[string][]string{
	"record": {
		nsDCT + "conformsTo",        // Schema Version
		nsDCT + "identifier",        // Record Identifier
		nsDPV + "hasDataSubject",    // Data Subject
		nsDPV + "hasNotice",         // Notice
		nsDPV + "hasProcess",        // Process
		nsDPV + "hasDataController", // Data Controller
		nsDPV + "hasConsentControl", // Consent Change & Withdrawal
		nsDPV + "hasJurisdiction",   // Jurisdiction
		nsDPV + "hasRight",          // Rights
		nsDPV + "hasEntity",         // Entity fields
		nsDPV + "hasConsentStatus",  // Consent Event fields
	},
	"notice": {nsDCT + "language"}, // Notice Language
	"process": {
		nsDPV + "hasPurpose",          // Purpose
		nsDPV + "hasPersonalData",     // Personal Data, Personal Data Type
		nsDPV + "hasStorageCondition", // Storage Condition (storage locations, retention period)
		nsDPV + "hasDataController",   // Data Controller
		nsDPV + "hasRecipient",        // Recipients
		nsDPV + "hasJurisdiction",     // Jurisdiction
	},
	"entity": {
		"@type",                   // Role
		nsDPV + "hasName",         // Name
		nsDPV + "hasIdentifier",   // Identifier
		nsSchema + "contactPoint", // Contact
		nsSchema + "address",      // Postal Address
	},
	"event": {
		"@type",                       // Consent Type and Consent State
		nsDPV + "isIndicatedAtTime",   // Event Time
		nsDPV + "hasDuration",         // Event Duration
		nsDPV + "isIndicatedBy",       // Expression by Entity
		nsDPV + "hasIndicationMethod", // Expression Method (optional in the profile, always given)
	},
}

// consentStates are DPV 2.x's consent status concepts.
var consentStates = []string{"ConsentGiven", "RenewedConsentGiven", "ConsentWithdrawn", "ConsentExpired", "ConsentRevoked",
	"ConsentRefused", "ConsentRequested", "ConsentRequestDeferred", "ConsentInvalidated", "ConsentUnknown"}

// consentTypes are the DPV consent types a record may name as the type of
// a giving event.
var consentTypes = []string{"ExpressedConsent", "ExplicitlyExpressedConsent", "InformedConsent"}

func ldFixture(t testing.TB) (domain.Contract, map[string]domain.Recipient, domain.Catalog, *domain.Programme) {
	t.Helper()
	cat, err := catalog.Load()
	if err != nil {
		t.Fatal(err)
	}
	year, month := domain.Duration{Years: 1}, domain.Duration{Days: 30}
	prog := &domain.Programme{Version: 1, LegalName: "Brand AS", Address: "Storgata 1, 0155 Oslo", ContactEmail: "privacy@brand.example",
		DPOContact: "dpo@brand.example", AuthorityName: "Datatilsynet", ComplaintURL: "https://www.datatilsynet.no/en/",
		Jurisdictions: []string{"NO", "US-CA"}}
	terms := domain.Terms{Title: "Coffee club", Summary: "City and purchases.", Retention: month, Duration: &year, Programme: prog,
		Items: []domain.Item{
			{Category: "location.city", Purpose: "loyalty.personalised_offers", Recipients: []string{"r-brand", "r-partner"}},
			{Category: "health.allergies", Purpose: "advertising.third_party", Recipients: []string{"r-partner"}},
		}}
	pub := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := domain.RehydrateContract("c-1", "f-1", 2, domain.ContractPublished, terms, []byte("{}"),
		"sha256:"+strings.Repeat("a", 64), pub, &pub, nil)
	recipients := map[string]domain.Recipient{
		"r-brand":   {ID: "r-brand", Name: "Brand", Kind: domain.FirstParty, Country: "NO", PrivacyPolicyURL: "https://brand.example/privacy"},
		"r-partner": {ID: "r-partner", Name: "PartnerCo", Kind: domain.ThirdParty, Country: "SE", PrivacyPolicyURL: "https://partner.example/privacy"},
	}
	return c, recipients, cat, prog
}

// Every status an exchange can have gives a record with every mandatory
// DPV-27560 field, whose last event is the exact DPV consent status.
func TestConsentRecordHasEveryMandatoryISO27560FieldForEachExchangeStatus(t *testing.T) {
	t.Parallel()
	c, recipients, cat, prog := ldFixture(t)
	joined := time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)
	ended := joined.Add(48 * time.Hour)
	now := joined.Add(72 * time.Hour)
	want := map[domain.ExchangeStatus]struct{ state, by string }{
		domain.ExchangeActive:     {"ConsentGiven", nsDPV + "DataSubject"},
		domain.ExchangeCancelled:  {"ConsentWithdrawn", nsDPV + "DataSubject"},
		domain.ExchangeErased:     {"ConsentWithdrawn", nsDPV + "DataSubject"},
		domain.ExchangeSuperseded: {"ConsentWithdrawn", nsDPV + "DataSubject"},
		domain.ExchangeExpired:    {"ConsentExpired", controllerIRI(prog)},
		domain.ExchangeTerminated: {"ConsentRevoked", controllerIRI(prog)},
	}
	for status, w := range want {
		st := domain.ExchangeState{ID: "e-1", MemberID: "auth0|alice josé", ContractID: c.ID(), FamilyID: c.FamilyID(),
			TermsHash: c.TermsHash(), Status: status, JoinedAt: joined, ReceiptID: "rc-1"}
		if status != domain.ExchangeActive {
			st.EndedAt = &ended
		}
		events := []app.ConsentEvent{{ExchangeID: "e-1", Kind: "joined", Actor: "member", At: joined, GPC: true}}
		doc, err := json.Marshal(consentRecordOf(domain.RehydrateExchange(st), c, recipients, cat, prog, events, now))
		if err != nil {
			t.Fatal(err)
		}
		rec := top(t, expandLD(t, doc))
		checkMandatory(t, string(status), rec)
		if got := rec.iris(nsDCT + "conformsTo"); !has(got, dpv27560Record) {
			t.Errorf("%s: conformsTo %v", status, got)
		}
		events2 := rec.objects(nsDPV + "hasConsentStatus")
		last := events2[len(events2)-1]
		if !has(last.iris("@type"), nsDPV+w.state) || !has(last.iris(nsDPV+"isIndicatedBy"), w.by) {
			t.Errorf("%s: last event %v by %v, want dpv:%s by %s", status, last.iris("@type"), last.iris(nsDPV+"isIndicatedBy"), w.state, w.by)
		}
		if first := events2[0]; !has(first.iris("@type"), nsDPV+"ConsentGiven") || !has(first.iris("@type"), nsDPV+"ExplicitlyExpressedConsent") {
			t.Errorf("%s: first event %v, want dpv:ConsentGiven as explicitly expressed consent (a sensitive category)", status, first.iris("@type"))
		}
		if status != domain.ExchangeActive && len(events2) != 2 {
			t.Errorf("%s: %d events, want the giving and the ending", status, len(events2))
		}
	}
}

// checkMandatory fails unless every mandatory field of the profile is
// present, at every level, after expansion (a key the context does not map
// is dropped by expansion, so this also proves every key is an IRI).
func checkMandatory(t *testing.T, what string, rec node) {
	t.Helper()
	need := func(level string, n node) {
		for _, p := range dpv27560Mandatory[level] {
			if len(asList(n[p])) == 0 {
				t.Errorf("%s: %s lacks mandatory %s", what, level, p)
			}
		}
	}
	need("record", rec)
	for _, n := range rec.objects(nsDPV + "hasNotice") {
		need("notice", n)
	}
	for _, p := range rec.objects(nsDPV + "hasProcess") {
		need("process", p)
		if len(p.objects(nsDPV+"hasPurpose")) == 0 || len(p.objects(nsDPV+"hasPersonalData")) == 0 {
			t.Errorf("%s: process without purpose or personal data", what)
		}
	}
	for _, e := range rec.objects(nsDPV + "hasEntity") {
		need("entity", e)
	}
	events := rec.objects(nsDPV + "hasConsentStatus")
	if len(events) == 0 {
		t.Fatalf("%s: no consent event", what)
	}
	for _, e := range events {
		need("event", e)
		types := e.iris("@type")
		state := false
		for _, s := range consentStates {
			state = state || has(types, nsDPV+s)
		}
		if !state {
			t.Errorf("%s: event types %v name no DPV consent state", what, types)
		}
	}
	given := events[0].iris("@type")
	typed := false
	for _, ct := range consentTypes {
		typed = typed || has(given, nsDPV+ct)
	}
	if !typed {
		t.Errorf("%s: the giving event %v names no DPV consent type", what, given)
	}
	for _, s := range rec.objects(nsDPV + "hasDataSubject") {
		if len(asList(s[nsDCT+"identifier"])) == 0 {
			t.Errorf("%s: data subject without identifier", what)
		}
	}
}

// The statement as JSON-LD expands, offline, to DPV IRIs: each catalogue
// purpose and category to its DPV / DPV-PD concept, the recipients, the
// legal basis (GDPR Art. 6(1)(a), and Art. 9(2)(a) for a sensitive
// category) and the controller.
func TestStatementJSONLDExpandsToDPVIRIs(t *testing.T) {
	t.Parallel()
	c, recipients, cat, prog := ldFixture(t)
	doc, err := json.Marshal(statementLDOf(app.Statement{Contract: c, Recipients: recipients, Catalog: cat}))
	if err != nil {
		t.Fatal(err)
	}
	n := top(t, expandLD(t, doc))
	if !has(n.iris("@type"), nsDPV+"ConsentNotice") {
		t.Errorf("types %v", n.iris("@type"))
	}
	var purposes, data, recips, basis []string
	for _, p := range n.objects(nsDPV + "hasProcess") {
		for _, x := range p.objects(nsDPV + "hasPurpose") {
			purposes = append(purposes, x.iris("@type")...)
		}
		for _, x := range p.objects(nsDPV + "hasPersonalData") {
			data = append(data, x.iris("@type")...)
		}
		recips = append(recips, p.iris(nsDPV+"hasRecipient")...)
		basis = append(basis, p.iris(nsDPV+"hasLegalBasis")...)
	}
	for _, w := range []string{nsDPV + "PersonalisedAdvertising", nsDPV + "TargetedAdvertising"} {
		if !has(purposes, w) {
			t.Errorf("purposes %v lack %s", purposes, w)
		}
	}
	for _, w := range []string{nsPD + "City", nsPD + "PhysicalHealth", nsDPV + "SpecialCategoryPersonalData"} {
		if !has(data, w) {
			t.Errorf("personal data %v lack %s", data, w)
		}
	}
	for _, w := range []string{"urn:quid:recipient:r-brand", "urn:quid:recipient:r-partner"} {
		if !has(recips, w) {
			t.Errorf("recipients %v lack %s", recips, w)
		}
	}
	for _, w := range []string{nsDPV + "Consent", nsGDPR + "A6-1-a", nsGDPR + "A9-2-a", nsDPV + "ExplicitlyExpressedConsent"} {
		if !has(basis, w) || !has(n.iris(nsDPV+"hasLegalBasis"), w) {
			t.Errorf("legal basis %v / %v lack %s", basis, n.iris(nsDPV+"hasLegalBasis"), w)
		}
	}
	if got := n.iris(nsDPV + "hasDataController"); !has(got, controllerIRI(prog)) {
		t.Errorf("controller %v", got)
	}
	var controller node
	for _, e := range n.objects(nsDPV + "hasEntity") {
		if id, _ := e["@id"].(string); id == controllerIRI(prog) {
			controller = e
		}
	}
	if controller == nil || !has(controller.iris("@type"), nsDPV+"DataController") {
		t.Fatalf("no controller entity typed dpv:DataController: %v", controller)
	}
	if got := n.iris(nsDPV + "hasJurisdiction"); !has(got, "https://w3id.org/dpv/loc#NO") || !has(got, "https://w3id.org/dpv/loc#US-CA") {
		t.Errorf("jurisdictions %v", got)
	}
	rights := []string{}
	for _, r := range n.objects(nsDPV + "hasRight") {
		rights = append(rights, r.iris("@type")...)
	}
	for _, a := range []string{"A7-3", "A15", "A16", "A17", "A18", "A20", "A21", "A22", "A77"} {
		if !has(rights, nsGDPR+a) {
			t.Errorf("rights %v lack eu-gdpr:%s", rights, a)
		}
	}
}

// Every catalogue term is a DPV 2.x IRI once rendered: dpv: or pd: (DPV 1's
// dpv-pd: prefix is rewritten), never an unknown prefix that a processor
// would leave as a relative or blank IRI.
func TestEveryCatalogueTermRendersAsADPV2IRI(t *testing.T) {
	t.Parallel()
	cat, err := catalog.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cat.Categories() {
		if got := dpvTerm(c.DPV); !strings.HasPrefix(got, "pd:") && !strings.HasPrefix(got, "dpv:") {
			t.Errorf("category %s: %s renders as %s", c.Key, c.DPV, got)
		}
	}
	for _, p := range cat.Purposes() {
		if got := dpvTerm(p.DPV); !strings.HasPrefix(got, "dpv:") {
			t.Errorf("purpose %s: %s renders as %s", p.Key, p.DPV, got)
		}
	}
}

// Each party of a programme identity has an IRI of its own, derived from
// what the record says of it: records made under two programme versions
// with different controllers and authorities, expanded by a JSON-LD
// processor and loaded into one graph, keep them apart (one IRI never
// names two legal entities), and an identity re-published unchanged keeps
// its IRIs.
func TestRecordsOfDifferentControllersNameThemByDifferentIRIs(t *testing.T) {
	t.Parallel()
	c, recipients, cat, prog := ldFixture(t)
	other := *prog
	other.Version, other.LegalName, other.Address = 14, "Totally Different Data Broker Inc", "9 Elsewhere, Delaware"
	other.AuthorityName, other.ComplaintURL = "FTC", "https://ftc.example/"
	same := *prog
	same.Version = 7
	joined := time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)
	ex := domain.RehydrateExchange(domain.ExchangeState{ID: "e-1", MemberID: "m-1", ContractID: c.ID(), FamilyID: c.FamilyID(),
		TermsHash: c.TermsHash(), Status: domain.ExchangeActive, JoinedAt: joined})
	// names maps each entity IRI to the names the merged graph gives it.
	names := map[string]map[string]bool{}
	partyIRIs := func(p *domain.Programme) (controller, authority string) {
		doc, err := json.Marshal(consentRecordOf(ex, c, recipients, cat, p, nil, joined))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range top(t, expandLD(t, doc)).objects(nsDPV + "hasEntity") {
			id, _ := e["@id"].(string)
			if names[id] == nil {
				names[id] = map[string]bool{}
			}
			for _, v := range asList(e[nsDPV+"hasName"]) {
				names[id][v.(map[string]any)["@value"].(string)] = true
			}
			switch {
			case has(e.iris("@type"), nsDPV+"DataController"):
				controller = id
			case has(e.iris("@type"), nsDPV+"DataProtectionAuthority"):
				authority = id
			}
		}
		return controller, authority
	}
	c1, a1 := partyIRIs(prog)
	c2, a2 := partyIRIs(&other)
	c3, a3 := partyIRIs(&same)
	if c1 == "" || a1 == "" || c1 == c2 || a1 == a2 {
		t.Fatalf("two controllers %q / %q and two authorities %q / %q must have distinct IRIs", c1, c2, a1, a2)
	}
	if c1 != c3 || a1 != a3 {
		t.Errorf("the same identity under another version number changed its IRIs: %q→%q, %q→%q", c1, c3, a1, a3)
	}
	for id, n := range names {
		if len(n) != 1 {
			t.Errorf("in the merged graph %s names %d entities: %v", id, len(n), n)
		}
	}
}
