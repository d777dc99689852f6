-- +goose Up
-- Lifted objections are kept so that the member's export shows every
-- objection they made, and when they withdrew it (GDPR Art. 15 and 20:
-- the record of their own choices). Standing objections stay in
-- member_objections, which every join and the database guards of 00016
-- read unchanged, so a release that knows nothing of this table keeps
-- working during a rolling deploy (it only forgets to record a lift).
-- Erasure deletes both, like the standing objections before.
CREATE TABLE lifted_objections (
    id          bigserial PRIMARY KEY,
    member_id   text NOT NULL,
    purpose     text NOT NULL,
    objected_at timestamptz NOT NULL,
    lifted_at   timestamptz NOT NULL,
    CHECK (lifted_at >= objected_at)
);
CREATE INDEX lifted_objections_member ON lifted_objections (member_id, objected_at);

-- +goose Down
DROP TABLE lifted_objections;
