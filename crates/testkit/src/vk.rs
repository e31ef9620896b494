//! A faithful local emulator of the VK API for a community bot: `POST /method/<name>` with a
//! form body, answered like api.vk.com — always HTTP 200, `{"response": …}` or
//! `{"error": {"error_code", "error_msg", "request_params"}}`: 5 for a wrong token, 8 for a
//! missing or other `v`, 100 for a missing parameter (`peer_id`, a non-zero `random_id`,
//! `event_id`…), 914 for a message over 9 000 characters, 911 for a keyboard VK cannot read
//! (more than 10 inline rows, a payload over 255 characters), 6 above 20 calls a second (or
//! when a test asks), 901 for a client who has not allowed messages. A `random_id` seen before
//! for a peer is not shown again (VK's idempotency), so [`VkEmulator::shown`] is what the
//! client saw. Builders of Callback API calls sign them with the community's secret.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "vk1.a.community-token";
pub const GROUP_ID: i64 = 229_000_111;
pub const SECRET: &str = "vk-secret-key-42";
pub const CONFIRMATION: &str = "a1b2c3d4";

/// One accepted call.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub params: HashMap<String, String>,
}

#[derive(Default)]
struct Inner {
    calls: Mutex<Vec<Call>>,
    refused: Mutex<Vec<(Call, i64)>>,
    /// (peer, random_id) pairs already shown.
    seen: Mutex<HashSet<(i64, i64)>>,
    /// Messages the client saw: (peer, text, keyboard).
    shown: Mutex<Vec<(i64, String, Option<Value>)>>,
    /// How many of the next calls fail with error 6.
    too_many: Mutex<u32>,
    /// Clients who have not allowed messages (901).
    denied: Mutex<HashSet<i64>>,
    recent: Mutex<Vec<Instant>>,
    next_id: Mutex<i64>,
}

pub struct VkEmulator {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl VkEmulator {
    pub async fn start() -> VkEmulator {
        let inner = Arc::new(Inner::default());
        let app = axum::Router::new()
            .route("/method/{method}", post(call))
            .with_state(Arc::clone(&inner));
        let addr = crate::serve_loopback(app).await;
        VkEmulator { addr, inner }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Accepted calls of `method`.
    pub fn calls(&self, method: &str) -> Vec<Call> {
        let calls = self.inner.calls.lock().expect("calls");
        calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// What the client `peer` saw, in order: (text, keyboard).
    pub fn shown(&self, peer: i64) -> Vec<(String, Option<Value>)> {
        let shown = self.inner.shown.lock().expect("shown");
        shown
            .iter()
            .filter(|(p, _, _)| *p == peer)
            .map(|(_, t, k)| (t.clone(), k.clone()))
            .collect()
    }

    /// Wait up to `secs` seconds until the client `peer` saw at least `n` messages; all of them.
    pub async fn wait_shown(&self, peer: i64, n: usize, secs: u64) -> Vec<(String, Option<Value>)> {
        crate::eventually(secs, || {
            crate::at_least(
                self.shown(peer),
                n,
                &format!("messages shown to VK peer {peer}"),
            )
        })
        .await
    }

    /// Wait up to `secs` seconds until `method` was accepted at least `n` times.
    pub async fn wait_calls(&self, method: &str, n: usize, secs: u64) -> Vec<Call> {
        crate::eventually(secs, || crate::at_least(self.calls(method), n, method)).await
    }

    /// Refused calls with their error code.
    pub fn refused(&self) -> Vec<(Call, i64)> {
        self.inner.refused.lock().expect("refused").clone()
    }

    /// The next `n` calls fail with error 6 (too many requests per second).
    pub fn too_many(&self, n: u32) {
        *self.inner.too_many.lock().expect("too many") = n;
    }

    /// `user` has not allowed messages from the community: sends to them fail with 901.
    pub fn deny(&self, user: i64) {
        self.inner.denied.lock().expect("denied").insert(user);
    }
}

fn vk_error(code: i64, message: &str, params: &HashMap<String, String>) -> Value {
    let request_params: Vec<Value> = params
        .iter()
        .filter(|(k, _)| k.as_str() != "access_token")
        .map(|(k, v)| json!({ "key": k, "value": v }))
        .collect();
    json!({ "error": { "error_code": code, "error_msg": message, "request_params": request_params } })
}

async fn call(
    State(inner): State<Arc<Inner>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let params: HashMap<String, String> = serde_urlencoded_pairs(&body);
    let call = Call {
        method: method.clone(),
        params: params.clone(),
    };
    let refuse = |code: i64, message: &str| {
        inner
            .refused
            .lock()
            .expect("refused")
            .push((call.clone(), code));
        Json(vk_error(code, message, &params)).into_response()
    };
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token = bearer.or(params.get("access_token").map(String::as_str));
    if token != Some(TOKEN) {
        return refuse(5, "User authorization failed: invalid access_token (4).");
    }
    if params.get("v").map(String::as_str) != Some("5.199") {
        return refuse(8, "Invalid request: v (version) is required");
    }
    {
        let mut too_many = inner.too_many.lock().expect("too many");
        if *too_many > 0 {
            *too_many -= 1;
            return refuse(6, "Too many requests per second");
        }
        let mut recent = inner.recent.lock().expect("recent");
        recent.retain(|t| t.elapsed() < Duration::from_secs(1));
        if recent.len() >= 20 {
            return refuse(6, "Too many requests per second");
        }
        recent.push(Instant::now());
    }
    let number = |name: &str| params.get(name).and_then(|v| v.parse::<i64>().ok());
    let response = match method.as_str() {
        "messages.send" => {
            let (Some(peer), Some(random_id)) = (number("peer_id"), number("random_id")) else {
                return refuse(
                    100,
                    "One of the parameters specified was missing or invalid: peer_id and random_id are required",
                );
            };
            if random_id == 0 || i32::try_from(random_id).is_err() {
                return refuse(
                    100,
                    "One of the parameters specified was missing or invalid: random_id",
                );
            }
            let text = params.get("message").cloned().unwrap_or_default();
            if text.is_empty() && !params.contains_key("attachment") {
                return refuse(
                    100,
                    "One of the parameters specified was missing or invalid: message is empty",
                );
            }
            if text.chars().count() > 9000 {
                return refuse(914, "Message is too long");
            }
            let keyboard = match params.get("keyboard") {
                Some(k) => match check_keyboard(k) {
                    Ok(v) => Some(v),
                    Err(why) => return refuse(911, &format!("Keyboard format is invalid: {why}")),
                },
                None => None,
            };
            if inner.denied.lock().expect("denied").contains(&peer) {
                return refuse(901, "Can't send messages for users without permission");
            }
            let mut id = inner.next_id.lock().expect("id");
            *id += 1;
            if inner.seen.lock().expect("seen").insert((peer, random_id)) {
                inner
                    .shown
                    .lock()
                    .expect("shown")
                    .push((peer, text, keyboard));
            }
            json!(*id)
        }
        "messages.sendMessageEventAnswer" => {
            if params.get("event_id").is_none_or(String::is_empty)
                || number("user_id").is_none()
                || number("peer_id").is_none()
            {
                return refuse(
                    100,
                    "One of the parameters specified was missing or invalid: event_id, user_id and peer_id are required",
                );
            }
            if let Some(data) = params.get("event_data") {
                let valid = serde_json::from_str::<Value>(data).ok().is_some_and(|d| {
                    d["type"] == "show_snackbar"
                        && d["text"].as_str().is_some_and(|t| t.chars().count() <= 90)
                });
                if !valid {
                    return refuse(
                        100,
                        "One of the parameters specified was missing or invalid: event_data",
                    );
                }
            }
            json!(1)
        }
        "groups.getCallbackConfirmationCode" => {
            if number("group_id") != Some(GROUP_ID) {
                return refuse(
                    100,
                    "One of the parameters specified was missing or invalid: group_id",
                );
            }
            json!({ "code": CONFIRMATION })
        }
        _ => return refuse(3, "Unknown method passed"),
    };
    inner.calls.lock().expect("calls").push(call);
    Json(json!({ "response": response })).into_response()
}

/// The form body as pairs (the last value of a repeated key wins, as PHP reads it).
fn serde_urlencoded_pairs(body: &[u8]) -> HashMap<String, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .unwrap_or_default()
        .into_iter()
        .collect()
}

fn check_keyboard(text: &str) -> Result<Value, String> {
    let k: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let rows = k["buttons"].as_array().ok_or("no buttons")?;
    if k["inline"] == true && rows.len() > 10 {
        return Err(format!("{} rows in an inline keyboard", rows.len()));
    }
    for b in rows
        .iter()
        .flat_map(|r| r.as_array().cloned().unwrap_or_default())
    {
        let action = &b["action"];
        let kind = action["type"].as_str().unwrap_or("");
        if !matches!(kind, "text" | "callback" | "open_link" | "location") {
            return Err(format!("action type {kind:?}"));
        }
        if let Some(payload) = action["payload"].as_str()
            && (payload.chars().count() > 255 || serde_json::from_str::<Value>(payload).is_err())
        {
            return Err("payload must be JSON of at most 255 characters".into());
        }
        if action["label"]
            .as_str()
            .is_none_or(|l| l.is_empty() || l.chars().count() > 40)
        {
            return Err("label must be 1-40 characters".into());
        }
    }
    Ok(k)
}

/// A Callback API call of `kind` with `object`, signed with `secret` (None: unsigned).
pub fn event(kind: &str, event_id: &str, object: Value, secret: Option<&str>) -> Value {
    let mut call = json!({
        "type": kind, "event_id": event_id, "v": "5.199", "object": object, "group_id": GROUP_ID
    });
    if let Some(secret) = secret {
        call["secret"] = json!(secret);
    }
    call
}

/// `message_new`: `text` from `user` (with a text button's `payload` when given).
pub fn message(event_id: &str, user: i64, text: &str, payload: Option<&str>) -> Value {
    let mut message = json!({
        "date": 1_763_607_600, "from_id": user, "peer_id": user, "id": 1, "out": 0,
        "text": text, "conversation_message_id": 1, "attachments": [], "fwd_messages": [],
        "important": false, "is_hidden": false
    });
    if let Some(payload) = payload {
        message["payload"] = json!(payload);
    }
    event(
        "message_new",
        event_id,
        json!({ "message": message, "client_info": {
            "button_actions": ["text", "vkpay", "open_app", "location", "open_link", "callback"],
            "keyboard": true, "inline_keyboard": true, "carousel": true, "lang_id": 0 } }),
        Some(SECRET),
    )
}

/// `message_event`: `user` pressed a callback button carrying `payload` (as VK sends it: a
/// parsed object).
pub fn press(event_id: &str, user: i64, payload: &str) -> Value {
    let payload: Value = serde_json::from_str(payload).unwrap_or(json!(payload));
    event(
        "message_event",
        event_id,
        json!({ "user_id": user, "peer_id": user, "event_id": format!("ev-{event_id}"),
                "payload": payload, "conversation_message_id": 1 }),
        Some(SECRET),
    )
}

/// The callback payloads (as JSON strings) of a shown keyboard.
pub fn payloads(keyboard: &Option<Value>) -> Vec<String> {
    keyboard
        .as_ref()
        .and_then(|k| k["buttons"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["action"]["payload"].as_str().map(str::to_string))
        .collect()
}

/// POST a Callback API call to the bot's VK webhook at `url`: (status, body text).
pub async fn deliver(http: &reqwest::Client, url: &str, call: &Value) -> (u16, String) {
    let resp = http.post(url).json(call).send().await.expect("deliver");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}
