//! A local Bitrix24 portal for tests: an axum app on 127.0.0.1:0 that speaks the real wire
//! format of the REST methods the bot calls (see `reference/bitrix24.md`) and checks requests
//! the way the portal does:
//! - webhook path `/rest/{USER_ID}/{CODE}/{method}[.json]`, wrong code → 401 `NO_AUTH_FOUND`,
//!   method names lowercased, unknown method → 404 `ERROR_METHOD_NOT_FOUND`;
//! - JSON, form and query-string parameters (PHP brackets), top-level names in any case;
//! - the leaky bucket (503 `QUERY_LIMIT_EXCEEDED` once the counter would exceed the burst;
//!   every refusal is counted as a violation), the per-method operating limit (429);
//! - `batch` (≤ 50, no nesting, `halt`, `result`/`result_error`/`result_total`/`result_time`,
//!   `[]` for empty maps, arrays for numeric labels);
//! - `crm.status.list/add` (duplicates → `ERROR_CORE`), `crm.duplicate.findbycomm` (written-form
//!   matching, `[]` when nothing, odd error placement), `crm.lead.add/update/get/list` and
//!   `crm.deal.get/list` (string numbers, multifield append, empty-code errors, STATUS_ID /
//!   STAGE_ID with their `*_SEMANTIC_ID` (P, S, F), DATE_MODIFY in the portal's zone with whole
//!   seconds, list filters with prefix operators, pages of 50 with `next`/`total`),
//!   `crm.settings.mode.get` (simple mode converts new leads into deals);
//! - outgoing webhooks: handlers subscribed to ONCRMLEADADD/UPDATE, ONCRMDEALADD/UPDATE get a
//!   form-encoded POST (`event`, `data[FIELDS][ID]`, `ts`, `auth[…]` with the handler's
//!   `application_token`) after every change, from the API or from a manager
//!   ([`Emulator::set_lead_status`]); a failed delivery is never repeated;
//! - fault injection: a plan without REST, random 503s, 500s after the work was done, and an
//!   outage: every request answered 503 by the balancer, or connections refused.
//!
//! Every call and every event delivery is recorded for asserts.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const CODE: &str = "k3yk3yk3yk3y";

/// How the portal behaves.
#[derive(Debug, Clone)]
pub struct Config {
    pub code: String,
    /// Leaky bucket drain per second and size (cloud: 2 and 50; Enterprise 5 and 250).
    pub rate: f64,
    pub burst: f64,
    /// `ACCESS_DENIED`: REST only on commercial plans.
    pub rest_unavailable: bool,
    /// `crm.status.add` refused: the webhook's user has no CRM settings rights.
    pub settings_denied: bool,
    /// Share of requests refused with an injected 503 before doing anything.
    pub random_503: f64,
    /// Share of write requests (add/update/batch with writes) that do the work and then answer
    /// 500 with an HTML body, like a box falling over.
    pub fail_after_write: f64,
    /// Share of write requests that do the work and then answer only after `slow` (the
    /// client has timed out by then: a dropped answer).
    pub slow_after_write: f64,
    pub slow: Duration,
    pub seed: u64,
    /// Simple CRM mode: new leads are converted at once.
    pub simple_mode: bool,
    /// An OAuth application (client id, secret) that may call `/rest/{method}` with tokens.
    pub oauth_app: Option<(String, String)>,
    /// What `scope` answers: the webhook's scopes.
    pub scopes: Vec<String>,
    /// Block a method with 429 for this long after it ran this many times.
    pub operating_block: Option<(String, u32, Duration)>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            code: CODE.into(),
            rate: 2.0,
            burst: 50.0,
            rest_unavailable: false,
            settings_denied: false,
            random_503: 0.0,
            fail_after_write: 0.0,
            slow_after_write: 0.0,
            slow: Duration::from_secs(2),
            seed: 7,
            simple_mode: false,
            scopes: vec!["crm".into(), "user_brief".into()],
            oauth_app: None,
            operating_block: None,
        }
    }
}

/// One HTTP request as the portal saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub params: Value,
    pub status: u16,
    pub at: Instant,
}

#[derive(Debug)]
pub struct Portal {
    pub config: Config,
    pub leads: BTreeMap<u64, Map<String, Value>>,
    pub contacts: BTreeMap<u64, Map<String, Value>>,
    pub deals: BTreeMap<u64, Value>,
    pub statuses: Vec<Map<String, Value>>,
    next_id: u64,
    level: f64,
    level_at: Instant,
    rng: u64,
    pub calls: Vec<Call>,
    /// Requests refused because the client overfilled the bucket.
    pub violations: u64,
    /// 503s and 500s injected by fault settings.
    pub injected: u64,
    method_runs: HashMap<String, u32>,
    pub base: String,
    /// The valid OAuth pair and access tokens that have expired.
    access_token: Option<String>,
    refresh_token: Option<String>,
    expired_tokens: std::collections::HashSet<String>,
    token_seq: u32,
    /// Hold the answer of the current request this long (a fault).
    delay: Option<Duration>,
    blocked_until: HashMap<String, Instant>,
    /// The balancer answers every request with 503 (an outage).
    pub unavailable: bool,
    pub handlers: Vec<Handler>,
    /// Events raised by changes, delivered once the request is answered.
    raised: Vec<(String, u64)>,
    pub deliveries: Vec<Delivery>,
}

pub struct Emulator {
    pub base: String,
    pub portal: Arc<Mutex<Portal>>,
    addr: std::net::SocketAddr,
    /// The running server: its stop signal and task (None while connections are refused).
    server: Mutex<
        Option<(
            tokio::sync::oneshot::Sender<()>,
            tokio::task::JoinHandle<()>,
        )>,
    >,
}

/// An outgoing-webhook handler: who gets which event, with which application token.
#[derive(Debug, Clone)]
pub struct Handler {
    pub event: String,
    pub url: String,
    pub token: String,
}

/// One event POST to a handler and the status it got (None: no answer).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event: String,
    pub id: u64,
    pub url: String,
    pub status: Option<u16>,
}

fn stock_sources() -> Vec<Map<String, Value>> {
    ["CALL", "EMAIL", "WEB", "ADVERTISING", "PARTNER", "OTHER"]
        .iter()
        .enumerate()
        .map(|(i, s)| status_row(i as u64 + 1, "SOURCE", s, s, (i as u64 + 1) * 10, true))
        .collect()
}

fn status_row(
    id: u64,
    entity: &str,
    status: &str,
    name: &str,
    sort: u64,
    system: bool,
) -> Map<String, Value> {
    let v = json!({
        "ID": id.to_string(), "ENTITY_ID": entity, "STATUS_ID": status, "NAME": name,
        "NAME_INIT": if system { name } else { "" }, "SORT": sort.to_string(),
        "SYSTEM": if system { "Y" } else { "N" }, "CATEGORY_ID": null, "COLOR": null,
        "SEMANTICS": null, "EXTRA": {"SEMANTICS": null, "COLOR": null}
    });
    v.as_object().cloned().unwrap_or_default()
}

impl Emulator {
    pub async fn start(config: Config) -> Emulator {
        let portal = Arc::new(Mutex::new(Portal {
            rng: config.seed.max(1),
            config,
            leads: BTreeMap::new(),
            contacts: BTreeMap::new(),
            deals: BTreeMap::new(),
            statuses: stock_sources(),
            next_id: 1,
            level: 0.0,
            level_at: Instant::now(),
            calls: Vec::new(),
            violations: 0,
            injected: 0,
            method_runs: HashMap::new(),
            delay: None,
            base: String::new(),
            access_token: None,
            refresh_token: None,
            expired_tokens: std::collections::HashSet::new(),
            token_seq: 0,
            blocked_until: HashMap::new(),
            unavailable: false,
            handlers: Vec::new(),
            raised: Vec::new(),
            deliveries: Vec::new(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the emulator");
        let addr = listener.local_addr().expect("emulator address");
        portal.lock().unwrap_or_else(|p| p.into_inner()).base = format!("http://{addr}");
        let server = serve(listener, portal.clone());
        Emulator {
            base: format!("http://{addr}"),
            portal,
            addr,
            server: Mutex::new(Some(server)),
        }
    }

    /// The portal goes down: connections are refused (the listener closes; idle keep-alive
    /// connections are closed too).
    pub async fn refuse_connections(&self) {
        let running = self.server.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((stop, task)) = running {
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// The portal is reachable again, on the same address, with everything it had.
    pub async fn accept_connections(&self) {
        let mut slot = self.server.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_some() {
            return;
        }
        let listener = std::net::TcpListener::bind(self.addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(tokio::net::TcpListener::from_std)
            .expect("bind the emulator's address again");
        *slot = Some(serve(listener, self.portal.clone()));
    }

    /// The balancer in front of the portal answers every request with 503 (or stops doing so).
    pub fn set_unavailable(&self, down: bool) {
        self.lock().unavailable = down;
    }

    /// Register an outgoing webhook: `event` (e.g. `ONCRMLEADUPDATE`) is POSTed to `url` with
    /// `token` as `auth[application_token]`.
    pub fn subscribe(&self, event: &str, url: &str, token: &str) {
        self.lock().handlers.push(Handler {
            event: event.to_ascii_uppercase(),
            url: url.to_string(),
            token: token.to_string(),
        });
    }

    /// Remove every outgoing webhook.
    pub fn unsubscribe_all(&self) {
        self.lock().handlers.clear();
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
    }

    /// A manager moves a lead to `status` in the portal's UI (events go out as for any change).
    pub fn set_lead_status(&self, id: u64, status: &str) {
        let mut p = self.lock();
        if let Some(lead) = p.leads.get_mut(&id) {
            lead.insert("STATUS_ID".into(), json!(status));
            lead.insert("STATUS_SEMANTIC_ID".into(), json!(lead_semantic(status)));
            lead.insert("DATE_MODIFY".into(), json!(portal_now()));
            p.raised.push(("ONCRMLEADUPDATE".into(), id));
        }
        let raised = std::mem::take(&mut p.raised);
        drop(p);
        self.deliver(raised);
    }

    /// A manager moves a deal to `stage` (`WON`, `LOSE`, …).
    pub fn set_deal_stage(&self, id: u64, stage: &str) {
        let mut p = self.lock();
        if let Some(deal) = p.deals.get_mut(&id).and_then(Value::as_object_mut) {
            deal.insert("STAGE_ID".into(), json!(stage));
            deal.insert("STAGE_SEMANTIC_ID".into(), json!(deal_semantic(stage)));
            deal.insert("DATE_MODIFY".into(), json!(portal_now()));
            p.raised.push(("ONCRMDEALUPDATE".into(), id));
        }
        let raised = std::mem::take(&mut p.raised);
        drop(p);
        self.deliver(raised);
    }

    fn deliver(&self, raised: Vec<(String, u64)>) {
        deliver_events(self.portal.clone(), raised);
    }

    /// The incoming-webhook URL with the right code.
    pub fn webhook(&self) -> String {
        let code = self.lock().config.code.clone();
        format!("{}/rest/1/{code}/", self.base)
    }

    pub fn lock(&self) -> MutexGuard<'_, Portal> {
        self.portal.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn leads(&self) -> Vec<Map<String, Value>> {
        self.lock().leads.values().cloned().collect()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn violations(&self) -> u64 {
        self.lock().violations
    }

    /// A fresh OAuth pair (as after installing the application): (access, refresh).
    pub fn oauth_tokens(&self) -> (String, String) {
        self.lock().issue_tokens()
    }

    /// The hour is over: the current access token now answers `expired_token`.
    pub fn expire_access_token(&self) {
        let mut p = self.lock();
        if let Some(t) = p.access_token.take() {
            p.expired_tokens.insert(t);
        }
    }

    /// A contact with this phone, written exactly so.
    pub fn add_contact(&self, name: &str, phone: &str) -> u64 {
        let mut p = self.lock();
        let id = p.next_id;
        p.next_id += 1;
        let c = json!({"ID": id.to_string(), "NAME": name, "PHONE": [{"ID": (id * 100).to_string(), "VALUE_TYPE": "MOBILE", "VALUE": phone, "TYPE_ID": "PHONE"}]});
        p.contacts
            .insert(id, c.as_object().cloned().unwrap_or_default());
        id
    }
}

fn router(portal: Arc<Mutex<Portal>>) -> Router {
    Router::new()
        .route(
            "/rest/{user}/{code}/{method}",
            axum::routing::any(handle_webhook),
        )
        .route("/rest/{method}", axum::routing::any(handle_oauth))
        .route("/oauth/token/", axum::routing::get(handle_token))
        .with_state(portal)
}

/// Serve the portal on `listener` until the returned sender fires.
fn serve(
    listener: tokio::net::TcpListener,
    portal: Arc<Mutex<Portal>>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router(portal))
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    (stop, task)
}

/// What a lead's STATUS_ID means: `S` success, `F` failure, `P` in process.
fn lead_semantic(status: &str) -> &'static str {
    match status {
        "CONVERTED" => "S",
        "JUNK" => "F",
        _ => "P",
    }
}

/// What a deal's STAGE_ID means (`C1:WON` in other pipelines).
fn deal_semantic(stage: &str) -> &'static str {
    match stage.rsplit(':').next().unwrap_or(stage) {
        "WON" => "S",
        "LOSE" | "APOLOGY" => "F",
        _ => "P",
    }
}

/// POST each raised event to its handlers, through "the queue": later, in the background,
/// once, whatever the answer.
fn deliver_events(portal: Arc<Mutex<Portal>>, raised: Vec<(String, u64)>) {
    if raised.is_empty() {
        return;
    }
    let (handlers, base) = {
        let p = portal.lock().unwrap_or_else(|e| e.into_inner());
        (p.handlers.clone(), p.base.clone())
    };
    for (event, id) in raised {
        for (n, h) in handlers
            .iter()
            .enumerate()
            .filter(|(_, h)| h.event == event)
        {
            let form: Vec<(String, String)> = vec![
                ("event".into(), event.clone()),
                ("event_handler_id".into(), (n + 1).to_string()),
                ("data[FIELDS][ID]".into(), id.to_string()),
                ("ts".into(), (unix_now() as i64).to_string()),
                ("auth[domain]".into(), "salon.bitrix24.ru".into()),
                ("auth[client_endpoint]".into(), format!("{base}/rest/")),
                (
                    "auth[server_endpoint]".into(),
                    "https://oauth.bitrix.info/rest/".into(),
                ),
                ("auth[member_id]".into(), "a1b2c3".into()),
                ("auth[application_token]".into(), h.token.clone()),
            ];
            let (portal, url, event) = (portal.clone(), h.url.clone(), event.clone());
            tokio::spawn(async move {
                let status = reqwest::Client::new()
                    .post(&url)
                    .form(&form)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await
                    .ok()
                    .map(|r| r.status().as_u16());
                portal
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .deliveries
                    .push(Delivery {
                        event,
                        id,
                        url,
                        status,
                    });
            });
        }
    }
}

type Fail = (u16, Value);
/// A method's result, top-level extras (total, next) and its `operating_reset_at`.
type Ran = (Value, Map<String, Value>, Option<f64>);

fn fail(status: u16, code: impl Into<Value>, description: &str) -> Fail {
    (
        status,
        json!({"error": code.into(), "error_description": description}),
    )
}

fn time_block(start: f64, reset_at: Option<f64>) -> Value {
    let now = unix_now();
    let mut t = json!({
        "start": start, "finish": now, "duration": now - start, "processing": now - start,
        "date_start": "2026-11-20T15:00:00+07:00", "date_finish": "2026-11-20T15:00:00+07:00",
        "operating": 0.01,
    });
    if let (Some(r), Some(o)) = (reset_at, t.as_object_mut()) {
        o.insert("operating_reset_at".into(), json!(r as i64));
    }
    t
}

/// The portal's clock as its CRM writes dates: local time with the offset, whole seconds.
fn portal_now() -> String {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Novosibirsk)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// How a call authenticated itself.
enum Caller {
    Webhook {
        user: String,
        code: String,
    },
    /// OAuth: the `auth` parameter.
    Token,
}

async fn handle_webhook(
    State(portal): State<Arc<Mutex<Portal>>>,
    Path((user, code, method)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(
        portal,
        Caller::Webhook { user, code },
        method,
        query,
        headers,
        body,
    )
    .await
}

async fn handle_oauth(
    State(portal): State<Arc<Mutex<Portal>>>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(portal, Caller::Token, method, query, headers, body).await
}

/// `GET /oauth/token/?grant_type=refresh_token&client_id&client_secret&refresh_token`.
async fn handle_token(
    State(portal): State<Arc<Mutex<Portal>>>,
    RawQuery(query): RawQuery,
) -> Response {
    let q = parse_php_query(query.as_deref().unwrap_or(""));
    let get = |k: &str| q.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut p = portal.lock().unwrap_or_else(|e| e.into_inner());
    p.calls.push(Call {
        method: "oauth.token".into(),
        params: q.clone(),
        status: 200,
        at: Instant::now(),
    });
    let app_ok = p
        .config
        .oauth_app
        .as_ref()
        .is_some_and(|(id, secret)| *id == get("client_id") && *secret == get("client_secret"));
    let (status, body) = if get("grant_type") != "refresh_token" {
        fail(400, "invalid_request", "grant_type must be refresh_token")
    } else if !app_ok {
        fail(400, "invalid_client", "Invalid client")
    } else if p.refresh_token.as_deref() != Some(get("refresh_token").as_str()) {
        fail(400, "invalid_grant", "Invalid grant")
    } else {
        let (access, refresh) = p.issue_tokens();
        let endpoint = format!("{}/rest/", p.base);
        (
            200,
            json!({
                "access_token": access, "refresh_token": refresh, "expires": unix_now() as i64 + 3600,
                "expires_in": 3600, "scope": "crm", "domain": "oauth.bitrix.info", "client_endpoint": endpoint,
                "server_endpoint": "https://oauth.bitrix.info/rest/", "member_id": "a1b2c3", "status": "P", "user_id": 1
            }),
        )
    };
    if let Some(last) = p.calls.last_mut() {
        last.status = status;
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(
    portal: Arc<Mutex<Portal>>,
    caller: Caller,
    method: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let start = unix_now();
    let (status, value, html, delay, raised) = {
        let mut p = portal.lock().unwrap_or_else(|e| e.into_inner());
        let method = method.trim_end_matches(".json").to_lowercase();
        if p.unavailable {
            p.calls.push(Call {
                method,
                params: Value::Null,
                status: 503,
                at: Instant::now(),
            });
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/html")],
                "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
            )
                .into_response();
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut params = query
            .as_deref()
            .map(parse_php_query)
            .unwrap_or_else(|| json!({}));
        let from_body = if body.is_empty() {
            Ok(json!({}))
        } else if content_type.starts_with("application/json") {
            serde_json::from_slice::<Value>(&body).map_err(|_| ())
        } else {
            Ok(parse_php_query(&String::from_utf8_lossy(&body)))
        };
        let (status, value, html) = match from_body {
            Err(()) => {
                let (s, v) = fail(400, "WRONG_ENCODING", "Wrong request encoding");
                (s, v, false)
            }
            Ok(b) => {
                if let (Some(q), Some(b)) = (params.as_object_mut(), b.as_object()) {
                    for (k, v) in b {
                        q.insert(k.clone(), v.clone());
                    }
                }
                p.request(&caller, &method, &params, start)
            }
        };
        p.calls.push(Call {
            method: method.clone(),
            params: std::mem::take(&mut params),
            status,
            at: Instant::now(),
        });
        let delay = p.delay.take();
        let raised = std::mem::take(&mut p.raised);
        (status, value, html, delay, raised)
    };
    deliver_events(portal.clone(), raised);
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if html {
        return (
            status,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>502 Bad Gateway</body></html>",
        )
            .into_response();
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        value.to_string(),
    )
        .into_response()
}

impl Portal {
    /// A new pair; the previous refresh token stops working.
    fn issue_tokens(&mut self) -> (String, String) {
        self.token_seq += 1;
        let access = format!("access{}", self.token_seq);
        let refresh = format!("refresh{}", self.token_seq);
        self.access_token = Some(access.clone());
        self.refresh_token = Some(refresh.clone());
        (access, refresh)
    }

    fn random(&mut self) -> f64 {
        // xorshift64*: deterministic faults per seed
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// (status, body, answer HTML instead)
    fn request(
        &mut self,
        caller: &Caller,
        method: &str,
        params: &Value,
        start: f64,
    ) -> (u16, Value, bool) {
        match caller {
            Caller::Webhook { user, code } => {
                if !user.chars().all(|c| c.is_ascii_digit()) || *code != self.config.code {
                    let (s, v) = fail(401, "NO_AUTH_FOUND", "Wrong authorization data");
                    return (s, v, false);
                }
            }
            Caller::Token => {
                let token = lower_keys(params)
                    .get("auth")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if token.is_empty() {
                    let (s, v) = fail(401, "NO_AUTH_FOUND", "Wrong authorization data");
                    return (s, v, false);
                }
                if self.expired_tokens.contains(&token) {
                    let (s, v) = fail(
                        401,
                        "expired_token",
                        "The access token provided has expired.",
                    );
                    return (s, v, false);
                }
                if self.access_token.as_deref() != Some(token.as_str()) {
                    let (s, v) = fail(401, "invalid_token", "Unable to get application by token");
                    return (s, v, false);
                }
            }
        }
        if self.config.rest_unavailable {
            let (s, v) = fail(
                403,
                "ACCESS_DENIED",
                "REST API is available only on commercial plans",
            );
            return (s, v, false);
        }
        // The leaky bucket: drain, then refuse when one more would exceed the size.
        let now = Instant::now();
        self.level = (self.level
            - now.duration_since(self.level_at).as_secs_f64() * self.config.rate)
            .max(0.0);
        self.level_at = now;
        if self.level + 1.0 > self.config.burst + 1e-9 {
            self.violations += 1;
            let (s, v) = fail(503, "QUERY_LIMIT_EXCEEDED", "Too many requests");
            return (s, v, false);
        }
        self.level += 1.0;
        if self.config.random_503 > 0.0 && self.random() < self.config.random_503 {
            self.injected += 1;
            let (s, v) = fail(503, "QUERY_LIMIT_EXCEEDED", "Too many requests");
            return (s, v, false);
        }
        let writes = method_writes(method, params);
        match self.run(method, params, true) {
            Err((s, v)) => (s, v, false),
            Ok((result, extra, reset)) => {
                if writes
                    && self.config.fail_after_write > 0.0
                    && self.random() < self.config.fail_after_write
                {
                    self.injected += 1;
                    return (500, Value::Null, true);
                }
                if writes
                    && self.config.slow_after_write > 0.0
                    && self.random() < self.config.slow_after_write
                {
                    self.injected += 1;
                    self.delay = Some(self.config.slow);
                }
                let mut body = json!({"result": result});
                if let Some(o) = body.as_object_mut() {
                    for (k, v) in extra {
                        o.insert(k, v);
                    }
                    o.insert("time".into(), time_block(start, reset));
                }
                (200, body, false)
            }
        }
    }

    /// Check the operating limit of `method` and count a run. Err is a 429.
    fn operating(&mut self, method: &str) -> Result<Option<f64>, Fail> {
        let Some((blocked, after, secs)) = self.config.operating_block.clone() else {
            return Ok(None);
        };
        if blocked != method {
            return Ok(None);
        }
        if let Some(until) = self.blocked_until.get(method)
            && Instant::now() < *until
        {
            return Err(fail(
                429,
                "OPERATION_TIME_LIMIT",
                "Method is blocked due to operation time limit.",
            ));
        }
        let runs = self.method_runs.entry(method.to_string()).or_insert(0);
        *runs += 1;
        let reset = unix_now() + secs.as_secs_f64();
        if *runs >= after {
            *runs = 0;
            self.blocked_until
                .insert(method.to_string(), Instant::now() + secs);
        }
        Ok(Some(reset.ceil()))
    }

    /// Run one method. Ok: (result, top-level extras such as total/next, operating_reset_at).
    fn run(&mut self, method: &str, params: &Value, top: bool) -> Result<Ran, Fail> {
        let params = lower_keys(params);
        let reset = if method == "batch" {
            None
        } else {
            self.operating(method)?
        };
        let mut extra = Map::new();
        let result = match method {
            "batch" if top => self.batch(&params)?,
            "batch" => {
                return Err(fail(
                    405,
                    "ERROR_BATCH_METHOD_NOT_ALLOWED",
                    "Method is not allowed for batch usage",
                ));
            }
            "crm.settings.mode.get" => json!(if self.config.simple_mode { 2 } else { 1 }),
            "scope" => json!(self.config.scopes),
            "crm.status.list" => {
                let entity = params
                    .pointer("/filter/ENTITY_ID")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let rows: Vec<Value> = self
                    .statuses
                    .iter()
                    .filter(|s| {
                        entity
                            .as_deref()
                            .is_none_or(|e| s.get("ENTITY_ID").and_then(Value::as_str) == Some(e))
                    })
                    .map(|s| Value::Object(s.clone()))
                    .collect();
                extra.insert("total".into(), json!(rows.len()));
                Value::Array(rows)
            }
            "crm.status.add" => self.status_add(&params)?,
            "crm.duplicate.findbycomm" => self.findbycomm(&params)?,
            "crm.lead.add" => self.lead_add(&params)?,
            "crm.lead.update" => self.lead_update(&params)?,
            "crm.lead.get" => {
                let id = lead_id(&params)?;
                match self.leads.get(&id) {
                    Some(l) => Value::Object(l.clone()),
                    None => return Err(fail(400, "", "Not found")),
                }
            }
            "crm.deal.get" => {
                let id = lead_id(&params)?;
                match self.deals.get(&id) {
                    Some(d) => d.clone(),
                    None => return Err(fail(400, "", "Not found")),
                }
            }
            "crm.deal.list" | "crm.lead.list" => {
                let deals: Vec<Map<String, Value>>;
                let rows: Vec<&Map<String, Value>> = if method == "crm.deal.list" {
                    deals = self
                        .deals
                        .values()
                        .filter_map(|d| d.as_object().cloned())
                        .collect();
                    deals.iter().collect()
                } else {
                    self.leads.values().collect()
                };
                let (rows, total, next) = list(rows, &params);
                extra.insert("total".into(), json!(total));
                if let Some(n) = next {
                    extra.insert("next".into(), json!(n));
                }
                rows
            }
            _ => return Err(fail(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")),
        };
        Ok((result, extra, reset))
    }

    fn batch(&mut self, params: &Value) -> Result<Value, Fail> {
        let halt = params.get("halt").map(truthy).unwrap_or(false);
        let cmds: Vec<(String, String)> = match params.get("cmd") {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect(),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v.as_str().unwrap_or("").to_string()))
                .collect(),
            _ => return Err(fail(400, "", "Parameter 'cmd' is required")),
        };
        if cmds.len() > 50 {
            return Err(fail(
                400,
                "ERROR_BATCH_LENGTH_EXCEEDED",
                "Max batch length exceeded",
            ));
        }
        let (mut result, mut errors, mut totals, mut nexts, mut times) =
            (Map::new(), Map::new(), Map::new(), Map::new(), Map::new());
        for (label, cmd) in cmds {
            let (method, query) = cmd.split_once('?').unwrap_or((cmd.as_str(), ""));
            let method = method.trim_end_matches(".json").to_lowercase();
            let start = unix_now();
            match self.run(&method, &parse_php_query(query), false) {
                Ok((r, extra, reset)) => {
                    result.insert(label.clone(), r);
                    if let Some(t) = extra.get("total") {
                        totals.insert(label.clone(), t.clone());
                    }
                    if let Some(n) = extra.get("next") {
                        nexts.insert(label.clone(), n.clone());
                    }
                    times.insert(label, time_block(start, reset));
                }
                Err((_, e)) => {
                    errors.insert(label, e);
                    if halt {
                        break;
                    }
                }
            }
        }
        Ok(json!({
            "result": php_map(result), "result_error": php_map(errors), "result_total": php_map(totals),
            "result_next": php_map(nexts), "result_time": php_map(times),
        }))
    }

    fn status_add(&mut self, params: &Value) -> Result<Value, Fail> {
        let fields = params
            .get("fields")
            .and_then(Value::as_object)
            .ok_or_else(|| fail(400, "", "Parameter 'fields' must be array."))?;
        let get = |k: &str| {
            fields
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (entity, status, name) = (get("ENTITY_ID"), get("STATUS_ID"), get("NAME"));
        if entity.is_empty() || status.is_empty() || name.is_empty() {
            return Err(fail(
                400,
                "ERROR_CORE",
                "Required fields: ENTITY_ID, STATUS_ID, NAME",
            ));
        }
        if self.config.settings_denied {
            return Err(fail(400, "", "Access denied."));
        }
        if self.statuses.iter().any(|s| {
            s.get("ENTITY_ID").and_then(Value::as_str) == Some(&entity)
                && s.get("STATUS_ID").and_then(Value::as_str) == Some(&status)
        }) {
            return Err(fail(
                400,
                "ERROR_CORE",
                "The specified status ID already exists.",
            ));
        }
        let id = self.statuses.len() as u64 + 100;
        let sort = fields
            .get("SORT")
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(10);
        self.statuses
            .push(status_row(id, &entity, &status, &name, sort, false));
        Ok(json!(id))
    }

    fn findbycomm(&mut self, params: &Value) -> Result<Value, Fail> {
        let kind = params.get("type").and_then(Value::as_str).unwrap_or("");
        if kind.is_empty() {
            return Err(fail(
                400,
                "Communication type is not defined",
                "Parameter 'type' is required.",
            ));
        }
        if kind != "PHONE" && kind != "EMAIL" {
            return Err(fail(
                400,
                format!("Communication type '{kind}' is not supported in current context"),
                "",
            ));
        }
        let values: Vec<String> = match params.get("values") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        if values.is_empty() {
            return Err(fail(
                400,
                "Communication values is not defined",
                "Parameter 'values' is required.",
            ));
        }
        if values.len() > 20 {
            return Err(fail(
                400,
                "",
                "Too many communication values. Maximum is 20.",
            ));
        }
        let entity = params.get("entity_type").and_then(Value::as_str);
        let matches = |e: &Map<String, Value>| {
            e.get(kind).and_then(Value::as_array).is_some_and(|items| {
                items.iter().any(|i| {
                    i.get("VALUE").and_then(Value::as_str).is_some_and(|v| {
                        values.iter().any(|w| {
                            if kind == "EMAIL" {
                                w.eq_ignore_ascii_case(v)
                            } else {
                                w == v
                            }
                        })
                    })
                })
            })
        };
        let mut out = Map::new();
        for (name, set) in [("LEAD", &self.leads), ("CONTACT", &self.contacts)] {
            if entity.is_some_and(|e| e != name) {
                continue;
            }
            let ids: Vec<Value> = set
                .iter()
                .filter(|(_, e)| matches(e))
                .map(|(id, _)| json!(id))
                .collect();
            if !ids.is_empty() {
                out.insert(name.into(), Value::Array(ids));
            }
        }
        Ok(php_map(out))
    }

    fn check_fields(fields: &Map<String, Value>) -> Result<(), Fail> {
        for (multi, types) in [
            (
                "PHONE",
                &["WORK", "MOBILE", "FAX", "HOME", "PAGER", "MAILING", "OTHER"][..],
            ),
            ("EMAIL", &["WORK", "HOME", "MAILING", "OTHER"][..]),
        ] {
            let Some(v) = fields.get(multi) else { continue };
            let Some(items) = v.as_array() else {
                return Err(fail(
                    400,
                    "",
                    &format!("Field {multi}: a multifield must be an array"),
                ));
            };
            for item in items {
                let Some(o) = item.as_object() else {
                    return Err(fail(
                        400,
                        "",
                        &format!("Field {multi}: every item must be an object"),
                    ));
                };
                if o.contains_key("ID") {
                    continue;
                }
                if !o.get("VALUE").is_some_and(Value::is_string) {
                    return Err(fail(400, "", &format!("Field {multi}: VALUE is required")));
                }
                let vt = o.get("VALUE_TYPE").and_then(Value::as_str).unwrap_or("");
                if !types.contains(&vt) {
                    return Err(fail(
                        400,
                        "",
                        &format!("Field {multi}: unknown VALUE_TYPE {vt:?}"),
                    ));
                }
            }
        }
        if let Some(t) = fields.get("TITLE")
            && !t.is_string()
        {
            return Err(fail(400, "", "Field TITLE must be a string"));
        }
        Ok(())
    }

    fn lead_add(&mut self, params: &Value) -> Result<Value, Fail> {
        let fields = params
            .get("fields")
            .and_then(Value::as_object)
            .ok_or_else(|| fail(400, "", "Parameter 'fields' must be array."))?;
        Self::check_fields(fields)?;
        let id = self.next_id;
        self.next_id += 1;
        let mut lead = Map::new();
        lead.insert("ID".into(), json!(id.to_string()));
        lead.insert("STATUS_ID".into(), json!("NEW"));
        lead.insert("OPPORTUNITY".into(), json!("0.00"));
        lead.insert("ASSIGNED_BY_ID".into(), json!("1"));
        for (k, v) in fields {
            if !known_field(k) {
                continue; // unknown fields are silently ignored
            }
            if k == "PHONE" || k == "EMAIL" {
                let mut items = Vec::new();
                for item in v.as_array().into_iter().flatten() {
                    let mut o = item.as_object().cloned().unwrap_or_default();
                    o.insert(
                        "ID".into(),
                        json!((self.next_id * 1000 + items.len() as u64).to_string()),
                    );
                    o.insert("TYPE_ID".into(), json!(k));
                    items.push(Value::Object(o));
                }
                lead.insert(k.clone(), Value::Array(items));
            } else {
                lead.insert(k.clone(), scalar_string(v));
            }
        }
        lead.insert(
            "HAS_PHONE".into(),
            json!(if lead.contains_key("PHONE") { "Y" } else { "N" }),
        );
        lead.insert(
            "HAS_EMAIL".into(),
            json!(if lead.contains_key("EMAIL") { "Y" } else { "N" }),
        );
        lead.insert("DATE_MODIFY".into(), json!(portal_now()));
        // Simple mode converts at once into a deal, which needs a NAME.
        let named = lead
            .get("NAME")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let status = lead.get("STATUS_ID").map(scalar_text).unwrap_or_default();
        lead.insert("STATUS_SEMANTIC_ID".into(), json!(lead_semantic(&status)));
        self.raised.push(("ONCRMLEADADD".into(), id));
        if self.config.simple_mode && named {
            lead.insert("STATUS_ID".into(), json!("CONVERTED"));
            lead.insert("STATUS_SEMANTIC_ID".into(), json!("S"));
            let deal = self.next_id;
            self.next_id += 1;
            let title = lead.get("TITLE").cloned().unwrap_or(json!(""));
            self.deals.insert(deal, json!({"ID": deal.to_string(), "LEAD_ID": id.to_string(), "TITLE": title, "STAGE_ID": "NEW", "STAGE_SEMANTIC_ID": "P", "CATEGORY_ID": "0", "DATE_MODIFY": portal_now()}));
            self.raised.push(("ONCRMDEALADD".into(), deal));
        }
        self.leads.insert(id, lead);
        Ok(json!(id))
    }

    fn lead_update(&mut self, params: &Value) -> Result<Value, Fail> {
        let id = lead_id(params)?;
        let fields = params
            .get("fields")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        Self::check_fields(&fields)?;
        let mut counter = self.next_id * 1000 + 500;
        let Some(lead) = self.leads.get_mut(&id) else {
            return Err(fail(400, "", "Not found"));
        };
        for (k, v) in fields {
            if !known_field(&k) {
                continue;
            }
            if k == "PHONE" || k == "EMAIL" {
                let mut items = lead
                    .get(&k)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for item in v.as_array().into_iter().flatten() {
                    let o = item.as_object().cloned().unwrap_or_default();
                    match o.get("ID").and_then(|i| {
                        i.as_str()
                            .map(str::to_string)
                            .or_else(|| i.as_u64().map(|n| n.to_string()))
                    }) {
                        None => {
                            let mut o = o;
                            counter += 1;
                            o.insert("ID".into(), json!(counter.to_string()));
                            o.insert("TYPE_ID".into(), json!(k));
                            items.push(Value::Object(o));
                        }
                        Some(item_id) => {
                            let pos = items.iter().position(|i| {
                                i.get("ID").and_then(Value::as_str) == Some(item_id.as_str())
                            });
                            let delete = o.get("DELETE").and_then(Value::as_str) == Some("Y")
                                || o.get("VALUE").is_none_or(|v| v.as_str() == Some(""));
                            if let Some(pos) = pos {
                                if delete {
                                    items.remove(pos);
                                } else if let (Some(slot), Some(value)) =
                                    (items[pos].as_object_mut(), o.get("VALUE"))
                                {
                                    slot.insert("VALUE".into(), value.clone());
                                }
                            }
                        }
                    }
                }
                lead.insert(k, Value::Array(items));
            } else {
                lead.insert(k, scalar_string(&v));
            }
        }
        let status = lead.get("STATUS_ID").map(scalar_text).unwrap_or_default();
        lead.insert("STATUS_SEMANTIC_ID".into(), json!(lead_semantic(&status)));
        lead.insert("DATE_MODIFY".into(), json!(portal_now()));
        self.raised.push(("ONCRMLEADUPDATE".into(), id));
        Ok(json!(true))
    }
}

/// A `crm.*.list` page: filter (prefix operators `>=`, `>`, `<=`, `<`, `@`, `!@`, `!`, `=`;
/// dates and numbers compared as such), select (multifields only when named), `start`
/// (pages of 50; `-1` skips the count: `total` 0 and no `next`).
fn list(rows: Vec<&Map<String, Value>>, params: &Value) -> (Value, usize, Option<usize>) {
    let filter = params
        .get("filter")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let select: Vec<String> = params
        .get("select")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let start = params
        .get("start")
        .and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0);
    let rows: Vec<&Map<String, Value>> = rows
        .into_iter()
        .filter(|row| filter.iter().all(|(k, want)| matches_filter(row, k, want)))
        .collect();
    let total = rows.len();
    let skip = start.max(0) as usize;
    let page: Vec<Value> = rows
        .iter()
        .skip(skip)
        .take(50)
        .map(|l| {
            let mut o = Map::new();
            for (k, v) in l.iter() {
                let multi = k == "PHONE" || k == "EMAIL";
                let wanted = if select.is_empty() || select.iter().any(|s| s == "*") {
                    !multi
                } else {
                    select.iter().any(|s| s == k)
                };
                if wanted {
                    o.insert(k.clone(), v.clone());
                }
            }
            Value::Object(o)
        })
        .collect();
    let next = (skip + 50 < total && start >= 0).then_some(skip + 50);
    if start < 0 {
        return (Value::Array(page), 0, None);
    }
    (Value::Array(page), total, next)
}

/// Compare like the portal: dates as instants, numbers as numbers, else text.
fn compare(have: &str, want: &str) -> Option<std::cmp::Ordering> {
    if let (Ok(h), Ok(w)) = (
        chrono::DateTime::parse_from_rfc3339(have),
        chrono::DateTime::parse_from_rfc3339(want),
    ) {
        return Some(h.cmp(&w));
    }
    if let (Ok(h), Ok(w)) = (have.parse::<f64>(), want.parse::<f64>()) {
        return h.partial_cmp(&w);
    }
    if have.is_empty() {
        return None; // an empty field matches no comparison
    }
    Some(have.cmp(want))
}

fn matches_filter(row: &Map<String, Value>, key: &str, want: &Value) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let ops = [">=", "<=", "!@", "!=", ">", "<", "@", "!", "="];
    let (op, field) = ops
        .iter()
        .find_map(|op| key.strip_prefix(op).map(|f| (*op, f)))
        .unwrap_or(("=", key));
    let have = row.get(field).map(scalar_text).unwrap_or_default();
    let in_list = || {
        want.as_array()
            .is_some_and(|a| a.iter().any(|w| scalar_text(w) == have))
    };
    let ord = || compare(&have, &scalar_text(want));
    match op {
        "@" => in_list(),
        "!@" => !in_list(),
        ">" => ord() == Some(Greater),
        ">=" => matches!(ord(), Some(Greater | Equal)),
        "<" => ord() == Some(Less),
        "<=" => matches!(ord(), Some(Less | Equal)),
        "!" | "!=" => scalar_text(want) != have,
        _ => scalar_text(want) == have,
    }
}

fn known_field(k: &str) -> bool {
    const KNOWN: &[&str] = &[
        "TITLE",
        "NAME",
        "LAST_NAME",
        "SECOND_NAME",
        "PHONE",
        "EMAIL",
        "SOURCE_ID",
        "SOURCE_DESCRIPTION",
        "STATUS_ID",
        "STATUS_DESCRIPTION",
        "COMMENTS",
        "ASSIGNED_BY_ID",
        "OPENED",
        "ORIGINATOR_ID",
        "ORIGIN_ID",
        "UTM_SOURCE",
        "UTM_MEDIUM",
        "UTM_CAMPAIGN",
        "UTM_CONTENT",
        "UTM_TERM",
        "CONTACT_ID",
        "COMPANY_ID",
        "OPPORTUNITY",
        "CURRENCY_ID",
    ];
    KNOWN.contains(&k) || k.starts_with("UF_CRM_")
}

fn method_writes(method: &str, params: &Value) -> bool {
    match method {
        "crm.lead.add" | "crm.lead.update" | "crm.status.add" => true,
        "batch" => lower_keys(params)
            .get("cmd")
            .and_then(Value::as_object)
            .is_some_and(|m| {
                m.values().any(|c| {
                    c.as_str().is_some_and(|c| {
                        c.starts_with("crm.lead.add") || c.starts_with("crm.lead.update")
                    })
                })
            }),
        _ => false,
    }
}

fn lead_id(params: &Value) -> Result<u64, Fail> {
    params
        .get("id")
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .filter(|n| *n > 0)
        .ok_or_else(|| fail(400, "", "ID is not defined or invalid."))
}

/// Top-level parameter names in any case (`fields`/`FIELDS`).
fn lower_keys(v: &Value) -> Value {
    match v.as_object() {
        Some(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.to_lowercase(), v.clone()))
                .collect(),
        ),
        None => json!({}),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64().unwrap_or(0) != 0,
        Value::String(s) => matches!(s.as_str(), "1" | "true" | "Y"),
        _ => false,
    }
}

/// As stored: numbers become strings, like the portal's legacy CRM.
fn scalar_string(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.to_string()),
        Value::Bool(b) => json!(if *b { "Y" } else { "N" }),
        other => other.clone(),
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A PHP array as JSON: `[]` when empty, a list when the keys are 0..n, else an object.
fn php_map(m: Map<String, Value>) -> Value {
    if m.is_empty() {
        return json!([]);
    }
    let contiguous = m
        .keys()
        .enumerate()
        .all(|(i, k)| k.parse::<usize>() == Ok(i));
    if contiguous {
        let mut items: Vec<(usize, Value)> = m
            .into_iter()
            .filter_map(|(k, v)| k.parse().ok().map(|n| (n, v)))
            .collect();
        items.sort_by_key(|(n, _)| *n);
        return Value::Array(items.into_iter().map(|(_, v)| v).collect());
    }
    Value::Object(m)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a[b][0][c]=v&…` → nested JSON; objects whose keys are 0..n become lists.
pub fn parse_php_query(q: &str) -> Value {
    let mut root = Value::Object(Map::new());
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(k);
        let value = Value::String(percent_decode(v));
        let (head, rest) = match key.find('[') {
            Some(i) => (key[..i].to_string(), &key[i..]),
            None => (key.clone(), ""),
        };
        let mut path = vec![head];
        let mut r = rest;
        while let Some(stripped) = r.strip_prefix('[') {
            let Some(end) = stripped.find(']') else { break };
            path.push(stripped[..end].to_string());
            r = &stripped[end + 1..];
        }
        let mut node = &mut root;
        let last = path.len() - 1;
        for (i, seg) in path.into_iter().enumerate() {
            let Some(obj) = node.as_object_mut() else {
                break;
            };
            let seg = if seg.is_empty() {
                obj.len().to_string()
            } else {
                seg
            };
            if i == last {
                obj.insert(seg, value.clone());
                break;
            }
            node = obj.entry(seg).or_insert_with(|| Value::Object(Map::new()));
            if !node.is_object() {
                *node = Value::Object(Map::new());
            }
        }
    }
    listify(root)
}

fn listify(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let m: Map<String, Value> = m.into_iter().map(|(k, v)| (k, listify(v))).collect();
            let n = m.len();
            if n > 0 && (0..n).all(|i| m.contains_key(&i.to_string())) {
                Value::Array(
                    (0..n)
                        .filter_map(|i| m.get(&i.to_string()).cloned())
                        .collect(),
                )
            } else {
                Value::Object(m)
            }
        }
        other => other,
    }
}
