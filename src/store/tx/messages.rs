//! Messages, inbound and outgoing, with the times the KPIs read.

use super::{Tx, on};
use crate::domain::ClientRef;
use crate::store::reads::StoredMessage;
use crate::store::{StoreError, parse_channel};
use chrono::{DateTime, Utc};

/// (client, text, JSON payload, sent_at) of a stored reply.
pub(in crate::store) type OutgoingRow = (ClientRef, String, Option<String>, Option<DateTime<Utc>>);

/// A message row to insert.
pub(in crate::store) struct NewMessage<'a> {
    pub client_id: i64,
    /// `in` or `out`.
    pub direction: &'static str,
    pub channel: &'a str,
    /// `text`, `button`, `contact` (in) or `reply` (out).
    pub kind: &'static str,
    pub text: &'a str,
    /// JSON: the buttons of a reply, the contact card of an inbound.
    pub payload: Option<String>,
    pub inbound_id: Option<&'a str>,
    pub reply_to: Option<i64>,
    /// When the channel received it (inbound only).
    pub received_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The console operator who wrote a manager's message.
    pub operator: Option<&'a str>,
}

impl Tx {
    pub(in crate::store) async fn insert_message(
        &mut self,
        m: &NewMessage<'_>,
    ) -> Result<i64, StoreError> {
        const SQL: &str = "INSERT INTO messages (client_id, direction, channel, kind, text, \
             payload, inbound_id, reply_to, received_at, created_at, operator) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id";
        Ok(on!(self, |c| sqlx::query_scalar::<_, i64>(SQL)
            .bind(m.client_id)
            .bind(m.direction)
            .bind(m.channel)
            .bind(m.kind)
            .bind(m.text)
            .bind(&m.payload)
            .bind(m.inbound_id)
            .bind(m.reply_to)
            .bind(m.received_at)
            .bind(m.created_at)
            .bind(m.operator)
            .fetch_one(c)
            .await?))
    }

    /// What came of asking the LLM about inbound message `id`.
    pub(in crate::store) async fn set_message_llm(
        &mut self,
        id: i64,
        label: &str,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE messages SET llm = $2 WHERE id = $1";
        on!(self, |c| sqlx::query(SQL)
            .bind(id)
            .bind(label)
            .execute(c)
            .await?
            .rows_affected());
        Ok(())
    }

    pub(in crate::store) async fn mark_message_sent(
        &mut self,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE messages SET sent_at = $2 WHERE id = $1 AND direction = 'out'";
        self.update_one(SQL, id, at).await
    }

    /// Empty the texts (and button or contact payloads) of messages created before `before`:
    /// client messages, and replies already handed to their channel. The rows and their times
    /// stay for the KPIs. How many were emptied.
    pub(in crate::store) async fn forget_texts(
        &mut self,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        const SQL: &str = "UPDATE messages SET text = '', payload = NULL \
             WHERE created_at < $1 AND (direction = 'in' OR sent_at IS NOT NULL) \
             AND (text <> '' OR payload IS NOT NULL)";
        Ok(on!(self, |c| sqlx::query(SQL)
            .bind(before)
            .execute(c)
            .await?
            .rows_affected()))
    }

    /// The contact the bot keeps for a client: (name, phone).
    pub(in crate::store) async fn client_contact(
        &mut self,
        client_id: i64,
    ) -> Result<(Option<String>, Option<String>), StoreError> {
        const SQL: &str = "SELECT name, phone FROM clients WHERE id = $1";
        Ok(on!(self, |c| sqlx::query_as::<
            _,
            (Option<String>, Option<String>),
        >(SQL)
        .bind(client_id)
        .fetch_optional(c)
        .await?)
        .unwrap_or_default())
    }

    /// A reply with its client, for the outbox worker: (client, text, payload, sent_at).
    pub(in crate::store) async fn outgoing(
        &mut self,
        id: i64,
    ) -> Result<Option<OutgoingRow>, StoreError> {
        const SQL: &str = "SELECT c.channel, c.external_id, m.text, m.payload, m.sent_at \
             FROM messages m JOIN clients c ON c.id = m.client_id \
             WHERE m.id = $1 AND m.direction = 'out'";
        type Row = (
            String,
            String,
            String,
            Option<String>,
            Option<DateTime<Utc>>,
        );
        let row = on!(self, |c| sqlx::query_as::<_, Row>(SQL)
            .bind(id)
            .fetch_optional(c)
            .await?);
        row.map(|(channel, external, text, payload, sent_at)| {
            let client = ClientRef {
                channel: parse_channel(&channel)?,
                id: external,
            };
            Ok((client, text, payload, sent_at))
        })
        .transpose()
    }

    pub(in crate::store) async fn messages(
        &mut self,
        client_id: i64,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        const SQL: &str = "SELECT id, direction, kind, text, payload, inbound_id, reply_to, \
             received_at, created_at, sent_at, operator FROM messages WHERE client_id = $1 \
             ORDER BY id";
        type Row = (
            i64,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<DateTime<Utc>>,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
            Option<String>,
        );
        let rows = on!(self, |c| sqlx::query_as::<_, Row>(SQL)
            .bind(client_id)
            .fetch_all(c)
            .await?);
        Ok(rows
            .into_iter()
            .map(
                |(
                    id,
                    direction,
                    kind,
                    text,
                    payload,
                    inbound_id,
                    reply_to,
                    received_at,
                    created_at,
                    sent_at,
                    operator,
                )| StoredMessage {
                    id,
                    inbound: direction == "in",
                    kind,
                    text,
                    payload,
                    inbound_id,
                    reply_to,
                    received_at,
                    created_at,
                    sent_at,
                    operator,
                },
            )
            .collect())
    }
}
