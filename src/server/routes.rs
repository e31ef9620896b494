//! The HTTP surface: the web chat page, the web JSON API, the Telegram webhook, the Bitrix24
//! status webhook (its handler lives with the CRM worker in `crm.rs`), and the health,
//! readiness and metrics endpoints. Handlers validate, hand the inbound event to the
//! store (one transaction per message, deduplicated) and answer; sending to messengers is the
//! worker's job, so a webhook is answered as soon as the message is safely stored.

use super::error::ApiError;
use super::{App, handoff};
use crate::channels::telegram;
use crate::channels::web::{WebMessage, WebOutbound, WebPoll, WebResponse, WebUpdates};
use crate::channels::{Arrival, Delivery, max, same_secret, vk};
use crate::domain::{ChannelKind, ClientRef, Event, Inbound};
use crate::engine::Owner;
use crate::store::{Handled, StoredMessage};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The header a web client sends its id in when it polls.
pub const CLIENT_ID_HEADER: &str = "x-client-id";

/// Largest accepted request body (bytes): a 4 096-character text in any JSON encoding
/// (`\uXXXX` escapes take 6 bytes a character, 12 for an emoji) with room for the rest.
pub const MAX_BODY: usize = 64 * 1024;

pub fn router(app: Arc<App>, body_timeout: std::time::Duration) -> Router {
    // What a stranger can call is rate-limited per IP; webhooks prove themselves with a secret.
    let public = Router::new()
        .route("/", get(chat_page))
        .route("/api/v1/messages", post(web_message).get(web_updates))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(crate::console::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            per_ip,
        ));
    Router::new()
        .route("/webhooks/telegram", post(telegram_webhook))
        .route("/webhooks/max", post(max_webhook))
        .route("/webhooks/vk", post(vk_webhook))
        .route("/webhooks/bitrix24", post(super::crm::webhook))
        .merge(public)
        .layer(axum::middleware::map_response(security_headers))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            body_timeout,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(app)
}

/// The chat page, with a CSP that allows its own inline script and style (by a fresh nonce)
/// and nothing else, and lets the sites of `BOT_FRAME_ANCESTORS` embed it.
async fn chat_page(State(app): State<Arc<App>>) -> Response {
    let nonce = nonce();
    let csp = format!(
        "default-src 'self'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
         img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
         object-src 'none'; frame-ancestors {}",
        app.access.frame_ancestors
    );
    (
        [(header::CONTENT_SECURITY_POLICY, csp)],
        Html(super::page::chat_page(&app.engine, app.clock.now(), &nonce)),
    )
        .into_response()
}

/// 128 random bits from the OS, as hex (a CSP nonce).
fn nonce() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: a nonce that still differs per response.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = t.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Headers every answer carries: no MIME sniffing, no referrer, and — unless the handler set
/// its own — a CSP that allows nothing (JSON answers and errors run no script).
async fn security_headers(response: Response) -> Response {
    let mut response = response;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        axum::http::HeaderValue::from_static("no-referrer"),
    );
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            axum::http::HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    response
}

/// The per-IP limit of the public endpoints (the address from the accept loop).
async fn per_ip(
    State(app): State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(ip) = peer
        && let Err(wait) = app.limiters.ip(ip)
    {
        app.metrics.error("rate_limited");
        return ApiError::TooManyRequests(super::limits::retry_after(wait)).into_response();
    }
    next.run(request).await
}

/// The per-client limit of the chat API.
fn per_client(app: &App, client: &ClientRef) -> Result<(), ApiError> {
    app.limiters
        .client(&client.id)
        .map_err(|wait| ApiError::TooManyRequests(super::limits::retry_after(wait)))
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint")
}

/// Alive, and whether a hand-off reaches a managers' channel (`bot test dialogs --target` skips
/// the dialogs written for the other kind of business).
async fn healthz(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "managers": app.engine.managers_reachable() }))
}

/// How long the readiness write may take: a healthy database commits one row in
/// milliseconds, while a writer holding the lock makes it wait for the busy timeout.
const READY_WRITE_BOUND: std::time::Duration = std::time::Duration::from_secs(2);

/// Why the bot cannot work now, if it cannot.
async fn not_ready(app: &App) -> Option<&'static str> {
    match app.store.migration_status().await {
        Ok(m) if m.iter().all(|m| m.applied) => {}
        Ok(_) => return Some("migrations pending"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: store unreachable");
            return Some("store unreachable");
        }
    }
    // One probe at a time: while an earlier write still waits, the store is not ready.
    let Ok(_probe) = app.ready_probe.try_lock() else {
        return Some("store write stalled");
    };
    match tokio::time::timeout(READY_WRITE_BOUND, app.store.heartbeat(app.clock.now())).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the store refuses writes");
            return Some("store refuses writes");
        }
        Err(_) => return Some("store write stalled"),
    }
    if worker_stalled(app.worker_beat.age(), app.worker_interval) {
        return Some("worker stalled");
    }
    None
}

/// The worker wakes at least every `interval`; a tick that waits for a busy database may take
/// the busy timeout. Older than both, with a margin, it is stuck (or gone).
fn worker_stalled(age: std::time::Duration, interval: std::time::Duration) -> bool {
    age > (interval * 3).max(std::time::Duration::from_secs(30))
}

/// Ready when migrations are applied, a write transaction commits within a short bound and
/// the worker loop made progress recently.
async fn readyz(State(app): State<Arc<App>>) -> Response {
    match not_ready(&app).await {
        None => Json(json!({ "status": "ready" })).into_response(),
        Some(reason) => {
            let body = json!({ "status": "not_ready", "reason": reason });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// `/metrics`: behind `BOT_METRICS_TOKEN` (a bearer token) when it is set.
async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Some(token) = &app.access.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| same_secret(g.as_bytes(), token.as_bytes())) {
            app.metrics.error("unauthorized");
            return ApiError::Unauthorized.into_response();
        }
    }
    let depth = match app.store.counts().await {
        Ok(c) => Some(c.pending_jobs),
        Err(e) => {
            tracing::warn!(error = %e, "queue depth unavailable");
            None
        }
    };
    (
        [(header::CONTENT_TYPE, super::metrics::CONTENT_TYPE)],
        app.metrics.render(depth),
    )
        .into_response()
}

/// `POST /api/v1/messages`: one web chat message in, the bot's replies out.
async fn web_message(
    State(app): State<Arc<App>>,
    body: Result<Json<WebMessage>, JsonRejection>,
) -> Result<Json<WebResponse>, ApiError> {
    let received = Instant::now();
    let result = web_turn(&app, body, received).await;
    if let Err(e) = &result {
        app.metrics.error(e.code());
    }
    result.map(Json)
}

async fn web_turn(
    app: &App,
    body: Result<Json<WebMessage>, JsonRejection>,
    received: Instant,
) -> Result<WebResponse, ApiError> {
    let Json(message) = body?;
    if message.text_too_long() {
        return Err(ApiError::TextTooLong(crate::channels::web::MAX_TEXT));
    }
    let now = app.clock.now();
    let fresh = || {
        let n = app.seq.fetch_add(1, Ordering::Relaxed);
        format!("web:{}:{n}", app.started)
    };
    let (inbound_id, inbound) = message
        .into_inbound(fresh, now)
        .map_err(|e| ApiError::BadRequest(e.0))?;
    per_client(app, &inbound.client)?;
    app.metrics.message_in(ChannelKind::Web);
    let understood = understand(app, &inbound, now).await;
    let outcome = app
        .store
        .process_understood(&app.engine, &inbound_id, &inbound, understood, now)
        .await?;
    let Handled::Processed(p) = outcome else {
        return answered_before(app, &inbound_id, &inbound.client).await;
    };
    // The web channel answers in the response itself: the replies are sent now.
    app.store
        .mark_messages_sent(&p.replies, app.clock.now())
        .await?;
    app.metrics.messages_out(ChannelKind::Web, p.replies.len());
    app.metrics.reply_latency(received.elapsed());
    if !p.replies.is_empty() {
        app.wake_workers();
    }
    let handoff = p.turn.conversation.owner == Owner::Human;
    forward_during_handoff(app, &inbound, &p.turn);
    let mut response = WebResponse::new(&inbound.client, &p.turn.replies, handoff);
    response.last_id = p.replies.iter().copied().max();
    Ok(response)
}

/// A web message sent again with the same `message_id` (the client retried after a lost
/// response, or the server restarted mid-request): nothing is processed again, and the
/// replies stored for the first delivery are answered once more.
async fn answered_before(
    app: &App,
    inbound_id: &str,
    client: &ClientRef,
) -> Result<WebResponse, ApiError> {
    let messages = app.store.messages(client).await?;
    let first = messages
        .iter()
        .find(|m| m.inbound && m.inbound_id.as_deref() == Some(inbound_id))
        .map(|m| m.id);
    let replies: Vec<&StoredMessage> = messages
        .iter()
        .filter(|m| !m.inbound && first.is_some() && m.reply_to == first)
        .collect();
    let handoff = app
        .store
        .conversation(client)
        .await?
        .is_some_and(|c| c.owner == Owner::Human);
    let mut response = WebResponse::new(client, &[], handoff);
    response.replies = replies
        .iter()
        .copied()
        .filter_map(web_outbound)
        .map(Into::into)
        .collect();
    response.last_id = replies.iter().map(|m| m.id).max();
    response.duplicate = true;
    Ok(response)
}

/// `GET /api/v1/messages?client_id=…&after=ID`: messages sent to a web client since `after`.
async fn web_updates(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<WebUpdates>, ApiError> {
    let result: Result<WebUpdates, ApiError> = async {
        // The client id comes in `X-Client-Id` (kept out of URLs and proxy logs); the query
        // form stays accepted for older pages.
        let header_id =
            match headers.get(CLIENT_ID_HEADER) {
                Some(v) => Some(v.to_str().map_err(|_| {
                    ApiError::BadRequest("X-Client-Id must be printable ASCII".into())
                })?),
                None => None,
            };
        let poll = WebPoll::from_query_and_header(query.as_deref().unwrap_or(""), header_id)
            .and_then(|poll| poll.client().map(|client| (poll.after, client)));
        let (after, client) = poll.map_err(|e| ApiError::BadRequest(e.0))?;
        per_client(&app, &client)?;
        let after = after.unwrap_or(0);
        let messages = app.store.messages(&client).await?;
        let handoff = app
            .store
            .conversation(&client)
            .await?
            .is_some_and(|c| c.owner == Owner::Human);
        Ok(WebUpdates {
            conversation_id: client.to_string(),
            messages: messages
                .iter()
                .filter(|m| m.id > after)
                .filter_map(web_outbound)
                .collect(),
            handoff,
        })
    }
    .await;
    if let Err(e) = &result {
        app.metrics.error(e.code());
    }
    result.map(Json)
}

/// `POST /webhooks/telegram`: verified by the secret header, deduplicated by `update_id`,
/// stored before the 200; replies leave through the outbox.
async fn telegram_webhook(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let received = Instant::now();
    let result = telegram_update(&app, &headers, body, received).await;
    if let Err(e) = &result {
        app.metrics.error(e.code());
    }
    result.map(|()| Json(json!({ "ok": true })))
}

async fn telegram_update(
    app: &Arc<App>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    received: Instant,
) -> Result<(), ApiError> {
    let Some(api) = &app.channels.telegram else {
        return Err(ApiError::NotFound("telegram is not configured"));
    };
    verify_header(
        headers,
        telegram::SECRET_HEADER,
        app.telegram_secret.as_deref(),
    )?;
    let body = body_bytes(body)?;
    log_raw(ChannelKind::Telegram, &body);
    let update = telegram::parse_update(&body, app.clock.now(), api.groups())
        .map_err(|e| ApiError::BadRequest(format!("not a Telegram update: {e}")))?;
    handle_arrival(app, update.arrival(), received).await
}

/// The secret header of a webhook call equals the configured secret (constant time); a
/// missing header, a wrong one, or no secret configured refuses the call.
fn verify_header(headers: &HeaderMap, name: &str, secret: Option<&str>) -> Result<(), ApiError> {
    let given = headers.get(name).map(axum::http::HeaderValue::as_bytes);
    match (given, secret) {
        (Some(given), Some(secret)) if same_secret(given, secret.as_bytes()) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// The raw body of a verified webhook call, for debugging a provider's format: at `debug`
/// only, as it carries names and phones.
fn log_raw(channel: ChannelKind, body: &[u8]) {
    tracing::debug!(%channel, raw = %String::from_utf8_lossy(body), "webhook body");
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(MAX_BODY)
        } else {
            ApiError::BadRequest(r.body_text())
        }
    })
}

/// `POST /webhooks/max`: verified by `X-Max-Bot-Api-Secret`, deduplicated by the message id
/// (MAX redelivers until it gets a 200), stored before the 200.
async fn max_webhook(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let received = Instant::now();
    let result = async {
        if app.channels.max.is_none() {
            return Err(ApiError::NotFound("max is not configured"));
        }
        verify_header(&headers, max::SECRET_HEADER, app.max_secret.as_deref())?;
        let body = body_bytes(body)?;
        log_raw(ChannelKind::Max, &body);
        let arrival = max::parse_update(&body, app.clock.now())
            .map_err(|e| ApiError::BadRequest(format!("not a MAX update: {e}")))?;
        handle_arrival(&app, arrival, received).await
    }
    .await;
    if let Err(e) = &result {
        app.metrics.error(e.code());
    }
    result.map(|()| Json(json!({ "ok": true })))
}

/// `POST /webhooks/vk`: the Callback API. The confirmation call is answered with the
/// confirmation string; every other call must carry the community's secret in its body, is
/// deduplicated by `event_id`, stored, and only then answered `ok` (VK resends anything else).
async fn vk_webhook(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Response {
    let received = Instant::now();
    let result = vk_call(&app, body, received).await;
    match result {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
        Err(e) => {
            app.metrics.error(e.code());
            e.into_response()
        }
    }
}

async fn vk_call(
    app: &Arc<App>,
    body: Result<Bytes, BytesRejection>,
    received: Instant,
) -> Result<String, ApiError> {
    let (Some(config), Some(_)) = (&app.vk, &app.channels.vk) else {
        return Err(ApiError::NotFound("vk is not configured"));
    };
    let body = body_bytes(body)?;
    let call = vk::parse_call(&body)
        .map_err(|e| ApiError::BadRequest(format!("not a VK Callback API call: {e}")))?;
    if config
        .group_id
        .is_some_and(|g| call.group_id.is_some_and(|c| c != g))
    {
        tracing::warn!("vk call for another community refused");
        return Err(ApiError::Unauthorized);
    }
    let secret_ok = match (&call.secret, &config.secret) {
        (Some(given), Some(secret)) => same_secret(given.as_bytes(), secret.as_bytes()),
        // The confirmation call may come without the secret; nothing else may.
        (None, _) => call.kind == "confirmation",
        (Some(_), None) => false,
    };
    if !secret_ok {
        tracing::warn!("vk call with a wrong or missing secret refused");
        return Err(ApiError::Unauthorized);
    }
    log_raw(ChannelKind::Vk, &body);
    if call.kind == "confirmation" {
        return config.confirmation.clone().ok_or(ApiError::NotFound(
            "the VK confirmation string is not set: set BOT_VK_CONFIRMATION",
        ));
    }
    handle_arrival(app, call.arrival(app.clock.now()), received).await?;
    Ok("ok".to_string())
}

/// The rules' reading of an inbound message and, when they gave up on a typed message and an
/// LLM is set, the model's additions within its deadline. Runs before any transaction; never
/// for button presses, nor while a manager has the conversation.
pub(crate) async fn understand(
    app: &App,
    inbound: &Inbound,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<crate::nlu::Understanding> {
    let rules = app.engine.understand(inbound, now)?;
    let (Some(llm), Event::Text { text }) = (&app.llm, &inbound.event) else {
        return Some(rules);
    };
    if !crate::llm::assist::should_ask(&rules) {
        return Some(rules);
    }
    let conv = app.store.conversation(&inbound.client).await.ok().flatten();
    if conv.as_ref().is_some_and(|c| !c.owner.bot_answers()) {
        return Some(rules);
    }
    let history: Vec<crate::llm::assist::Turn> = match app.store.messages(&inbound.client).await {
        Ok(all) => {
            let from = all.len().saturating_sub(llm.config.context_turns);
            all[from..]
                .iter()
                .map(|m| crate::llm::assist::Turn {
                    client: m.inbound,
                    text: m.text.clone(),
                })
                .collect()
        }
        Err(_) => Vec::new(),
    };
    let name = conv.as_ref().and_then(|c| c.contact.name.clone());
    let draft = conv.as_ref().map(|c| &c.draft);
    let asked = Instant::now();
    let (u, outcome, usage) = crate::llm::assist::assist(
        llm,
        &app.engine,
        text,
        &history,
        name.as_deref(),
        draft,
        now,
        rules,
    )
    .await;
    app.metrics.llm(
        outcome.label(),
        asked.elapsed(),
        usage.prompt_tokens,
        usage.completion_tokens,
    );
    let mut u = u;
    if !matches!(outcome, crate::llm::assist::Outcome::NotAsked) {
        u.llm = Some(outcome.label());
    }
    Some(u)
}

/// Handle one delivery of any channel, from a webhook or from polling: store and run the turn,
/// then answer a button press. A redelivered id does nothing at all, not even the answer
/// (Telegram refuses a second answer to one press).
pub(super) async fn handle_arrival(
    app: &Arc<App>,
    arrival: Arrival,
    received: Instant,
) -> Result<(), ApiError> {
    let now = app.clock.now();
    let Arrival { inbound_id, what } = arrival;
    let (inbound, ack) = match what {
        Delivery::Ignored(why) => {
            tracing::debug!(inbound_id, why, "delivery ignored");
            return Ok(());
        }
        Delivery::GroupReply {
            chat_id,
            text,
            replied_to,
        } => {
            if app.managers_chat == Some(chat_id) {
                return manager_reply(app, &inbound_id, &text, &replied_to, now).await;
            }
            return Ok(());
        }
        Delivery::Stopped(client) => {
            if app.store.claim_inbound(&inbound_id, now).await? {
                let dropped = app.store.client_stopped(&client).await?;
                tracing::info!(channel = %client.channel, dropped, "client stopped the bot: reminders dropped");
            }
            return Ok(());
        }
        Delivery::AckOnly(ack) => (None, Some(ack)),
        Delivery::Inbound { inbound, ack } => (Some(inbound), ack),
    };
    let new = match &inbound {
        Some(inbound) => {
            app.metrics.message_in(inbound.client.channel);
            let understood = understand(app, inbound, now).await;
            let outcome = app
                .store
                .process_understood(&app.engine, &inbound_id, inbound, understood, now)
                .await?;
            match outcome {
                Handled::Processed(p) => {
                    forward_during_handoff(app, inbound, &p.turn);
                    app.metrics.reply_latency(received.elapsed());
                    if !p.replies.is_empty() {
                        app.wake_workers();
                    }
                    true
                }
                Handled::Duplicate => false,
            }
        }
        None => app.store.claim_inbound(&inbound_id, now).await?,
    };
    if let Some(ack) = ack.filter(|_| new) {
        // The client shows a progress indicator until the press is answered; answer without
        // holding up the webhook's answer.
        let app = Arc::clone(app);
        tokio::spawn(async move {
            if let Err(e) = app.channels.answer(&ack).await {
                tracing::warn!(error = %e, "answering a button press failed");
                app.metrics.error("ack_failed");
            }
        });
    }
    Ok(())
}

/// A manager answered a hand-off notice: relay the text to the client, or give the
/// conversation back to the bot on `/release`.
async fn manager_reply(
    app: &App,
    inbound_id: &str,
    text: &str,
    replied_to: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ApiError> {
    let Some(client) = handoff::client_of(replied_to) else {
        return Ok(());
    };
    if handoff::is_release(text) {
        let inbound = Inbound {
            client,
            at: now,
            event: Event::Released,
        };
        app.store
            .process_inbound(&app.engine, inbound_id, &inbound, now)
            .await?;
    } else {
        app.store
            .manager_message(inbound_id, &client, text, None, now)
            .await?;
    }
    app.wake.notify_one();
    Ok(())
}

/// While a manager has the conversation the bot is silent; what the client writes meanwhile
/// goes to the managers' chat. Best effort: a failed forward is logged, the message itself is
/// stored either way.
fn forward_during_handoff(app: &App, inbound: &Inbound, turn: &crate::engine::Turn) {
    let handed_now = turn
        .effects
        .iter()
        .any(|e| matches!(e, crate::domain::Effect::HandoffRequested { .. }));
    if turn.conversation.owner != Owner::Human || handed_now || !turn.replies.is_empty() {
        return;
    }
    let (Some(api), Some(chat)) = (app.channels.telegram.clone(), app.managers_chat) else {
        return;
    };
    let text = match &inbound.event {
        Event::Text { text } => text.clone(),
        Event::Button { payload } => format!("[кнопка] {payload}"),
        Event::Contact { phone, .. } => format!("[контакт] {phone}"),
        _ => return,
    };
    let reply = crate::domain::Reply {
        text: handoff::forward(&inbound.client, &text),
        buttons: Vec::new(),
        template: None,
        request_contact: false,
    };
    tokio::spawn(async move {
        if let Err(e) = api.send_reply(chat, &reply).await {
            tracing::warn!(error = %e, "forwarding to the managers' chat failed");
        }
    });
}

/// The client's view of a stored outgoing message (None for the client's own).
fn web_outbound(m: &StoredMessage) -> Option<WebOutbound> {
    (!m.inbound).then(|| WebOutbound::new(m.id, &m.kind, &m.text, m.payload.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::worker_stalled;
    use std::time::Duration;

    #[test]
    fn a_worker_is_stalled_only_past_its_interval_and_the_busy_timeout() {
        let s = Duration::from_secs;
        assert!(!worker_stalled(s(0), s(1)));
        assert!(
            !worker_stalled(s(29), s(1)),
            "within the busy-timeout margin"
        );
        assert!(worker_stalled(s(31), s(1)));
        assert!(!worker_stalled(s(40), s(15)), "three intervals of 15 s");
        assert!(worker_stalled(s(46), s(15)));
    }
}
