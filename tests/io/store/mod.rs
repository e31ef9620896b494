//! The store end to end, on both backends: every test runs once on a fresh SQLite file and
//! once on a fresh PostgreSQL schema (`TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; skipped when that is down, unless `CI` is set).
//! Conversations are driven through buttons and events, which need no language
//! understanding: a seeded conversation state, then the client's press.

/// Run each named `async fn(&TestDb)` as one test per backend.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = testkit::db::TestDb::sqlite().await;
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = testkit::db::TestDb::postgres().await else {
                        return;
                    };
                    super::$name(&db).await;
                }
            )*
        }
    };
}

mod calendar_export;
mod cli;
mod crm;
mod disk_full;
mod import;
mod inbound;
mod pilot;
mod privacy;
mod race;
mod reminders;
mod restart;
mod scheduler;
