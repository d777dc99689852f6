package domain_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quidpro/quid/domain"
)

// changed tells whether ch reports any difference at all.
func changed(ch domain.Changes) bool {
	return len(ch.CategoriesAdded)+len(ch.CategoriesRemoved)+len(ch.PurposesAdded)+len(ch.PurposesRemoved)+
		len(ch.RecipientsAdded)+len(ch.RecipientsRemoved)+len(ch.GrantsAdded)+len(ch.GrantsRemoved)+
		len(ch.Reward)+len(ch.Durations)+len(ch.Wording)+len(ch.Eligibility) > 0
}

// mutateLeaves calls visit once per leaf field under v (a settable value),
// with v changed in that one field; v is restored after each visit. A leaf
// of a kind it cannot change fails the test, so a field added to Terms later
// must be taught here, and so to CompareTerms.
func mutateLeaves(t *testing.T, path string, v reflect.Value, visit func(path string)) {
	t.Helper()
	durationType := reflect.TypeOf(domain.Duration{})
	old := reflect.New(v.Type()).Elem()
	old.Set(v)
	restore := func() { v.Set(old) }
	switch {
	case v.Type() == durationType:
		d := v.Interface().(domain.Duration)
		d.Days++
		v.Set(reflect.ValueOf(d))
		visit(path)
		restore()
	case v.Kind() == reflect.Pointer && v.Type().Elem() == durationType:
		d := domain.Duration{Days: 3}
		if !v.IsNil() {
			d = *v.Interface().(*domain.Duration)
			d.Days++
		}
		v.Set(reflect.ValueOf(&d))
		visit(path)
		restore()
	case v.Kind() == reflect.String:
		v.SetString(v.String() + " changed")
		visit(path)
		restore()
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		v.SetInt(v.Int() + 1)
		visit(path)
		restore()
	case v.Type() == reflect.TypeOf(time.Time{}):
		// Programme.CreatedAt: when an identity version was recorded is
		// not what the member agrees to, so not in the terms.
	case v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Struct && !v.IsNil():
		// A value estimate or programme: each field, on a copy.
		cp := reflect.New(v.Type().Elem())
		cp.Elem().Set(v.Elem())
		v.Set(cp)
		mutateLeaves(t, path, cp.Elem(), visit)
		restore()
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			mutateLeaves(t, path+"."+v.Type().Field(i).Name, v.Field(i), visit)
		}
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		// A recipient list: name one more registered recipient.
		v.Set(reflect.Append(reflect.AppendSlice(reflect.MakeSlice(v.Type(), 0, v.Len()+1), v), reflect.ValueOf("r3")))
		visit(path)
		restore()
	case v.Kind() == reflect.Slice && v.Len() > 0:
		// Each field of the first element, on a copy of the slice so the
		// original terms are untouched.
		cp := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(cp, v)
		v.Set(cp)
		mutateLeaves(t, path+"[0]", cp.Index(0), visit)
		restore()
	default:
		t.Fatalf("%s: no way to change a field of type %s; teach this test (and domain.CompareTerms) about it", path, v.Type())
	}
}

// Every field of the terms is in the hash, so a change of any of them must
// show in changes_since_previous: the test walks every field of
// domain.Terms (a field added later is walked too) and asserts that a
// change which changes the canonical terms is never an empty diff.
func TestCompareTermsReportsAChangeOfEveryFieldOfTheTerms(t *testing.T) {
	t.Parallel()
	base := terms()
	base.Summary = "Points for your city"
	base.MinAge = 18
	notice := domain.MustParseDuration("P7D")
	base.RenewalNotice = &notice
	base.Programme = programme()
	next := base
	seen := 0
	mutateLeaves(t, "Terms", reflect.ValueOf(&next).Elem(), func(path string) {
		seen++
		a, err := domain.CanonicalTerms(base, recipients())
		if err != nil {
			t.Fatal(err)
		}
		b, err := domain.CanonicalTerms(next, recipients())
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if bytes.Equal(a, b) {
			t.Errorf("%s: changing it does not change the canonical terms; the walk does not reach the hash", path)
			return
		}
		if ch := domain.CompareTerms(1, base, next, nil); !changed(ch) {
			t.Errorf("%s: changed (canonical terms and hash differ) but CompareTerms reports no change", path)
		}
	})
	if seen < 14 {
		t.Fatalf("walked %d fields, want every field of Terms", seen)
	}
}

// The default notice shows as what applies, so a notice set explicitly to
// the default is no change, and removing the duration removes the notice.
func TestCompareTermsReportsRenewalNoticeAndMinAgeAsMaterialWhenTheyHurtTheMember(t *testing.T) {
	t.Parallel()
	longer, shorter := domain.MustParseDuration("P20D"), domain.MustParseDuration("P1D")
	tests := []struct {
		name     string
		mutate   func(*domain.Terms)
		field    string
		material bool
	}{
		{"raises min_age", func(x *domain.Terms) { x.MinAge = 21 }, "min_age", true},
		{"sets min_age", func(x *domain.Terms) { x.MinAge = 18 }, "min_age", true},
		{"longer notice", func(x *domain.Terms) { x.RenewalNotice = &longer }, "renewal_notice", false},
		{"shorter notice", func(x *domain.Terms) { x.RenewalNotice = &shorter }, "renewal_notice", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			next := terms()
			tt.mutate(&next)
			ch := domain.CompareTerms(1, terms(), next, nil)
			if ch.Material != tt.material {
				t.Fatalf("material = %v (%v), want %v", ch.Material, ch.MaterialReasons, tt.material)
			}
			var fields []string
			for _, fc := range append(ch.Durations, ch.Eligibility...) {
				fields = append(fields, fc.Field)
			}
			if got := strings.Join(fields, ","); got != tt.field {
				t.Fatalf("changes = %q, want %q", got, tt.field)
			}
		})
	}
	lower := terms()
	lower.MinAge = 21
	if ch := domain.CompareTerms(1, lower, terms(), nil); ch.Material || len(ch.Eligibility) != 1 || ch.Eligibility[0].To != "none" {
		t.Fatalf("removing min_age: %+v", ch)
	}
	explicit := terms()
	def := explicit.Notice()
	explicit.RenewalNotice = &def
	if ch := domain.CompareTerms(1, terms(), explicit, nil); changed(ch) {
		t.Fatalf("the default notice written out is no change: %+v", ch)
	}
}

// A notice as long as the duration reopens the renewal window at once after
// a renewal, so renewals stack: it is refused, and the default for a short
// duration is half of it.
func TestRenewalNoticeMustBeShorterThanTheDuration(t *testing.T) {
	t.Parallel()
	policy := domain.ContractPolicy{Catalog: testCatalog(t), MinPeriod: time.Hour}
	known := func(id string) bool { _, ok := recipients()[id]; return ok }
	for _, tc := range []struct{ duration, notice string }{
		{"P7D", "P7D"}, {"P7D", "P14D"}, {"PT2M", "P1Y"}, {"P30D", "P1M"}, {"P1M", "P4W"}, {"P1Y", "P12M"},
	} {
		x := terms()
		d, n := domain.MustParseDuration(tc.duration), domain.MustParseDuration(tc.notice)
		x.Duration, x.RenewalNotice = &d, &n
		err := policy.ValidateTerms(x, known)
		if err == nil || !strings.Contains(err.Error(), "/renewal_notice") {
			t.Errorf("duration %s, notice %s: %v, want a violation at /renewal_notice", tc.duration, tc.notice, err)
		}
	}
	x := terms()
	d, n := domain.MustParseDuration("P2M"), domain.MustParseDuration("P1M")
	x.Duration, x.RenewalNotice = &d, &n
	if err := policy.ValidateTerms(x, known); err != nil {
		t.Fatalf("P1M notice on P2M: %v", err)
	}
	for duration, want := range map[string]string{"P7D": "P3DT12H", "PT2M": "PT1M", "P4W": "P14D", "P1D": "PT12H", "P29D": "P14D", "P1M": "P14D", "P1Y": "P14D"} {
		x := terms()
		d := domain.MustParseDuration(duration)
		x.Duration = &d
		if got := x.Notice().String(); got != want {
			t.Errorf("default notice for %s = %s, want %s", duration, got, want)
		}
		if x.Notice().Longest() >= d.Shortest() {
			t.Errorf("default notice for %s is not shorter than it", duration)
		}
	}
}

// A client that retries at the time a renewal-not-open detail shows must not
// be early: the time is rounded up to the second.
func TestRenewalNotOpenShowsATimeThatIsNeverEarly(t *testing.T) {
	t.Parallel()
	if got := domain.NotBeforeText(time.Date(2026, 11, 30, 12, 23, 13, 869e6, time.UTC)); got != "2026-11-30T12:23:14Z" {
		t.Fatalf("got %s", got)
	}
	if got := domain.NotBeforeText(time.Date(2026, 11, 30, 12, 23, 13, 0, time.UTC)); got != "2026-11-30T12:23:13Z" {
		t.Fatalf("an exact second stays: got %s", got)
	}
}

// Publishing writes the notice that applies into the terms, so a published
// version keeps it whatever the default becomes; the next version's draft
// takes the default again when the notice was the default, or when it is
// not shorter than the duration (a version published before that rule), so
// it can be published.
func TestPublishedVersionKeepsTheNoticeItWasPublishedWith(t *testing.T) {
	t.Parallel()
	week := domain.MustParseDuration("P7D")
	x := terms()
	x.Duration = &week
	c := domain.NewDraft("c1", "f1", 1, x, t0)
	if err := c.Publish(recipients(), programme(), t0); err != nil {
		t.Fatal(err)
	}
	if n := c.Terms().RenewalNotice; n == nil || n.String() != "P3DT12H" || !strings.Contains(string(c.CanonicalTerms()), `"renewal_notice":"P3DT12H"`) {
		t.Fatalf("published notice %v, canonical %s", n, c.CanonicalTerms())
	}
	next, err := c.NextVersion("c2", t0)
	if err != nil {
		t.Fatal(err)
	}
	if next.Terms().RenewalNotice != nil {
		t.Fatalf("the default notice became explicit in the next draft: %v", next.Terms().RenewalNotice)
	}
	legacy := x
	old := domain.DefaultRenewalNotice
	legacy.RenewalNotice = &old // as a store reads a version published under P14D
	p := domain.RehydrateContract("c3", "f3", 1, domain.ContractPublished, legacy, nil, "sha256:x", t0, &t0, nil)
	if next, err = p.NextVersion("c4", t0); err != nil || next.Terms().RenewalNotice != nil {
		t.Fatalf("a P14D notice on P7D carried into the next draft: %v %v", next.Terms().RenewalNotice, err)
	}
	set := domain.MustParseDuration("P2D")
	kept := x
	kept.RenewalNotice = &set
	p = domain.RehydrateContract("c5", "f5", 1, domain.ContractPublished, kept, nil, "sha256:x", t0, &t0, nil)
	if next, err = p.NextVersion("c6", t0); err != nil || next.Terms().RenewalNotice == nil || *next.Terms().RenewalNotice != set {
		t.Fatalf("a notice the marketer set was dropped: %v %v", next.Terms().RenewalNotice, err)
	}
}

// Consent is given to a controller (GDPR Art. 7, 13(1)(a)-(b)) for a reward
// of a stated worth: a new version published under another controller,
// data-protection officer or supervisory authority, or under a lower point
// value, is material; a new contact address, complaint page or list of
// jurisdictions, or a higher point value, shows and is not. An identity
// that differs only in its version number (an identical PUT) changes
// nothing but that number.
func TestCompareTermsReportsANewControllerOrACheaperPointAsMaterial(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		mutate   func(*domain.Programme)
		field    string
		material bool
	}{
		{"legal name", func(p *domain.Programme) { p.LegalName = "Totally Different Data Broker Inc" }, "controller", true},
		{"address", func(p *domain.Programme) { p.Address = "9 Elsewhere, Delaware" }, "controller", true},
		{"dpo", func(p *domain.Programme) { p.DPOContact = "none" }, "dpo_contact", true},
		{"authority", func(p *domain.Programme) { p.AuthorityName = "FTC" }, "supervisory_authority", true},
		{"point value cut", func(p *domain.Programme) { p.PointValue.Amount = "0.0001" }, "point_value", true},
		{"point currency", func(p *domain.Programme) { p.PointValue.Currency = "USD" }, "point_value", true},
		{"point value raised", func(p *domain.Programme) { p.PointValue.Amount = "0.02" }, "point_value", false},
		{"contact", func(p *domain.Programme) { p.ContactEmail = "privacy2@coffee.example" }, "contact_email", false},
		{"complaint page", func(p *domain.Programme) { p.ComplaintURL = "https://www.datatilsynet.no/" }, "supervisory_authority", false},
		{"jurisdictions", func(p *domain.Programme) { p.Jurisdictions = []string{"NO"} }, "jurisdictions", false},
		{"version only", func(p *domain.Programme) { p.Version = 13 }, "programme_version", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			prev, next := terms(), terms()
			prev.Programme, next.Programme = programme(), programme()
			next.Programme.Version = 2
			tt.mutate(next.Programme)
			ch := domain.CompareTerms(1, prev, next, nil)
			if ch.Material != tt.material {
				t.Fatalf("material = %v (%v), want %v", ch.Material, ch.MaterialReasons, tt.material)
			}
			var fields []string
			for _, fc := range append(ch.Reward, ch.Wording...) {
				fields = append(fields, fc.Field)
				if strings.Contains(fc.From+fc.To, "version") {
					t.Errorf("%s compares version numbers, not content: %+v", fc.Field, fc)
				}
			}
			if got := strings.Join(fields, ","); got != tt.field {
				t.Fatalf("changes = %q, want %q", got, tt.field)
			}
		})
	}
}
