package http

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// This file renders the standard formats of issue 12: a contract's statement
// as JSON-LD with Data Privacy Vocabulary (DPV 2.x) terms, and each exchange
// as a consent record following ISO/IEC TS 27560 in the W3C DPV-27560 profile
// (https://w3id.org/dpv/guides/consent-27560). Both are built from the same
// app-level models as the JSON and HTML statement, so the wording of those
// can change without touching the vocabulary mapping here.

// MIMEApplicationLDJSON is JSON-LD (W3C JSON-LD 1.1, section 9.1).
const MIMEApplicationLDJSON = "application/ld+json"

// dpv27560Record is the DPV-27560 profile a consent record conforms to.
const dpv27560Record = "https://w3id.org/dpv/schema/dpv-27560#record"

// ldTerm is one term definition of the inline @context: a prefix (ID with
// Prefix) or a property whose string values are IRIs (Type "@id") or
// dates (Type xsd:dateTime).
type ldTerm struct {
	ID     *string `json:"@id,omitempty"`
	Type   *string `json:"@type,omitempty"`
	Prefix *bool   `json:"@prefix,omitempty"`
}

// ldContext is inline, so a processor never fetches a remote context (and
// Quid never depends on w3id.org being reachable).
var ldContext = func() map[string]ldTerm {
	yes, id, dateTime := true, "@id", "xsd:dateTime"
	ctx := map[string]ldTerm{}
	for prefix, iri := range map[string]string{
		"dpv":     "https://w3id.org/dpv#",
		"pd":      "https://w3id.org/dpv/pd#",
		"eu-gdpr": "https://w3id.org/dpv/legal/eu/gdpr#",
		"loc":     "https://w3id.org/dpv/loc#",
		"dct":     "http://purl.org/dc/terms/",
		"schema":  "https://schema.org/",
		"rdf":     "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
		"xsd":     "http://www.w3.org/2001/XMLSchema#",
	} {
		ctx[prefix] = ldTerm{ID: &iri, Prefix: &yes}
	}
	for _, p := range []string{"dct:conformsTo", "dpv:hasDataSubject", "dpv:hasDataController", "dpv:hasRecipient",
		"dpv:hasThirdParty", "dpv:hasLegalBasis", "dpv:hasJurisdiction", "dpv:hasApplicableLaw", "dpv:hasLocation",
		"dpv:isIndicatedBy", "dpv:hasProcessing", "dpv:hasAuthority"} {
		ctx[p] = ldTerm{Type: &id}
	}
	for _, p := range []string{"dpv:isIndicatedAtTime", "dct:created", "dct:modified", "dct:date"} {
		ctx[p] = ldTerm{Type: &dateTime}
	}
	return ctx
}()

// ldConcept is a catalogue purpose or data category typed by its DPV
// concept (the DPV-27560 guide's "@type": "dpv:Marketing" pattern), with
// Quid's own key and label beside it.
type ldConcept struct {
	Type       []string `json:"@type"`
	Identifier string   `json:"dct:identifier"`
	Title      string   `json:"dct:title"`
}

type ldDuration struct {
	Type  []string `json:"@type"`
	Value string   `json:"rdf:value"`
}

type ldStorage struct {
	Type     []string    `json:"@type"`
	Duration *ldDuration `json:"dpv:hasDuration,omitempty"`
	Location []string    `json:"dpv:hasLocation,omitempty"`
}

type ldControl struct {
	Type        []string `json:"@type"`
	ExercisedAt string   `json:"dpv:isExercisedAt"`
}

type ldRight struct {
	Type        []string `json:"@type"`
	Title       string   `json:"dct:title"`
	Description string   `json:"dct:description"`
	ExercisedAt string   `json:"dpv:isExercisedAt"`
}

type ldContactPoint struct {
	Type        []string `json:"@type"`
	ContactType string   `json:"schema:contactType"`
	Email       *string  `json:"schema:email,omitempty"`
	URL         *string  `json:"schema:url,omitempty"`
}

type ldPostalAddress struct {
	Type    []string `json:"@type"`
	Street  *string  `json:"schema:streetAddress,omitempty"`
	Country *string  `json:"schema:addressCountry,omitempty"`
}

// ldEntity is a party of the record (DPV-27560 entity fields: name,
// identifier, role, contact, postal address).
type ldEntity struct {
	ID         string           `json:"@id"`
	Type       []string         `json:"@type"`
	Name       string           `json:"dpv:hasName"`
	Identifier string           `json:"dpv:hasIdentifier"`
	Contact    []ldContactPoint `json:"schema:contactPoint"`
	Address    ldPostalAddress  `json:"schema:address"`
	Location   []string         `json:"dpv:hasLocation,omitempty"`
}

// ldProcess is one item of the terms: one category, one purpose, its
// recipients, under consent.
type ldProcess struct {
	Type         []string    `json:"@type"`
	Purpose      []ldConcept `json:"dpv:hasPurpose"`
	PersonalData []ldConcept `json:"dpv:hasPersonalData"`
	Processing   []string    `json:"dpv:hasProcessing"`
	Controllers  []string    `json:"dpv:hasDataController"`
	Recipients   []string    `json:"dpv:hasRecipient"`
	ThirdParties []string    `json:"dpv:hasThirdParty"`
	LegalBasis   []string    `json:"dpv:hasLegalBasis"`
	Storage      []ldStorage `json:"dpv:hasStorageCondition"`
	Jurisdiction []string    `json:"dpv:hasJurisdiction"`
}

// ldNotice is the statement the member was shown: the version of the terms
// and their SHA-256 fingerprint.
type ldNotice struct {
	ID         string   `json:"@id"`
	Type       []string `json:"@type"`
	Identifier string   `json:"dct:identifier"`
	Version    string   `json:"schema:version"`
	Title      string   `json:"dct:title"`
	Language   string   `json:"dct:language"`
	Date       *string  `json:"dct:date,omitempty"`
	URL        string   `json:"schema:url"`
}

// ldEvent is one consent event (DPV-27560 consent event fields: consent
// type, state, time, duration, who expressed it, how).
type ldEvent struct {
	Type     []string   `json:"@type"`
	At       string     `json:"dpv:isIndicatedAtTime"`
	By       []string   `json:"dpv:isIndicatedBy"`
	Method   string     `json:"dpv:hasIndicationMethod"`
	Duration ldDuration `json:"dpv:hasDuration"`
}

// ldReceipt names the signed consent receipt issued at join (or renewal).
type ldReceipt struct {
	ID         string   `json:"@id"`
	Type       []string `json:"@type"`
	Identifier string   `json:"dct:identifier"`
}

// consentRecordLD is a consent record in the DPV-27560 profile. Every field
// the profile marks MUST is present: schema version (dct:conformsTo),
// record identifier, data subject, notice and its language, processes with
// purpose, personal data, storage conditions, controller, recipients,
// consent change and withdrawal, jurisdiction and rights, the entities'
// name, identifier, role, contact and postal address, and the consent
// events with type, state, time, duration and the entity that expressed
// them.
type consentRecordLD struct {
	Context       map[string]ldTerm `json:"@context"`
	ID            string            `json:"@id"`
	Type          []string          `json:"@type"`
	Identifier    string            `json:"dct:identifier"`
	ConformsTo    []string          `json:"dct:conformsTo"`
	Created       string            `json:"dct:created"`
	Modified      *string           `json:"dct:modified,omitempty"`
	DataSubject   ldDataSubject     `json:"dpv:hasDataSubject"`
	Controllers   []string          `json:"dpv:hasDataController"`
	LegalBasis    []string          `json:"dpv:hasLegalBasis"`
	ApplicableLaw []string          `json:"dpv:hasApplicableLaw"`
	Jurisdiction  []string          `json:"dpv:hasJurisdiction"`
	Notice        []ldNotice        `json:"dpv:hasNotice"`
	Language      string            `json:"dct:language"`
	Processes     []ldProcess       `json:"dpv:hasProcess"`
	Controls      []ldControl       `json:"dpv:hasConsentControl"`
	Rights        []ldRight         `json:"dpv:hasRight"`
	Entities      []ldEntity        `json:"dpv:hasEntity"`
	Status        []ldEvent         `json:"dpv:hasConsentStatus"`
	Receipt       *ldReceipt        `json:"dct:relation,omitempty"`
}

type ldDataSubject struct {
	ID         string   `json:"@id"`
	Type       []string `json:"@type"`
	Identifier string   `json:"dct:identifier"`
}

// statementLD is a contract's statement as a DPV consent notice.
type statementLD struct {
	Context       map[string]ldTerm `json:"@context"`
	ID            string            `json:"@id"`
	Type          []string          `json:"@type"`
	Identifier    *string           `json:"dct:identifier,omitempty"`
	Version       string            `json:"schema:version"`
	Title         string            `json:"dct:title"`
	Description   string            `json:"dct:description"`
	Language      string            `json:"dct:language"`
	Date          *string           `json:"dct:date,omitempty"`
	Controllers   []string          `json:"dpv:hasDataController"`
	LegalBasis    []string          `json:"dpv:hasLegalBasis"`
	ApplicableLaw []string          `json:"dpv:hasApplicableLaw"`
	Jurisdiction  []string          `json:"dpv:hasJurisdiction"`
	Processes     []ldProcess       `json:"dpv:hasProcess"`
	Controls      []ldControl       `json:"dpv:hasConsentControl"`
	Rights        []ldRight         `json:"dpv:hasRight"`
	Entities      []ldEntity        `json:"dpv:hasEntity"`
	Duration      ldDuration        `json:"dpv:hasDuration"`
}

// dpvTerm turns a catalogue term into the DPV 2.x compact IRI: the
// catalogue still spells personal data categories with DPV 1's dpv-pd:
// prefix, which DPV 2 moved to the pd: namespace (https://w3id.org/dpv/pd#).
func dpvTerm(t string) string {
	if rest, ok := strings.CutPrefix(t, "dpv-pd:"); ok {
		return "pd:" + rest
	}
	return t
}

func ldIRI(kind, id string) string { return "urn:quid:" + kind + ":" + url.PathEscape(id) }

// partyIRI names a party of the programme identity by what the documents
// say of it: a SHA-256 of its fields, so two documents that give a party
// the same IRI say the same of it, and two controllers (or authorities)
// never merge into one node when records of different programme versions
// or deployments are loaded into one graph. A party whose details change
// is a new node, as the records made under the old details still describe
// the old ones.
func partyIRI(kind string, fields ...string) string {
	h := sha256.New()
	for _, f := range fields {
		// Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return "urn:quid:" + kind + ":sha256-" + hex.EncodeToString(h.Sum(nil))[:32]
}

// controllerIRI is the controller of programme p: its name, address and
// contacts (the DPO's among them) as the records state them.
func controllerIRI(p *domain.Programme) string {
	return partyIRI("controller", p.LegalName, p.Address, p.ContactEmail, p.DPOContact)
}

// authorityIRI is the supervisory authority programme p names.
func authorityIRI(p *domain.Programme) string {
	return partyIRI("supervisory-authority", p.AuthorityName, p.ComplaintURL)
}

// gdprRights maps the rights every statement lists (memberRights) to the
// DPV EU-GDPR rights concepts.
var gdprRights = map[string]string{
	"withdraw": "eu-gdpr:A7-3", "access": "eu-gdpr:A15", "recipients": "eu-gdpr:A15", "rectification": "eu-gdpr:A16",
	"erasure": "eu-gdpr:A17", "restriction": "eu-gdpr:A18", "portability": "eu-gdpr:A20", "objection": "eu-gdpr:A21",
	"automated_decisions": "eu-gdpr:A22",
}

// ldModel is what both documents are built from.
type ldModel struct {
	contract   domain.Contract
	recipients map[string]domain.Recipient
	catalog    domain.Catalog
	programme  *domain.Programme
}

func (m ldModel) controllers() []string {
	if m.programme != nil {
		return []string{controllerIRI(m.programme)}
	}
	// No programme identity (a version published before issue 12): the
	// brand's own recipients answer for the data.
	var out []string
	for _, id := range m.contract.RecipientIDs() {
		if r, ok := m.recipients[id]; ok && r.Kind == domain.FirstParty {
			out = append(out, ldIRI("recipient", id))
		}
	}
	sort.Strings(out)
	return nonNil(out)
}

func (m ldModel) jurisdictions() []string {
	out := []string{}
	if m.programme != nil {
		for _, j := range m.programme.Jurisdictions {
			out = append(out, "loc:"+j)
		}
		return out
	}
	seen := map[string]bool{}
	for _, id := range m.contract.RecipientIDs() {
		if r, ok := m.recipients[id]; ok && !seen[r.Country] {
			seen[r.Country] = true
			out = append(out, "loc:"+r.Country)
		}
	}
	sort.Strings(out)
	return out
}

// legalBasis is consent, GDPR Art. 6(1)(a); explicit consent, Art. 9(2)(a),
// as well when the terms share a sensitive category.
func (m ldModel) legalBasis() []string {
	out := []string{"dpv:Consent", "eu-gdpr:A6-1-a"}
	for _, it := range m.contract.Terms().Items {
		if cat, _ := m.catalog.Category(it.Category); cat.Sensitive {
			return append(out, "dpv:ExplicitlyExpressedConsent", "eu-gdpr:A9-2-a")
		}
	}
	return out
}

func (m ldModel) processes() []ldProcess {
	t := m.contract.Terms()
	controllers, jurisdictions := m.controllers(), m.jurisdictions()
	out := []ldProcess{}
	for _, it := range t.Items {
		cat, _ := m.catalog.Category(it.Category)
		pur, _ := m.catalog.Purpose(it.Purpose)
		data := ldConcept{Type: []string{dpvTerm(cat.DPV)}, Identifier: cat.Key, Title: cat.Label}
		basis := []string{"dpv:Consent", "eu-gdpr:A6-1-a"}
		if cat.Sensitive {
			data.Type = append(data.Type, "dpv:SpecialCategoryPersonalData")
			basis = append(basis, "dpv:ExplicitlyExpressedConsent", "eu-gdpr:A9-2-a")
		}
		p := ldProcess{Type: []string{"dpv:Process"},
			Purpose:      []ldConcept{{Type: []string{dpvTerm(pur.DPV)}, Identifier: pur.Key, Title: pur.Label}},
			PersonalData: []ldConcept{data}, Processing: []string{"dpv:Store", "dpv:Use", "dpv:Disclose"},
			Controllers: controllers, Recipients: []string{}, ThirdParties: []string{}, LegalBasis: basis,
			Jurisdiction: jurisdictions}
		for _, term := range pur.AutomatedProcessing {
			if term == domain.DPVProfiling {
				p.Processing = append(p.Processing, "dpv:Profiling")
			}
		}
		locations := []string{}
		for _, rid := range it.Recipients {
			p.Recipients = append(p.Recipients, ldIRI("recipient", rid))
			if r := m.recipients[rid]; r.Kind == domain.ThirdParty {
				p.ThirdParties = append(p.ThirdParties, ldIRI("recipient", rid))
			}
			locations = append(locations, "loc:"+m.recipients[rid].Country)
		}
		// Recipients hold the data while consent lasts and must delete it
		// within the retention period after it ends.
		p.Storage = []ldStorage{
			{Type: []string{"dpv:StorageLocation"}, Location: locations},
			{Type: []string{"dpv:StorageDuration"}, Duration: &ldDuration{Type: []string{"dpv:UntilEventDuration"},
				Value: "until consent ends (withdrawn, expired or otherwise ended)"}},
			{Type: []string{"dpv:StorageDeletion"}, Duration: &ldDuration{Type: []string{"dpv:TemporalDuration"},
				Value: t.Retention.String()}},
		}
		out = append(out, p)
	}
	return out
}

func (m ldModel) controls(exchangeID string) []ldControl {
	call := func(method, path string) string {
		if exchangeID != "" {
			path = strings.ReplaceAll(path, "{id}", url.PathEscape(exchangeID))
		}
		return method + " " + path
	}
	return []ldControl{
		{Type: []string{"dpv:ProvideConsent"}, ExercisedAt: "POST /v1/me/exchanges"},
		{Type: []string{"dpv:WithdrawConsent"}, ExercisedAt: call("DELETE", "/v1/me/exchanges/{id}")},
		{Type: []string{"dpv:ReaffirmConsent"}, ExercisedAt: call("POST", "/v1/me/exchanges/{id}/renew")},
	}
}

func (m ldModel) rights() []ldRight {
	out := []ldRight{}
	for _, r := range memberRights {
		typ := []string{"dpv:DataSubjectRight"}
		if g, ok := gdprRights[r.Key]; ok {
			typ = append(typ, g)
		}
		out = append(out, ldRight{Type: typ, Title: r.Basis, Description: r.Plain, ExercisedAt: r.Call})
	}
	if m.programme != nil {
		out = append(out, ldRight{Type: []string{"dpv:DataSubjectRight", "eu-gdpr:A77"}, Title: "GDPR Art. 77",
			Description: "You can complain to " + m.programme.AuthorityName + ".", ExercisedAt: m.programme.ComplaintURL})
	}
	return out
}

func (m ldModel) entities() []ldEntity {
	out := []ldEntity{}
	if p := m.programme; p != nil {
		email, dpo := p.ContactEmail, p.DPOContact
		controller, authority := controllerIRI(p), authorityIRI(p)
		out = append(out, ldEntity{ID: controller, Type: []string{"dpv:LegalEntity", "dpv:DataController"},
			Name: p.LegalName, Identifier: controller,
			Contact: []ldContactPoint{{Type: []string{"schema:ContactPoint"}, ContactType: "privacy", Email: &email},
				{Type: []string{"schema:ContactPoint"}, ContactType: "data protection officer: " + dpo}},
			Address: ldPostalAddress{Type: []string{"schema:PostalAddress"}, Street: &p.Address}})
		complaint := p.ComplaintURL
		out = append(out, ldEntity{ID: authority, Type: []string{"dpv:Authority", "dpv:DataProtectionAuthority"},
			Name: p.AuthorityName, Identifier: authority,
			Contact: []ldContactPoint{{Type: []string{"schema:ContactPoint"}, ContactType: "complaints", URL: &complaint}},
			Address: ldPostalAddress{Type: []string{"schema:PostalAddress"}}})
	}
	ids := append([]string(nil), m.contract.RecipientIDs()...)
	sort.Strings(ids)
	for _, id := range ids {
		r, ok := m.recipients[id]
		if !ok {
			continue
		}
		typ := []string{"dpv:LegalEntity", "dpv:Recipient"}
		if r.Kind == domain.ThirdParty {
			typ = append(typ, "dpv:ThirdParty")
		} else if m.programme == nil {
			typ = append(typ, "dpv:DataController")
		}
		policy, country := r.PrivacyPolicyURL, r.Country
		iri := ldIRI("recipient", r.ID)
		out = append(out, ldEntity{ID: iri, Type: typ, Name: r.Name, Identifier: iri,
			Contact:  []ldContactPoint{{Type: []string{"schema:ContactPoint"}, ContactType: "privacy policy", URL: &policy}},
			Address:  ldPostalAddress{Type: []string{"schema:PostalAddress"}, Country: &country},
			Location: []string{"loc:" + r.Country}})
	}
	return out
}

func (m ldModel) notice() ldNotice {
	c := m.contract
	return ldNotice{ID: ldIRI("contract", c.ID()), Type: []string{"dpv:ConsentNotice"}, Identifier: c.TermsHash(),
		Version: strconv.Itoa(c.Version()), Title: c.Terms().Title, Language: "en", Date: optTime(c.PublishedAt()),
		URL: "/v1/contracts/" + url.PathEscape(c.ID()) + "/transparency"}
}

// consentDuration is how long given consent lasts: the contract's duration
// from the join, or until withdrawn.
func consentDuration(t domain.Terms) ldDuration {
	if t.Duration != nil {
		return ldDuration{Type: []string{"dpv:TemporalDuration"}, Value: t.Duration.String()}
	}
	return ldDuration{Type: []string{"dpv:UntilEventDuration"}, Value: "until withdrawn"}
}

// statementLDOf renders a contract's statement as a DPV consent notice.
func statementLDOf(st app.Statement) statementLD {
	m := ldModel{contract: st.Contract, recipients: st.Recipients, catalog: st.Catalog, programme: st.Contract.Terms().Programme}
	c := st.Contract
	d := statementLD{Context: ldContext, ID: ldIRI("contract", c.ID()), Type: []string{"dpv:ConsentNotice", "dpv:PrivacyNotice"},
		Version: strconv.Itoa(c.Version()), Title: c.Terms().Title, Description: c.Terms().Summary, Language: "en",
		Date: optTime(c.PublishedAt()), Controllers: m.controllers(), LegalBasis: m.legalBasis(),
		ApplicableLaw: []string{"eu-gdpr:GDPR"}, Jurisdiction: m.jurisdictions(), Processes: m.processes(),
		Controls: m.controls(""), Rights: m.rights(), Entities: m.entities(), Duration: consentDuration(c.Terms())}
	if h := c.TermsHash(); h != "" {
		d.Identifier = &h
	}
	return d
}

// recordStatus maps an exchange's status to the DPV consent status of the
// event that ended it, and says whether the member (the data subject)
// expressed it:
//
//	active      dpv:ConsentGiven (dpv:RenewedConsentGiven after a renewal)
//	cancelled   dpv:ConsentWithdrawn  by the member (GDPR Art. 7(3))
//	erased      dpv:ConsentWithdrawn  by the member, asking for erasure (Art. 17)
//	superseded  dpv:ConsentWithdrawn  by the member, consenting to a newer version instead
//	expired     dpv:ConsentExpired    its duration ran out
//	terminated  dpv:ConsentRevoked    the controller retired the version with termination
//
// Quid keeps no record of refused consent (a member who does not join has
// no exchange), so dpv:ConsentRefused never appears.
func recordStatus(s domain.ExchangeStatus) (term string, byMember bool) {
	switch s {
	case domain.ExchangeCancelled, domain.ExchangeErased, domain.ExchangeSuperseded:
		return "dpv:ConsentWithdrawn", true
	case domain.ExchangeExpired:
		return "dpv:ConsentExpired", false
	case domain.ExchangeTerminated:
		return "dpv:ConsentRevoked", false
	}
	return "dpv:ConsentGiven", true
}

var endingMethods = map[domain.ExchangeStatus]string{
	domain.ExchangeCancelled:  "cancelled by the member (DELETE /v1/me/exchanges/{id})",
	domain.ExchangeErased:     "the member erased their account (DELETE /v1/me)",
	domain.ExchangeSuperseded: "the member consented to a newer version of the terms",
	domain.ExchangeExpired:    "the consent duration ran out",
	domain.ExchangeTerminated: "the brand retired this version and ended its exchanges",
}

// consentRecordOf renders one exchange as a DPV-27560 consent record.
// events are the exchange's own consent-log events, oldest first.
func consentRecordOf(ex domain.Exchange, c domain.Contract, recipients map[string]domain.Recipient, catalog domain.Catalog,
	programme *domain.Programme, events []app.ConsentEvent, now time.Time) consentRecordLD {
	ex = ex.AsOf(now)
	m := ldModel{contract: c, recipients: recipients, catalog: catalog, programme: programme}
	e := ex.State()
	basis := m.legalBasis()
	consentType := "dpv:ExpressedConsent"
	for _, b := range basis {
		if b == "dpv:ExplicitlyExpressedConsent" {
			consentType = b
		}
	}
	d := consentRecordLD{Context: ldContext, ID: ldIRI("exchange", e.ID), Type: []string{"dpv:ConsentRecord"},
		Identifier: e.ID, ConformsTo: []string{dpv27560Record}, Created: timeText(e.JoinedAt), Modified: optTime(e.EndedAt),
		DataSubject: ldDataSubject{ID: ldIRI("member", e.MemberID), Type: []string{"dpv:DataSubject", "dpv:Consumer"},
			Identifier: e.MemberID},
		Controllers: m.controllers(), LegalBasis: basis, ApplicableLaw: []string{"eu-gdpr:GDPR"},
		Jurisdiction: m.jurisdictions(), Notice: []ldNotice{m.notice()}, Language: "en", Processes: m.processes(),
		Controls: m.controls(e.ID), Rights: m.rights(), Entities: m.entities(), Status: []ldEvent{}}
	if e.ReceiptID != "" {
		d.Receipt = &ldReceipt{ID: ldIRI("receipt", e.ReceiptID), Type: []string{"dpv:ConsentReceipt"}, Identifier: e.ReceiptID}
	}
	member, controller := []string{"dpv:DataSubject"}, d.Controllers
	given := consentDuration(c.Terms())
	final := ldDuration{Type: []string{"dpv:UntilEventDuration"}, Value: "permanent: joining again starts a new record"}
	joined := false
	for _, ev := range events {
		switch ev.Kind {
		case "joined":
			joined = true
			d.Status = append(d.Status, ldEvent{Type: []string{"dpv:ConsentGiven", consentType}, At: timeText(ev.At), By: member,
				Method: "joined with POST /v1/me/exchanges" + gpcNote(ev.GPC), Duration: given})
		case "renewed":
			d.Status = append(d.Status, ldEvent{Type: []string{"dpv:RenewedConsentGiven", consentType}, At: timeText(ev.At), By: member,
				Method: "renewed with POST /v1/me/exchanges/{id}/renew" + gpcNote(ev.GPC), Duration: given})
		}
	}
	if !joined { // the log always has it; never leave the record without the giving
		d.Status = append([]ldEvent{{Type: []string{"dpv:ConsentGiven", consentType}, At: timeText(e.JoinedAt), By: member,
			Method: "joined with POST /v1/me/exchanges", Duration: given}}, d.Status...)
	}
	if e.Status != domain.ExchangeActive && e.EndedAt != nil {
		term, byMember := recordStatus(e.Status)
		by := controller // expiry and termination are the controller's record, not the member's act
		if byMember {
			by = member
		}
		d.Status = append(d.Status, ldEvent{Type: []string{term}, At: timeText(*e.EndedAt), By: by,
			Method: endingMethods[e.Status], Duration: final})
	}
	return d
}

func gpcNote(gpc bool) string {
	if gpc {
		return ", with Global Privacy Control on"
	}
	return ""
}

// answeringProgramme is the programme identity a contract answers under: the one
// frozen into its terms, or (published before identities existed) the
// current one.
func answeringProgramme(c domain.Contract, current *domain.Programme) *domain.Programme {
	if p := c.Terms().Programme; p != nil {
		return p
	}
	return current
}

// wantsLD is true when the client prefers JSON-LD over JSON (and HTML).
func wantsLD(c *fiber.Ctx) bool {
	return c.Accepts(fiber.MIMEApplicationJSON, fiber.MIMETextHTML, MIMEApplicationLDJSON) == MIMEApplicationLDJSON
}

// exchangeRecord serves GET /v1/me/exchanges/{id}/record: the exchange's
// consent record in the DPV-27560 profile, as application/ld+json when
// asked for, else as application/json (the same document).
func (h *handlers) exchangeRecord(c *fiber.Ctx) error {
	id, err := idParam(c, errExchangeNotFound)
	if err != nil {
		return err
	}
	d, err := h.consentRecord(c, id)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	if wantsLD(c) {
		body, err := jsonMarshal(d)
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, MIMEApplicationLDJSON)
		return c.Send(body)
	}
	return c.JSON(d)
}

// consentRecord is the consent record of the member's own exchange id
// (another's is not found), for the API and the web pages alike.
func (h *handlers) consentRecord(c *fiber.Ctx, id string) (consentRecordLD, error) {
	ctx := c.UserContext()
	r, err := h.svc.Exchanges.Record(ctx, principal(c), id)
	if err != nil {
		return consentRecordLD{}, err
	}
	current, err := h.currentProgramme(ctx, r.View.Contract)
	if err != nil {
		return consentRecordLD{}, err
	}
	return consentRecordOf(r.View.Exchange, r.View.Contract, r.Recipients, h.svc.Catalog, answeringProgramme(r.View.Contract, current),
		r.Events, time.Now()), nil
}

// currentProgramme is the programme identity in force, read only when one
// of cs was published without one frozen into its terms.
func (h *handlers) currentProgramme(ctx context.Context, cs ...domain.Contract) (*domain.Programme, error) {
	need := false
	for _, c := range cs {
		need = need || c.Terms().Programme == nil
	}
	if !need || h.svc.Contracts == nil {
		return nil, nil
	}
	p, ok, err := h.svc.Contracts.Programme(ctx)
	if err != nil || !ok {
		return nil, err
	}
	return &p, nil
}
