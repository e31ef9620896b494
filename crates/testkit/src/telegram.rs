//! A faithful local emulator of the Telegram Bot API for tests: an axum app on port 0 that
//! answers `POST /bot<TOKEN>/<method>` like api.telegram.org — 401 `Unauthorized` for a wrong
//! token, 404 `Not Found` for an unknown method, 400 `Bad Request: …` for missing or invalid
//! parameters (text 1–4096 characters, `callback_data` 1–64 bytes, one action per button) and
//! for a second answer to one callback query, 429 with `parameters.retry_after` when a test
//! asks for it — and records the calls it accepts, and apart those it refuses, for assertions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// One accepted call.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub params: Value,
    /// When the emulator accepted it.
    pub at: std::time::Instant,
}

#[derive(Default)]
struct State_ {
    token: String,
    calls: Mutex<Vec<Call>>,
    /// Calls answered with an error.
    refused: Mutex<Vec<Call>>,
    /// Callback queries answered already: a second answer is refused like Telegram does.
    answered: Mutex<std::collections::HashSet<String>>,
    /// How many of the next sendMessage calls answer 429, and with what retry_after.
    rate_limit: Mutex<(u32, u64)>,
    next_message_id: Mutex<i64>,
    /// Updates waiting for getUpdates.
    updates: Mutex<Vec<Value>>,
    webhook: Mutex<Option<String>>,
}

pub struct TelegramEmulator {
    pub addr: SocketAddr,
    state: Arc<State_>,
}

impl TelegramEmulator {
    pub async fn start(token: &str) -> TelegramEmulator {
        let state = Arc::new(State_ {
            token: token.to_string(),
            ..State_::default()
        });
        let app = axum::Router::new()
            .route("/{bot}/{method}", post(call))
            .with_state(Arc::clone(&state));
        let addr = crate::serve_loopback(app).await;
        TelegramEmulator { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn calls(&self, method: &str) -> Vec<Call> {
        self.state
            .calls
            .lock()
            .expect("calls")
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Calls of `method` the emulator refused (answered with an error).
    pub fn refused(&self, method: &str) -> Vec<Call> {
        self.state
            .refused
            .lock()
            .expect("refused")
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Panic when a call of `method` was refused (say a press answered twice).
    pub fn assert_none_refused(&self, method: &str) {
        let refused = self.refused(method);
        assert!(refused.is_empty(), "{method} refused: {refused:?}");
    }

    /// Queue an update for getUpdates (polling mode).
    pub fn push_update(&self, update: Value) {
        self.state.updates.lock().expect("updates").push(update);
    }

    /// Updates not confirmed by an offset yet.
    pub fn unconfirmed(&self) -> usize {
        self.state.updates.lock().expect("updates").len()
    }

    pub fn webhook(&self) -> Option<String> {
        self.state.webhook.lock().expect("webhook").clone()
    }

    /// The next `n` sendMessage calls get 429 with `retry_after`.
    pub fn rate_limit_next(&self, n: u32, retry_after: u64) {
        *self.state.rate_limit.lock().expect("rate limit") = (n, retry_after);
    }

    /// Wait for a sendMessage to `chat_id` whose text contains `part` (or panic after `secs`).
    pub async fn wait_for_message(&self, chat_id: i64, part: &str, secs: u64) -> Call {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let found = self.calls("sendMessage").into_iter().find(|c| {
                c.params["chat_id"] == chat_id
                    && c.params["text"].as_str().is_some_and(|t| t.contains(part))
            });
            if let Some(call) = found {
                return call;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no message to {chat_id} containing {part:?} within {secs} s: {:?}",
                self.calls("sendMessage")
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Wait until `n` calls of `method` were recorded (or panic after `secs`).
    pub async fn wait_for(&self, method: &str, n: usize, secs: u64) -> Vec<Call> {
        crate::eventually(secs, || crate::at_least(self.calls(method), n, method)).await
    }
}

/// A Bot API error answer.
struct ApiErr {
    code: u16,
    description: String,
    retry_after: Option<u64>,
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::BAD_REQUEST);
        let mut body =
            json!({ "ok": false, "error_code": self.code, "description": self.description });
        if let Some(after) = self.retry_after {
            body["parameters"] = json!({ "retry_after": after });
        }
        (status, Json(body)).into_response()
    }
}

fn error(code: u16, description: &str) -> ApiErr {
    ApiErr {
        code,
        description: description.to_string(),
        retry_after: None,
    }
}

fn bad(description: &str) -> ApiErr {
    error(400, &format!("Bad Request: {description}"))
}

async fn call(
    State(state): State<Arc<State_>>,
    Path((bot, method)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if bot.strip_prefix("bot") != Some(state.token.as_str()) {
        return error(401, "Unauthorized").into_response();
    }
    let Ok(params) = serde_json::from_slice::<Value>(&body) else {
        return bad("can't parse JSON object").into_response();
    };
    let result = match method.as_str() {
        "getUpdates" => get_updates(&state, &params).await,
        "setWebhook" => set_webhook(&state, &params),
        "deleteWebhook" => {
            *state.webhook.lock().expect("webhook") = None;
            Ok(json!(true))
        }
        "sendMessage" => send_message(&state, &params),
        "answerCallbackQuery" => answer_callback(&state, &params),
        "getMe" => {
            Ok(json!({ "id": 1, "is_bot": true, "first_name": "Bot", "username": "test_bot" }))
        }
        _ => return error(404, "Not Found").into_response(),
    };
    let call = Call {
        method: method.clone(),
        params,
        at: std::time::Instant::now(),
    };
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            state.refused.lock().expect("refused").push(call);
            return e.into_response();
        }
    };
    state.calls.lock().expect("calls").push(call);
    Json(json!({ "ok": true, "result": result })).into_response()
}

fn send_message(state: &State_, p: &Value) -> Result<Value, ApiErr> {
    let chat_id = &p["chat_id"];
    if !(chat_id.is_i64() || chat_id.as_str().is_some_and(|s| s.starts_with('@'))) {
        return Err(bad("chat_id is empty"));
    }
    let Some(text) = p["text"].as_str() else {
        return Err(bad("message text is empty"));
    };
    let len = text.chars().count();
    if len == 0 {
        return Err(bad("message text is empty"));
    }
    if len > 4096 {
        return Err(bad("message is too long"));
    }
    if let Some(markup) = p.get("reply_markup") {
        check_markup(markup)?;
    }
    {
        let mut limit = state.rate_limit.lock().expect("rate limit");
        if limit.0 > 0 {
            limit.0 -= 1;
            let after = limit.1;
            return Err(ApiErr {
                code: 429,
                description: format!("Too Many Requests: retry after {after}"),
                retry_after: Some(after),
            });
        }
    }
    let mut id = state.next_message_id.lock().expect("message id");
    *id += 1;
    Ok(json!({
        "message_id": *id, "date": 1_763_600_000,
        "chat": { "id": chat_id, "type": "private" }, "text": text,
    }))
}

fn check_markup(m: &Value) -> Result<(), ApiErr> {
    if let Some(rows) = m.get("inline_keyboard") {
        let rows = rows
            .as_array()
            .ok_or_else(|| bad("field \"inline_keyboard\" of the InlineKeyboardMarkup should be an Array of Arrays"))?;
        for row in rows {
            let row = row
                .as_array()
                .ok_or_else(|| bad("inline keyboard row must be an Array"))?;
            for b in row {
                if b["text"].as_str().is_none_or(str::is_empty) {
                    return Err(bad("text buttons are unallowed in the inline keyboard"));
                }
                let actions = ["callback_data", "url", "switch_inline_query", "pay"]
                    .iter()
                    .filter(|k| b.get(**k).is_some())
                    .count();
                if actions != 1 {
                    return Err(bad("inline keyboard button must have exactly one action"));
                }
                if let Some(data) = b.get("callback_data") {
                    let n = data.as_str().map_or(0, str::len);
                    if !(1..=64).contains(&n) {
                        return Err(bad("BUTTON_DATA_INVALID"));
                    }
                }
            }
        }
        return Ok(());
    }
    if let Some(rows) = m.get("keyboard") {
        let ok = rows.as_array().is_some_and(|r| {
            r.iter().all(|row| {
                row.as_array().is_some_and(|bs| {
                    bs.iter()
                        .all(|b| b["text"].as_str().is_some_and(|t| !t.is_empty()))
                })
            })
        });
        return if ok {
            Ok(())
        } else {
            Err(bad("keyboard buttons must have text"))
        };
    }
    if m.get("remove_keyboard").is_some() || m.get("force_reply").is_some() {
        return Ok(());
    }
    Err(bad("unsupported reply_markup"))
}

/// A press is answered once; a second answer to the same query is refused.
fn answer_callback(state: &State_, p: &Value) -> Result<Value, ApiErr> {
    let Some(id) = p["callback_query_id"].as_str().filter(|id| !id.is_empty()) else {
        return Err(bad("QUERY_ID_INVALID"));
    };
    if p["text"].as_str().is_some_and(|t| t.chars().count() > 200) {
        return Err(bad("MESSAGE_TOO_LONG"));
    }
    if !state
        .answered
        .lock()
        .expect("answered")
        .insert(id.to_string())
    {
        return Err(bad(
            "query is too old and response timeout expired or query ID is invalid",
        ));
    }
    Ok(json!(true))
}

/// Long polling: confirms updates below `offset`, then waits up to `timeout` seconds for any.
async fn get_updates(state: &State_, p: &Value) -> Result<Value, ApiErr> {
    if state.webhook.lock().expect("webhook").is_some() {
        return Err(error(
            409,
            "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
        ));
    }
    let offset = p.get("offset").and_then(Value::as_i64);
    if p.get("offset").is_some() && offset.is_none() {
        return Err(bad("field \"offset\" must be an Integer"));
    }
    let timeout = p.get("timeout").and_then(Value::as_u64).unwrap_or(0);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(timeout);
    loop {
        {
            let mut updates = state.updates.lock().expect("updates");
            if let Some(offset) = offset {
                updates.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
            }
            if !updates.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(Value::Array(updates.clone()));
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn set_webhook(state: &State_, p: &Value) -> Result<Value, ApiErr> {
    let Some(url) = p["url"].as_str() else {
        return Err(bad("parameter \"url\" is required"));
    };
    if let Some(secret) = p.get("secret_token") {
        let ok = secret.as_str().is_some_and(|s| {
            (1..=256).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
        if !ok {
            return Err(bad("secret token contains unallowed characters"));
        }
    }
    if url.is_empty() {
        *state.webhook.lock().expect("webhook") = None;
    } else if !url.starts_with("https://") {
        return Err(bad(
            "bad webhook: An HTTPS URL must be provided for webhook",
        ));
    } else {
        *state.webhook.lock().expect("webhook") = Some(url.to_string());
    }
    Ok(json!(true))
}
