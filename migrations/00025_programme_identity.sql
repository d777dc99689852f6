-- +goose Up
-- The programme identity: who runs the programme and answers for the data
-- (the controller, its contacts and data-protection officer), where a
-- member complains, what a point is worth and where the programme is
-- offered. Each PUT /v1/programme adds a version; none is changed or
-- deleted, since published contracts name the version they were published
-- under (frozen into their terms and hash). A new table only: a release
-- that does not know it never reads it, and publishing under it needs the
-- new release anyway.
CREATE TABLE programme_versions (
    version               integer PRIMARY KEY CHECK (version > 0),
    legal_name            text NOT NULL,
    address               text NOT NULL,
    contact_email         text NOT NULL,
    dpo_contact           text NOT NULL,
    authority_name        text NOT NULL,
    complaint_url         text NOT NULL,
    point_currency        text NOT NULL CHECK (point_currency ~ '^[A-Z]{3}$'),
    -- A decimal string, exact: numeric keeps every digit given.
    point_amount          numeric NOT NULL CHECK (point_amount > 0),
    jurisdictions         text[] NOT NULL CHECK (cardinality(jurisdictions) > 0),
    created_at            timestamptz NOT NULL
);
-- The reward in money of drafts and of versions published before identities
-- existed follows the current point value: a new version changes cached
-- offers and statements, so it empties the response caches like a contract
-- change does (00009).
CREATE TRIGGER programme_versions_public_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON programme_versions
    FOR EACH STATEMENT EXECUTE FUNCTION notify_public_change();

-- +goose Down
DROP TABLE programme_versions;
