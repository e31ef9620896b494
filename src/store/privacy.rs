//! Personal data under 152-FZ: everything stored about a person, and erasing it on request.
//!
//! [`COLUMNS`] classifies every column of every table — what it holds and what an erase does
//! to it — and a test compares it with the live schema of both backends, so a new column
//! holding names or phones cannot slip past the erase. [`Store::erase_clients`] runs in one
//! transaction: the person's messages keep their rows and times (the KPIs count them) but lose
//! their texts; the conversation state is deleted; leads lose name, phone, e-mail and campaign;
//! pending jobs are dropped; the client row keeps only an anonymous id; bookings stay as
//! anonymous counts. What was pushed to Bitrix24 is listed for the operator to erase there.

use super::{Store, StoreError};
use crate::domain::{ChannelKind, ClientRef};
use chrono::{DateTime, Utc};

/// What a column holds, and what an erase does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// No personal data (ids, times, states, counts).
    Plain,
    /// Personal data: emptied (NULL or '') by an erase.
    Erased,
    /// Identifies the person (a channel's id of them): replaced by an anonymous one.
    Replaced,
    /// The row is deleted by an erase (its whole content is about the person).
    RowDeleted,
}

/// Every column of every table, classified.
pub const COLUMNS: &[(&str, &str, Column)] = {
    use Column::{Erased, Plain, Replaced, RowDeleted};
    &[
        ("clients", "id", Plain),
        ("clients", "channel", Plain),
        ("clients", "external_id", Replaced),
        ("clients", "name", Erased),
        ("clients", "phone", Erased),
        ("clients", "email", Erased),
        ("clients", "consent_reminders", Erased),
        ("clients", "consent_marketing", Erased),
        ("clients", "created_at", Plain),
        // What a manager wrote about the client in the console.
        ("clients", "note", Erased),
        ("conversations", "client_id", RowDeleted),
        ("conversations", "state", RowDeleted),
        ("conversations", "owner", RowDeleted),
        ("conversations", "stage", RowDeleted),
        ("conversations", "pilot_arm", RowDeleted),
        ("conversations", "turns", RowDeleted),
        ("conversations", "created_at", RowDeleted),
        ("conversations", "updated_at", RowDeleted),
        ("conversations", "callback_since", RowDeleted),
        ("messages", "id", Plain),
        ("messages", "client_id", Plain),
        ("messages", "direction", Plain),
        ("messages", "channel", Plain),
        ("messages", "kind", Plain),
        ("messages", "text", Erased),
        ("messages", "payload", Erased),
        ("messages", "inbound_id", Erased),
        ("messages", "reply_to", Plain),
        // What came of asking the LLM about the message (`used`, `timeout`…).
        ("messages", "llm", Plain),
        ("messages", "received_at", Plain),
        ("messages", "created_at", Plain),
        ("messages", "sent_at", Plain),
        // The console operator who wrote a manager's message (staff, not the client).
        ("messages", "operator", Plain),
        ("bookings", "id", Plain),
        ("bookings", "client_id", Plain),
        ("bookings", "service", Plain),
        ("bookings", "staff", Plain),
        ("bookings", "start_at", Plain),
        ("bookings", "end_at", Plain),
        ("bookings", "status", Plain),
        ("bookings", "sequence", Plain),
        ("bookings", "created_at", Plain),
        ("bookings", "updated_at", Plain),
        ("schedule_locks", "staff", Plain),
        ("leads", "id", Plain),
        ("leads", "client_id", Plain),
        ("leads", "channel", Plain),
        ("leads", "source", Plain),
        ("leads", "service", Plain),
        ("leads", "desired_at", Plain),
        ("leads", "name", Erased),
        ("leads", "phone", Erased),
        ("leads", "email", Erased),
        ("leads", "fields", Plain),
        ("leads", "qualified_at", Plain),
        ("leads", "crm_id", Plain),
        ("leads", "crm_state", Plain),
        ("leads", "crm_synced_at", Plain),
        ("leads", "crm_error", Erased),
        ("leads", "came_from", Erased),
        // Payloads hold ids and kinds only (typed in `model.rs`); pending jobs of the person
        // are deleted, and errors (which may quote a channel's answer) emptied.
        ("jobs", "id", Plain),
        ("jobs", "kind", Plain),
        ("jobs", "client_id", Plain),
        ("jobs", "booking_id", Plain),
        ("jobs", "payload", Plain),
        ("jobs", "due_at", Plain),
        ("jobs", "attempts", Plain),
        ("jobs", "locked_until", Plain),
        ("jobs", "last_error", Erased),
        ("jobs", "done_at", Plain),
        ("jobs", "created_at", Plain),
        ("jobs", "send_started_at", Plain),
        // Dedup ids: a web id holds the client id, a MAX id the user id.
        ("processed_inbound", "id", RowDeleted),
        ("processed_inbound", "processed_at", RowDeleted),
        ("crm_status", "entity", Plain),
        ("crm_status", "crm_id", Plain),
        ("crm_status", "lead_id", Plain),
        ("crm_status", "client_id", Plain),
        ("crm_status", "crm_lead_id", Plain),
        ("crm_status", "status_id", Plain),
        ("crm_status", "semantic", Plain),
        ("crm_status", "modified_at", Plain),
        ("crm_status", "changed_at", Plain),
        ("crm_status", "seen_at", Plain),
        ("crm_cursors", "entity", Plain),
        ("crm_cursors", "modified_at", Plain),
        ("crm_cursors", "run_at", Plain),
        // The console's staff, not clients: a client's erase does not touch them.
        ("operators", "id", Plain),
        ("operators", "name", Plain),
        ("operators", "password_hash", Plain),
        ("operators", "created_at", Plain),
        ("operators", "updated_at", Plain),
        ("console_sessions", "token_hash", Plain),
        ("console_sessions", "operator_id", Plain),
        ("console_sessions", "csrf", Plain),
        ("console_sessions", "created_at", Plain),
        ("console_sessions", "expires_at", Plain),
        // Imported chats (`bot import`): names, phones and texts of people who wrote to the
        // business before the bot; erased by phone or by `import:CHAT_KEY` like live ones.
        ("import_chats", "id", Plain),
        ("import_chats", "label", Plain),
        ("import_chats", "format", Plain),
        ("import_chats", "channel", Plain),
        ("import_chats", "chat_key", Replaced),
        ("import_chats", "name", Erased),
        ("import_chats", "phone", Erased),
        ("import_chats", "created_at", Plain),
        ("import_messages", "id", Plain),
        ("import_messages", "chat_id", Plain),
        ("import_messages", "msg_key", Replaced),
        ("import_messages", "side", Plain),
        ("import_messages", "at", Plain),
        ("import_messages", "text", Erased),
        ("import_messages", "phone", Erased),
        ("pilots", "id", Plain),
        ("pilots", "seed", Plain),
        ("pilots", "share", Plain),
        ("pilots", "existing", Plain),
        ("pilots", "started_at", Plain),
        ("pilots", "ends_at", Plain),
        ("pilots", "changed_at", Plain),
        ("pilots", "stopped_at", Plain),
        // A pilot's assignments keep their arm, hash, share and time (the pilot's counts);
        // the key (a phone or a channel's id) is replaced and the link to the client dropped.
        ("pilot_assignments", "id", Plain),
        ("pilot_assignments", "pilot_id", Plain),
        ("pilot_assignments", "client_key", Replaced),
        ("pilot_assignments", "client_id", Erased),
        ("pilot_assignments", "arm", Plain),
        ("pilot_assignments", "h", Plain),
        ("pilot_assignments", "share", Plain),
        ("pilot_assignments", "assigned_at", Plain),
        ("pilot_assignments", "linked_to", Replaced),
        ("heartbeat", "id", Plain),
        ("heartbeat", "beat_at", Plain),
    ]
};

/// Whom to look up or erase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Person {
    /// Every client with this phone (E.164), on any channel.
    Phone(String),
    /// One client as a channel knows them.
    Client(ClientRef),
}

impl Person {
    /// `+79131234567` (any common spelling of a Russian number) or `CHANNEL:ID`.
    pub fn parse(s: &str) -> Result<Person, String> {
        if let Some((channel, id)) = s.split_once(':')
            && let Some(channel) = ChannelKind::parse(channel)
        {
            if id.is_empty() {
                return Err(format!("{s:?}: the id after {channel}: is empty"));
            }
            return Ok(Person::Client(ClientRef {
                channel,
                id: id.to_string(),
            }));
        }
        match crate::nlu::phone::find(s, None).e164 {
            Some(e164) => Ok(Person::Phone(e164)),
            None => Err(format!(
                "{s:?} is neither a phone number nor CHANNEL:ID (telegram:123, web:…, max:…, vk:…)"
            )),
        }
    }
}

/// What an erase did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Erased {
    pub clients: usize,
    pub messages: u64,
    pub leads: u64,
    pub jobs_dropped: u64,
    /// Bitrix24 leads to erase there too (their ids).
    pub crm_leads: Vec<String>,
    /// Imported chats (`bot import`) of the person: the chat with their phone or channel id, or
    /// a contact card with their phone.
    pub imported_chats: u64,
    /// Pilot assignments (`bot pilot`) of the person: their key replaced, the arm kept.
    pub pilot_assignments: u64,
}

impl Store {
    /// The client ids of `person`.
    pub async fn find_person(&self, person: &Person) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.read().await?;
        let ids = tx.person_ids(person).await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// Erase `person` in one transaction (see the module's description). None when the store
    /// knows no such person.
    pub async fn erase_person(
        &self,
        person: &Person,
        now: DateTime<Utc>,
    ) -> Result<Option<Erased>, StoreError> {
        let mut tx = self.write().await?;
        let ids = tx.person_ids(person).await?;
        let imported_chats = tx.erase_imports(person, now).await?;
        if ids.is_empty() && imported_chats == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let mut erased = Erased {
            clients: ids.len(),
            imported_chats,
            ..Erased::default()
        };
        for id in ids {
            let done = tx.erase_client(id, now).await?;
            erased.messages += done.messages;
            erased.leads += done.leads;
            erased.jobs_dropped += done.jobs_dropped;
            erased.pilot_assignments += done.pilot_assignments;
            erased.crm_leads.extend(done.crm_leads);
        }
        self.commit(tx).await?;
        Ok(Some(erased))
    }
}
