-- bot store schema, PostgreSQL flavour (times are TIMESTAMPTZ). Keep in step with
-- ../sqlite/0001_initial.sql: same tables, columns and meaning.

CREATE TABLE clients (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel           TEXT NOT NULL,
    external_id       TEXT NOT NULL,
    name              TEXT,
    phone             TEXT,
    email             TEXT,
    consent_reminders BOOLEAN NOT NULL DEFAULT FALSE,
    consent_marketing BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (channel, external_id)
);
CREATE INDEX clients_phone ON clients (phone);

CREATE TABLE conversations (
    client_id   BIGINT PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    state       TEXT NOT NULL,
    owner       TEXT NOT NULL CHECK (owner IN ('bot', 'human')),
    stage       TEXT NOT NULL,
    pilot_arm   TEXT CHECK (pilot_arm IN ('bot', 'manager')),
    turns       BIGINT NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE messages (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id   BIGINT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    direction   TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    channel     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL,
    payload     TEXT,
    inbound_id  TEXT,
    reply_to    BIGINT REFERENCES messages (id) ON DELETE CASCADE,
    received_at TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL,
    sent_at     TIMESTAMPTZ
);
CREATE INDEX messages_client ON messages (client_id, id);

CREATE TABLE bookings (
    id          TEXT PRIMARY KEY,
    client_id   BIGINT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    service     TEXT NOT NULL,
    staff       TEXT NOT NULL,
    start_at    TIMESTAMPTZ NOT NULL,
    end_at      TIMESTAMPTZ NOT NULL,
    status      TEXT NOT NULL CHECK (status IN
                    ('booked', 'confirmed', 'cancelled', 'rescheduled', 'completed', 'no_show')),
    sequence    BIGINT NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
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
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id     BIGINT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    channel       TEXT NOT NULL,
    source        TEXT NOT NULL,
    service       TEXT,
    desired_at    TIMESTAMPTZ,
    name          TEXT,
    phone         TEXT,
    email         TEXT,
    fields        TEXT NOT NULL,
    qualified_at  TIMESTAMPTZ NOT NULL,
    crm_id        TEXT,
    crm_state     TEXT NOT NULL DEFAULT 'pending' CHECK (crm_state IN ('pending', 'synced', 'failed')),
    crm_synced_at TIMESTAMPTZ,
    crm_error     TEXT
);
CREATE INDEX leads_client ON leads (client_id);

CREATE TABLE jobs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         TEXT NOT NULL,
    client_id    BIGINT REFERENCES clients (id) ON DELETE CASCADE,
    booking_id   TEXT,
    payload      TEXT NOT NULL,
    due_at       TIMESTAMPTZ NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    locked_until TIMESTAMPTZ,
    last_error   TEXT,
    done_at      TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX jobs_pending ON jobs (due_at) WHERE done_at IS NULL;
CREATE INDEX jobs_booking ON jobs (booking_id) WHERE booking_id IS NOT NULL;

CREATE TABLE processed_inbound (
    id           TEXT PRIMARY KEY,
    processed_at TIMESTAMPTZ NOT NULL
);

