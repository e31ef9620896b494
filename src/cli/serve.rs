//! `bot serve`: arguments and start-up messages. Secrets (`BOT_TELEGRAM_TOKEN`,
//! `BOT_TELEGRAM_SECRET`, `BOT_BITRIX24_WEBHOOK`, `BOT_BITRIX24_APP_TOKEN`) come only from the
//! environment, never from flags.

use super::db::DbArg;
use crate::channels::max::{self, MaxConfig};
use crate::channels::telegram::{DEFAULT_API_URL, TelegramConfig, valid_secret};
use crate::channels::vk::VkConfig;
use crate::crm::bitrix24::{Bitrix24, mask_webhook};
use crate::crm::lead::Mapping;
use crate::server::{self, Bitrix24Config, Clock, ServeConfig};
use anyhow::Context;
use chrono::{DateTime, Utc};
use std::io::Write;
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
    /// Minutes between Bitrix24 reconciliations (leads changed since the last one, because
    /// Bitrix24 never resends a missed status event); 0 turns it off.
    #[arg(long, env = "BOT_BITRIX24_RECONCILE_MINUTES", default_value_t = 15)]
    bitrix24_reconcile_minutes: u64,
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

/// `BOT_TELEGRAM_SECRET` when set; an error when Telegram would refuse it in `setWebhook`.
pub(super) fn telegram_secret() -> anyhow::Result<Option<String>> {
    match env_secret("BOT_TELEGRAM_SECRET") {
        Some(secret) if !valid_secret(&secret) => anyhow::bail!(
            "BOT_TELEGRAM_SECRET must be 1 to 256 characters of A-Z a-z 0-9 _ - \
             (Telegram refuses any other webhook secret)"
        ),
        secret => Ok(secret),
    }
}

/// `BOT_RETENTION_DAYS`: how many days message texts are kept; unset or 0 keeps them.
fn retention_days() -> anyhow::Result<Option<u32>> {
    match std::env::var("BOT_RETENTION_DAYS") {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse::<u32>() {
            Ok(0) => Ok(None),
            Ok(d) => Ok(Some(d)),
            Err(_) => anyhow::bail!("BOT_RETENTION_DAYS must be a number of days, not {v:?}"),
        },
        _ => Ok(None),
    }
}

/// A requests-a-second limit from the environment; 0 turns it off.
fn rate_env(name: &str, default: u32) -> anyhow::Result<u32> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse::<u32>().map_err(|_| {
            anyhow::anyhow!("{name} must be requests a second (0 turns the limit off), not {v:?}")
        }),
        _ => Ok(default),
    }
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let secret = telegram_secret()?;
    let profile = super::profile_or_demo(args.profile.as_deref())?;
    let business = profile.business.name.clone();
    let telegram = env_secret("BOT_TELEGRAM_TOKEN").map(|token| TelegramConfig {
        token,
        secret,
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
    let max = MaxConfig::from_env();
    if let Some(secret) = max.as_ref().and_then(|m| m.secret.as_deref())
        && !max::valid_secret(secret)
    {
        anyhow::bail!(
            "BOT_MAX_SECRET must be 5-256 characters of A-Z, a-z, 0-9, _ and - (MAX refuses any other secret)"
        );
    }
    let vk = VkConfig::from_env()?;
    let access = server::Access {
        metrics_token: env_secret("BOT_METRICS_TOKEN"),
        frame_ancestors: std::env::var("BOT_FRAME_ANCESTORS")
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "*".to_string()),
        rate: server::RateLimits {
            per_ip: rate_env("BOT_RATE_LIMIT_IP", server::RateLimits::SERVE.per_ip)?,
            per_client: rate_env(
                "BOT_RATE_LIMIT_CLIENT",
                server::RateLimits::SERVE.per_client,
            )?,
        },
    };
    if access.frame_ancestors.contains([';', ',', '\n']) {
        anyhow::bail!(
            "BOT_FRAME_ANCESTORS is a space-separated list of sources (https://salon.ru 'self'), without ';' or ','"
        );
    }
    let bitrix24 = bitrix24_config(args.bitrix24_reconcile_minutes)?;
    let crm_base = bitrix24
        .client
        .as_ref()
        .map(|c| mask_webhook(&c.settings().base));
    let app_token = bitrix24.app_token.is_some();
    let reconcile = bitrix24.reconcile_every;
    let llm = crate::llm::LlmConfig::from_env()?;
    let config = ServeConfig {
        profile,
        db_url: args.db.url.clone(),
        listen: args.listen,
        telegram: telegram.clone(),
        max: max.clone(),
        vk: vk.clone(),
        clock: args.now.map_or(Clock::System, Clock::starting_at),
        worker_interval: Duration::from_secs(1),
        telegram_polling: args.telegram_polling,
        managers_chat: args.managers_chat_id,
        bitrix24,
        http: Default::default(),
        access: access.clone(),
        retention: retention_days()?.map(|d| chrono::Duration::days(i64::from(d))),
        llm: llm.clone(),
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
    if access.metrics_token.is_none() && !addr.ip().is_loopback() {
        eprintln!(
            "metrics: GET http://{addr}/metrics is open to anyone who reaches {addr}; set BOT_METRICS_TOKEN to ask for a bearer token"
        );
    }
    match &max {
        None => eprintln!("max: off (set BOT_MAX_TOKEN to turn it on)"),
        Some(m) if m.secret.is_none() => {
            eprintln!("max: on, but BOT_MAX_SECRET is not set: every webhook call is refused")
        }
        Some(_) => eprintln!(
            "max: webhook at POST http://{addr}/webhooks/max (register it with `bot max subscribe --url URL`)"
        ),
    }
    match &vk {
        None => eprintln!("vk: off (set BOT_VK_TOKEN to turn it on)"),
        Some(v) if v.secret.is_none() || v.confirmation.is_none() => eprintln!(
            "vk: on, but BOT_VK_SECRET and BOT_VK_CONFIRMATION must both be set: until then the Callback API is refused"
        ),
        Some(_) => eprintln!(
            "vk: Callback API at POST http://{addr}/webhooks/vk (check it with `bot vk check`)"
        ),
    }
    match &llm {
        None => eprintln!("llm: off, the rules answer alone (set BOT_LLM_BASE_URL to add a model)"),
        Some(l) => eprintln!(
            "llm: {} at {} · {} ms deadline, {} at once · personal data {}",
            l.model,
            l.host(),
            l.timeout.as_millis(),
            l.max_concurrency,
            if l.send_personal_data {
                "sent as written (BOT_LLM_SEND_PERSONAL_DATA=1)"
            } else {
                "replaced by placeholders"
            }
        ),
    }
    if llm.as_ref().is_some_and(|l| l.timeout.as_millis() > 2500) {
        eprintln!(
            "llm: BOT_LLM_TIMEOUT_MS is over 2 500 ms: a reply the model is asked about may take longer than the 3 s a client waits"
        );
    }
    match &crm_base {
        None => eprintln!(
            "bitrix24: off (set BOT_BITRIX24_WEBHOOK, or the OAuth BOT_BITRIX24_TOKEN_FILE, to push leads; their jobs wait in the outbox until then)"
        ),
        Some(base) => {
            let every = match reconcile {
                Some(d) => format!("reconciled every {} min", d.as_secs() / 60),
                None => "no reconciliation".into(),
            };
            eprintln!("bitrix24: leads and bookings go to {base} · {every}");
        }
    }
    if app_token && crm_base.is_none() {
        eprintln!(
            "bitrix24: status events at POST http://{addr}/webhooks/bitrix24 are queued, but read only once BOT_BITRIX24_WEBHOOK is set"
        );
    } else if app_token {
        eprintln!("bitrix24: status events at POST http://{addr}/webhooks/bitrix24");
    } else {
        eprintln!(
            "bitrix24: status events off (set BOT_BITRIX24_APP_TOKEN to the outgoing webhook's token)"
        );
    }
    eprintln!("console: http://{addr}/console");
    if args.managers_chat_id.is_none() && !bound.managers_reachable() {
        eprintln!(
            "hand-offs: no managers' channel (add a console operator with `bot operator add NAME` and restart, or set BOT_TELEGRAM_TOKEN and BOT_MANAGERS_CHAT_ID): a client who needs a person gets the business phone and is asked for theirs; `bot handoff list` shows who waits for a call back"
        );
    } else if args.managers_chat_id.is_none() {
        eprintln!("hand-offs: to the console's inbox");
    } else if telegram.is_none() {
        eprintln!(
            "hand-offs: BOT_MANAGERS_CHAT_ID is set but Telegram is off: notices are dead-lettered until BOT_TELEGRAM_TOKEN is set"
        );
    }
    // The one line on stdout; a closed stdout (`bot serve | head -0`) must not stop a server.
    let _ = writeln!(std::io::stdout(), "web chat: http://{addr}/");
    bound.run(server::shutdown_signal()).await?;
    eprintln!("bot serve: stopped");
    Ok(())
}

/// Bitrix24 from the environment: the client when `BOT_BITRIX24_WEBHOOK` or
/// `BOT_BITRIX24_TOKEN_FILE` is set (a bad value stops the start with the cause), the status
/// webhook's token, the reconciliation interval.
fn bitrix24_config(reconcile_minutes: u64) -> anyhow::Result<Bitrix24Config> {
    let configured = env_secret("BOT_BITRIX24_WEBHOOK").is_some()
        || std::env::var_os("BOT_BITRIX24_TOKEN_FILE").is_some_and(|f| !f.is_empty());
    let client = if configured {
        // A 429 pause is waited out by the job's retry time, not by the worker.
        let client = Bitrix24::from_env()
            .context("bitrix24")?
            .with_max_pause(Duration::from_secs(5));
        Some(std::sync::Arc::new(client))
    } else {
        None
    };
    Ok(Bitrix24Config {
        client,
        mapping: Mapping::from_env().context("bitrix24")?,
        app_token: env_secret("BOT_BITRIX24_APP_TOKEN"),
        reconcile_every: (reconcile_minutes > 0)
            .then(|| Duration::from_secs(reconcile_minutes.saturating_mul(60))),
    })
}
