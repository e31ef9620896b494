//! `bot import FILE... [--business NAME]... [--tz TZ] [--label NAME] [--format F] [--db URL]
//! [--dry-run]`: load exported chats as the KPIs' baseline. All files are read first (the
//! business side is decided over all of them), then each file is written in one transaction;
//! a summary table, and the skipped lines with `file:line: why` (the first 20).

use super::db::{DbArg, block_on_code};
use crate::import::{self, Format, Parsed};
use anyhow::Context;
use chrono::Utc;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Export files: Telegram Desktop result.json, WhatsApp «Export chat» .txt, or CSV
    /// (conversation_id,channel,sender,timestamp,text).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The business's account as the exports name it (repeat for several); default: the one
    /// sender present in every chat (Telegram full exports name their owner).
    #[arg(long = "business", value_name = "NAME")]
    business: Vec<String>,
    /// Time zone of times written without one (WhatsApp, local CSV times, old Telegram files);
    /// default: the profile's.
    #[arg(long)]
    tz: Option<chrono_tz::Tz>,
    /// Tag for the imported chats, shown as the source in `bot report` (default: the file name).
    #[arg(long)]
    label: Option<String>,
    /// The files' format (default: detected from their content).
    #[arg(long, value_enum)]
    format: Option<Format>,
    #[command(flatten)]
    db: DbArg,
    /// Business profile YAML (its time zone; default: the embedded demo salon).
    #[arg(long, env = "BOT_PROFILE")]
    profile: Option<PathBuf>,
    /// Read and count everything, store nothing.
    #[arg(long)]
    dry_run: bool,
}

/// How many skipped lines are listed.
const LISTED: usize = 20;

pub fn run(args: Args) -> ExitCode {
    block_on_code(async move {
        let profile = super::profile_or_demo(args.profile.as_deref())?;
        let tz = args.tz.unwrap_or(profile.business.timezone);
        let mut files: Vec<(PathBuf, Format, Parsed)> = Vec::new();
        for path in &args.files {
            let (format, parsed) = match import::read(path, args.format, tz) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            files.push((path.clone(), format, parsed));
        }
        let parsed: Vec<&Parsed> = files.iter().map(|(_, _, p)| p).collect();
        let side = match import::business_side(&parsed, &args.business) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        let store = args.db.open().await?;
        let mut table = comfy_table::Table::new();
        table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        table.set_header([
            "file",
            "format",
            "chats",
            "client messages",
            "business messages",
            "new",
            "already stored",
            "skipped",
        ]);
        let mut skipped = Vec::new();
        let now = Utc::now();
        for (path, format, parsed) in &files {
            let label = args.label.clone().unwrap_or_else(|| label_of(path));
            let mut writer = store.begin_import(&label, now).await?;
            let (mut client, mut business) = (0u64, 0u64);
            let mut ids = Vec::with_capacity(parsed.chats.len());
            for chat in &parsed.chats {
                ids.push(writer.chat(chat).await?);
            }
            for (chat, m) in import::messages_of(parsed, &side) {
                match m.side {
                    crate::kpi::Side::Client => client += 1,
                    crate::kpi::Side::Business => business += 1,
                }
                writer.message(ids[chat], m).await?;
            }
            let counts = if args.dry_run {
                writer.rollback().await?
            } else {
                writer
                    .commit()
                    .await
                    .with_context(|| format!("storing {}", path.display()))?
            };
            table.add_row([
                path.display().to_string(),
                format.as_str().to_string(),
                parsed.chats.len().to_string(),
                client.to_string(),
                business.to_string(),
                counts.messages_new.to_string(),
                counts.messages_known.to_string(),
                parsed.skipped.len().to_string(),
            ]);
            skipped.extend(parsed.skipped.iter().cloned());
        }
        store.close().await;
        println!("{table}");
        for s in skipped.iter().take(LISTED) {
            println!("skipped {}:{}: {}", s.file.display(), s.line, s.why);
        }
        if skipped.len() > LISTED {
            println!("… and {} more skipped", skipped.len() - LISTED);
        }
        if args.dry_run {
            println!("dry run: nothing was stored");
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The default label: the file's name.
fn label_of(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
