-- Pilots (bot pilot --share N): the bot serves a share of new clients, the managers the rest.
-- One row per pilot; a share change updates the row and keeps the seed, a new pilot gets a
-- new row. `bot serve` reads the row on every first message, so every replica sees a start,
-- a change or a stop at once.
CREATE TABLE pilots (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seed        TEXT NOT NULL,
    share       DOUBLE PRECISION NOT NULL CHECK (share >= 0 AND share <= 100),
    existing    TEXT NOT NULL CHECK (existing IN ('bot', 'managers')),
    started_at  TIMESTAMPTZ NOT NULL,
    ends_at     TIMESTAMPTZ NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL,
    stopped_at  TIMESTAMPTZ
);
-- The first assignment of each client key, never rewritten: the share in force then, the
-- hash, the time. The unique key makes two replicas agree on a client who writes to both.
-- `linked_to` is set when the client's phone later showed the same person had an earlier key
-- in this pilot: the person keeps that key's arm (a multiple exposure when the arms differ).
CREATE TABLE pilot_assignments (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pilot_id     BIGINT NOT NULL REFERENCES pilots (id),
    client_key   TEXT NOT NULL,
    client_id    BIGINT REFERENCES clients (id),
    arm          TEXT NOT NULL CHECK (arm IN ('bot', 'managers')),
    h            DOUBLE PRECISION NOT NULL,
    share        DOUBLE PRECISION NOT NULL,
    assigned_at  TIMESTAMPTZ NOT NULL,
    linked_to    TEXT,
    UNIQUE (pilot_id, client_key)
);
CREATE INDEX pilot_assignments_client ON pilot_assignments (client_id);
