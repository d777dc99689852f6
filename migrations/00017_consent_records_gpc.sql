-- +goose Up
-- A consent event records whether the request that gave the consent carried
-- the Global Privacy Control signal (Sec-GPC: 1). Safe for a rolling deploy:
-- a constant default makes ADD COLUMN a catalogue-only change (no rewrite,
-- no long lock), and a release that knows nothing of the column keeps
-- inserting rows, which read as "no signal".
ALTER TABLE consent_events ADD COLUMN gpc boolean NOT NULL DEFAULT false;

-- The seal (00010) covers the new column: a row with the signal seals one
-- more field, 'gpc|', after the others; a row without it seals exactly the
-- text 00010 sealed. So every seal already written still verifies, a
-- release that never sets the column writes the seals it always wrote, and
-- flipping the flag either way afterwards no longer matches the seal.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION consent_event_seal(prev bytea, e consent_events) RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(coalesce(prev, '\x'::bytea) || convert_to(concat(
        e.id, '|', e.exchange_id, '|', e.contract_id, '|', length(e.terms_hash) || ':' || e.terms_hash, '|',
        length(e.kind) || ':' || e.kind, '|', length(e.actor) || ':' || e.actor, '|', extract(epoch FROM e.at), '|',
        CASE WHEN e.gpc THEN 'gpc|' ELSE '' END), 'UTF8'))
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION consent_event_seal(prev bytea, e consent_events) RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(coalesce(prev, '\x'::bytea) || convert_to(concat(
        e.id, '|', e.exchange_id, '|', e.contract_id, '|', length(e.terms_hash) || ':' || e.terms_hash, '|',
        length(e.kind) || ':' || e.kind, '|', length(e.actor) || ':' || e.actor, '|', extract(epoch FROM e.at), '|'), 'UTF8'))
$$;
-- +goose StatementEnd
ALTER TABLE consent_events DROP COLUMN gpc;
