-- bot store schema, SQLite flavour (times are RFC 3339 UTC text, which sorts chronologically;
-- booleans are 0/1 integers). Keep in step with ../postgres/0001_initial.sql.

CREATE TABLE clients (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    channel           TEXT NOT NULL,
    external_id       TEXT NOT NULL,
    name              TEXT,
    phone             TEXT,
    email             TEXT,
    consent_reminders INTEGER NOT NULL DEFAULT 0,
    consent_marketing INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    UNIQUE (channel, external_id)
);
CREATE INDEX clients_phone ON clients (phone);

CREATE TABLE conversations (
    client_id   INTEGER PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    state       TEXT NOT NULL,
    owner       TEXT NOT NULL CHECK (owner IN ('bot', 'human')),
    stage       TEXT NOT NULL,
    pilot_arm   TEXT CHECK (pilot_arm IN ('bot', 'manager')),
    turns       INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id   INTEGER NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    direction   TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    channel     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL,
    payload     TEXT,
    inbound_id  TEXT,
    reply_to    INTEGER REFERENCES messages (id) ON DELETE CASCADE,
    received_at TEXT,
    created_at  TEXT NOT NULL,
    sent_at     TEXT
);
CREATE INDEX messages_client ON messages (client_id, id);

CREATE TABLE bookings (
    id          TEXT PRIMARY KEY,
    client_id   INTEGER NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    service     TEXT NOT NULL,
    staff       TEXT NOT NULL,
    start_at    TEXT NOT NULL,
    end_at      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN
                    ('booked', 'confirmed', 'cancelled', 'rescheduled', 'completed', 'no_show')),
    sequence    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    CHECK (start_at < end_at)
);
CREATE INDEX bookings_staff_start ON bookings (staff, start_at);
CREATE INDEX bookings_client ON bookings (client_id);
CREATE INDEX bookings_end ON bookings (end_at);

-- One row per staff member: locked by a transaction that writes that member's schedule.
CREATE TABLE schedule_locks (
    staff       TEXT PRIMARY KEY
);

CREATE TABLE leads (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id     INTEGER NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    channel       TEXT NOT NULL,
    source        TEXT NOT NULL,
    service       TEXT,
    desired_at    TEXT,
    name          TEXT,
    phone         TEXT,
    email         TEXT,
    fields        TEXT NOT NULL,
    qualified_at  TEXT NOT NULL,
    crm_id        TEXT,
    crm_state     TEXT NOT NULL DEFAULT 'pending' CHECK (crm_state IN ('pending', 'synced', 'failed')),
    crm_synced_at TEXT,
    crm_error     TEXT
);
CREATE INDEX leads_client ON leads (client_id);

CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    client_id    INTEGER REFERENCES clients (id) ON DELETE CASCADE,
    booking_id   TEXT,
    payload      TEXT NOT NULL,
    due_at       TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT,
    last_error   TEXT,
    done_at      TEXT,
    created_at   TEXT NOT NULL
);
CREATE INDEX jobs_pending ON jobs (due_at) WHERE done_at IS NULL;
CREATE INDEX jobs_booking ON jobs (booking_id) WHERE booking_id IS NOT NULL;

CREATE TABLE processed_inbound (
    id           TEXT PRIMARY KEY,
    processed_at TEXT NOT NULL
);
