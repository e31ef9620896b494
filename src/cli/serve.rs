//! `bot serve`: arguments and start-up messages. Secrets (`BOT_TELEGRAM_TOKEN`,
//! `BOT_TELEGRAM_SECRET`) come only from the environment, never from flags.

use super::db::DbArg;
use crate::channels::telegram::{DEFAULT_API_URL, TelegramConfig};
use crate::config;
use crate::server::{self, Clock, ServeConfig};
use anyhow::Context;
use chrono::{DateTime, Utc};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Business profile YAML (default: the embedded demo salon).
    #[arg(long, env = "BOT_PROFILE")]
    profile: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "BOT_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    db: DbArg,
    /// Telegram Bot API base URL (a local Bot API server or a test emulator).
    #[arg(long, env = "BOT_TELEGRAM_API_URL", default_value = DEFAULT_API_URL)]
    telegram_api_url: String,
    /// Fetch Telegram updates by long polling (no public HTTPS address needed) instead of
    /// the webhook.
    #[arg(long, env = "BOT_TELEGRAM_POLLING")]
    telegram_polling: bool,
    /// Telegram group of the managers: hand-off notices go there, replies to them go to the
    /// client, `/release` gives the conversation back to the bot.
    #[arg(long, env = "BOT_MANAGERS_CHAT_ID", allow_negative_numbers = true)]
    managers_chat_id: Option<i64>,
    /// Telegram group chats the bot answers like private chats (comma-separated chat ids);
    /// other groups and channels are ignored.
    #[arg(
        long,
        env = "BOT_TELEGRAM_GROUPS",
        value_delimiter = ',',
        allow_negative_numbers = true
    )]
    telegram_groups: Vec<i64>,
    /// Tests and demos: start the bot's clock at this instant (RFC 3339).
    #[arg(long, env = "BOT_NOW", hide = true)]
    now: Option<DateTime<Utc>>,
}

pub fn run(args: Args) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .try_init();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(serve(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::fail(&e),
    }
}

pub(super) fn env_secret(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let profile = match &args.profile {
        Some(path) => config::load(path)?,
        None => config::demo_salon(),
    };
    let business = profile.business.name.clone();
    let telegram = env_secret("BOT_TELEGRAM_TOKEN").map(|token| TelegramConfig {
        token,
        secret: env_secret("BOT_TELEGRAM_SECRET"),
        api_url: args.telegram_api_url.clone(),
        groups: args.telegram_groups.clone(),
    });
    if let Some(chat) = args
        .managers_chat_id
        .filter(|c| args.telegram_groups.contains(c))
    {
        anyhow::bail!(
            "BOT_TELEGRAM_GROUPS includes the managers' chat {chat}: the bot would answer the \
             managers; remove it from the groups"
        );
    }
    let config = ServeConfig {
        profile,
        db_url: args.db.url.clone(),
        listen: args.listen,
        telegram: telegram.clone(),
        clock: args.now.map_or(Clock::System, Clock::starting_at),
        worker_interval: Duration::from_secs(1),
        telegram_polling: args.telegram_polling,
        managers_chat: args.managers_chat_id,
    };
    let bound = server::bind(config).await?;
    let addr = bound.local_addr();
    eprintln!("bot serve: {business} · database {}", args.db.url);
    match &telegram {
        None => eprintln!("telegram: off (set BOT_TELEGRAM_TOKEN to turn it on)"),
        Some(_) if args.telegram_polling => eprintln!("telegram: on, long polling"),
        Some(t) if t.secret.is_none() => eprintln!(
            "telegram: on, but BOT_TELEGRAM_SECRET is not set: every webhook call is refused"
        ),
        Some(_) => eprintln!("telegram: webhook at POST http://{addr}/webhooks/telegram"),
    }
    println!("web chat: http://{addr}/");
    bound.run(server::shutdown_signal()).await?;
    eprintln!("bot serve: stopped");
    Ok(())
}
