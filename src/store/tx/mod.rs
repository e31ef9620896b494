//! A transaction on either backend, and every statement the store runs: the one place that
//! knows the tables, except the CRM status tables, which `crm.rs` owns. Statements are written
//! once in portable SQL and run through the typed driver of each backend by the `on!` macro
//! (each arm is type-checked for its database); the few that must differ are chosen with
//! `Tx::pick`. The statements live beside their tables: `clients.rs` (clients and
//! conversations), `messages.rs`, `bookings.rs`, `leads.rs` (and hand-offs), `jobs.rs`,
//! `stats.rs`.

mod bookings;
mod clients;
mod erase;
mod jobs;
mod leads;
mod messages;
mod stats;

pub(super) use jobs::NewJob;
pub(super) use messages::NewMessage;

use super::StoreError;
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Sqlite, Transaction};

pub(super) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Run `$body` with `$c` bound to the transaction's connection, on whichever backend it is.
macro_rules! on {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}
pub(super) use on;

impl Tx {
    pub(super) fn is_postgres(&self) -> bool {
        matches!(self, Tx::Postgres(_))
    }

    /// The statement for this backend.
    pub(super) fn pick(&self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        if self.is_postgres() { postgres } else { sqlite }
    }

    pub(super) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    pub(super) async fn rollback(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(t) => t.rollback().await?,
            Tx::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }

    /// Write the heartbeat row: proof that this database takes writes now.
    pub(super) async fn beat(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO heartbeat (id, beat_at) VALUES (1, $1) \
                           ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at";
        on!(self, |c| sqlx::query(SQL)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected());
        Ok(())
    }

    // ---- dedup ------------------------------------------------------------------------------

    /// Record `id` as processed; false when it already was (a redelivered webhook). On
    /// PostgreSQL a concurrent transaction with the same id waits here until the first commits.
    pub(super) async fn claim_inbound(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO processed_inbound (id, processed_at) VALUES ($1, $2) \
                           ON CONFLICT (id) DO NOTHING";
        let n = on!(self, |c| sqlx::query(SQL)
            .bind(id)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Run an `UPDATE … WHERE id = $1` that sets a time `$2`; true when it changed one row.
    pub(super) async fn update_one(
        &mut self,
        sql: &'static str,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = on!(self, |c| sqlx::query(sql)
            .bind(id)
            .bind(at)
            .execute(c)
            .await?
            .rows_affected());
        Ok(n == 1)
    }
}
