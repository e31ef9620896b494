//! Imported chats (`bot import`): one write transaction per file, so a file that turns out
//! malformed halfway leaves nothing behind; chats are found again by (channel, chat key) and
//! messages by their stable key, so importing the same export again adds nothing and a newer
//! export of the same chat adds only what is new. Messages are written in batches of
//! multi-row inserts (a million-message export does not mean a million round trips).

use super::tx::{Tx, on};
use super::{Store, StoreError};
use crate::kpi::Side;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// A chat as an export names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportChat {
    /// `telegram`, `whatsapp`, `instagram` or `csv`.
    pub format: &'static str,
    pub channel: String,
    /// What identifies the chat within its channel (a Telegram chat id, a WhatsApp title…).
    pub chat_key: String,
    pub name: Option<String>,
    /// The client's phone when the export gives it (a WhatsApp contact shown as a number).
    pub phone: Option<String>,
}

/// One message of an imported chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportMessage {
    /// Stable across re-imports: a Telegram `(chat id, message id)`, else a content key.
    pub key: String,
    pub side: Side,
    pub at: DateTime<Utc>,
    pub text: String,
    /// A phone from a shared contact card.
    pub phone: Option<String>,
}

/// What an import wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportCounts {
    pub chats_new: u64,
    pub messages_new: u64,
    /// Messages already stored (a re-import, an overlapping export).
    pub messages_known: u64,
}

/// Rows per multi-row insert (6 parameters each).
const BATCH: usize = 200;

/// An import in progress: one transaction, committed by [`ImportWriter::commit`] and rolled
/// back when dropped (or by `--dry-run`).
pub struct ImportWriter {
    tx: Tx,
    label: String,
    now: DateTime<Utc>,
    chats: HashMap<(String, String), i64>,
    pending: Vec<(i64, ImportMessage)>,
    counts: ImportCounts,
}

impl Store {
    /// Start importing under `label` (the file name unless `--label`).
    pub async fn begin_import(
        &self,
        label: &str,
        now: DateTime<Utc>,
    ) -> Result<ImportWriter, StoreError> {
        Ok(ImportWriter {
            tx: self.write().await?,
            label: label.to_string(),
            now,
            chats: HashMap::new(),
            pending: Vec::new(),
            counts: ImportCounts::default(),
        })
    }
}

impl ImportWriter {
    /// The stored id of `chat`, created on first sight.
    pub async fn chat(&mut self, chat: &ImportChat) -> Result<i64, StoreError> {
        let key = (chat.channel.clone(), chat.chat_key.clone());
        if let Some(id) = self.chats.get(&key) {
            return Ok(*id);
        }
        const INSERT: &str = "INSERT INTO import_chats \
             (label, format, channel, chat_key, name, phone, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (channel, chat_key) DO NOTHING";
        const SELECT: &str = "SELECT id FROM import_chats WHERE channel = $1 AND chat_key = $2";
        let (inserted, id) = on!(&mut self.tx, |c| {
            let n = sqlx::query(INSERT)
                .bind(&self.label)
                .bind(chat.format)
                .bind(&chat.channel)
                .bind(&chat.chat_key)
                .bind(&chat.name)
                .bind(&chat.phone)
                .bind(self.now)
                .execute(&mut *c)
                .await?
                .rows_affected();
            let id = sqlx::query_scalar::<_, i64>(SELECT)
                .bind(&chat.channel)
                .bind(&chat.chat_key)
                .fetch_one(c)
                .await?;
            (n, id)
        });
        self.counts.chats_new += inserted;
        self.chats.insert(key, id);
        Ok(id)
    }

    /// Queue a message of chat `chat_id` (written in batches).
    pub async fn message(&mut self, chat_id: i64, m: ImportMessage) -> Result<(), StoreError> {
        self.pending.push((chat_id, m));
        if self.pending.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending);
        let mut sql = String::from(
            "INSERT INTO import_messages (chat_id, msg_key, side, at, text, phone) VALUES ",
        );
        // SQLite binds plain `?` by position; its `$N` makes every bind look the name up.
        let postgres = self.tx.is_postgres();
        for i in 0..rows.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            if postgres {
                let b = i * 6;
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6
                ));
            } else {
                sql.push_str("(?, ?, ?, ?, ?, ?)");
            }
        }
        sql.push_str(" ON CONFLICT (msg_key) DO NOTHING");
        let inserted = on!(&mut self.tx, |c| {
            // Only numbered placeholders are spliced in; every value is bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for (chat_id, m) in &rows {
                q = q
                    .bind(*chat_id)
                    .bind(&m.key)
                    .bind(side_str(m.side))
                    .bind(m.at)
                    .bind(&m.text)
                    .bind(&m.phone);
            }
            q.execute(c).await?.rows_affected()
        });
        self.counts.messages_new += inserted;
        self.counts.messages_known += rows.len() as u64 - inserted;
        Ok(())
    }

    /// Write what is queued and commit: the whole file is in.
    pub async fn commit(mut self) -> Result<ImportCounts, StoreError> {
        self.flush().await?;
        self.tx.commit().await?;
        Ok(self.counts)
    }

    /// What would have been written, then nothing is (`--dry-run`).
    pub async fn rollback(mut self) -> Result<ImportCounts, StoreError> {
        self.flush().await?;
        self.tx.rollback().await?;
        Ok(self.counts)
    }
}

pub(crate) fn side_str(side: Side) -> &'static str {
    match side {
        Side::Client => "client",
        Side::Business => "business",
    }
}
