package postgres_test

import (
	"strings"
	"testing"
)

// The database itself refuses what the rules forbid, whatever code runs
// against it: history is append-only, published terms are frozen, and the
// members, exchanges, contracts and recipients that the join's rows point at
// are never deleted or renumbered (those references carry no foreign key,
// see migrations 00005 and 00006).
func TestTheSchemaRefusesRewritingHistory(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.publish(offer{bonus: 100, vesting: "PT1H"})
	ex := w.join(w.enrol("alice"), c)
	tests := []struct {
		name, sql string
		args      []any
	}{
		{"ledger entries are not updated", `UPDATE ledger_entries SET points = points * 2`, nil},
		{"ledger entries are not deleted", `DELETE FROM ledger_entries`, nil},
		{"consent events are not deleted", `DELETE FROM consent_events`, nil},
		{"published terms are not changed", `UPDATE contracts SET terms = jsonb_set(terms, '{title}', '"sneaky"') WHERE id = ?`, []any{c.ID()}},
		{"contracts are not deleted", `DELETE FROM contracts WHERE id = ?`, []any{c.ID()}},
		{"contracts are not renumbered", `UPDATE contracts SET id = gen_random_uuid() WHERE id = ?`, []any{c.ID()}},
		{"recipients are not deleted", `DELETE FROM recipients WHERE id = ?`, []any{w.brand.ID}},
		{"recipients are not renumbered", `UPDATE recipients SET id = gen_random_uuid() WHERE id = ?`, []any{w.brand.ID}},
		{"an exchange status is one of the known ones", `UPDATE exchanges SET status = 'paused' WHERE id = ?`, []any{ex.ID()}},
		{"a bonus state is one of the known ones", `UPDATE exchanges SET bonus_state = 'doubled' WHERE id = ?`, []any{ex.ID()}},
		{"a consent event kind is one of the known ones", `INSERT INTO consent_events (exchange_id, member_id, contract_id, terms_hash, kind, actor, at)
			SELECT id, member_id, contract_id, terms_hash, 'shrugged', 'member', now() FROM exchanges WHERE id = ?`, []any{ex.ID()}},
		{"a ledger entry kind is one of the known ones", `INSERT INTO ledger_entries (member_id, kind, points, created_at) VALUES ('alice', 'gift', 5, now())`, nil},
		{"an expiry expires exactly what its member's lots past their time hold", `INSERT INTO ledger_entries (member_id, kind, points, created_at) VALUES ('alice', 'expiry', -5, now())`, nil},
		{"a redemption takes no more than its member's unexpired lots hold", `INSERT INTO ledger_entries (member_id, kind, points, created_at) VALUES ('alice', 'redemption', -5, now())`, nil},
		{"a reversal reverses a redemption of its member", `INSERT INTO ledger_entries (member_id, kind, points, reverses, created_at) VALUES ('alice', 'reversal', 5, gen_random_uuid(), now())`, nil},
		{"members are not deleted", `DELETE FROM members WHERE id = 'alice'`, nil},
		{"members are not renumbered", `UPDATE members SET id = 'mallory' WHERE id = 'alice'`, nil},
		{"exchanges are not deleted", `DELETE FROM exchanges WHERE id = ?`, []any{ex.ID()}},
		{"exchanges are not renumbered", `UPDATE exchanges SET id = gen_random_uuid() WHERE id = ?`, []any{ex.ID()}},
	}
	for _, tt := range tests {
		err := w.db.Exec(tt.sql, tt.args...).Error
		if err == nil || !strings.Contains(err.Error(), "SQLSTATE 23") {
			t.Errorf("%s: got %v, want an integrity violation", tt.name, err)
		}
	}
	if w.exchange(ex.ID()).ContractID() != c.ID() {
		t.Fatal("the exchange lost its contract")
	}
}
