//! A faithful local emulator of the MAX Bot API (`platform-api2.max.ru`) for tests: an axum app
//! on port 0 that checks what MAX checks — the raw token in `Authorization` (401
//! `verify.token` otherwise), `user_id` or `chat_id` on `POST /messages`, text of at most 4 000
//! characters, inline keyboards whose buttons have a type and a text and callback payloads of
//! at most 1 024 characters, `callback_id` on `POST /answers` — answers errors as
//! `{"code", "message"}`, allows 30 calls a second (429 above, or when a test asks), and
//! records what it accepted. Builders of webhook updates and a deliverer that, like MAX, sends
//! the secret header and retries until it gets a 200.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "max-test-token_123";
pub const SECRET: &str = "max-webhook-secret_1";

/// One accepted call.
#[derive(Debug, Clone)]
pub struct Call {
    /// `POST /messages`, `POST /answers`, …
    pub route: String,
    pub query: HashMap<String, String>,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    token: String,
    calls: Mutex<Vec<Call>>,
    refused: Mutex<Vec<(Call, u16, String)>>,
    /// How many of the next calls answer 429.
    rate_limit: Mutex<u32>,
    /// When the calls of the last second came.
    recent: Mutex<Vec<Instant>>,
    next_mid: Mutex<u64>,
    subscriptions: Mutex<Vec<Value>>,
    /// The bot's token was revoked: every call answers 401.
    revoked: Mutex<bool>,
}

pub struct MaxEmulator {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

impl MaxEmulator {
    pub async fn start() -> MaxEmulator {
        let inner = Arc::new(Inner {
            token: TOKEN.to_string(),
            ..Inner::default()
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&inner));
        let addr = crate::serve_loopback(app).await;
        MaxEmulator { addr, inner }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Accepted calls of one route (`POST /messages`).
    pub fn calls(&self, route: &str) -> Vec<Call> {
        let calls = self.inner.calls.lock().expect("calls");
        calls.iter().filter(|c| c.route == route).cloned().collect()
    }

    /// Messages sent to `user_id`, in order.
    pub fn messages_to(&self, user_id: i64) -> Vec<Value> {
        self.calls("POST /messages")
            .into_iter()
            .filter(|c| c.query.get("user_id") == Some(&user_id.to_string()))
            .map(|c| c.body)
            .collect()
    }

    /// Wait up to `secs` seconds until `user_id` got at least `n` messages; all of them.
    pub async fn wait_messages(&self, user_id: i64, n: usize, secs: u64) -> Vec<Value> {
        crate::eventually(secs, || {
            let got = self.messages_to(user_id);
            crate::at_least(got, n, &format!("messages to MAX user {user_id}"))
        })
        .await
    }

    /// Wait up to `secs` seconds until `route` was called at least `n` times.
    pub async fn wait_calls(&self, route: &str, n: usize, secs: u64) -> Vec<Call> {
        crate::eventually(secs, || crate::at_least(self.calls(route), n, route)).await
    }

    /// The bot's token is revoked: every call answers 401 `verify.token` from now on.
    pub fn revoke_token(&self) {
        *self.inner.revoked.lock().expect("revoked") = true;
    }

    /// Calls refused, with status and error code.
    pub fn refused(&self) -> Vec<(Call, u16, String)> {
        self.inner.refused.lock().expect("refused").clone()
    }

    /// The next `n` calls answer 429.
    pub fn rate_limit(&self, n: u32) {
        *self.inner.rate_limit.lock().expect("limit") = n;
    }

    pub fn subscriptions(&self) -> Vec<Value> {
        self.inner.subscriptions.lock().expect("subs").clone()
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    let route = format!("{method} {}", uri.path());
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return error(StatusCode::BAD_REQUEST, "bad.request", "invalid JSON"),
        }
    };
    let call = Call {
        route: route.clone(),
        query,
        body,
    };
    let refuse = |status: StatusCode, code: &str, message: &str| {
        inner.refused.lock().expect("refused").push((
            call.clone(),
            status.as_u16(),
            code.to_string(),
        ));
        error(status, code, message)
    };
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    let revoked = *inner.revoked.lock().expect("revoked");
    if revoked || auth != Some(inner.token.as_str()) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "verify.token",
            "Invalid access_token",
        );
    }
    {
        let mut limit = inner.rate_limit.lock().expect("limit");
        if *limit > 0 {
            *limit -= 1;
            return refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "too.many.requests",
                "Too many requests",
            );
        }
        let mut recent = inner.recent.lock().expect("recent");
        recent.retain(|t| t.elapsed() < Duration::from_secs(1));
        if recent.len() >= 30 {
            return refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "too.many.requests",
                "Too many requests",
            );
        }
        recent.push(Instant::now());
    }
    let answer = match route.as_str() {
        "POST /messages" => {
            if let Err(why) = check_message(&call) {
                return refuse(StatusCode::BAD_REQUEST, "proto.payload", &why);
            }
            let mut mid = inner.next_mid.lock().expect("mid");
            *mid += 1;
            json!({ "message": {
                "recipient": { "user_id": call.query.get("user_id").and_then(|u| u.parse::<i64>().ok()) },
                "timestamp": 1_792_051_200_000_i64,
                "body": { "mid": format!("mid.bot.{}", *mid), "seq": 1, "text": call.body["text"] }
            }})
        }
        "POST /answers" => {
            if call.query.get("callback_id").is_none_or(String::is_empty) {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "proto.payload",
                    "callback_id is required",
                );
            }
            if call.body.get("message").is_none() && call.body.get("notification").is_none() {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "proto.payload",
                    "message or notification is required",
                );
            }
            json!({ "success": true })
        }
        "POST /subscriptions" => {
            let url = call.body["url"].as_str().unwrap_or("");
            let secret = call.body["secret"].as_str().unwrap_or("");
            let valid_secret = (5..=256).contains(&secret.len())
                && secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !url.starts_with("https://") || !valid_secret {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "proto.payload",
                    "url must be https and secret match ^[a-zA-Z0-9_-]{5,256}$",
                );
            }
            let mut subs = inner.subscriptions.lock().expect("subs");
            subs.retain(|s| s["url"] != call.body["url"]);
            subs.push(json!({ "url": url, "time": 1, "update_types": call.body["update_types"] }));
            json!({ "success": true })
        }
        "GET /subscriptions" => {
            json!({ "subscriptions": inner.subscriptions.lock().expect("subs").clone() })
        }
        _ => return refuse(StatusCode::NOT_FOUND, "not.found", "Method not found"),
    };
    inner.calls.lock().expect("calls").push(call);
    Json(answer).into_response()
}

fn check_message(call: &Call) -> Result<(), String> {
    let to = call.query.get("user_id").or(call.query.get("chat_id"));
    if to.and_then(|t| t.parse::<i64>().ok()).is_none() {
        return Err("user_id or chat_id is required".into());
    }
    let text = call.body["text"].as_str().unwrap_or("");
    if text.chars().count() > 4000 {
        return Err("text: size must be between 0 and 4000".into());
    }
    let attachments = call.body["attachments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if text.is_empty() && attachments.is_empty() {
        return Err("text or attachments are required".into());
    }
    for a in &attachments {
        if a["type"] != "inline_keyboard" {
            return Err(format!("unsupported attachment {}", a["type"]));
        }
        let rows = a["payload"]["buttons"]
            .as_array()
            .ok_or("inline_keyboard without buttons")?;
        for b in rows
            .iter()
            .flat_map(|r| r.as_array().cloned().unwrap_or_default())
        {
            let kind = b["type"].as_str().unwrap_or("");
            if b["text"].as_str().is_none_or(str::is_empty) {
                return Err("button text is required".into());
            }
            match kind {
                "callback" => {
                    let payload = b["payload"].as_str().unwrap_or("");
                    if payload.is_empty() || payload.chars().count() > 1024 {
                        return Err("callback payload must be 1-1024 characters".into());
                    }
                }
                "request_contact" | "link" | "request_geo_location" => {}
                other => return Err(format!("unknown button type {other:?}")),
            }
        }
    }
    Ok(())
}

/// A `message_created` update: `text` from `user`, message id `mid`, at `ms` (Unix ms).
pub fn text(mid: &str, user: i64, text: &str, ms: i64) -> Value {
    json!({
        "update_type": "message_created", "timestamp": ms, "user_locale": "ru",
        "message": {
            "sender": { "user_id": user, "first_name": "Анна", "is_bot": false,
                        "last_activity_time": ms },
            "recipient": { "chat_id": user + 1_000_000, "chat_type": "dialog", "user_id": 1 },
            "timestamp": ms,
            "body": { "mid": mid, "seq": 115_380_412_345_678_901_i64, "text": text,
                      "attachments": null, "markup": null },
            "link": null
        }
    })
}

/// A `message_created` update with the sender's own contact card.
pub fn contact(mid: &str, user: i64, phone: &str, ms: i64) -> Value {
    let mut update = text(mid, user, "", ms);
    update["message"]["body"]["text"] = Value::Null;
    update["message"]["body"]["attachments"] = json!([{
        "type": "contact",
        "payload": {
            "vcf_info": format!("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Анна\r\nTEL;TYPE=cell:{phone}\r\nEND:VCARD"),
            "hash": "unverified",
            "max_info": { "user_id": user, "first_name": "Анна", "is_bot": false }
        }
    }]);
    update
}

/// A `message_callback` update: `user` pressed the button with `payload` under the bot's
/// message `pressed` (as the emulator recorded it), or under no known message.
pub fn press(
    callback_id: &str,
    user: i64,
    payload: &str,
    pressed: Option<&Value>,
    ms: i64,
) -> Value {
    let message = pressed.map(|body| {
        json!({
            "sender": { "user_id": 1, "is_bot": true },
            "recipient": { "chat_id": user + 1_000_000, "chat_type": "dialog" },
            "timestamp": ms - 1000,
            "body": { "mid": "mid.bot", "seq": 1, "text": body["text"],
                      "attachments": body["attachments"] }
        })
    });
    json!({
        "update_type": "message_callback", "timestamp": ms, "user_locale": "ru",
        "callback": { "timestamp": ms, "callback_id": callback_id, "payload": payload,
                      "user": { "user_id": user, "first_name": "Анна", "is_bot": false } },
        "message": message
    })
}

/// `bot_started` from `user` with a deep-link payload.
pub fn started(user: i64, payload: Option<&str>, ms: i64) -> Value {
    json!({
        "update_type": "bot_started", "timestamp": ms, "chat_id": user + 1_000_000,
        "user": { "user_id": user, "first_name": "Анна", "is_bot": false },
        "payload": payload, "user_locale": "ru"
    })
}

/// `bot_stopped` from `user`.
pub fn stopped(user: i64, ms: i64) -> Value {
    json!({
        "update_type": "bot_stopped", "timestamp": ms, "chat_id": user + 1_000_000,
        "user": { "user_id": user, "first_name": "Анна", "is_bot": false }
    })
}

/// The callback payloads of a sent message's keyboard.
pub fn payloads(message: &Value) -> Vec<String> {
    message["attachments"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| {
            a["payload"]["buttons"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["payload"].as_str().map(str::to_string))
        .collect()
}

/// POST `update` to the bot's MAX webhook at `url` with `secret` in `X-Max-Bot-Api-Secret`
/// (none when None); the status.
pub async fn deliver(
    http: &reqwest::Client,
    url: &str,
    secret: Option<&str>,
    update: &Value,
) -> u16 {
    let mut request = http.post(url).json(update);
    if let Some(secret) = secret {
        request = request.header("X-Max-Bot-Api-Secret", secret);
    }
    request.send().await.expect("deliver").status().as_u16()
}
