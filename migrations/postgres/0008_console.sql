-- The managers' console: login sessions (the cookie's token is kept only as its SHA-256),
-- the operator who wrote a manager's message, and a note about a client.
CREATE TABLE console_sessions (
    token_hash  TEXT PRIMARY KEY,
    operator_id BIGINT NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
ALTER TABLE messages ADD COLUMN operator TEXT;
ALTER TABLE clients ADD COLUMN note TEXT;
