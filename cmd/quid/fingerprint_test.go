package main

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// fingerprint is every table's row count and a digest of its rows, for
// proving that a refused request wrote nothing. Tables whose rows a refusal
// may legitimately touch are not there: schema bookkeeping only.
type fingerprint map[string]string

// dbFingerprint reads every table of the public schema (new tables included
// automatically) in one transaction, so it is a consistent snapshot.
func (a *api) dbFingerprint() fingerprint {
	a.t.Helper()
	var tables []string
	if err := a.svc.db.Raw(`SELECT quote_ident(tablename) FROM pg_tables
		WHERE schemaname = 'public' AND tablename <> 'goose_db_version' ORDER BY 1`).Scan(&tables).Error; err != nil {
		a.t.Fatalf("list tables: %v", err)
	}
	var parts []string
	for _, tb := range tables {
		parts = append(parts, fmt.Sprintf(`SELECT %s::text AS name, count(*)::text || ':' ||
			coalesce(md5(string_agg(md5(t::text), ',' ORDER BY md5(t::text))), '') AS digest FROM %s t`,
			quoteLiteral(tb), tb))
	}
	var rows []struct{ Name, Digest string }
	if err := a.svc.db.Raw(strings.Join(parts, " UNION ALL ")).Scan(&rows).Error; err != nil {
		a.t.Fatalf("fingerprint: %v", err)
	}
	fp := fingerprint{}
	for _, r := range rows {
		fp[r.Name] = r.Digest
	}
	return fp
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// diff names the tables whose rows differ between two fingerprints.
func (fp fingerprint) diff(after fingerprint) []string {
	var changed []string
	for name, d := range fp {
		if after[name] != d {
			changed = append(changed, name)
		}
	}
	for name := range after {
		if _, ok := fp[name]; !ok {
			changed = append(changed, name)
		}
	}
	sort.Strings(changed)
	return changed
}

// unchangedBy fails the test when fn changed any row of any table.
//
//lint:ignore U1000 shared harness for the authorization and hostile-input tables of issue 9, which call it
func (a *api) unchangedBy(what string, fn func()) {
	a.t.Helper()
	before := a.dbFingerprint()
	fn()
	if changed := before.diff(a.dbFingerprint()); len(changed) > 0 {
		a.t.Errorf("%s changed tables %v", what, changed)
	}
}

func TestFingerprintSeesEveryWrite(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	w := a.world()
	before := a.dbFingerprint()
	if len(before) < 10 {
		t.Fatalf("fingerprint saw only %d tables", len(before))
	}
	if d := before.diff(a.dbFingerprint()); len(d) > 0 {
		t.Fatalf("two fingerprints of an idle database differ: %v", d)
	}
	expect(t, a.do(req{Method: "PATCH", Path: "/v1/contracts/" + w.draft, Token: w.f.marketer, Body: map[string]any{"title": "Renamed"}}), 200)
	if d := before.diff(a.dbFingerprint()); len(d) == 0 || !strings.Contains(strings.Join(d, " "), "contracts") {
		t.Fatalf("a title change was not seen: %v", d)
	}
}
