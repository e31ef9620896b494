//! The embedded backend: one SQLite file in WAL mode (readers never block the writer), with a
//! busy timeout so concurrent writers queue instead of failing, foreign keys on, and the
//! schema from `migrations/sqlite` compiled into the binary.

use super::StoreError;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

/// Writers wait this long for the write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Open (creating it if needed) the file named by `url`: `sqlite://PATH`, `sqlite:PATH` or a
/// bare path.
pub(super) async fn connect(url: &str) -> Result<SqlitePool, StoreError> {
    let url = if url.starts_with("sqlite:") {
        url.to_string()
    } else {
        format!("sqlite://{url}")
    };
    let options = SqliteConnectOptions::from_str(&url)
        .map_err(|e| StoreError::BadUrl {
            url: url.clone(),
            reason: e.to_string(),
        })?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // In WAL mode NORMAL is crash-safe (a committed transaction may be lost only on power
        // failure, never half-applied) and much faster than FULL.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    Ok(SqlitePoolOptions::new()
        .max_connections(4)
        .before_acquire(|conn, _| Box::pin(async move { Ok(super::reusable(&*conn)) }))
        .connect_with(options)
        .await?)
}

/// The embedded SQLite migrations: (version, description, SQL).
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "crm",
        include_str!("../../migrations/sqlite/0002_crm.sql"),
    ),
    (
        3,
        "send started",
        include_str!("../../migrations/sqlite/0003_send_started.sql"),
    ),
    (
        4,
        "heartbeat",
        include_str!("../../migrations/sqlite/0004_heartbeat.sql"),
    ),
    (
        5,
        "callback",
        include_str!("../../migrations/sqlite/0005_callback.sql"),
    ),
    (
        6,
        "came_from",
        include_str!("../../migrations/sqlite/0006_came_from.sql"),
    ),
    (
        7,
        "operators",
        include_str!("../../migrations/sqlite/0007_operators.sql"),
    ),
    (
        8,
        "console",
        include_str!("../../migrations/sqlite/0008_console.sql"),
    ),
    (
        9,
        "imports",
        include_str!("../../migrations/sqlite/0009_imports.sql"),
    ),
    (
        10,
        "pilot",
        include_str!("../../migrations/sqlite/0010_pilot.sql"),
    ),
    (
        11,
        "llm",
        include_str!("../../migrations/sqlite/0011_llm.sql"),
    ),
];
