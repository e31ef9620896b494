//! `bot db migrate|status`: apply the embedded migrations, or show which are applied and how
//! many rows the main tables hold. Also the `--db` argument and the async runtime every
//! store-backed subcommand shares.

use crate::store::{self, Store};
use anyhow::Context;
use std::process::ExitCode;

/// Which database to use.
#[derive(Debug, Clone, clap::Args)]
pub struct DbArg {
    /// Database URL: sqlite://FILE (embedded, the default) or postgres://USER@HOST/DB.
    #[arg(long = "db", env = "DATABASE_URL", default_value = store::DEFAULT_URL)]
    pub url: String,
}

impl DbArg {
    /// Open the store (applying pending migrations).
    pub async fn open(&self) -> anyhow::Result<Store> {
        Store::open(&self.url)
            .await
            .with_context(|| format!("opening {}", self.url))
    }
}

/// Run a store-backed command on a small runtime; errors exit with code 2.
pub(crate) fn block_on(fut: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    block_on_code(async { fut.await.map(|()| ExitCode::SUCCESS) })
}

/// Like [`block_on`], for a command that picks its own exit code (1 for a failed check).
pub(crate) fn block_on_code(fut: impl Future<Output = anyhow::Result<ExitCode>>) -> ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(fut));
    match result {
        Ok(code) => code,
        Err(e) => super::fail(&e),
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum DbCommand {
    /// Apply pending migrations (also done on every start).
    Migrate(DbArg),
    /// Show the backend, each migration and whether it is applied, and row counts.
    Status(DbArg),
}

pub fn run(cmd: DbCommand) -> ExitCode {
    block_on(async move {
        match cmd {
            DbCommand::Migrate(db) => {
                let store = Store::connect(&db.url)
                    .await
                    .with_context(|| format!("connecting to {}", db.url))?;
                let applied = store.migrate().await.context("migrating")?;
                if applied.is_empty() {
                    println!("up to date");
                }
                for v in applied {
                    println!("applied {v}");
                }
                store.close().await;
            }
            DbCommand::Status(db) => {
                let store = Store::connect(&db.url)
                    .await
                    .with_context(|| format!("connecting to {}", db.url))?;
                println!("backend: {:?}", store.kind());
                let migrations = store.migration_status().await?;
                for m in &migrations {
                    let state = if m.applied { "applied" } else { "pending" };
                    println!("migration {} {}: {state}", m.version, m.description);
                }
                if migrations.iter().all(|m| m.applied) {
                    let c = store.counts().await?;
                    println!(
                        "clients {} · conversations {} · messages {} · bookings {} ({} active) · leads {} · jobs {} ({} pending)",
                        c.clients,
                        c.conversations,
                        c.messages,
                        c.bookings,
                        c.active_bookings,
                        c.leads,
                        c.jobs,
                        c.pending_jobs
                    );
                }
                store.close().await;
            }
        }
        Ok(())
    })
}
