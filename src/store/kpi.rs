//! What `bot report` reads: every chat with messages in a time window as a `kpi::ChatLog` —
//! live conversations (their messages, the bookings made and hand-offs) and imported chats
//! alike — and the live bookings for the no-show and returning-client figures.

use super::tx::{Tx, on};
use super::{Store, StoreError};
use crate::kpi::{BookingFact, ChatLog, LogMessage, Side};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

impl Store {
    /// The chats with a message in [from, to), live and imported, each with all its messages
    /// in that window, in time order.
    pub async fn chat_logs(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ChatLog>, StoreError> {
        const LIVE: &str = "SELECT m.client_id, c.channel, c.external_id, m.direction, \
             COALESCE(m.received_at, m.created_at), m.text, m.kind, m.payload \
             FROM messages m JOIN clients c ON c.id = m.client_id \
             WHERE m.created_at >= $1 AND m.created_at < $2 ORDER BY m.client_id, m.id";
        const BOOKED: &str = "SELECT client_id, created_at FROM bookings \
             WHERE created_at >= $1 AND created_at < $2";
        const HANDOFFS: &str = "SELECT client_id, created_at FROM jobs \
             WHERE kind = 'handoff' AND created_at >= $1 AND created_at < $2";
        const IMPORTED: &str = "SELECT m.chat_id, c.label, c.channel, \
             COALESCE(c.name, c.chat_key), \
             (c.phone IS NOT NULL OR c.channel = 'whatsapp'), m.side, m.at, m.text, m.phone \
             FROM import_messages m JOIN import_chats c ON c.id = m.chat_id \
             WHERE m.at >= $1 AND m.at < $2 ORDER BY m.chat_id, m.at, m.id";
        type LiveRow = (
            i64,
            String,
            String,
            String,
            DateTime<Utc>,
            String,
            String,
            Option<String>,
        );
        type ImportRow = (
            i64,
            String,
            String,
            String,
            bool,
            String,
            DateTime<Utc>,
            String,
            Option<String>,
        );
        let mut tx = self.read().await?;
        let (live, booked, handoffs, imported) = on!(&mut tx, |c| {
            let live = sqlx::query_as::<_, LiveRow>(LIVE)
                .bind(from)
                .bind(to)
                .fetch_all(&mut *c)
                .await?;
            let booked = sqlx::query_as::<_, (i64, DateTime<Utc>)>(BOOKED)
                .bind(from)
                .bind(to)
                .fetch_all(&mut *c)
                .await?;
            let handoffs = sqlx::query_as::<_, (Option<i64>, DateTime<Utc>)>(HANDOFFS)
                .bind(from)
                .bind(to)
                .fetch_all(&mut *c)
                .await?;
            let imported = sqlx::query_as::<_, ImportRow>(IMPORTED)
                .bind(from)
                .bind(to)
                .fetch_all(c)
                .await?;
            (live, booked, handoffs, imported)
        });
        tx.commit().await?;

        let mut chats: BTreeMap<(bool, i64), ChatLog> = BTreeMap::new();
        for (client, channel, external, direction, at, text, kind, payload) in live {
            let chat = chats.entry((true, client)).or_insert_with(|| ChatLog {
                source: "live".into(),
                phone_known: channel == "whatsapp",
                channel: channel.clone(),
                chat: format!("{channel}:{external}"),
                live: true,
                ..ChatLog::default()
            });
            let side = if direction == "in" {
                Side::Client
            } else {
                Side::Business
            };
            let phone = (kind == "contact")
                .then(|| contact_phone(payload.as_deref()))
                .flatten();
            chat.messages.push(LogMessage {
                at,
                side,
                text,
                phone,
            });
        }
        for (client, at) in booked {
            if let Some(chat) = chats.get_mut(&(true, client)) {
                chat.bookings_made.push(at);
            }
        }
        for (client, at) in handoffs {
            if let Some(chat) = client.and_then(|c| chats.get_mut(&(true, c))) {
                chat.handoffs.push(at);
            }
        }
        for (id, label, channel, name, phone_known, side, at, text, phone) in imported {
            let chat = chats.entry((false, id)).or_insert_with(|| ChatLog {
                source: label,
                channel,
                chat: name,
                phone_known,
                ..ChatLog::default()
            });
            chat.messages.push(LogMessage {
                at,
                side: if side == "client" {
                    Side::Client
                } else {
                    Side::Business
                },
                text,
                phone,
            });
        }
        let mut out: Vec<ChatLog> = chats.into_values().collect();
        for chat in &mut out {
            // Live messages are stored in arrival order; a channel's own times may differ.
            chat.messages.sort_by_key(|m| m.at);
        }
        Ok(out)
    }

    /// Every live booking (any status), for no-shows and returning clients.
    pub async fn booking_facts(&self) -> Result<Vec<BookingFact>, StoreError> {
        const SQL: &str = "SELECT c.external_id, c.channel, b.start_at, b.end_at, b.created_at, \
             b.status FROM bookings b JOIN clients c ON c.id = b.client_id";
        type Row = (
            String,
            String,
            DateTime<Utc>,
            DateTime<Utc>,
            DateTime<Utc>,
            String,
        );
        let mut tx = self.read().await?;
        let rows = on!(&mut tx, |c| sqlx::query_as::<_, Row>(SQL)
            .fetch_all(c)
            .await?);
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(
                |(client, channel, start, end, created, status)| BookingFact {
                    client,
                    channel,
                    start,
                    end,
                    created,
                    status,
                },
            )
            .collect())
    }

    /// The labels of the imports, with their chat counts.
    pub async fn import_labels(&self) -> Result<Vec<(String, i64)>, StoreError> {
        const SQL: &str = "SELECT label, COUNT(*) FROM import_chats GROUP BY label ORDER BY label";
        let mut tx = self.read().await?;
        let rows = on!(&mut tx, |c| sqlx::query_as::<_, (String, i64)>(SQL)
            .fetch_all(c)
            .await?);
        tx.commit().await?;
        Ok(rows)
    }
}

/// The phone of a stored contact card (`{"phone": "+7…", …}`).
fn contact_phone(payload: Option<&str>) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(payload?).ok()?;
    v.get("phone")?.as_str().map(str::to_string)
}
