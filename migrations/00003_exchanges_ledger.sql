-- +goose Up
-- A member is identified by the identity provider's subject.
CREATE TABLE members (
    id         text PRIMARY KEY,
    attributes jsonb NOT NULL DEFAULT '{}',
    available  bigint NOT NULL DEFAULT 0 CHECK (available >= 0),
    pending    bigint NOT NULL DEFAULT 0 CHECK (pending >= 0),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    erased_at  timestamptz
);

-- What changed in a profile and when; never the values.
CREATE TABLE member_events (
    id           bigserial PRIMARY KEY,
    member_id    text NOT NULL REFERENCES members (id),
    kind         text NOT NULL CHECK (kind IN ('enrolled', 'attributes_changed', 'erased')),
    changed_keys text[] NOT NULL DEFAULT '{}',
    at           timestamptz NOT NULL
);
CREATE INDEX member_events_member ON member_events (member_id, at);

CREATE TABLE exchanges (
    id               uuid PRIMARY KEY,
    member_id        text NOT NULL REFERENCES members (id),
    contract_id      uuid NOT NULL REFERENCES contracts (id),
    family_id        uuid NOT NULL,
    terms_hash       text NOT NULL,
    status           text NOT NULL CHECK (status IN ('active', 'cancelled', 'expired', 'terminated', 'superseded', 'erased')),
    joined_at        timestamptz NOT NULL,
    expires_at       timestamptz,
    ended_at         timestamptz,
    bonus_points     bigint NOT NULL DEFAULT 0 CHECK (bonus_points >= 0),
    bonus_state      text NOT NULL CHECK (bonus_state IN ('none', 'pending', 'vested', 'voided', 'transferred')),
    bonus_vests_at   timestamptz,
    credited_periods integer NOT NULL DEFAULT 0 CHECK (credited_periods >= 0),
    -- End of the next period to credit; NULL once no further period can be
    -- earned (no periodic reward, cap reached, or consent ended before it).
    next_period_end  timestamptz,
    receipt_id       uuid NOT NULL,
    receipt          text NOT NULL,
    CHECK ((status = 'active') = (ended_at IS NULL))
);
-- One active exchange per member and contract family: concurrent duplicate
-- joins cannot both succeed.
CREATE UNIQUE INDEX exchanges_one_active ON exchanges (member_id, family_id) WHERE status = 'active';
CREATE INDEX exchanges_member ON exchanges (member_id, joined_at DESC, id DESC);
CREATE INDEX exchanges_contract ON exchanges (contract_id, status);
CREATE INDEX exchanges_due_period ON exchanges (next_period_end) WHERE next_period_end IS NOT NULL;
CREATE INDEX exchanges_due_vesting ON exchanges (bonus_vests_at) WHERE bonus_state = 'pending';
CREATE INDEX exchanges_due_expiry ON exchanges (expires_at) WHERE status = 'active' AND expires_at IS NOT NULL;

-- Append-only consent log.
CREATE TABLE consent_events (
    id          bigserial PRIMARY KEY,
    exchange_id uuid NOT NULL REFERENCES exchanges (id),
    member_id   text NOT NULL,
    contract_id uuid NOT NULL,
    terms_hash  text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('joined', 'cancelled', 'expired', 'terminated', 'superseded', 'erased')),
    actor       text NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX consent_events_member ON consent_events (member_id, id);

-- Append-only points ledger. Balances on members move in the same
-- transaction as the entries that explain them.
CREATE TABLE ledger_entries (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    member_id    text NOT NULL REFERENCES members (id),
    kind         text NOT NULL CHECK (kind IN ('bonus_pending', 'bonus_vested', 'bonus_voided', 'period_credit', 'redemption', 'reversal')),
    points       bigint NOT NULL,
    exchange_id  uuid REFERENCES exchanges (id),
    contract_id  uuid,
    family_id    uuid,
    terms_hash   text,
    period_start timestamptz,
    period_end   timestamptz,
    reference    text,
    created_at   timestamptz NOT NULL,
    CHECK (kind <> 'period_credit' OR (exchange_id IS NOT NULL AND period_start < period_end AND points > 0))
);
-- Exactly once: each period of an exchange is credited at most once, and a
-- join bonus is paid once per member and contract family, ever.
CREATE UNIQUE INDEX ledger_one_credit_per_period ON ledger_entries (exchange_id, period_start) WHERE kind = 'period_credit';
CREATE UNIQUE INDEX ledger_one_bonus_per_family ON ledger_entries (member_id, family_id) WHERE kind = 'bonus_pending';
CREATE UNIQUE INDEX ledger_one_bonus_outcome ON ledger_entries (member_id, family_id) WHERE kind IN ('bonus_vested', 'bonus_voided');
CREATE INDEX ledger_member ON ledger_entries (member_id, created_at DESC, id DESC);
-- Points earned per exchange: period credits come from the unique index
-- above; this one covers vested bonuses without costing every join an
-- index insert.
CREATE INDEX ledger_vested_by_exchange ON ledger_entries (exchange_id) WHERE kind = 'bonus_vested';

-- +goose StatementBegin
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'check_violation';
END $$;
-- +goose StatementEnd
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER consent_events_append_only BEFORE UPDATE OR DELETE ON consent_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Responses kept for Idempotency-Key replays.
CREATE TABLE idempotency_keys (
    member_id    text NOT NULL,
    scope        text NOT NULL,
    key          text NOT NULL,
    request_hash text NOT NULL,
    response     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (member_id, scope, key)
);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE ledger_entries;
DROP TABLE consent_events;
DROP FUNCTION refuse_change;
DROP TABLE exchanges;
DROP TABLE member_events;
DROP TABLE members;
