-- +goose Up
-- Restriction (GDPR Art. 18) and objection (Art. 21).
--
-- A restriction is a period [started_at, ended_at) of the member's history;
-- ended_at is NULL while it is in force. Both times come from the database
-- clock, read under the member's row lock, the lock accrual takes too, so a
-- credit is computed either before a restriction starts or after, never
-- across it. At most one period is open per member. No foreign key, like
-- the other tables that name a member (00005, 00006): members are never
-- deleted, and erasure renames member_id to the pseudonym, keeping the
-- periods (times only) so that `quid verify` can still check that no credit
-- overlaps one.
CREATE TABLE member_restrictions (
    id         bigserial PRIMARY KEY,
    member_id  text NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at   timestamptz,
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE UNIQUE INDEX member_restrictions_one_open ON member_restrictions (member_id) WHERE ended_at IS NULL;
CREATE INDEX member_restrictions_member ON member_restrictions (member_id, started_at);

-- A member's standing objection to a purpose; deleted when lifted and on
-- erasure.
CREATE TABLE member_objections (
    member_id  text NOT NULL,
    purpose    text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (member_id, purpose)
);

-- Periods accrual settled without a credit because they overlapped a
-- restriction. The period grid stays anchored at join: the next period to
-- settle is credited_periods + skipped_periods, and credited_periods still
-- counts credits only. The default keeps a release that knows nothing of it
-- working during a rolling deploy.
ALTER TABLE exchanges ADD COLUMN skipped_periods integer NOT NULL DEFAULT 0 CHECK (skipped_periods >= 0);

-- A refused read attempt is logged too, with why (NULL: the read was served).
ALTER TABLE access_log ADD COLUMN refused text;

-- +goose Down
ALTER TABLE access_log DROP COLUMN refused;
ALTER TABLE exchanges DROP COLUMN skipped_periods;
DROP TABLE member_objections;
DROP TABLE member_restrictions;
