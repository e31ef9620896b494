//! `bot calendar export [--from --to]`: the stored bookings as one iCalendar file on stdout
//! (or `--output`), for import into calendar apps.

use super::db::{DbArg, block_on};
use crate::calendar::ical::{IcsEntry, to_ics};
use crate::config::Profile;
use anyhow::Context;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum CalendarCommand {
    /// Export bookings as iCalendar (RFC 5545).
    Export(ExportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    db: DbArg,
    /// Business profile YAML (default: the embedded demo salon).
    #[arg(long, env = "BOT_PROFILE")]
    profile: Option<PathBuf>,
    /// First day (YYYY-MM-DD, business time zone) or moment (RFC 3339); default 30 days ago.
    #[arg(long)]
    from: Option<String>,
    /// Last day, inclusive (YYYY-MM-DD) or end moment (RFC 3339); default the booking horizon.
    #[arg(long)]
    to: Option<String>,
    /// Write here instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// A `--from`/`--to` value: an RFC 3339 moment, or a local date (its start; with
/// `end_of_day`, the start of the next day).
fn bound(profile: &Profile, s: &str, end_of_day: bool) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .with_context(|| format!("{s:?}: expected YYYY-MM-DD or RFC 3339"))?;
    let day = if end_of_day {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    };
    profile
        .business
        .timezone
        .from_local_datetime(&day.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("{s:?}: no such local time"))
}

pub fn run(cmd: CalendarCommand) -> ExitCode {
    let CalendarCommand::Export(args) = cmd;
    block_on(async move {
        let profile = super::profile_or_demo(args.profile.as_deref())?;
        let now = Utc::now();
        let from = match &args.from {
            Some(s) => bound(&profile, s, false)?,
            None => now - Duration::days(30),
        };
        let to = match &args.to {
            Some(s) => bound(&profile, s, true)?,
            None => now + Duration::days(i64::from(profile.booking.horizon_days) + 1),
        };
        let store = args.db.open().await?;
        let stored = store.bookings_between(from, to).await?;
        store.close().await;
        let entries: Vec<IcsEntry<'_>> = stored.iter().map(|s| s.ics_entry()).collect();
        let ics = to_ics(&profile, &entries);
        match &args.output {
            Some(path) => {
                std::fs::write(path, ics).with_context(|| format!("writing {}", path.display()))?
            }
            None => std::io::stdout().lock().write_all(ics.as_bytes())?,
        }
        eprintln!("exported {} bookings", entries.len());
        Ok(())
    })
}
