-- +goose Up
CREATE TABLE recipients (
    id                 uuid PRIMARY KEY,
    name               text NOT NULL,
    kind               text NOT NULL CHECK (kind IN ('first_party', 'third_party')),
    country            char(2) NOT NULL,
    privacy_policy_url text NOT NULL,
    created_at         timestamptz NOT NULL
);

CREATE TABLE contracts (
    id                uuid PRIMARY KEY,
    family_id         uuid NOT NULL,
    version           integer NOT NULL CHECK (version >= 1),
    status            text NOT NULL CHECK (status IN ('draft', 'published', 'retired')),
    -- The editable terms as Quid stores them; frozen once published.
    terms             jsonb NOT NULL,
    -- The exact bytes that were hashed at publication (text, not jsonb,
    -- because jsonb would reorder keys and break the hash).
    canonical_terms   text,
    terms_hash        text,
    -- Reward and durations as intervals for set-based accrual in SQL.
    join_bonus        bigint NOT NULL CHECK (join_bonus >= 0),
    vesting           interval NOT NULL DEFAULT '0',
    points_per_period bigint NOT NULL CHECK (points_per_period >= 0),
    reward_period     interval,
    -- The shortest the period can be (a month counts 28 days), to bound
    -- how many periods can fit in a window without scanning candidates.
    reward_period_min_seconds double precision,
    max_periods       integer,
    consent_duration  interval,
    retention         interval NOT NULL,
    created_at        timestamptz NOT NULL,
    published_at      timestamptz,
    retired_at        timestamptz,
    UNIQUE (family_id, version),
    CHECK ((status = 'draft') = (terms_hash IS NULL))
);
-- One joinable version and one draft per family at a time.
CREATE UNIQUE INDEX contracts_one_published ON contracts (family_id) WHERE status = 'published';
CREATE UNIQUE INDEX contracts_one_draft ON contracts (family_id) WHERE status = 'draft';
CREATE INDEX contracts_offers ON contracts (published_at DESC, id DESC) WHERE status = 'published';
CREATE INDEX contracts_by_status ON contracts (status, created_at DESC, id DESC);

-- Published terms never change: the database refuses it too.
-- +goose StatementBegin
CREATE FUNCTION contracts_freeze_published() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'draft' AND (NEW.terms IS DISTINCT FROM OLD.terms
        OR NEW.canonical_terms IS DISTINCT FROM OLD.canonical_terms
        OR NEW.terms_hash IS DISTINCT FROM OLD.terms_hash) THEN
        RAISE EXCEPTION 'published contract % is immutable', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER contracts_freeze_published BEFORE UPDATE ON contracts
    FOR EACH ROW EXECUTE FUNCTION contracts_freeze_published();

-- +goose Down
DROP TABLE contracts;
DROP FUNCTION contracts_freeze_published;
DROP TABLE recipients;
