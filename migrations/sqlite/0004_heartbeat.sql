-- Readiness: `/readyz` writes this one row in a write transaction, proving that the database
-- takes writes now (not read-only, not full, no writer stuck holding the lock).
CREATE TABLE heartbeat (
    id      INTEGER PRIMARY KEY,
    beat_at TEXT NOT NULL
);
