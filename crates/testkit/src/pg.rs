//! A fresh PostgreSQL schema per test on the test server (`TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped when the test ends. None (skip) when the
//! server is down and `CI` is not set; once found down, later tests skip without waiting again.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

static SEQ: AtomicU32 = AtomicU32::new(0);
static PG_DOWN: AtomicBool = AtomicBool::new(false);

pub struct PgSchema {
    /// Connects to the schema (its `search_path`).
    pub url: String,
    base: String,
    name: String,
}

impl PgSchema {
    pub async fn create() -> Option<PgSchema> {
        let base = std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.into());
        if PG_DOWN.load(Ordering::SeqCst) && std::env::var_os("CI").is_none() {
            return None;
        }
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(3))
            .connect(&base)
            .await;
        let admin = match admin {
            Ok(pool) => pool,
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("CI needs PostgreSQL at {base}: {e}")
            }
            Err(e) => {
                PG_DOWN.store(true, Ordering::SeqCst);
                eprintln!("skipping the PostgreSQL run: {base}: {e}");
                return None;
            }
        };
        let name = format!(
            "test_{}_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst),
            chrono::Utc::now().timestamp_subsec_nanos()
        );
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&admin)
            .await
            .expect("create schema");
        admin.close().await;
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={name}");
        Some(PgSchema { url, base, name })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Drop runs inside the test's runtime: clean up from a thread with its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(admin) = sqlx::PgPool::connect(&base).await {
                    let sql = format!("DROP SCHEMA IF EXISTS {name} CASCADE");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}
