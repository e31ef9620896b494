//! `bot serve`: the live bot over HTTP. Owns the axum router and its handlers (`routes.rs`),
//! the background worker (`worker.rs`: due reminders and follow-ups, outbox sending), the
//! Bitrix24 worker and status webhook (`crm.rs`), metrics,
//! the typed HTTP error and graceful shutdown: on the shutdown signal the listener stops
//! accepting, in-flight requests finish, the worker stops after its current job, and the
//! store is closed.
//!
//! It decides nothing about dialogs (the engine does, inside `Store::process_inbound`) and
//! parses no channel format itself (that is `channels/`).

pub mod crm;
mod error;
mod handoff;
mod limits;
mod listen;
mod metrics;
mod page;
mod polling;
mod routes;
mod worker;

pub use crate::clock::Clock;
pub use crm::Bitrix24Config;
pub use error::ApiError;
pub use limits::{RateLimits, retry_after};
pub use listen::{Access, HttpTimeouts};
pub use metrics::Metrics;

use crate::channels::Channels;
use crate::channels::max::{MaxApi, MaxConfig};
use crate::channels::telegram::{TelegramApi, TelegramConfig};
use crate::channels::vk::{VkApi, VkConfig};
use crate::config::Profile;
use crate::engine::Engine;
use crate::store::{Store, StoreError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

/// Everything `bot serve` runs with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub profile: Profile,
    pub db_url: String,
    pub listen: SocketAddr,
    pub telegram: Option<TelegramConfig>,
    /// MAX (`BOT_MAX_*`): on when its token is set.
    pub max: Option<MaxConfig>,
    /// VK community messages (`BOT_VK_*`): on when its token is set.
    pub vk: Option<VkConfig>,
    pub clock: Clock,
    /// How often the worker looks for due jobs when nothing wakes it.
    pub worker_interval: Duration,
    /// Fetch Telegram updates with `getUpdates` long polling instead of the webhook.
    pub telegram_polling: bool,
    /// The Telegram chat (a group) where managers get hand-off notices and answer clients.
    pub managers_chat: Option<i64>,
    /// Bitrix24: where leads go, the status webhook's token, reconciliation.
    pub bitrix24: Bitrix24Config,
    /// Header, body and shutdown time limits of the HTTP server.
    pub http: HttpTimeouts,
    /// The `/metrics` token and who may embed the chat page.
    pub access: Access,
    /// `BOT_RETENTION_DAYS`: message texts older than this are emptied by the worker; None
    /// keeps them.
    pub retention: Option<chrono::Duration>,
    /// `BOT_LLM_*`: the model asked for what the rules miss; None: the rules alone.
    pub llm: Option<crate::llm::LlmConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("opening the database {url}: {source}")]
    Store { url: String, source: StoreError },
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("channel: {0}")]
    Channel(#[from] crate::channels::SendError),
}

/// The state every handler and the worker share.
pub struct App {
    pub store: Store,
    pub engine: Engine,
    pub clock: Clock,
    pub metrics: Metrics,
    /// The messengers that are on.
    pub channels: Channels,
    pub telegram_secret: Option<String>,
    /// `BOT_MAX_SECRET`: MAX's `X-Max-Bot-Api-Secret`; None refuses every MAX call.
    pub max_secret: Option<String>,
    /// The VK Callback API settings (secret, confirmation, community).
    pub vk: Option<VkConfig>,
    pub managers_chat: Option<i64>,
    /// Wakes the worker when new outbox jobs were written.
    pub wake: Notify,
    pub bitrix24: Bitrix24Config,
    /// Wakes the CRM worker when lead, booking or fetch jobs were written.
    pub crm_wake: Notify,
    /// Makes web inbound ids unique within this process (with the start time).
    pub seq: AtomicU64,
    pub started: i64,
    /// When the worker last sent to each chat (Telegram: one message per second per chat).
    pace: std::sync::Mutex<std::collections::HashMap<crate::domain::ClientRef, std::time::Instant>>,
    /// Liveness of the send worker for `/readyz`.
    pub(crate) worker_beat: Beat,
    /// How often the worker looks for due jobs when nothing wakes it.
    pub(crate) worker_interval: Duration,
    /// The `/metrics` token and who may embed the chat page.
    pub access: Access,
    /// Rate limits per IP and per web client.
    pub(crate) limiters: limits::Limiters,
    /// Limits on the console's login attempts.
    pub(crate) console_logins: crate::console::auth::LoginLimits,
    /// How long message texts are kept (None: as long as the database).
    pub(crate) retention: Option<chrono::Duration>,
    /// Held while a readiness write is in flight, so a stuck database gets one probe at a time.
    pub(crate) ready_probe: tokio::sync::Mutex<()>,
    /// The LLM beside the rules, when configured.
    pub llm: Option<crate::llm::Llm>,
}

/// When a loop last made progress (monotonic).
#[derive(Debug)]
pub(crate) struct Beat {
    origin: std::time::Instant,
    /// Milliseconds since `origin` at the last beat.
    last_ms: AtomicU64,
}

impl Beat {
    fn new() -> Beat {
        Beat {
            origin: std::time::Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    pub(crate) fn beat(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// How long since the last beat.
    pub(crate) fn age(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(std::sync::atomic::Ordering::Relaxed));
        self.origin.elapsed().saturating_sub(last)
    }
}

impl App {
    /// New outbox jobs were written: wake the send worker and the CRM worker.
    pub(crate) fn wake_workers(&self) {
        self.wake.notify_one();
        self.crm_wake.notify_one();
    }
}

/// A server bound to its address, not yet serving.
pub struct Bound {
    app: Arc<App>,
    listener: TcpListener,
    addr: SocketAddr,
    worker_interval: Duration,
    polling: bool,
    http: HttpTimeouts,
}

/// Open the store (applying migrations), build the engine and bind the listener.
pub async fn bind(config: ServeConfig) -> Result<Bound, ServeError> {
    let store = Store::open(&config.db_url)
        .await
        .map_err(|source| ServeError::Store {
            url: config.db_url.clone(),
            source,
        })?;
    let channels = Channels {
        telegram: config.telegram.as_ref().map(TelegramApi::new).transpose()?,
        max: config.max.as_ref().map(MaxApi::new).transpose()?,
        vk: config.vk.as_ref().map(VkApi::new).transpose()?,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.listen,
        source,
    })?;
    let started = config.clock.now().timestamp_micros();
    // A hand-off reaches a human through the Telegram group or the console (when it has an
    // operator to sign in); otherwise the bot offers a call back.
    let console = match store.operators().await {
        Ok(ops) => !ops.is_empty(),
        Err(source) => {
            return Err(ServeError::Store {
                url: config.db_url.clone(),
                source,
            });
        }
    };
    let app = App {
        store,
        engine: if config.managers_chat.is_some() || console {
            Engine::new(config.profile)
        } else {
            Engine::new(config.profile).without_managers()
        },
        clock: config.clock,
        metrics: Metrics::default(),
        channels,
        telegram_secret: config.telegram.and_then(|t| t.secret),
        max_secret: config.max.and_then(|m| m.secret),
        vk: config.vk,
        managers_chat: config.managers_chat,
        wake: Notify::new(),
        bitrix24: config.bitrix24,
        crm_wake: Notify::new(),
        seq: AtomicU64::new(0),
        started,
        pace: std::sync::Mutex::default(),
        worker_beat: Beat::new(),
        worker_interval: config.worker_interval,
        ready_probe: tokio::sync::Mutex::new(()),
        limiters: limits::Limiters::new(config.access.rate),
        console_logins: crate::console::auth::LoginLimits::default(),
        retention: config.retention,
        access: config.access,
        llm: config.llm.map(crate::llm::Llm::new),
    };
    Ok(Bound {
        app: Arc::new(app),
        listener,
        addr,
        worker_interval: config.worker_interval,
        polling: config.telegram_polling,
        http: config.http,
    })
}

impl Bound {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A hand-off reaches a person (the Telegram group or a console operator).
    pub fn managers_reachable(&self) -> bool {
        self.app.engine.managers_reachable()
    }

    /// Serve until `shutdown` completes, then drain requests, stop the worker, close the store.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker = tokio::spawn(worker::run(
            Arc::clone(&self.app),
            stop_rx,
            self.worker_interval,
        ));
        let poller = self
            .polling
            .then(|| tokio::spawn(polling::run(Arc::clone(&self.app), stop_tx.subscribe())));
        let crm = tokio::spawn(crm::run(
            Arc::clone(&self.app),
            stop_tx.subscribe(),
            self.worker_interval,
        ));
        let router = routes::router(Arc::clone(&self.app), self.http.body);
        listen::serve(self.listener, router, shutdown, self.http).await;
        let _ = stop_tx.send(true);
        if let Err(e) = worker.await {
            tracing::error!(error = %e, "worker ended abnormally");
        }
        if let Err(e) = crm.await {
            tracing::error!(error = %e, "crm worker ended abnormally");
        }
        if let Some(Err(e)) = match poller {
            Some(p) => Some(p.await),
            None => None,
        } {
            tracing::error!(error = %e, "telegram polling ended abnormally");
        }
        self.app.store.close().await;
        Ok(())
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
