-- +goose Up
-- Keys that sign consent receipts. Kept forever so that every receipt ever
-- issued stays verifiable after a restart or a key rotation.
CREATE TABLE signing_keys (
    kid         text PRIMARY KEY,
    private_key bytea NOT NULL,
    public_key  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    active      boolean NOT NULL DEFAULT true
);

-- +goose Down
DROP TABLE signing_keys;
