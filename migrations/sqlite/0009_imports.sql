-- Chats imported from exports (bot import): the baseline the KPIs compare the live bot with.
-- A chat is one client on one channel; its messages carry a stable key, so importing the same
-- file again, or a newer export of the same chat, adds only what is new.
CREATE TABLE import_chats (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    label       TEXT NOT NULL,
    format      TEXT NOT NULL,
    channel     TEXT NOT NULL,
    chat_key    TEXT NOT NULL,
    name        TEXT,
    phone       TEXT,
    created_at  TEXT NOT NULL,
    UNIQUE (channel, chat_key)
);
CREATE TABLE import_messages (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id   INTEGER NOT NULL REFERENCES import_chats (id) ON DELETE CASCADE,
    msg_key   TEXT NOT NULL UNIQUE,
    side      TEXT NOT NULL,
    at        TEXT NOT NULL,
    text      TEXT NOT NULL,
    phone     TEXT
);
CREATE INDEX import_messages_chat ON import_messages (chat_id, at);
