//! `bot outbox list|retry`: the work queue as an operator sees it — what is waiting (replies,
//! reminders, CRM pushes) and what was given up (dead letters, with the reason), and putting a
//! dead letter back in the queue once its cause is fixed.

use super::TableFormat as Format;
use super::db::{DbArg, block_on};
use crate::store::Job;
use chrono::Utc;
use comfy_table::{Table, presets};
use serde_json::json;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum OutboxCommand {
    /// Pending jobs and dead letters (jobs given up after their last error).
    List(ListArgs),
    /// Put dead letters back in the queue, due now.
    Retry(RetryArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    db: DbArg,
    /// Only dead letters.
    #[arg(long)]
    dead: bool,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    #[command(flatten)]
    db: DbArg,
    /// Job ids (from `bot outbox list`).
    #[arg(required_unless_present = "all")]
    ids: Vec<i64>,
    /// Every dead letter.
    #[arg(long, conflicts_with = "ids")]
    all: bool,
}

fn row(state: &str, j: &Job) -> serde_json::Value {
    json!({
        "id": j.id,
        "state": state,
        "kind": j.kind.as_str(),
        "booking": j.booking.as_ref().map(|b| b.as_str()),
        "due_at": j.due_at.to_rfc3339(),
        "attempts": j.attempts,
        "last_error": j.last_error,
        "done_at": j.done_at.map(|t| t.to_rfc3339()),
    })
}

pub fn run(cmd: OutboxCommand) -> ExitCode {
    match cmd {
        OutboxCommand::List(args) => block_on(async move {
            let store = args.db.open().await?;
            let pending = if args.dead {
                Vec::new()
            } else {
                store.pending_jobs().await?
            };
            let dead = store.dead_jobs().await?;
            store.close().await;
            let rows: Vec<serde_json::Value> = pending
                .iter()
                .map(|j| row("pending", j))
                .chain(dead.iter().map(|j| row("dead", j)))
                .collect();
            match args.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
                Format::Table => {
                    let mut table = Table::new();
                    table.load_style(presets::UTF8_FULL);
                    table.set_header([
                        "id",
                        "state",
                        "kind",
                        "booking",
                        "due",
                        "attempts",
                        "last error",
                    ]);
                    for r in &rows {
                        let text = |k: &str| match &r[k] {
                            serde_json::Value::Null => String::new(),
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        table.add_row([
                            text("id"),
                            text("state"),
                            text("kind"),
                            text("booking"),
                            text("due_at"),
                            text("attempts"),
                            text("last_error"),
                        ]);
                    }
                    println!("{table}");
                    println!("{} pending, {} dead", pending.len(), dead.len());
                }
            }
            Ok(())
        }),
        OutboxCommand::Retry(args) => block_on(async move {
            let store = args.db.open().await?;
            let ids: Vec<i64> = if args.all {
                store.dead_jobs().await?.iter().map(|j| j.id).collect()
            } else {
                args.ids.clone()
            };
            let mut missing = Vec::new();
            for id in &ids {
                if !store.reopen_job(*id, Utc::now()).await? {
                    missing.push(*id);
                }
            }
            store.close().await;
            println!("{} job(s) back in the queue", ids.len() - missing.len());
            if !missing.is_empty() {
                anyhow::bail!(
                    "not dead letters (unknown, pending or done without error): {missing:?}"
                );
            }
            Ok(())
        }),
    }
}
