//! What the store gives back to readers: bookings with their calendar bookkeeping (for the
//! iCalendar export and the `.ics` feed), messages with timestamps (response-time KPIs),
//! leads with their CRM state, conversations, and row counts (`bot db status`, tests); and
//! `put_conversation`, the one way to set a conversation's state from outside a turn.

use super::{Store, StoreError};
use crate::domain::{Booking, BookingId, ClientRef, Contact, HandoffReason, ServiceId};
use crate::engine::Conversation;
use chrono::{DateTime, Utc};

/// A booking as stored, with what a calendar needs to track its changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBooking {
    pub booking: Booking,
    pub client_name: Option<String>,
    /// Incremented on every change after creation (iCalendar `SEQUENCE`).
    pub sequence: i64,
    pub updated_at: DateTime<Utc>,
    pub client_id: i64,
}

impl StoredBooking {
    /// This booking as an iCalendar event.
    pub fn ics_entry(&self) -> crate::calendar::ical::IcsEntry<'_> {
        crate::calendar::ical::IcsEntry {
            booking: &self.booking,
            sequence: self.sequence,
            updated_at: self.updated_at,
            client_name: self.client_name.as_deref(),
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: i64,
    /// From the client (true) or from the bot.
    pub inbound: bool,
    /// `text`, `button`, `contact` (inbound) or `reply`.
    pub kind: String,
    pub text: String,
    /// JSON: a reply's buttons, an inbound contact card.
    pub payload: Option<String>,
    pub inbound_id: Option<String>,
    /// The inbound message a reply answers.
    pub reply_to: Option<i64>,
    /// When the channel received an inbound message.
    pub received_at: Option<DateTime<Utc>>,
    /// When the bot stored it (for a reply: when it was produced).
    pub created_at: DateTime<Utc>,
    /// When a reply was handed to the channel (set by the outbox worker).
    pub sent_at: Option<DateTime<Utc>>,
    /// The console operator who wrote a manager's message (None: the bot, the client, or a
    /// manager answering in the Telegram group).
    pub operator: Option<String>,
}

/// A reply waiting for (or done with) delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: i64,
    pub client: ClientRef,
    pub text: String,
    /// The `Reply` as JSON (buttons, contact request).
    pub payload: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// A client with their contact and recent messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCard {
    pub client: ClientRef,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub messages: Vec<StoredMessage>,
}

/// A qualified lead as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLead {
    pub id: i64,
    pub client: ClientRef,
    pub service: Option<ServiceId>,
    pub desired_at: Option<DateTime<Utc>>,
    pub contact: Contact,
    pub fields: Vec<String>,
    pub qualified_at: DateTime<Utc>,
    /// `pending`, `synced` or `failed`.
    pub crm_state: String,
    /// The campaign of the client's deep-link start (UTM_SOURCE).
    pub came_from: Option<String>,
}

/// A conversation handed to a human and not given back to the bot yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingHandoff {
    pub client: ClientRef,
    pub name: Option<String>,
    pub phone: Option<String>,
    /// Why the bot handed over (`complaint`, `human`, `misunderstanding`, `medical`…).
    pub reason: Option<HandoffReason>,
    /// When the conversation was handed over.
    pub since: DateTime<Utc>,
    /// The client's last message.
    pub last_inbound_at: Option<DateTime<Utc>>,
    /// A manager's last answer.
    pub last_manager_at: Option<DateTime<Utc>>,
    /// The text of the client's last message.
    pub last_message: Option<String>,
    /// No managers' channel was set up: the client waits for a call back (the bot keeps
    /// answering meanwhile).
    pub callback: bool,
}

impl WaitingHandoff {
    /// The client's last message has no manager's answer after it.
    pub fn unanswered(&self) -> bool {
        match (self.last_inbound_at, self.last_manager_at) {
            (Some(client), Some(manager)) => client > manager,
            (_, None) => true,
            (None, Some(_)) => false,
        }
    }
}

/// Row counts of the main tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub clients: i64,
    pub conversations: i64,
    pub messages: i64,
    pub bookings: i64,
    pub active_bookings: i64,
    pub leads: i64,
    pub jobs: i64,
    pub pending_jobs: i64,
    pub processed_inbound: i64,
}

impl Store {
    pub async fn counts(&self) -> Result<Counts, StoreError> {
        let mut tx = self.read().await?;
        let counts = tx.counts().await?;
        tx.commit().await?;
        Ok(counts)
    }

    pub async fn booking(&self, id: &BookingId) -> Result<Option<StoredBooking>, StoreError> {
        let mut tx = self.read().await?;
        let b = tx.booking(id).await?;
        tx.commit().await?;
        Ok(b)
    }

    /// Bookings of any status starting in [from, to), earliest first (the iCalendar export).
    pub async fn bookings_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StoredBooking>, StoreError> {
        let mut tx = self.read().await?;
        let b = tx.bookings_between(from, to).await?;
        tx.commit().await?;
        Ok(b)
    }

    /// The stored state of a client's conversation, if they ever wrote.
    pub async fn conversation(
        &self,
        client: &ClientRef,
    ) -> Result<Option<Conversation>, StoreError> {
        let mut tx = self.read().await?;
        let conv = match tx.find_client(client).await? {
            Some(id) => tx.conversation(id).await?,
            None => None,
        };
        tx.commit().await?;
        Ok(conv)
    }

    /// Replace a conversation's state (a log import, a manager tool, a test's set-up).
    pub async fn put_conversation(
        &self,
        conv: &Conversation,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let client_id = tx.client_id(&conv.client, now).await?;
        tx.lock_conversation(client_id, &conv.client, now).await?;
        tx.save_conversation(client_id, conv, now).await?;
        tx.update_contact(client_id, &conv.contact).await?;
        self.commit(tx).await
    }

    /// Every message of a client's conversation, in order.
    pub async fn messages(&self, client: &ClientRef) -> Result<Vec<StoredMessage>, StoreError> {
        let mut tx = self.read().await?;
        let messages = match tx.find_client(client).await? {
            Some(id) => tx.messages(id).await?,
            None => Vec::new(),
        };
        tx.commit().await?;
        Ok(messages)
    }

    /// A stored reply and whom it goes to (the outbox worker sends it). None when `id` is not
    /// a reply.
    pub async fn outgoing(&self, id: i64) -> Result<Option<Outgoing>, StoreError> {
        let mut tx = self.read().await?;
        let row = tx.outgoing(id).await?;
        tx.commit().await?;
        Ok(row.map(|(client, text, payload, sent_at)| Outgoing {
            id,
            client,
            text,
            payload,
            sent_at,
        }))
    }

    /// Who a client is and their last `last` messages (the managers' hand-off notice).
    pub async fn client_card(&self, client_id: i64, last: usize) -> Result<ClientCard, StoreError> {
        let mut tx = self.read().await?;
        let client = tx.client_ref(client_id).await?;
        let (name, phone) = tx.client_contact(client_id).await?;
        let mut messages = tx.messages(client_id).await?;
        tx.commit().await?;
        let skip = messages.len().saturating_sub(last);
        messages.drain(..skip);
        Ok(ClientCard {
            client,
            name,
            phone,
            messages,
        })
    }

    /// Conversations waiting for a human, the longest-waiting first.
    pub async fn handoffs(&self) -> Result<Vec<WaitingHandoff>, StoreError> {
        let mut tx = self.read().await?;
        let mut waiting = tx.handoffs().await?;
        tx.commit().await?;
        waiting.sort_by_key(|w| w.since);
        Ok(waiting)
    }

    pub async fn leads(&self) -> Result<Vec<StoredLead>, StoreError> {
        let mut tx = self.read().await?;
        let leads = tx.leads().await?;
        tx.commit().await?;
        Ok(leads)
    }

    pub async fn lead(&self, id: i64) -> Result<Option<StoredLead>, StoreError> {
        let mut tx = self.read().await?;
        let lead = tx.lead(id).await?;
        tx.commit().await?;
        Ok(lead)
    }

    /// The most recent lead of the client with store id `client_id` (a job's `client_id`).
    pub async fn latest_lead_of(&self, client_id: i64) -> Result<Option<StoredLead>, StoreError> {
        let mut tx = self.read().await?;
        let lead = tx.latest_lead_of(client_id).await?;
        tx.commit().await?;
        Ok(lead)
    }
}
