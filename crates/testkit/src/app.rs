//! `spawn_app`: the real server on 127.0.0.1:0 with a fresh SQLite file in a temp dir, the
//! demo salon, and a clock started at Friday 20 Nov 2026, 10:00 in Novosibirsk (03:00 UTC).

use crate::max::MaxEmulator;
pub use crate::pg::PgSchema;
use crate::telegram::TelegramEmulator;
use crate::vk::VkEmulator;
use bot::channels::max::MaxConfig;
use bot::channels::telegram::TelegramConfig;
use bot::channels::vk::VkConfig;
use bot::server::{self, Bitrix24Config, Clock, HttpTimeouts, ServeConfig};
use bot::store::Store;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

pub const TOKEN: &str = "123456:TEST-token_abc";
pub const SECRET: &str = "s3cret-webhook_token";
/// The managers' Telegram group.
pub const MANAGERS: i64 = -100_500;

pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub db_url: String,
    pub telegram: Option<TelegramEmulator>,
    /// The MAX emulator, when MAX is on.
    pub max: Option<MaxEmulator>,
    /// The VK emulator, when VK is on.
    pub vk: Option<VkEmulator>,
    /// The server's clock: `clock.advance(…)` moves it forward.
    pub clock: Clock,
    bitrix24: Bitrix24Config,
    /// Telegram updates are fetched by long polling (kept across a restart).
    polling: bool,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn(false).await
}

pub async fn spawn_with_telegram() -> TestApp {
    spawn(true).await
}

/// The clock of a fresh app: Friday 20 Nov 2026, 10:00 in Novosibirsk.
pub fn friday_10am() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 3, 0, 0).unwrap()
}

/// Telegram on, updates fetched by long polling from the emulator.
pub async fn spawn_polling() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let emulator = TelegramEmulator::start(TOKEN).await;
    spawn_on(
        dir,
        Some(emulator),
        friday_10am(),
        true,
        Bitrix24Config::default(),
    )
    .await
}

/// No Telegram; leads, bookings and status events go to and come from Bitrix24 as configured.
pub async fn spawn_with_bitrix24(bitrix24: Bitrix24Config) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    spawn_on(dir, None, friday_10am(), false, bitrix24).await
}

/// The web-only server with its SQLite file in `dir` (a folder on a test file system), the
/// database URL ending in `options` (`?mode=ro`, or empty).
pub async fn spawn_in(dir: tempfile::TempDir, options: &str) -> TestApp {
    let url = format!("sqlite://{}{options}", dir.path().join("bot.db").display());
    spawn_opts(
        dir,
        None,
        friday_10am(),
        false,
        Bitrix24Config::default(),
        Some(url),
        |_| {},
    )
    .await
}

/// The web-only server with an LLM beside the rules (an emulator's URL in `llm`).
pub async fn spawn_with_llm(llm: bot::llm::LlmConfig) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    spawn_opts(
        dir,
        None,
        friday_10am(),
        false,
        Bitrix24Config::default(),
        None,
        move |c| c.llm = Some(llm),
    )
    .await
}

/// Telegram polling (or only the web chat) on the PostgreSQL database at `url`.
pub async fn spawn_on_postgres(url: &str, polling: bool) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let (start, bitrix24, url) = (friday_10am(), Bitrix24Config::default(), url.to_string());
    let emulator = telegram_if(polling).await;
    spawn_opts(dir, emulator, start, polling, bitrix24, Some(url), |_| {}).await
}

async fn spawn(with_telegram: bool) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let (start, bitrix24) = (friday_10am(), Bitrix24Config::default());
    spawn_on(
        dir,
        telegram_if(with_telegram).await,
        start,
        false,
        bitrix24,
    )
    .await
}

/// Send `request`; (status, JSON body).
async fn status_and_json(request: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = request.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON body"))
}

/// A Telegram emulator for our bot's token when the app is to have Telegram on.
async fn telegram_if(on: bool) -> Option<TelegramEmulator> {
    if on {
        Some(TelegramEmulator::start(TOKEN).await)
    } else {
        None
    }
}

/// The server on the database in `dir`, its clock started at `start`.
async fn spawn_on(
    dir: tempfile::TempDir,
    emulator: Option<TelegramEmulator>,
    start: DateTime<Utc>,
    polling: bool,
    bitrix24: Bitrix24Config,
) -> TestApp {
    spawn_opts(dir, emulator, start, polling, bitrix24, None, |_| {}).await
}

/// Telegram, MAX and VK on, each against its emulator, with the managers' Telegram chat.
pub async fn spawn_with_messengers() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let telegram = TelegramEmulator::start(TOKEN).await;
    let (max, vk) = (MaxEmulator::start().await, VkEmulator::start().await);
    start_messengers(dir, Some(telegram), max, vk, friday_10am(), None).await
}

/// The server with MAX and VK on (and Telegram when given), on the database in `dir` or at
/// `db_url`.
pub async fn start_messengers(
    dir: tempfile::TempDir,
    telegram: Option<TelegramEmulator>,
    max: MaxEmulator,
    vk: VkEmulator,
    start: DateTime<Utc>,
    db_url: Option<String>,
) -> TestApp {
    let (max_url, vk_url) = (max.url(), vk.url());
    let bitrix24 = Bitrix24Config::default();
    let mut app = spawn_opts(dir, telegram, start, false, bitrix24, db_url, |c| {
        c.max = Some(messenger_max(max_url));
        c.vk = Some(messenger_vk(vk_url));
    })
    .await;
    app.max = Some(max);
    app.vk = Some(vk);
    app
}

/// The MAX settings of a test server talking to the emulator at `url`.
pub fn messenger_max(url: String) -> MaxConfig {
    MaxConfig {
        token: crate::max::TOKEN.into(),
        secret: Some(crate::max::SECRET.into()),
        api_url: url,
    }
}

/// The VK settings of a test server talking to the emulator at `url`.
pub fn messenger_vk(url: String) -> VkConfig {
    VkConfig {
        token: crate::vk::TOKEN.into(),
        group_id: Some(crate::vk::GROUP_ID),
        secret: Some(crate::vk::SECRET.into()),
        confirmation: Some(crate::vk::CONFIRMATION.into()),
        api_url: url,
    }
}

/// The web-only server without a managers' channel: hand-offs become call backs.
pub async fn spawn_without_managers() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let (start, bitrix24) = (friday_10am(), Bitrix24Config::default());
    spawn_opts(dir, None, start, false, bitrix24, None, |c| {
        c.managers_chat = None
    })
    .await
}

/// The web-only server with these access settings (`/metrics` token, frame ancestors).
pub async fn spawn_with_access(access: bot::server::Access) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let (start, bitrix24) = (friday_10am(), Bitrix24Config::default());
    spawn_opts(dir, None, start, false, bitrix24, None, move |c| {
        c.access = access
    })
    .await
}

/// The web-only server with the HTTP time limits `http`.
pub async fn spawn_with_http(http: HttpTimeouts) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let (start, bitrix24) = (friday_10am(), Bitrix24Config::default());
    spawn_opts(dir, None, start, false, bitrix24, None, move |c| {
        c.http = http
    })
    .await
}

async fn spawn_opts(
    dir: tempfile::TempDir,
    emulator: Option<TelegramEmulator>,
    start: DateTime<Utc>,
    polling: bool,
    bitrix24: Bitrix24Config,
    db_url: Option<String>,
    tune: impl FnOnce(&mut ServeConfig),
) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db_url =
        db_url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bot.db").display()));
    let clock = Clock::starting_at(start);
    let mut config = ServeConfig {
        profile: bot::config::demo_salon(),
        db_url: db_url.clone(),
        listen: "127.0.0.1:0".parse().expect("address"),
        telegram: emulator.as_ref().map(|e| TelegramConfig {
            token: TOKEN.into(),
            secret: Some(SECRET.into()),
            api_url: e.url(),
            groups: Vec::new(),
        }),
        max: None,
        vk: None,
        clock: clock.clone(),
        worker_interval: Duration::from_millis(100),
        telegram_polling: polling,
        managers_chat: Some(MANAGERS),
        bitrix24: bitrix24.clone(),
        http: HttpTimeouts::default(),
        access: Default::default(),
        retention: None,
        llm: None,
    };
    tune(&mut config);
    let bound = server::bind(config).await.expect("server binds");
    let addr = bound.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        bound
            .run(async {
                let _ = stopped.await;
            })
            .await
            .expect("server runs");
    });
    TestApp {
        addr,
        http: reqwest::Client::new(),
        db_url,
        telegram: emulator,
        max: None,
        vk: None,
        clock,
        bitrix24,
        polling,
        stop: Some(stop),
        handle: Some(handle),
        _dir: dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POST a JSON body to the web API; (status, JSON body).
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        status_and_json(self.http.post(self.url(path)).json(body)).await
    }

    /// POST a form-encoded body (a Bitrix24 event); (status, JSON body).
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        status_and_json(self.http.post(self.url(path)).form(form)).await
    }

    pub async fn say(&self, client: &str, text: &str) -> Value {
        let message = json!({ "client_id": client, "text": text });
        self.send_message(&message, format!("{text:?}")).await
    }

    pub async fn press(&self, client: &str, payload: &str) -> Value {
        let message = json!({ "client_id": client, "button": payload });
        self.send_message(&message, format!("button {payload:?}"))
            .await
    }

    /// POST a web chat message that must be taken (200, `what` names it otherwise); the body.
    async fn send_message(&self, message: &Value, what: String) -> Value {
        let (status, body) = self.post_json("/api/v1/messages", message).await;
        assert_eq!(status, 200, "{what} → {body}");
        body
    }

    /// POST a Telegram update with the given secret header (None: no header).
    pub async fn telegram_update(&self, secret: Option<&str>, update: &Value) -> u16 {
        let mut req = self.http.post(self.url("/webhooks/telegram")).json(update);
        if let Some(s) = secret {
            req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
        }
        req.send().await.expect("request").status().as_u16()
    }

    /// The MAX emulator (the app was spawned with messengers).
    pub fn max(&self) -> &MaxEmulator {
        self.max.as_ref().expect("spawned with MAX")
    }

    /// The VK emulator (the app was spawned with messengers).
    pub fn vk(&self) -> &VkEmulator {
        self.vk.as_ref().expect("spawned with VK")
    }

    /// Deliver a MAX update to the webhook with the right secret; the status.
    pub async fn max_update(&self, update: &Value) -> u16 {
        let url = self.url("/webhooks/max");
        crate::max::deliver(&self.http, &url, Some(crate::max::SECRET), update).await
    }

    /// Deliver a VK Callback API call to the webhook: (status, body).
    pub async fn vk_call(&self, call: &Value) -> (u16, String) {
        crate::vk::deliver(&self.http, &self.url("/webhooks/vk"), call).await
    }

    pub fn emulator(&self) -> &TelegramEmulator {
        self.telegram.as_ref().expect("telegram is on in this test")
    }

    /// A second handle on the server's database.
    pub async fn store(&self) -> Store {
        Store::open(&self.db_url)
            .await
            .expect("open the test store")
    }

    /// GET a path; the response, whatever its status.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        let sent = self.http.get(self.url(path)).send().await;
        sent.unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// The `/metrics` exposition text.
    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.text().await.expect("text")
    }

    /// GET a path; the JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.json().await.expect("a JSON body")
    }

    /// Wait until no reply waits in the outbox (or panic after 5 s), then a little longer so
    /// that a duplicate send would have shown up.
    pub async fn outbox_drained(&self) {
        let store = self.store().await;
        for _ in 0..250 {
            let pending = store.pending_jobs().await.expect("jobs");
            if !pending.iter().any(|j| j.kind == bot::store::JobKind::Send) {
                tokio::time::sleep(Duration::from_millis(200)).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("replies still waiting in the outbox after 5 s");
    }

    /// Wait up to 5 s for the first dead letters; them.
    pub async fn dead_letters(&self) -> Vec<bot::store::Job> {
        let store = self.store().await;
        for _ in 0..250 {
            let dead = store.dead_jobs().await.expect("dead letters");
            if !dead.is_empty() {
                return dead;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Vec::new()
    }

    /// Row counts of the server's database.
    pub async fn counts(&self) -> bot::store::Counts {
        self.store().await.counts().await.expect("counts")
    }

    /// Stop the server and start it again on the same database (and emulator), with its
    /// clock started at `start`.
    pub async fn restart_at(self, start: DateTime<Utc>) -> TestApp {
        let bitrix24 = self.bitrix24.clone();
        self.restart_with(start, bitrix24).await
    }

    /// Stop the server and start it again on the same database with other Bitrix24 settings.
    pub async fn restart_with(self, start: DateTime<Utc>, bitrix24: Bitrix24Config) -> TestApp {
        self.stop().await.start_at(start, bitrix24).await
    }

    /// Stop the server the way SIGTERM does, keeping its database (and emulator) for a restart.
    pub async fn stop(mut self) -> Stopped {
        self.stop_and_wait().await;
        Stopped {
            db_url: self.db_url.clone(),
            telegram: self.telegram.take(),
            max: self.max.take(),
            vk: self.vk.take(),
            polling: self.polling,
            dir: self._dir,
        }
    }

    /// Stop the server the way SIGTERM does and wait for it to finish.
    pub async fn shutdown(mut self) {
        self.stop_and_wait().await;
    }

    async fn stop_and_wait(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            // The server's own bound: in-flight requests get `HttpTimeouts::grace` (10 s), then
            // the CRM worker's round up to 5 s more, then the send worker's current job. A 10 s
            // wait here failed once on a loaded CI machine with nothing wrong in the server.
            tokio::time::timeout(Duration::from_secs(30), handle)
                .await
                .expect("server stops within 30 s")
                .expect("server task");
        }
    }
}

/// All reply texts of a web response, joined.
/// A stopped server's database and emulator, to be started again.
pub struct Stopped {
    pub db_url: String,
    telegram: Option<TelegramEmulator>,
    max: Option<MaxEmulator>,
    vk: Option<VkEmulator>,
    polling: bool,
    dir: tempfile::TempDir,
}

impl Stopped {
    pub async fn start_at(self, start: DateTime<Utc>, bitrix24: Bitrix24Config) -> TestApp {
        match (self.max, self.vk) {
            (Some(max), Some(vk)) => {
                start_messengers(self.dir, self.telegram, max, vk, start, None).await
            }
            _ => spawn_on(self.dir, self.telegram, start, self.polling, bitrix24).await,
        }
    }
}

pub fn texts(body: &Value) -> String {
    body["replies"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|r| r["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// Every button payload of a web response.
pub fn payloads(body: &Value) -> Vec<String> {
    body["replies"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["buttons"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["payload"].as_str().map(String::from))
        .collect()
}

/// A private-chat text message update.
pub fn tg_text(update_id: i64, chat_id: i64, text: &str) -> Value {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": update_id, "date": 1_763_607_600,
            "from": { "id": chat_id, "is_bot": false, "first_name": "Марина" },
            "chat": { "id": chat_id, "type": "private", "first_name": "Марина" },
            "text": text
        }
    })
}

/// A private-chat message of `chat_id` sharing a contact card: `card` is the `contact` object
/// (`phone_number`, `first_name`, `user_id` …).
pub fn tg_contact(update_id: i64, chat_id: i64, card: Value) -> Value {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": update_id, "date": 1_763_607_700,
            "from": { "id": chat_id, "is_bot": false, "first_name": "Марина" },
            "chat": { "id": chat_id, "type": "private" },
            "contact": card
        }
    })
}

/// A button press in chat 901: with `data` it goes to the engine, without it is only
/// acknowledged.
pub fn tg_press(update_id: i64, query_id: &str, data: Option<&str>) -> Value {
    let mut press = json!({
        "update_id": update_id,
        "callback_query": {
            "id": query_id,
            "from": { "id": 901, "is_bot": false, "first_name": "Марина" },
            "message": { "message_id": 2, "date": 1_763_607_600,
                         "chat": { "id": 901, "type": "private" }, "text": "…" },
            "chat_instance": "ci-1",
        }
    });
    if let Some(data) = data {
        press["callback_query"]["data"] = json!(data);
    }
    press
}
