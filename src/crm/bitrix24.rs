//! The Bitrix24 REST transport over an incoming-webhook URL
//! (`https://portal.bitrix24.ru/rest/{USER_ID}/{CODE}/`).
//!
//! It owns what the portal demands of every caller (see `reference/bitrix24.md`): JSON bodies,
//! no automatic redirects (a renamed portal answers 302 and a followed POST would lose its
//! body), plain http refused except on loopback, a client-side leaky bucket that mirrors the
//! portal's (2 req/s, burst 50 by default), backoff on 503 `QUERY_LIMIT_EXCEEDED`, a pause per
//! method on 429 `OPERATION_TIME_LIMIT`, batches of at most 50 labelled commands, and answers
//! that are not what the documentation promises (`error` as an integer or an empty string, no
//! `time` on errors, `[]` for an empty object, numbers as strings).
//!
//! It knows nothing about leads; [`super::lead`] builds the calls.

use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Largest number of commands in one `batch` call.
pub const BATCH_MAX: usize = 50;
/// Largest number of values in one `crm.duplicate.findbycomm` call.
pub const FINDBYCOMM_MAX: usize = 20;

/// Why a CRM call failed.
#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    /// Our own settings are wrong (bad webhook URL, bad field name); nothing was sent.
    #[error("Bitrix24 configuration: {0}")]
    Config(String),
    /// The portal refused in a way no retry fixes; the sync must stop.
    #[error("Bitrix24 refused {method}: {cause}. Fix: {fix}")]
    Fatal {
        method: String,
        cause: String,
        fix: String,
        error: Box<PortalError>,
    },
    /// The portal moved (HTTP 3xx): the webhook URL must be updated.
    #[error(
        "Bitrix24 portal moved (HTTP {status}) to {location}. Fix: update BOT_BITRIX24_WEBHOOK to the new address"
    )]
    Moved { status: u16, location: String },
    /// A method-level error (bad field value, not found…): this call failed, others may not.
    #[error("Bitrix24 {method}: {error}")]
    Api { method: String, error: PortalError },
    /// The portal stayed overloaded, unreachable or broken through every retry.
    #[error("Bitrix24 {method} unavailable after {attempts} attempts: {last}")]
    Unavailable {
        method: String,
        attempts: u32,
        last: String,
    },
    /// The answer could not be read (not JSON, unexpected shape).
    #[error("Bitrix24 {method}: unreadable answer: {detail}")]
    BadResponse { method: String, detail: String },
}

impl CrmError {
    /// Errors after which no further call can succeed: stop the whole sync.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            CrmError::Fatal { .. } | CrmError::Moved { .. } | CrmError::Config(_)
        )
    }
}

/// One `{error, error_description}` answer, with the HTTP status it came with (0 inside a batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalError {
    /// The code as text: `""` when the portal gave an empty code, `"100"` for an integer code.
    pub code: String,
    pub description: String,
    pub status: u16,
}

impl std::fmt::Display for PortalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code.is_empty(), self.description.is_empty()) {
            (true, _) => write!(f, "{}", self.description),
            (false, true) => write!(f, "{}", self.code),
            (false, false) => write!(f, "{}: {}", self.code, self.description),
        }?;
        if self.status != 0 {
            write!(f, " (HTTP {})", self.status)?;
        }
        Ok(())
    }
}

impl PortalError {
    /// Read an error object: `error` may be a string, an empty string, an integer or missing.
    pub fn from_value(v: &Value, status: u16) -> Option<PortalError> {
        let obj = v.as_object()?;
        let err = obj.get("error")?;
        let code = match err {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            other => other.to_string(),
        };
        let description = match obj.get("error_description") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        Some(PortalError {
            code,
            description,
            status,
        })
    }

    pub fn code_is(&self, code: &str) -> bool {
        self.code.eq_ignore_ascii_case(code)
    }

    pub fn is_query_limit(&self) -> bool {
        self.code_is("QUERY_LIMIT_EXCEEDED")
    }

    pub fn is_operation_limit(&self) -> bool {
        self.code_is("OPERATION_TIME_LIMIT")
    }

    /// `crm.status.add` of an id that exists: the source is there, which is what we wanted.
    pub fn is_already_exists(&self) -> bool {
        self.code_is("ERROR_CORE") && self.description.to_lowercase().contains("already exists")
    }

    /// The cause and the fix when no retry can help, or None for an ordinary method error.
    pub fn fatal(&self) -> Option<(&'static str, &'static str)> {
        let desc = self.description.to_lowercase();
        let code = self.code.to_ascii_uppercase();
        Some(match code.as_str() {
            "NO_AUTH_FOUND"
            | "INVALID_CREDENTIALS"
            | "INVALID_TOKEN"
            | "EXPIRED_TOKEN"
            | "WRONG_AUTH_TYPE" => (
                "the webhook code is wrong, deleted or expired",
                "create an incoming webhook in Bitrix24 (Developer resources → Other → Incoming webhook) with the `crm` scope and put its URL in BOT_BITRIX24_WEBHOOK",
            ),
            "INSUFFICIENT_SCOPE" => (
                "the webhook lacks the `crm` scope",
                "edit the incoming webhook in Bitrix24 and tick the CRM (crm) scope",
            ),
            "ACCESS_DENIED" if desc.contains("commercial") || desc.contains("plan") => (
                "REST API is not available on this Bitrix24 plan",
                "switch the portal to a commercial plan with a Market subscription (or its trial)",
            ),
            "ACCESS_DENIED" | "USER_ACCESS_ERROR" | "METHOD_CONFIRM_DENIED" => (
                "access denied to the webhook's user",
                "create the webhook as a user with CRM rights (an administrator for `bot crm setup`)",
            ),
            "METHOD_CONFIRM_WAITING" => (
                "an administrator has not yet confirmed this method for the application",
                "ask the portal administrator to confirm access",
            ),
            "INVALID_REQUEST" if desc.contains("https") => (
                "the portal requires https for webhooks",
                "use the https:// webhook URL",
            ),
            "ERROR_METHOD_NOT_FOUND" => (
                "the portal does not know the method (a webhook URL without the user id segment, or a missing scope)",
                "copy the full webhook URL `https://PORTAL/rest/USER_ID/CODE/` and check its scopes",
            ),
            "PORTAL_DELETED" => (
                "the portal was deleted",
                "point BOT_BITRIX24_WEBHOOK to an existing portal",
            ),
            "OVERLOAD_LIMIT" => (
                "Bitrix24 support blocked this portal's REST access for overload",
                "contact Bitrix24 support",
            ),
            "" if desc.starts_with("access denied") => (
                "access denied to the webhook's user",
                "give the webhook's user rights to add and change leads (and CRM settings for the source directory), or set BOT_BITRIX24_SOURCE_ID to an existing source",
            ),
            _ => return None,
        })
    }
}

/// Settings of the client; [`Settings::from_env`] reads them from `BOT_BITRIX24_*`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where methods are called, ending with `/`: the incoming-webhook URL, or in OAuth mode
    /// the portal's `client_endpoint` (`https://PORTAL/rest/`).
    pub base: String,
    /// Leaky bucket drain rate, requests per second (portal: 2, Enterprise 5).
    pub rate: f64,
    /// Leaky bucket size (portal: 50, Enterprise 250).
    pub burst: f64,
    /// Attempts per call on overload or network errors.
    pub max_attempts: u32,
    /// First backoff pause; doubled on each retry, capped at `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Timeout of one HTTP request (the cloud cuts requests at 60 s).
    pub timeout: Duration,
    /// The longest a call waits for a method paused by a 429 `OPERATION_TIME_LIMIT`; a longer
    /// pause fails the call at once (`Unavailable`), and [`Bitrix24::paused_for`] says until
    /// when, so a queue can retry then instead of holding its worker.
    pub max_pause: Duration,
}

impl Settings {
    pub fn new(webhook: &str) -> Result<Settings, CrmError> {
        Ok(Settings {
            base: validate_webhook(webhook)?,
            ..Settings::new_base(webhook)?
        })
    }

    /// Defaults around a base URL that is not a webhook (OAuth `client_endpoint`).
    pub fn new_base(base: &str) -> Result<Settings, CrmError> {
        Ok(Settings {
            base: validate_base(base)?,
            rate: 2.0,
            burst: 50.0,
            max_attempts: 6,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            timeout: Duration::from_secs(65),
            max_pause: Duration::from_secs(600),
        })
    }

    /// `BOT_BITRIX24_WEBHOOK` (required), `BOT_BITRIX24_RATE` and `BOT_BITRIX24_BURST`.
    pub fn from_env() -> Result<Settings, CrmError> {
        let webhook = std::env::var("BOT_BITRIX24_WEBHOOK").map_err(|_| {
            CrmError::Config(
                "BOT_BITRIX24_WEBHOOK is not set; set it to the incoming webhook URL, e.g. https://portal.bitrix24.ru/rest/1/CODE/ (or use OAuth: BOT_BITRIX24_TOKEN_FILE, BOT_BITRIX24_CLIENT_ID, BOT_BITRIX24_CLIENT_SECRET)".into(),
            )
        })?;
        Settings::tuned_from_env(Settings::new(&webhook)?)
    }

    /// Apply `BOT_BITRIX24_RATE` and `BOT_BITRIX24_BURST`.
    pub fn tuned_from_env(mut s: Settings) -> Result<Settings, CrmError> {
        if let Some(rate) = env_number("BOT_BITRIX24_RATE")? {
            s.rate = rate;
        }
        if let Some(burst) = env_number("BOT_BITRIX24_BURST")? {
            s.burst = burst;
        }
        Ok(s)
    }
}

fn env_number(name: &str) -> Result<Option<f64>, CrmError> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && n >= 1.0 => Ok(Some(n)),
            _ => Err(CrmError::Config(format!(
                "{name}={v:?}: expected a number of at least 1"
            ))),
        },
    }
}

/// Check a base URL (https, or http on loopback) and return it with a trailing slash.
pub fn validate_base(raw: &str) -> Result<String, CrmError> {
    let (url, _) = parse_base(raw, "Bitrix24 endpoint")?;
    let mut s = url.to_string();
    if !s.ends_with('/') {
        s.push('/');
    }
    Ok(s)
}

fn parse_base(raw: &str, what: &str) -> Result<(reqwest::Url, String), CrmError> {
    let shown = mask_webhook(raw);
    let bad = |why: &str| {
        CrmError::Config(format!(
            "{what} {shown:?}: {why} (expected https://PORTAL/rest/USER_ID/CODE/)"
        ))
    };
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| bad(&format!("not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" => {
            let host = url.host_str().unwrap_or("");
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err(bad(
                    "plain http is refused (Bitrix24 requires https for webhooks); only loopback addresses may use http",
                ));
            }
        }
        other => return Err(bad(&format!("scheme {other:?} is not https"))),
    }
    Ok((url, shown))
}

/// Check a webhook URL and return it with a trailing slash. Plain http only on loopback.
pub fn validate_webhook(raw: &str) -> Result<String, CrmError> {
    let (url, shown) = parse_base(raw, "BOT_BITRIX24_WEBHOOK")?;
    let bad = |why: &str| {
        CrmError::Config(format!(
            "BOT_BITRIX24_WEBHOOK {shown:?}: {why} (expected https://PORTAL/rest/USER_ID/CODE/)"
        ))
    };
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    let rest = segments.iter().rposition(|s| *s == "rest");
    let tail = rest.map(|i| &segments[i + 1..]).unwrap_or(&[]);
    match tail {
        [user, code] if user.chars().all(|c| c.is_ascii_digit()) && !code.is_empty() => {}
        [_] => return Err(bad("the user id segment is missing")),
        _ => return Err(bad("the path must be /rest/USER_ID/CODE/")),
    }
    let mut s = url.to_string();
    if !s.ends_with('/') {
        s.push('/');
    }
    Ok(s)
}

/// The webhook URL with its secret code hidden, for messages and logs.
pub fn mask_webhook(raw: &str) -> String {
    match raw.trim_end_matches('/').rsplit_once('/') {
        Some((head, code)) if !code.is_empty() => {
            let keep: String = code.chars().take(2).collect();
            format!("{head}/{keep}***/")
        }
        _ => "***".into(),
    }
}

/// Client-side leaky bucket: each request adds 1, the level drains at `rate` per second and
/// never exceeds `burst`, exactly what the portal counts — so the portal never has to refuse.
#[derive(Debug)]
struct Bucket {
    level: f64,
    at: Instant,
}

/// A successful answer: the `result` plus list paging (`total`, `next`) when present.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub result: Value,
    pub total: Option<u64>,
    pub next: Option<u64>,
}

/// Whether a call may be sent again after a failure whose effect is unknown (timeout, 500).
/// Writes are only repeated when the portal certainly did not run them (503 limit, 429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    Safe,
    OnlyUnexecuted,
}

/// One command of a batch.
#[derive(Debug, Clone)]
pub struct Command {
    /// Never numeric: numeric labels turn the answer maps into arrays.
    pub label: String,
    pub method: String,
    pub params: Value,
}

/// The answer of a batch, per label. Labels in neither map did not run (`halt`).
#[derive(Debug, Clone, Default)]
pub struct BatchAnswer {
    pub results: HashMap<String, Value>,
    pub errors: HashMap<String, PortalError>,
    pub totals: HashMap<String, u64>,
}

/// Counters of what the transport did, for reports and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub requests: u64,
    pub query_limit_retries: u64,
    pub operation_limit_pauses: u64,
    pub network_retries: u64,
}

/// The Bitrix24 client. Calls from one client are throttled together.
pub struct Bitrix24 {
    http: reqwest::Client,
    settings: Settings,
    bucket: tokio::sync::Mutex<Bucket>,
    /// Per method: not before this instant (after a 429).
    paused: Mutex<HashMap<String, Instant>>,
    /// Per method: the last `time.operating_reset_at` seen (unix seconds).
    reset_at: Mutex<HashMap<String, f64>>,
    stats: Mutex<Stats>,
    /// OAuth mode: tokens instead of a webhook code.
    oauth: Option<super::oauth::OAuth>,
}

/// Install the ring crypto provider once (another install is fine).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Bitrix24 {
    pub fn new(settings: Settings) -> Result<Bitrix24, CrmError> {
        install_crypto();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!(
                "bot/",
                env!("CARGO_PKG_VERSION"),
                " (bitrix24 crm sync)"
            ))
            .build()
            .map_err(|e| CrmError::Config(format!("HTTP client: {e}")))?;
        Ok(Bitrix24 {
            http,
            bucket: tokio::sync::Mutex::new(Bucket {
                level: 0.0,
                at: Instant::now(),
            }),
            settings,
            paused: Mutex::new(HashMap::new()),
            reset_at: Mutex::new(HashMap::new()),
            stats: Mutex::new(Stats::default()),
            oauth: None,
        })
    }

    /// OAuth mode: calls go to the tokens' `client_endpoint` with `auth`, renewing on expiry.
    pub fn with_oauth(
        settings: Settings,
        oauth: super::oauth::OAuth,
    ) -> Result<Bitrix24, CrmError> {
        let mut settings = settings;
        settings.base = validate_base(&oauth.tokens().client_endpoint)?;
        let mut client = Bitrix24::new(settings)?;
        client.oauth = Some(oauth);
        Ok(client)
    }

    /// From the environment: `BOT_BITRIX24_WEBHOOK`, or OAuth with `BOT_BITRIX24_TOKEN_FILE`.
    pub fn from_env() -> Result<Bitrix24, CrmError> {
        match (
            std::env::var("BOT_BITRIX24_WEBHOOK"),
            std::env::var_os("BOT_BITRIX24_TOKEN_FILE"),
        ) {
            (Err(_), Some(file)) => {
                let oauth = super::oauth::OAuth::from_env(file.into())?;
                let endpoint = oauth.tokens().client_endpoint;
                let settings = Settings::tuned_from_env(Settings::new_base(&endpoint)?)?;
                Bitrix24::with_oauth(settings, oauth)
            }
            _ => Bitrix24::new(Settings::from_env()?),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The same client, waiting at most `d` for a method paused by a 429 (see
    /// [`Settings::max_pause`]): a queue worker retries the job at the pause's end instead.
    pub fn with_max_pause(mut self, d: Duration) -> Bitrix24 {
        self.settings.max_pause = d;
        self
    }

    pub fn stats(&self) -> Stats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    fn bump(&self, f: impl FnOnce(&mut Stats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }

    /// Wait until one more request fits in the bucket, then take the place. One place is
    /// kept free: requests reach the portal with varying delays, so at a full bucket a
    /// request that travelled faster than the one before would overflow the portal's count.
    async fn throttle(&self) {
        let burst = (self.settings.burst - 1.0).max(1.0);
        let mut b = self.bucket.lock().await;
        loop {
            let now = Instant::now();
            let drained = now.duration_since(b.at).as_secs_f64() * self.settings.rate;
            b.level = (b.level - drained).max(0.0);
            b.at = now;
            if b.level + 1.0 <= burst {
                b.level += 1.0;
                return;
            }
            let wait = (b.level + 1.0 - burst) / self.settings.rate;
            tokio::time::sleep(Duration::from_secs_f64(wait.max(0.001))).await;
        }
    }

    /// After the portal said the bucket is full, believe it: ours is full too.
    async fn fill_bucket(&self) {
        let mut b = self.bucket.lock().await;
        b.level = (self.settings.burst - 1.0).max(1.0);
        b.at = Instant::now();
    }

    /// Wait out the pause of `method`, or fail at once when it is longer than `max_pause`.
    async fn wait_method(&self, method: &str) -> Result<(), CrmError> {
        let until = self.paused.lock().ok().and_then(|p| p.get(method).copied());
        if let Some(until) = until {
            let left = until.saturating_duration_since(Instant::now());
            if left > self.settings.max_pause {
                return Err(CrmError::Unavailable {
                    method: method.to_string(),
                    attempts: 0,
                    last: format!(
                        "OPERATION_TIME_LIMIT: the method is paused for {} s more",
                        left.as_secs()
                    ),
                });
            }
            tokio::time::sleep_until(until).await;
        }
        Ok(())
    }

    /// How long until every method paused by a 429 may be called again; None when none is.
    pub fn paused_for(&self) -> Option<Duration> {
        let now = Instant::now();
        let paused = self.paused.lock().ok()?;
        paused
            .values()
            .filter(|until| **until > now)
            .max()
            .map(|until| *until - now)
    }

    fn pause_method(&self, method: &str) {
        let now_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let reset = self
            .reset_at
            .lock()
            .ok()
            .and_then(|r| r.get(method).copied());
        // Until the oldest one-minute bucket drops off; without a hint, one minute.
        let secs = match reset {
            Some(r) if r > now_unix => (r - now_unix).min(600.0),
            _ => 60.0,
        };
        if let Ok(mut p) = self.paused.lock() {
            p.insert(
                method.to_string(),
                Instant::now() + Duration::from_secs_f64(secs),
            );
        }
    }

    /// The URL and JSON body of a call: the webhook carries its code in the URL, OAuth adds
    /// the access token as `auth`.
    fn request_parts(&self, method: &str, params: &Value) -> (String, Value) {
        match &self.oauth {
            None => (
                format!("{}{method}.json", self.settings.base),
                params.clone(),
            ),
            Some(o) => {
                let t = o.tokens();
                let base = validate_base(&t.client_endpoint)
                    .unwrap_or_else(|_| self.settings.base.clone());
                let mut body = match params {
                    Value::Object(m) => m.clone(),
                    _ => Map::new(),
                };
                body.insert("auth".into(), Value::String(t.access_token));
                (format!("{base}{method}.json"), Value::Object(body))
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        self.settings
            .backoff
            .saturating_mul(factor)
            .min(self.settings.max_backoff)
    }

    /// A request lost on the wire or failed by the server (5xx): wait and let the caller try
    /// `again`, or give up with `last`.
    async fn network_failure(
        &self,
        method: &str,
        attempt: u32,
        last: String,
        again: bool,
    ) -> Result<(), CrmError> {
        if !again {
            return Err(CrmError::Unavailable {
                method: method.to_string(),
                attempts: attempt,
                last,
            });
        }
        self.bump(|s| s.network_retries += 1);
        tokio::time::sleep(self.backoff(attempt)).await;
        Ok(())
    }

    /// Call one method with JSON `params`; retries what may be retried.
    pub async fn call(
        &self,
        method: &str,
        params: &Value,
        retry: Retry,
    ) -> Result<Answer, CrmError> {
        let method = method.to_ascii_lowercase();
        let mut attempt = 0u32;
        let mut renewed = false;
        loop {
            attempt += 1;
            let (url, body) = self.request_parts(&method, params);
            self.wait_method(&method).await?;
            self.throttle().await;
            self.bump(|s| s.requests += 1);
            let sent = self
                .http
                .post(&url)
                .header(reqwest::header::ACCEPT, "application/json")
                .json(&body)
                .send()
                .await;
            let give_up = attempt >= self.settings.max_attempts;
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    // reqwest names the URL, which carries the webhook code: drop it.
                    let e = e.without_url();
                    // A request that never connected did not run; otherwise it may have.
                    let again = !give_up && (retry != Retry::OnlyUnexecuted || e.is_connect());
                    let last = format!("network: {}", error_chain(&e));
                    self.network_failure(&method, attempt, last, again).await?;
                    continue;
                }
            };
            let status = response.status().as_u16();
            if (300..400).contains(&status) {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .unwrap_or("(no Location header)");
                // The new address carries the webhook code: show it masked, without the method.
                let suffix = format!("{method}.json");
                let location = match location.strip_suffix(&suffix) {
                    Some(base) => mask_webhook(base),
                    None => mask_webhook(location),
                };
                return Err(CrmError::Moved { status, location });
            }
            let body = match response.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    let e = e.without_url();
                    let again = !give_up && retry != Retry::OnlyUnexecuted;
                    let last = format!("reading the answer: {}", error_chain(&e));
                    self.network_failure(&method, attempt, last, again).await?;
                    continue;
                }
            };
            let value: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => {
                    let snippet: String = String::from_utf8_lossy(&body).chars().take(80).collect();
                    let last = format!("HTTP {status}, not JSON ({e}): {snippet:?}");
                    // An overloaded box answers HTML; that is a server failure, not ours.
                    if status >= 500 {
                        let again = !give_up && retry == Retry::Safe;
                        self.network_failure(&method, attempt, last, again).await?;
                        continue;
                    }
                    return Err(CrmError::BadResponse {
                        method,
                        detail: last,
                    });
                }
            };
            if let Some(error) = PortalError::from_value(&value, status) {
                if error.is_query_limit() {
                    if give_up {
                        return Err(CrmError::Unavailable {
                            method,
                            attempts: attempt,
                            last: error.to_string(),
                        });
                    }
                    self.bump(|s| s.query_limit_retries += 1);
                    self.fill_bucket().await;
                    tokio::time::sleep(self.backoff(attempt)).await;
                    continue;
                }
                if error.is_operation_limit() {
                    self.bump(|s| s.operation_limit_pauses += 1);
                    self.pause_method(&method);
                    if give_up {
                        return Err(CrmError::Unavailable {
                            method,
                            attempts: attempt,
                            last: error.to_string(),
                        });
                    }
                    continue;
                }
                if let Some(oauth) = &self.oauth
                    && error.code_is("expired_token")
                    && !renewed
                {
                    // Renew once and repeat the same call; it did not run.
                    oauth.refresh(&self.http).await?;
                    renewed = true;
                    attempt -= 1;
                    continue;
                }
                if let Some((cause, fix)) = error.fatal() {
                    return Err(CrmError::Fatal {
                        method,
                        cause: cause.into(),
                        fix: fix.into(),
                        error: Box::new(error),
                    });
                }
                if status >= 500 {
                    let again = !give_up && retry == Retry::Safe;
                    self.network_failure(&method, attempt, error.to_string(), again)
                        .await?;
                    continue;
                }
                return Err(CrmError::Api { method, error });
            }
            let Some(obj) = value.as_object() else {
                return Err(CrmError::BadResponse {
                    method,
                    detail: format!("HTTP {status}: expected an object"),
                });
            };
            if let Some(reset) = obj
                .get("time")
                .and_then(|t| t.get("operating_reset_at"))
                .and_then(number)
                && let Ok(mut r) = self.reset_at.lock()
            {
                r.insert(method.clone(), reset);
            }
            let Some(result) = obj.get("result") else {
                return Err(CrmError::BadResponse {
                    method,
                    detail: format!("HTTP {status}: no `result` and no `error`"),
                });
            };
            return Ok(Answer {
                result: result.clone(),
                total: obj.get("total").and_then(number).map(|n| n as u64),
                next: obj.get("next").and_then(number).map(|n| n as u64),
            });
        }
    }

    /// Run up to [`BATCH_MAX`] commands in one request (`halt: 0`). The batch is one request
    /// for the bucket. Whole-batch failures come back as `Err`; per-command ones in `errors`.
    pub async fn batch(&self, commands: &[Command], retry: Retry) -> Result<BatchAnswer, CrmError> {
        if commands.len() > BATCH_MAX {
            return Err(CrmError::Config(format!(
                "a batch holds at most {BATCH_MAX} commands, got {}",
                commands.len()
            )));
        }
        let mut cmd = Map::new();
        for c in commands {
            if !c.label.chars().any(|ch| ch.is_ascii_alphabetic()) {
                return Err(CrmError::Config(format!(
                    "batch label {:?} must contain a letter",
                    c.label
                )));
            }
            cmd.insert(
                c.label.clone(),
                Value::String(format!("{}?{}", c.method, php_query(&c.params))),
            );
        }
        // The operating limit counts each inner command against its own method.
        let mut methods: Vec<String> = commands
            .iter()
            .map(|c| c.method.to_ascii_lowercase())
            .collect();
        methods.sort();
        methods.dedup();
        for m in &methods {
            self.wait_method(m).await?;
        }
        let answer = self
            .call("batch", &json!({"halt": 0, "cmd": cmd}), retry)
            .await?;
        let parsed = parse_batch(&answer.result).map_err(|detail| CrmError::BadResponse {
            method: "batch".into(),
            detail,
        })?;
        let times = object_or_empty(answer.result.get("result_time")).unwrap_or_default();
        for c in commands {
            let method = c.method.to_ascii_lowercase();
            if let Some(reset) = times
                .get(&c.label)
                .and_then(|t| t.get("operating_reset_at"))
                .and_then(number)
                && let Ok(mut r) = self.reset_at.lock()
            {
                r.insert(method.clone(), reset);
            }
            if parsed
                .errors
                .get(&c.label)
                .is_some_and(PortalError::is_operation_limit)
            {
                self.bump(|s| s.operation_limit_pauses += 1);
                self.pause_method(&method);
            }
        }
        Ok(parsed)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let _ = write!(s, ": {inner}");
        src = inner.source();
    }
    s
}

/// A number that may arrive as a JSON number or a string (`"123"`, `"0.00"`).
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    }
}

/// An id that may arrive as a number or a string; positive integers only.
pub fn id(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
}

/// An object that may arrive as `[]` (an empty PHP array) or as a list with index keys.
pub fn object_or_empty(v: Option<&Value>) -> Result<Map<String, Value>, String> {
    match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(Value::Array(a)) => Ok(a
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v.clone()))
            .collect()),
        Some(other) => Err(format!("expected an object, got {other}")),
    }
}

/// Read the `result` of a `batch` call.
pub fn parse_batch(result: &Value) -> Result<BatchAnswer, String> {
    let outer = object_or_empty(Some(result))?;
    let mut answer = BatchAnswer::default();
    for (label, v) in object_or_empty(outer.get("result"))? {
        answer.results.insert(label, v);
    }
    for (label, v) in object_or_empty(outer.get("result_error"))? {
        let error = PortalError::from_value(&v, 0).unwrap_or(PortalError {
            code: String::new(),
            description: v.to_string(),
            status: 0,
        });
        answer.errors.insert(label, error);
    }
    for (label, v) in object_or_empty(outer.get("result_total"))? {
        if let Some(n) = id(&v) {
            answer.totals.insert(label, n);
        }
    }
    Ok(answer)
}

/// Encode params as a PHP-style query string (`fields[PHONE][0][VALUE]=%2B7…`), the form of a
/// `batch` command.
pub fn php_query(params: &Value) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}[{k}]")
                    };
                    walk(&key, v, out);
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), v, out);
                }
            }
            Value::Null => out.push((prefix.to_string(), String::new())),
            Value::Bool(b) => out.push((prefix.to_string(), if *b { "Y" } else { "N" }.into())),
            Value::Number(n) => out.push((prefix.to_string(), n.to_string())),
            Value::String(s) => out.push((prefix.to_string(), s.clone())),
        }
    }
    walk("", params, &mut pairs);
    let mut s = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push('&');
        }
        percent_encode(k, &mut s);
        s.push('=');
        percent_encode(v, &mut s);
    }
    s
}

fn percent_encode(text: &str, out: &mut String) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Labels for `n` commands: `{prefix}{i:04}`, never numeric.
pub fn labels(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:04}")).collect()
}

/// A sorted view of a JSON map, for stable output.
pub fn sorted(m: &Map<String, Value>) -> BTreeMap<&str, &Value> {
    m.iter().map(|(k, v)| (k.as_str(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_of_every_shape_are_read() {
        let e = PortalError::from_value(&json!({"error": 100, "error_description": "x"}), 400);
        assert_eq!(e.map(|e| e.code), Some("100".into()));
        let e =
            PortalError::from_value(&json!({"error": "", "error_description": "Not found"}), 400);
        assert_eq!(
            e.map(|e| e.to_string()),
            Some("Not found (HTTP 400)".into())
        );
        assert!(PortalError::from_value(&json!({"result": 1}), 200).is_none());
        assert!(PortalError::from_value(&json!([]), 200).is_none());
    }

    #[test]
    fn fatal_errors_name_cause_and_fix_and_ordinary_ones_do_not() {
        let denied = PortalError {
            code: "ACCESS_DENIED".into(),
            description: "REST API is available only on commercial plans".into(),
            status: 403,
        };
        assert!(denied.fatal().is_some_and(|(c, _)| c.contains("plan")));
        let not_found = PortalError {
            code: String::new(),
            description: "Not found".into(),
            status: 400,
        };
        assert!(not_found.fatal().is_none());
    }

    #[test]
    fn webhook_urls_are_checked() {
        assert!(
            validate_webhook("https://p.bitrix24.ru/rest/1/abc")
                .is_ok_and(|u| u.ends_with("/abc/"))
        );
        assert!(validate_webhook("http://127.0.0.1:8080/rest/1/abc/").is_ok());
        assert!(validate_webhook("http://p.bitrix24.ru/rest/1/abc/").is_err());
        assert!(validate_webhook("https://p.bitrix24.ru/rest/abc/").is_err());
        assert!(validate_webhook("not a url").is_err());
        assert_eq!(
            mask_webhook("https://p/rest/1/abcdef/"),
            "https://p/rest/1/ab***/"
        );
    }

    #[test]
    fn batch_maps_may_be_empty_arrays() {
        let a = parse_batch(&json!({"result": {"a1": 5}, "result_error": [], "result_total": []}));
        assert!(a.is_ok_and(|a| a.results.len() == 1 && a.errors.is_empty()));
        assert!(parse_batch(&json!("nonsense")).is_err());
    }

    #[test]
    fn php_query_brackets_and_escapes() {
        let q =
            php_query(&json!({"fields": {"PHONE": [{"VALUE": "+7 913", "VALUE_TYPE": "MOBILE"}]}}));
        assert_eq!(
            q,
            "fields%5BPHONE%5D%5B0%5D%5BVALUE%5D=%2B7%20913&fields%5BPHONE%5D%5B0%5D%5BVALUE_TYPE%5D=MOBILE"
        );
    }

    #[test]
    fn numbers_may_be_strings() {
        assert_eq!(id(&json!("123")), Some(123));
        assert_eq!(id(&json!(7)), Some(7));
        assert_eq!(id(&json!("x")), None);
        assert_eq!(number(&json!("0.00")), Some(0.0));
    }
}
