//! The shared backend for agencies and several `bot serve` replicas: a PostgreSQL pool
//! (rustls TLS when the server offers it), with the schema from `migrations/postgres` compiled
//! into the binary. Row locks and `SKIP LOCKED` (in `tx.rs`) make replicas safe together.

use super::StoreError;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

pub(super) async fn connect(url: &str) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    Ok(PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(30))
        .before_acquire(|conn, _| Box::pin(async move { Ok(super::reusable(&*conn)) }))
        .connect_with(options)
        .await?)
}

/// The embedded PostgreSQL migrations: (version, description, SQL).
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "crm",
        include_str!("../../migrations/postgres/0002_crm.sql"),
    ),
    (
        3,
        "send started",
        include_str!("../../migrations/postgres/0003_send_started.sql"),
    ),
    (
        4,
        "heartbeat",
        include_str!("../../migrations/postgres/0004_heartbeat.sql"),
    ),
    (
        5,
        "callback",
        include_str!("../../migrations/postgres/0005_callback.sql"),
    ),
    (
        6,
        "came_from",
        include_str!("../../migrations/postgres/0006_came_from.sql"),
    ),
    (
        7,
        "operators",
        include_str!("../../migrations/postgres/0007_operators.sql"),
    ),
    (
        8,
        "console",
        include_str!("../../migrations/postgres/0008_console.sql"),
    ),
    (
        9,
        "imports",
        include_str!("../../migrations/postgres/0009_imports.sql"),
    ),
    (
        10,
        "pilot",
        include_str!("../../migrations/postgres/0010_pilot.sql"),
    ),
    (
        11,
        "llm",
        include_str!("../../migrations/postgres/0011_llm.sql"),
    ),
];
