-- +goose Up
-- The points liability report (GET /v1/reports/points-liability) reads the
-- ledger entries written since the start of its period, by time, and works
-- back from the members' balances: this index makes a report of a recent
-- month read that month, not the whole ledger.
CREATE INDEX ledger_entries_created ON ledger_entries (created_at);

-- +goose Down
DROP INDEX ledger_entries_created;
