//! `bot handoff list|release`: the conversations the bot handed to managers — who waits, why,
//! for how long and whether their last message has an answer — and giving one back to the bot
//! (the same as a manager's `/release` in the managers' chat).

use super::TableFormat as Format;
use super::db::{DbArg, block_on};
use crate::domain::{ClientRef, Event, HandoffReason, Inbound};
use crate::engine::{Engine, Owner};
use crate::store::{Handled, WaitingHandoff};
use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use comfy_table::{Table, presets};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum HandoffCommand {
    /// Conversations waiting for a human, the longest-waiting first.
    List(ListArgs),
    /// Give a conversation back to the bot.
    Release(ReleaseArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    db: DbArg,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Business profile YAML, for its time zone (default: the embedded demo salon).
    #[arg(long, env = "BOT_PROFILE")]
    profile: Option<PathBuf>,
    /// Reference time, RFC 3339 (default: now).
    #[arg(long)]
    now: Option<DateTime<Utc>>,
}

#[derive(Debug, clap::Args)]
pub struct ReleaseArgs {
    /// The conversation, as `bot handoff list` shows it: CHANNEL:ID (e.g. telegram:901).
    conversation: String,
    #[command(flatten)]
    db: DbArg,
    /// Business profile YAML (default: the embedded demo salon).
    #[arg(long, env = "BOT_PROFILE")]
    profile: Option<PathBuf>,
    /// Reference time, RFC 3339 (default: now).
    #[arg(long)]
    now: Option<DateTime<Utc>>,
}

pub fn run(cmd: HandoffCommand) -> ExitCode {
    match cmd {
        HandoffCommand::List(args) => block_on(list(args)),
        HandoffCommand::Release(args) => block_on(release(args)),
    }
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let tz = super::profile_or_demo(args.profile.as_deref())?
        .business
        .timezone;
    let now = args.now.unwrap_or_else(Utc::now);
    let store = args.db.open().await?;
    let waiting = store.handoffs().await;
    store.close().await;
    let waiting = waiting?;
    match args.format {
        Format::Json => {
            let rows: Vec<_> = waiting.iter().map(|w| json_row(w, now)).collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
        Format::Table => {
            let mut table = Table::new();
            table.load_style(presets::UTF8_FULL);
            table.set_header([
                "conversation",
                "client",
                "reason",
                "handed over",
                "waiting",
                "last client message",
                "answered",
            ]);
            const SHOWN: usize = 60;
            for w in &waiting {
                let who = [w.name.as_deref(), w.phone.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", ");
                let reason = w
                    .reason
                    .map(HandoffReason::as_str)
                    .unwrap_or_default()
                    .to_string();
                let reason = if w.callback {
                    format!("{reason}, call back")
                } else {
                    reason
                };
                let last = match (&w.last_message, w.last_inbound_at) {
                    (Some(text), Some(at)) => {
                        let mut shown: String = text.chars().take(SHOWN).collect();
                        if text.chars().nth(SHOWN).is_some() {
                            shown.push('…');
                        }
                        format!("{} {shown}", local(at, tz))
                    }
                    _ => String::new(),
                };
                table.add_row([
                    w.client.to_string(),
                    who,
                    reason,
                    local(w.since, tz),
                    duration(now - w.since),
                    last,
                    if w.unanswered() { "no" } else { "yes" }.to_string(),
                ]);
            }
            println!("{table}");
            let unanswered = waiting.iter().filter(|w| w.unanswered()).count();
            println!(
                "{} conversation(s) with a human, {unanswered} waiting for an answer; \
                 `bot handoff release CHANNEL:ID` gives one back to the bot",
                waiting.len()
            );
        }
    }
    Ok(())
}

fn json_row(w: &WaitingHandoff, now: DateTime<Utc>) -> serde_json::Value {
    json!({
        "conversation": w.client.to_string(),
        "name": w.name,
        "phone": w.phone,
        "reason": w.reason.map(HandoffReason::as_str),
        "since": w.since.to_rfc3339(),
        "waiting_seconds": (now - w.since).num_seconds().max(0),
        "last_inbound_at": w.last_inbound_at.map(|t| t.to_rfc3339()),
        "last_manager_at": w.last_manager_at.map(|t| t.to_rfc3339()),
        "last_message": w.last_message,
        "callback": w.callback,
        "unanswered": w.unanswered(),
    })
}

fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%d.%m %H:%M").to_string()
}

/// "3 d 4 h", "2 h 15 min", "7 min".
fn duration(d: chrono::Duration) -> String {
    let minutes = d.num_minutes().max(0);
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{mins} min"),
        (0, _) => format!("{hours} h {mins} min"),
        _ => format!("{days} d {hours} h"),
    }
}

async fn release(args: ReleaseArgs) -> anyhow::Result<()> {
    let Some(client) = ClientRef::parse(&args.conversation) else {
        bail!(
            "{:?}: expected CHANNEL:ID as `bot handoff list` shows it, e.g. telegram:901 \
             (channels: telegram, max, vk, web, whatsapp, instagram)",
            args.conversation
        );
    };
    let engine = Engine::new(super::profile_or_demo(args.profile.as_deref())?);
    let now = args.now.unwrap_or_else(Utc::now);
    let store = args.db.open().await?;
    let result = async {
        let conversation = store.conversation(&client).await?;
        match conversation {
            None => bail!("no conversation {client} in {}", args.db.url),
            Some(c) if c.owner == Owner::Bot => {
                bail!("{client} is not with a manager: the bot already answers there")
            }
            Some(_) => {}
        }
        let inbound = Inbound {
            client: client.clone(),
            at: now,
            event: Event::Released,
        };
        let id = format!("cli:release:{client}:{}", now.timestamp_micros());
        let outcome = store
            .process_inbound(&engine, &id, &inbound, now)
            .await
            .with_context(|| format!("releasing {client}"))?;
        if outcome == Handled::Duplicate {
            bail!("{client} was released at this very moment already");
        }
        Ok(())
    }
    .await;
    store.close().await;
    result?;
    println!("{client}: the bot answers again");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::duration;
    use chrono::Duration;

    #[test]
    fn waiting_time_reads_naturally() {
        assert_eq!(duration(Duration::seconds(59)), "0 min");
        assert_eq!(duration(Duration::minutes(7)), "7 min");
        assert_eq!(duration(Duration::minutes(135)), "2 h 15 min");
        assert_eq!(duration(Duration::hours(76)), "3 d 4 h");
        assert_eq!(duration(Duration::minutes(-5)), "0 min");
    }
}
