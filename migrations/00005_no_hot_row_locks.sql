-- +goose Up
-- Every join referenced the same few rows through foreign keys: its contract
-- version (exchanges.contract_id) and each recipient (webhook_outbox.
-- recipient_id). PostgreSQL checks a foreign key by taking FOR KEY SHARE on
-- the referenced row, so all concurrent joins on a contract locked the same
-- tuple, and shared locks held by several transactions at once become
-- MultiXacts, rewritten on every new locker. Those two references are kept
-- sound another way: the rows they point at can never be deleted or
-- renumbered (below), and joins only write ids they read in the same
-- transaction.
ALTER TABLE exchanges DROP CONSTRAINT exchanges_contract_id_fkey;
ALTER TABLE webhook_outbox DROP CONSTRAINT webhook_outbox_recipient_id_fkey;

-- +goose StatementBegin
CREATE FUNCTION refuse_delete_or_renumber() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.id IS DISTINCT FROM OLD.id THEN
        RAISE EXCEPTION '% rows are never deleted or renumbered', TG_TABLE_NAME USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER contracts_kept BEFORE UPDATE OF id OR DELETE ON contracts
    FOR EACH ROW EXECUTE FUNCTION refuse_delete_or_renumber();
CREATE TRIGGER recipients_kept BEFORE UPDATE OF id OR DELETE ON recipients
    FOR EACH ROW EXECUTE FUNCTION refuse_delete_or_renumber();

-- +goose Down
DROP TRIGGER recipients_kept ON recipients;
DROP TRIGGER contracts_kept ON contracts;
DROP FUNCTION refuse_delete_or_renumber;
ALTER TABLE webhook_outbox ADD FOREIGN KEY (recipient_id) REFERENCES recipients (id);
ALTER TABLE exchanges ADD FOREIGN KEY (contract_id) REFERENCES contracts (id);
