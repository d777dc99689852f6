-- +goose Up
-- The web preference centre (issue 13) signs people in with OpenID Connect
-- and keeps its sessions here, server side, so that every replica knows
-- every session, logout ends a session everywhere at once, and erasure ends
-- a member's sessions in its own transaction. The browser holds only a
-- random token; the database only its SHA-256, so a read of this table
-- cannot be replayed as a cookie.
CREATE TABLE web_sessions (
    token_hash  bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    -- the ID token's sub: the member id for members, the same as the API's
    subject     text NOT NULL CHECK (subject <> ''),
    role        text NOT NULL CHECK (role IN ('member', 'marketer', 'partner', 'admin')),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL CHECK (expires_at > created_at)
);
CREATE INDEX web_sessions_subject ON web_sessions (subject);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);

-- A sign-in in progress between the redirect to the identity provider and
-- its callback (OpenID Connect Core §3.1.2): the state's SHA-256 keys the
-- PKCE code verifier (RFC 7636) and the nonce, each usable once.
CREATE TABLE web_sign_ins (
    state_hash    bytea PRIMARY KEY CHECK (octet_length(state_hash) = 32),
    code_verifier text NOT NULL,
    nonce         text NOT NULL,
    return_to     text NOT NULL,
    expires_at    timestamptz NOT NULL
);
CREATE INDEX web_sign_ins_expires ON web_sign_ins (expires_at);

-- +goose Down
DROP TABLE web_sign_ins;
DROP TABLE web_sessions;
