-- +goose Up
-- A join inserts an exchange, its consent event and its bonus entry, and each
-- of their foreign keys ran a key-share lookup of its parent per row: four
-- per join, about a tenth of PostgreSQL's time on the join (perf). The
-- parents are the member row the join has already locked and the exchange it
-- has just inserted, and neither table ever loses or renumbers a row
-- (erasure wipes a member's attributes; the row and its history stay), which
-- the triggers below make the database enforce, as migration 00005 does for
-- contracts and recipients.
ALTER TABLE exchanges DROP CONSTRAINT exchanges_member_id_fkey;
ALTER TABLE consent_events DROP CONSTRAINT consent_events_exchange_id_fkey;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_member_id_fkey;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_exchange_id_fkey;
CREATE TRIGGER members_kept BEFORE UPDATE OF id OR DELETE ON members
    FOR EACH ROW EXECUTE FUNCTION refuse_delete_or_renumber();
CREATE TRIGGER exchanges_kept BEFORE UPDATE OF id OR DELETE ON exchanges
    FOR EACH ROW EXECUTE FUNCTION refuse_delete_or_renumber();

-- +goose Down
DROP TRIGGER exchanges_kept ON exchanges;
DROP TRIGGER members_kept ON members;
ALTER TABLE ledger_entries ADD FOREIGN KEY (exchange_id) REFERENCES exchanges (id);
ALTER TABLE ledger_entries ADD FOREIGN KEY (member_id) REFERENCES members (id);
ALTER TABLE consent_events ADD FOREIGN KEY (exchange_id) REFERENCES exchanges (id);
ALTER TABLE exchanges ADD FOREIGN KEY (member_id) REFERENCES members (id);
