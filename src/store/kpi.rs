//! What `bot report` reads: every chat with messages in a time window as a `kpi::ChatLog` —
//! live conversations (their messages, the bookings made and hand-offs) and imported chats
//! alike — and the live bookings for the no-show and returning-client figures.

use super::tx::{Tx, on};
use super::{Store, StoreError};
use crate::kpi::{BookingFact, ChatLog, LogMessage, Side};
use crate::pilot::Arm;
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
             COALESCE(m.received_at, m.created_at), m.text, m.kind, m.payload, m.llm \
             FROM messages m JOIN clients c ON c.id = m.client_id \
             WHERE m.created_at >= $1 AND m.created_at < $2 ORDER BY m.client_id, m.id";
        const BOOKED: &str = "SELECT client_id, created_at FROM bookings \
             WHERE created_at >= $1 AND created_at < $2";
        const HANDOFFS: &str = "SELECT client_id, created_at FROM jobs \
             WHERE kind = 'handoff' AND created_at >= $1 AND created_at < $2";
        // The latest assignment of each client wins (a client may be in several pilots).
        const ARMS: &str = "SELECT client_id, arm FROM pilot_assignments \
             WHERE client_id IS NOT NULL ORDER BY id";
        // Imports are the bulk (a million messages): one row per chat, its messages packed as
        // `id US ms US side US phone US text` records joined by RS, so the database does the
        // gathering instead of a million row hand-overs.
        const IMPORTED_SQLITE: &str = "SELECT c.id, c.label, c.channel, \
             COALESCE(c.name, c.chat_key), (c.phone IS NOT NULL OR c.channel = 'whatsapp'), \
             group_concat(m.id || char(31) || \
             CAST(round((julianday(m.at) - 2440587.5) * 86400000.0) AS INTEGER) || char(31) || \
             m.side || char(31) || COALESCE(m.phone, '') || char(31) || m.text, char(30)) \
             FROM import_messages m JOIN import_chats c ON c.id = m.chat_id \
             WHERE m.at >= $1 AND m.at < $2 GROUP BY c.id";
        const IMPORTED_POSTGRES: &str = "SELECT c.id, c.label, c.channel, \
             COALESCE(c.name, c.chat_key), (c.phone IS NOT NULL OR c.channel = 'whatsapp'), \
             string_agg(m.id::text || chr(31) || \
             round(extract(epoch FROM m.at) * 1000)::bigint::text || chr(31) || \
             m.side || chr(31) || COALESCE(m.phone, '') || chr(31) || m.text, chr(30)) \
             FROM import_messages m JOIN import_chats c ON c.id = m.chat_id \
             WHERE m.at >= $1 AND m.at < $2 GROUP BY c.id";
        type LiveRow = (
            i64,
            String,
            String,
            String,
            DateTime<Utc>,
            String,
            String,
            Option<String>,
            Option<String>,
        );
        type ImportRow = (i64, String, String, String, bool, String);
        let mut tx = self.read().await?;
        let imported_sql = tx.pick(IMPORTED_SQLITE, IMPORTED_POSTGRES);
        let (live, booked, handoffs, arms, imported) = on!(&mut tx, |c| {
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
            let arms = sqlx::query_as::<_, (i64, String)>(ARMS)
                .fetch_all(&mut *c)
                .await?;
            let imported = sqlx::query_as::<_, ImportRow>(imported_sql)
                .bind(from)
                .bind(to)
                .fetch_all(c)
                .await?;
            (live, booked, handoffs, arms, imported)
        });
        tx.commit().await?;

        let mut chats: BTreeMap<(bool, i64), ChatLog> = BTreeMap::new();
        for (client, channel, external, direction, at, text, kind, payload, llm) in live {
            let chat = chats.entry((true, client)).or_insert_with(|| ChatLog {
                source: "live".into(),
                phone_known: channel == "whatsapp",
                channel: channel.clone(),
                chat: format!("{channel}:{external}"),
                live: true,
                client_id: Some(client),
                ..ChatLog::default()
            });
            let side = if direction == "in" {
                Side::Client
            } else {
                Side::Business
            };
            if let Some(outcome) = llm {
                chat.llm_asked.push((at, outcome == "used"));
            }
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
        for (client, arm) in arms {
            if let Some(chat) = chats.get_mut(&(true, client)) {
                chat.arm = match arm.as_str() {
                    "bot" => Some(Arm::Bot),
                    "managers" => Some(Arm::Managers),
                    _ => None,
                };
            }
        }
        for (id, label, channel, name, phone_known, packed) in imported {
            let mut numbered: Vec<(i64, LogMessage)> =
                packed.split('\u{1e}').filter_map(unpack).collect();
            // In time order; the file's order among equal times.
            numbered.sort_by_key(|(n, m)| (m.at, *n));
            chats.insert(
                (false, id),
                ChatLog {
                    source: label,
                    channel,
                    chat: name,
                    phone_known,
                    messages: numbered.into_iter().map(|(_, m)| m).collect(),
                    ..ChatLog::default()
                },
            );
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

/// One packed imported message: `id US ms US side US phone US text`.
fn unpack(record: &str) -> Option<(i64, LogMessage)> {
    let mut parts = record.splitn(5, '\u{1f}');
    let id = parts.next()?.parse().ok()?;
    let at = DateTime::from_timestamp_millis(parts.next()?.parse().ok()?)?;
    let side = if parts.next()? == "client" {
        Side::Client
    } else {
        Side::Business
    };
    let phone = Some(parts.next()?)
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    let text = parts.next()?.to_string();
    Some((
        id,
        LogMessage {
            at,
            side,
            text,
            phone,
        },
    ))
}

/// The phone of a stored contact card (`{"phone": "+7…", …}`).
fn contact_phone(payload: Option<&str>) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(payload?).ok()?;
    v.get("phone")?.as_str().map(str::to_string)
}
