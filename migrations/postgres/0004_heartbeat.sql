-- Readiness: `/readyz` writes this one row in a write transaction, proving that the database
-- takes writes now (not read-only, not full, no writer stuck holding the lock).
CREATE TABLE heartbeat (
    id      BIGINT PRIMARY KEY,
    beat_at TIMESTAMPTZ NOT NULL
);
