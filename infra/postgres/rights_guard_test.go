package postgres_test

import (
	"strings"
	"testing"
)

// The previous release, still running during a rolling deploy, knows
// nothing of restriction and objection. The database refuses what it would
// write against them (00016), so it fails closed: no credit for a
// restricted period, no served read of a restricted member, no join of an
// objected purpose, and restriction history that cannot be rewritten.
func TestRightsHoldAgainstAReleaseThatDoesNotKnowThem(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.publish(offer{perPeriod: 10, period: "PT1H"})
	p := w.enrol("alice")
	e := w.join(p, c)
	refused := func(what, sql string, args ...any) {
		t.Helper()
		err := w.db.Exec(sql, args...).Error
		if err == nil || !strings.Contains(err.Error(), "23514") {
			t.Errorf("%s: %v, want a check_violation", what, err)
		}
	}
	must := func(sql string, args ...any) {
		t.Helper()
		if err := w.db.Exec(sql, args...).Error; err != nil {
			t.Fatal(err)
		}
	}
	must(`INSERT INTO member_restrictions (member_id, started_at) VALUES ('alice', now() - interval '1 hour')`)
	refused("a period credit inside an open restriction", `INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, period_start, period_end, created_at)
		SELECT member_id, 'period_credit', 10, id, contract_id, family_id, terms_hash, now() - interval '30 minutes', now(), now() FROM exchanges WHERE id = ?`, e.ID())
	refused("a served partner read of a restricted member", `INSERT INTO access_log (member_id, accessor_role, accessor_id, accessor_name, purpose, categories, request_id, at)
		VALUES ('alice', 'partner', ?, 'Brand', 'loyalty.personalised_offers', '{location.city}', 'r1', now())`, w.brand.ID)
	must(`INSERT INTO access_log (member_id, accessor_role, accessor_id, accessor_name, purpose, categories, request_id, at, refused)
		VALUES ('alice', 'partner', ?, 'Brand', 'loyalty.personalised_offers', '{}', 'r2', now(), 'processing-restricted')`, w.brand.ID)
	refused("moving a restriction's start", `UPDATE member_restrictions SET started_at = started_at + interval '1 minute' WHERE member_id = 'alice'`)
	refused("deleting a restriction", `DELETE FROM member_restrictions WHERE member_id = 'alice'`)
	must(`UPDATE member_restrictions SET ended_at = now() WHERE member_id = 'alice' AND ended_at IS NULL`)
	refused("reopening or moving a closed restriction", `UPDATE member_restrictions SET ended_at = NULL WHERE member_id = 'alice'`)
	refused("a credit for a period that overlapped a closed restriction", `INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, period_start, period_end, created_at)
		SELECT member_id, 'period_credit', 10, id, contract_id, family_id, terms_hash, now() - interval '2 hours', now() - interval '1 hour', now() FROM exchanges WHERE id = ?`, e.ID())

	other := w.publish(offer{bonus: 5})
	must(`INSERT INTO member_objections (member_id, purpose, created_at) VALUES ('alice', 'loyalty.personalised_offers', now())`)
	refused("a join of a contract using an objected purpose", `INSERT INTO exchanges (id, member_id, contract_id, family_id, terms_hash, status, joined_at, bonus_points, bonus_state, credited_periods, receipt_id, receipt)
		SELECT gen_random_uuid(), 'alice', id, family_id, terms_hash, 'active', now(), 0, 'none', 0, gen_random_uuid(), '' FROM contracts WHERE id = ?`, other.ID())
}
