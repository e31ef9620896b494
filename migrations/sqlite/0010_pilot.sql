-- Pilots (bot pilot --share N): the bot serves a share of new clients, the managers the rest.
-- One row per pilot; a share change updates the row and keeps the seed, a new pilot gets a
-- new row. `bot serve` reads the row on every first message, so every replica sees a start,
-- a change or a stop at once.
CREATE TABLE pilots (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    seed        TEXT NOT NULL,
    share       REAL NOT NULL CHECK (share >= 0 AND share <= 100),
    existing    TEXT NOT NULL CHECK (existing IN ('bot', 'managers')),
    started_at  TEXT NOT NULL,
    ends_at     TEXT NOT NULL,
    changed_at  TEXT NOT NULL,
    stopped_at  TEXT
);
-- The first assignment of each client key, never rewritten: the share in force then, the
-- hash, the time. The unique key makes two replicas agree on a client who writes to both.
-- `linked_to` is set when the client's phone later showed the same person had an earlier key
-- in this pilot: the person keeps that key's arm (a multiple exposure when the arms differ).
CREATE TABLE pilot_assignments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    pilot_id     INTEGER NOT NULL REFERENCES pilots (id),
    client_key   TEXT NOT NULL,
    client_id    INTEGER REFERENCES clients (id),
    arm          TEXT NOT NULL CHECK (arm IN ('bot', 'managers')),
    h            REAL NOT NULL,
    share        REAL NOT NULL,
    assigned_at  TEXT NOT NULL,
    linked_to    TEXT,
    UNIQUE (pilot_id, client_key)
);
CREATE INDEX pilot_assignments_client ON pilot_assignments (client_id);
