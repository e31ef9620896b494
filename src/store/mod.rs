//! Persistence: everything the bot learns, so that it survives a restart and a crash —
//! clients, conversations (engine state as JSON), every message with its timestamps, bookings,
//! leads, scheduled jobs (reminders, follow-ups), the outbox of work for the workers, and where
//! each lead stands in the CRM (`crm.rs`).
//!
//! One interface, two backends: [`Store`] wraps either a SQLite file (the embedded default,
//! `sqlite://bot.db`, WAL, busy timeout) or PostgreSQL (several `bot serve` replicas). Both run
//! the same portable SQL (`$N` placeholders, `ON CONFLICT`, `RETURNING`) through typed sqlx
//! drivers — not `sqlx::Any`, which cannot carry chrono times. The few statements that differ
//! (`FOR UPDATE [SKIP LOCKED]`, how a write transaction starts) are chosen per backend in
//! `tx.rs`, the one place that knows the tables. Migrations are embedded per backend
//! (`migrations/sqlite`, `migrations/postgres`) and applied on [`Store::open`].
//!
//! Guarantees:
//! - Processing an inbound message ([`Store::process_inbound`]) is one transaction: dedup by
//!   inbound id, the message row, the conversation state, the replies, the effects (bookings,
//!   leads, contact) and the jobs they imply. All or nothing.
//! - No double booking, enforced in the database: before a booking is written, the transaction
//!   locks the staff member's row in `schedule_locks` (`SELECT … FOR UPDATE` on PostgreSQL;
//!   SQLite write transactions start with `BEGIN IMMEDIATE`, which already serialises writers)
//!   and re-checks overlap (with the profile's buffer) against committed bookings. A loser of
//!   the race rolls back and re-runs the turn with the fresh schedule, so the client is offered
//!   the next free slots instead.
//! - Due reminders and follow-ups are claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so
//!   two replicas never run the same job; each job's turn commits with its `done_at`.
//!
//! What it must not do: decide anything about the dialog (that is `engine/`), talk to channels
//! or the CRM (the workers read the outbox), or read the clock (callers pass `now`).

pub mod console;
mod crm;
pub mod imports;
mod inbound;
mod jobs;
mod kpi;
mod model;
pub mod operators;
pub mod pilot;
mod postgres;
pub mod privacy;
mod reads;
mod retry;
mod sqlite;
mod turn;
mod tx;

pub use crm::{CrmCursor, CrmReading, CrmStatus, Recorded};
pub use inbound::{Handled, Processed};
pub use model::{Attendance, Job, JobKind, JobPayload, NoShowDue, RanJob, ReminderDue};
pub use reads::{
    ClientCard, Counts, Outgoing, StoredBooking, StoredLead, StoredMessage, WaitingHandoff,
};
pub use retry::{Fate, RetryPolicy, Settled};

use crate::domain::BookingStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tx::Tx;

/// The database a bot uses when none is given.
pub const DEFAULT_URL: &str = "sqlite://bot.db";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row that this code wrote cannot be read back (hand-edited or from a newer version).
    #[error("stored {what} is invalid: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("booking {0} not found")]
    NoBooking(String),
    #[error("booking {id} cannot be marked {mark}: {reason}")]
    CannotMark {
        id: String,
        mark: &'static str,
        reason: String,
    },
    /// Other transactions kept taking the same slots; the message was not processed.
    #[error("the schedule stayed contended after {0} attempts")]
    Contended(u32),
    /// A fault injected by a test, just before commit.
    #[error("injected fault before commit")]
    InjectedFault,
}

impl StoreError {
    pub(crate) fn corrupt(what: &'static str, detail: impl ToString) -> StoreError {
        StoreError::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }

    /// A transient conflict between transactions: retrying the whole transaction may succeed
    /// (PostgreSQL deadlock or serialization failure, SQLite busy after the timeout).
    pub(crate) fn is_retryable(&self) -> bool {
        let StoreError::Db(sqlx::Error::Database(e)) = self else {
            return false;
        };
        matches!(
            e.code().as_deref(),
            Some("40P01" | "40001" | "5" | "517" | "6")
        )
    }
}

impl StoreError {
    /// The database was busy (other writers kept the lock, a lock wait timed out, a deadlock was
    /// broken) rather than broken: the request may succeed when tried again (HTTP 503).
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Contended(_)) || self.is_retryable() || self.is_lock_timeout()
    }

    /// PostgreSQL `lock_not_available` (a `lock_timeout` expired) or `query_canceled` by
    /// `statement_timeout`.
    fn is_lock_timeout(&self) -> bool {
        let StoreError::Db(sqlx::Error::Database(e)) = self else {
            return matches!(self, StoreError::Db(sqlx::Error::PoolTimedOut));
        };
        matches!(e.code().as_deref(), Some("55P03" | "57014"))
    }
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// One migration and whether this database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub version: i64,
    pub description: String,
    pub applied: bool,
}

/// The bot's database. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    fault_before_commit: Arc<AtomicBool>,
}

impl Store {
    /// Connect to `url` and apply pending migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connect to `url` without touching the schema (`bot db status`). `sqlite://PATH`,
    /// `sqlite:PATH` or a bare file path open (and create) a SQLite file;
    /// `postgres://…` / `postgresql://…` connect to PostgreSQL.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres(postgres::connect(url).await?)
        } else if url.starts_with("sqlite:") || !url.contains("://") {
            Backend::Sqlite(sqlite::connect(url).await?)
        } else {
            return Err(StoreError::BadUrl {
                url: url.to_string(),
                reason: "expected sqlite://PATH or postgres://…".into(),
            });
        };
        Ok(Store {
            backend,
            fault_before_commit: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Apply pending migrations; returns the versions applied now.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        let before = self.migration_status().await?;
        match &self.backend {
            Backend::Sqlite(pool) => migrator(sqlite::MIGRATIONS).run(pool).await?,
            Backend::Postgres(pool) => migrator(postgres::MIGRATIONS).run(pool).await?,
        }
        Ok(before
            .into_iter()
            .filter(|m| !m.applied)
            .map(|m| m.version)
            .collect())
    }

    /// Every embedded migration and whether it is applied here.
    pub async fn migration_status(&self) -> Result<Vec<MigrationStatus>, StoreError> {
        use sqlx::migrate::Migrate;
        let (migrator, applied) = match &self.backend {
            Backend::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                conn.ensure_migrations_table("_sqlx_migrations").await?;
                let applied = conn.list_applied_migrations("_sqlx_migrations").await?;
                (migrator(sqlite::MIGRATIONS), applied)
            }
            Backend::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                conn.ensure_migrations_table("_sqlx_migrations").await?;
                let applied = conn.list_applied_migrations("_sqlx_migrations").await?;
                (migrator(postgres::MIGRATIONS), applied)
            }
        };
        Ok(migrator
            .iter()
            .map(|m| MigrationStatus {
                version: m.version,
                description: m.description.to_string(),
                applied: applied.iter().any(|a| a.version == m.version),
            })
            .collect())
    }

    /// One write transaction that writes the heartbeat row and commits: whether the database
    /// takes writes now (`/readyz`). Fails on a read-only or full database; waits (up to the
    /// busy timeout) behind a writer that holds the lock, so callers bound it.
    pub async fn heartbeat(&self, now: chrono::DateTime<chrono::Utc>) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        tx.beat(now).await?;
        tx.commit().await
    }

    /// Close the pool: waits for connections to be returned (SQLite checkpoints the WAL).
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// Tests only: make every write transaction fail just before its commit, as a crash would.
    #[doc(hidden)]
    pub fn inject_fault_before_commit(&self, on: bool) {
        self.fault_before_commit.store(on, Ordering::SeqCst);
    }

    /// A transaction that will write: on SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so a read-then-write never fails half-way with a stale snapshot.
    async fn write(&self) -> Result<Tx, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// A read-only transaction (one consistent snapshot).
    async fn read(&self) -> Result<Tx, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Backend::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Commit `tx` unless a test asked for a crash right before it.
    async fn commit(&self, tx: Tx) -> Result<(), StoreError> {
        if self.fault_before_commit.load(Ordering::SeqCst) {
            tx.rollback().await?;
            return Err(StoreError::InjectedFault);
        }
        tx.commit().await
    }
}

/// Whether a pooled connection may serve the next transaction. A COMMIT that failed (a full
/// disk, an I/O error) can leave a connection inside its transaction: SQLite may have rolled it
/// back itself, so the ROLLBACK of the dropped transaction fails too and the driver still counts
/// one level. Such a connection is closed (the pool opens a fresh one) instead of failing every
/// later write until restart.
fn reusable<C: sqlx::Connection>(conn: &C) -> bool {
    if conn.is_in_transaction() {
        tracing::warn!("closing a database connection left inside a failed transaction");
        return false;
    }
    true
}

/// A runtime migrator over embedded `(version, description, SQL)` migrations.
fn migrator(migrations: &[(i64, &'static str, &'static str)]) -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    (*description).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// How a booking status is spelled in the database.
pub(crate) fn status_str(s: BookingStatus) -> &'static str {
    match s {
        BookingStatus::Booked => "booked",
        BookingStatus::Confirmed => "confirmed",
        BookingStatus::Cancelled => "cancelled",
        BookingStatus::Rescheduled => "rescheduled",
        BookingStatus::Completed => "completed",
        BookingStatus::NoShow => "no_show",
    }
}

pub(crate) fn parse_status(s: &str) -> Result<BookingStatus, StoreError> {
    Ok(match s {
        "booked" => BookingStatus::Booked,
        "confirmed" => BookingStatus::Confirmed,
        "cancelled" => BookingStatus::Cancelled,
        "rescheduled" => BookingStatus::Rescheduled,
        "completed" => BookingStatus::Completed,
        "no_show" => BookingStatus::NoShow,
        other => return Err(StoreError::corrupt("booking status", other)),
    })
}

pub(crate) fn parse_channel(s: &str) -> Result<crate::domain::ChannelKind, StoreError> {
    crate::domain::ChannelKind::parse(s).ok_or_else(|| StoreError::corrupt("channel", s))
}
