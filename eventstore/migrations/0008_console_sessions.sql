-- Sessions of the web console. The cookie carries a random session id; only its SHA-256 is kept, with the token
-- whose principal it signs in as. A session ends when signed out (`ended_at`), after `idle` seconds unused, at
-- its absolute expiry, or when its token is revoked.
CREATE TABLE console_sessions (
    session_hash  text PRIMARY KEY,
    token_hash    text NOT NULL REFERENCES api_tokens (token_hash) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    CONSTRAINT console_sessions_expiry CHECK (expires_at > created_at)
);
CREATE INDEX console_sessions_token ON console_sessions (token_hash) WHERE ended_at IS NULL;
