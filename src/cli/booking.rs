//! `bot booking mark ID no-show|completed`: record how a visit went, after it. A no-show
//! schedules the follow-up message for the next morning.

use super::db::{DbArg, block_on};
use crate::domain::BookingId;
use crate::store::Attendance;
use anyhow::Context;
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum BookingCommand {
    /// Mark a past visit as completed or missed (no-show).
    Mark(MarkArgs),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Mark {
    /// The client did not come: schedules the follow-up.
    NoShow,
    Completed,
}

#[derive(Debug, clap::Args)]
pub struct MarkArgs {
    /// Booking number (as the bot told the client).
    id: String,
    mark: Mark,
    #[command(flatten)]
    db: DbArg,
    /// Business profile YAML (default: the embedded demo salon).
    #[arg(long, env = "BOT_PROFILE")]
    profile: Option<PathBuf>,
    /// Reference time, RFC 3339 (default: now).
    #[arg(long)]
    now: Option<String>,
}

pub fn run(cmd: BookingCommand) -> ExitCode {
    let BookingCommand::Mark(args) = cmd;
    block_on(async move {
        let profile = super::profile_or_demo(args.profile.as_deref())?;
        let now = match &args.now {
            Some(s) => DateTime::parse_from_rfc3339(s)
                .with_context(|| format!("--now {s:?}: expected RFC 3339"))?
                .with_timezone(&Utc),
            None => Utc::now(),
        };
        let attendance = match args.mark {
            Mark::NoShow => Attendance::NoShow,
            Mark::Completed => Attendance::Completed,
        };
        let store = args.db.open().await?;
        let result = store
            .mark_booking(&profile, &BookingId(args.id.clone()), attendance, now)
            .await;
        store.close().await;
        let b = result?;
        println!("booking {} marked {}", b.booking.id, attendance.as_str());
        Ok(())
    })
}
