-- +goose Up
-- The reward catalogue (issue 14): rewards marketers offer for points, and
-- the members' redemptions of them.
--
-- Stock is counted down, never derived: stock is how many units the
-- marketer made (NULL: unlimited) and stock_left how many are still to be
-- had. A redemption takes one unit in its own transaction (the reward row
-- is locked, then stock_left - 1; the CHECK makes a negative stock
-- impossible whatever a writer does), a cancellation gives it back, and a
-- marketer's change of stock keeps stock - stock_left equal to the units
-- held by active redemptions (quid verify checks it).
CREATE TABLE rewards (
    id               uuid PRIMARY KEY,
    name             text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description      text NOT NULL CHECK (char_length(description) <= 2000),
    image_url        text CHECK (image_url LIKE 'https://%' AND char_length(image_url) <= 2000),
    cost             bigint NOT NULL CHECK (cost > 0),
    stock            bigint CHECK (stock >= 0),
    stock_left       bigint CHECK (stock_left >= 0 AND stock_left <= stock),
    per_member_limit bigint CHECK (per_member_limit > 0),
    valid_from       timestamptz,
    valid_until      timestamptz,
    retired_at       timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    CONSTRAINT rewards_stock_counted CHECK ((stock IS NULL) = (stock_left IS NULL)),
    CONSTRAINT rewards_valid_window CHECK (valid_until > valid_from)
);
-- GET /v1/rewards: the rewards not retired, newest first.
CREATE INDEX rewards_listed ON rewards (created_at DESC, id DESC) WHERE retired_at IS NULL;

-- A redemption of a reward. Its member is its ledger entry's (as for
-- points lots): erasure, which rewrites ledger_entries.member_id only,
-- leaves it as it is, and the code says nothing about the member.
-- The code is what the member shows to claim the reward: 128 random bits
-- (crypto/rand) in unpadded RFC 4648 base32, unique.
CREATE TABLE reward_redemptions (
    id           uuid PRIMARY KEY,
    reward_id    uuid NOT NULL REFERENCES rewards (id),
    entry_id     uuid NOT NULL UNIQUE REFERENCES ledger_entries (id),
    code         text NOT NULL UNIQUE CHECK (code ~ '^[A-Z2-7]{26}$'),
    points       bigint NOT NULL CHECK (points > 0),
    status       text NOT NULL CHECK (status IN ('active', 'cancelled')),
    created_at   timestamptz NOT NULL,
    cancelled_at timestamptz,
    reversal_id  uuid UNIQUE REFERENCES ledger_entries (id),
    CONSTRAINT reward_redemptions_cancelled CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL AND reversal_id IS NOT NULL))
);
-- A member's redemptions of a reward still active (the per-member limit),
-- and a reward's (its stock).
CREATE INDEX reward_redemptions_active ON reward_redemptions (reward_id) WHERE status = 'active';

-- +goose Down
DROP TABLE reward_redemptions;
DROP TABLE rewards;
