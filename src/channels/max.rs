//! MAX Bot API (`platform-api2.max.ru`): the one place that parses MAX webhook updates and
//! calls MAX. Facts: `../shared/reference/channels-ru.md` §1.
//!
//! - Auth is the raw token in `Authorization` (no `Bearer`); the webhook proves itself with
//!   `X-Max-Bot-Api-Secret`, compared in constant time.
//! - Updates carry no id: the dedup key is the message's `body.mid`, the callback's
//!   `callback_id`, or (user, timestamp) for `bot_started`. MAX redelivers until it gets a 200
//!   (for up to 8 hours), so the server stores first and answers 200 only then.
//! - Every time is Unix milliseconds; `seq` can exceed 2⁵³, so numbers are read as i64, never
//!   through f64. Unknown update types parse as ignored, never as errors.
//! - Sending: `POST /messages?user_id=…` with text ≤ 4000 characters (longer is split) and an
//!   inline keyboard of callback buttons, or a `request_contact` button when the bot asks for
//!   the phone; at most 30 calls a second overall; a 429 is waited out, `verify.token` and
//!   other refusals are not retried.

use super::{Ack, Arrival, Delivery, Pacer, SendError, split_text, truncated};
use crate::domain::{ChannelKind, ClientRef, Event, Inbound, Reply};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The MAX Bot API.
pub const DEFAULT_API_URL: &str = "https://platform-api2.max.ru";
/// The header MAX sends the subscription secret in.
pub const SECRET_HEADER: &str = "x-max-bot-api-secret";
/// Longest text of one message (characters).
pub const MAX_TEXT: usize = 4000;
/// Longest button payload MAX keeps (characters).
pub const MAX_PAYLOAD: usize = 1024;
/// Longest `bot_started` deep-link payload (characters).
pub const MAX_START_PAYLOAD: usize = 512;
/// Calls a second MAX allows a bot.
pub const CALLS_PER_SECOND: u32 = 30;
/// The update types the bot subscribes to.
pub const UPDATE_TYPES: [&str; 5] = [
    "message_created",
    "message_callback",
    "bot_started",
    "bot_stopped",
    "dialog_removed",
];
/// Time limit of one API call.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// The title of the button that asks for the client's phone.
const SHARE_PHONE: &str = "📱 Поделиться номером";

/// How the bot reaches MAX (`BOT_MAX_TOKEN`, `BOT_MAX_SECRET`, `BOT_MAX_API_URL`).
#[derive(Clone)]
pub struct MaxConfig {
    pub token: String,
    /// The subscription secret; without it every webhook call is refused.
    pub secret: Option<String>,
    pub api_url: String,
}

impl std::fmt::Debug for MaxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaxConfig")
            .field("token", &"***")
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("api_url", &self.api_url)
            .finish()
    }
}

impl MaxConfig {
    /// From the environment; None when `BOT_MAX_TOKEN` is not set (the channel is off).
    pub fn from_env() -> Option<MaxConfig> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Some(MaxConfig {
            token: var("BOT_MAX_TOKEN")?,
            secret: var("BOT_MAX_SECRET"),
            api_url: var("BOT_MAX_API_URL").unwrap_or_else(|| DEFAULT_API_URL.to_string()),
        })
    }
}

/// A subscription secret MAX accepts: 5–256 characters of `A-Z a-z 0-9 _ -`.
pub fn valid_secret(secret: &str) -> bool {
    (5..=256).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[derive(Deserialize)]
struct RawUpdate {
    update_type: String,
    #[serde(default)]
    timestamp: i64,
    message: Option<RawMessage>,
    callback: Option<RawCallback>,
    user: Option<RawUser>,
    chat_id: Option<i64>,
    payload: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    sender: Option<RawUser>,
    recipient: Option<RawRecipient>,
    #[serde(default)]
    timestamp: i64,
    body: Option<RawBody>,
}

#[derive(Deserialize)]
struct RawRecipient {
    chat_type: Option<String>,
}

#[derive(Deserialize)]
struct RawBody {
    mid: Option<String>,
    text: Option<String>,
    attachments: Option<Vec<RawAttachment>>,
}

#[derive(Deserialize)]
struct RawAttachment {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    payload: Value,
}

#[derive(Deserialize)]
struct RawUser {
    user_id: i64,
    #[serde(default)]
    is_bot: bool,
}

#[derive(Deserialize)]
struct RawCallback {
    callback_id: String,
    payload: Option<String>,
    user: RawUser,
}

/// Parse a webhook body. Errors only when it is not a MAX update at all.
pub fn parse_update(body: &[u8], now: DateTime<Utc>) -> Result<Arrival, serde_json::Error> {
    let raw: RawUpdate = serde_json::from_slice(body)?;
    Ok(arrival(raw, now))
}

fn client(user_id: i64) -> ClientRef {
    ClientRef {
        channel: ChannelKind::Max,
        id: user_id.to_string(),
    }
}

fn at_ms(ms: i64, now: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(now)
}

fn ignored(inbound_id: String, why: &'static str) -> Arrival {
    Arrival {
        inbound_id,
        what: Delivery::Ignored(why),
    }
}

fn arrival(raw: RawUpdate, now: DateTime<Utc>) -> Arrival {
    let fallback_id = format!("max:{}:{}", raw.update_type, raw.timestamp);
    match raw.update_type.as_str() {
        "message_created" => match raw.message {
            Some(m) => message(m, now, fallback_id),
            None => ignored(fallback_id, "message_created without a message"),
        },
        "message_callback" => match raw.callback {
            Some(cb) => callback(cb, raw.message, now),
            None => ignored(fallback_id, "message_callback without a callback"),
        },
        "bot_started" => match raw.user.filter(|u| !u.is_bot) {
            Some(user) => {
                let inbound_id = format!("max:start:{}:{}", user.user_id, raw.timestamp);
                // The deep-link payload says where the client came from; the greeting is the
                // engine's answer to a first «/start».
                let source = raw
                    .payload
                    .map(|p| truncated(p, MAX_START_PAYLOAD, ChannelKind::Max))
                    .filter(|p| !p.trim().is_empty());
                if let Some(source) = &source {
                    tracing::debug!(source, "max: bot started from a deep link");
                }
                Arrival {
                    inbound_id,
                    what: Delivery::Inbound {
                        inbound: Inbound {
                            client: client(user.user_id),
                            at: at_ms(raw.timestamp, now),
                            // As Telegram spells a deep-link start: the engine greets and keeps
                            // the campaign for the lead.
                            event: Event::Text {
                                text: match &source {
                                    Some(s) => format!("/start {s}"),
                                    None => "/start".into(),
                                },
                            },
                        },
                        ack: None,
                    },
                }
            }
            None => ignored(fallback_id, "bot_started without a user"),
        },
        "bot_stopped" | "dialog_removed" => {
            let user = raw.user.map(|u| u.user_id).or(raw.chat_id);
            match user {
                Some(user) => Arrival {
                    inbound_id: format!("max:stop:{user}:{}", raw.timestamp),
                    what: Delivery::Stopped(client(user)),
                },
                None => ignored(fallback_id, "stop without a user"),
            }
        }
        _ => ignored(fallback_id, "update type not handled"),
    }
}

fn message(m: RawMessage, now: DateTime<Utc>, fallback_id: String) -> Arrival {
    let Some(sender) = m.sender.filter(|s| !s.is_bot) else {
        return ignored(fallback_id, "message from a bot or nobody");
    };
    if m.recipient
        .and_then(|r| r.chat_type)
        .is_some_and(|t| t != "dialog")
    {
        return ignored(fallback_id, "not a private dialog");
    }
    let Some(body) = m.body else {
        return ignored(fallback_id, "a forward without a body");
    };
    let inbound_id = match &body.mid {
        Some(mid) => format!("max:{mid}"),
        None => format!("max:{}:{}", sender.user_id, m.timestamp),
    };
    let contact = body
        .attachments
        .iter()
        .flatten()
        .find(|a| a.kind == "contact")
        .and_then(|a| contact_event(&a.payload, sender.user_id));
    let event = if let Some(event) = contact {
        event
    } else if let Some(text) = body.text.filter(|t| !t.trim().is_empty()) {
        Event::Text {
            text: truncated(text, MAX_TEXT, ChannelKind::Max),
        }
    } else {
        return ignored(inbound_id, "message without text or contact");
    };
    Arrival {
        inbound_id,
        what: Delivery::Inbound {
            inbound: Inbound {
                client: client(sender.user_id),
                at: at_ms(m.timestamp, now),
                event: event.cleaned(),
            },
            ack: None,
        },
    }
}

/// A shared contact: the phone from the vCard, the name from the MAX profile. Only the
/// sender's own card is the client's contact; anyone else's reads as typed text.
fn contact_event(payload: &Value, sender: i64) -> Option<Event> {
    let vcf = payload["vcf_info"].as_str()?;
    let phone = vcf
        .lines()
        .find(|l| l.to_ascii_uppercase().starts_with("TEL"))
        .and_then(|l| l.split(':').nth(1))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())?;
    let owner = &payload["max_info"];
    let name = [owner["first_name"].as_str(), owner["last_name"].as_str()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let name = (!name.trim().is_empty()).then_some(name);
    if owner["user_id"].as_i64() == Some(sender) {
        return Some(Event::Contact { phone, name });
    }
    let text = match name {
        Some(name) => format!("{phone} {name}"),
        None => phone,
    };
    Some(Event::Text { text })
}

fn callback(cb: RawCallback, pressed: Option<RawMessage>, now: DateTime<Utc>) -> Arrival {
    let inbound_id = format!("max:cb:{}", cb.callback_id);
    let replaced = pressed.and_then(|m| {
        let body = m.body?;
        let payload = cb.payload.as_deref()?;
        let title = body
            .attachments
            .iter()
            .flatten()
            .filter(|a| a.kind == "inline_keyboard")
            .flat_map(|a| a.payload["buttons"].as_array().cloned().unwrap_or_default())
            .flat_map(|row| row.as_array().cloned().unwrap_or_default())
            .find(|b| b["payload"].as_str() == Some(payload))
            .and_then(|b| b["text"].as_str().map(str::to_string))?;
        Some((body.text.unwrap_or_default(), title))
    });
    let ack = Ack::Max {
        callback_id: cb.callback_id,
        replaced,
    };
    match cb.payload.filter(|p| !p.is_empty()) {
        Some(payload) if !cb.user.is_bot => Arrival {
            inbound_id,
            what: Delivery::Inbound {
                inbound: Inbound {
                    client: client(cb.user.user_id),
                    at: now,
                    event: Event::Button {
                        payload: truncated(payload, MAX_PAYLOAD, ChannelKind::Max),
                    }
                    .cleaned(),
                },
                ack: Some(ack),
            },
        },
        _ => Arrival {
            inbound_id,
            what: Delivery::AckOnly(ack),
        },
    }
}

/// The attachments of a reply: an inline keyboard of callback buttons (one a row), or a
/// «share phone» button when the bot asks for the contact.
pub fn keyboard(reply: &Reply) -> Option<Value> {
    let rows: Vec<Value> = reply
        .buttons
        .iter()
        .filter(|b| !b.payload.is_empty() && b.payload.chars().count() <= MAX_PAYLOAD)
        .map(|b| json!([{ "type": "callback", "text": b.title, "payload": b.payload }]))
        .collect();
    if !rows.is_empty() {
        return Some(json!({ "type": "inline_keyboard", "payload": { "buttons": rows } }));
    }
    reply.request_contact.then(|| {
        json!({
            "type": "inline_keyboard",
            "payload": { "buttons": [[{ "type": "request_contact", "text": SHARE_PHONE }]] }
        })
    })
}

/// A thin MAX Bot API client.
#[derive(Clone)]
pub struct MaxApi {
    http: reqwest::Client,
    base: String,
    token: String,
    pacer: Arc<Pacer>,
}

impl std::fmt::Debug for MaxApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaxApi").field("base", &self.base).finish()
    }
}

impl MaxApi {
    pub fn new(config: &MaxConfig) -> Result<MaxApi, SendError> {
        Ok(MaxApi {
            http: super::http_client()?,
            base: config.api_url.trim_end_matches('/').to_string(),
            token: config.token.clone(),
            pacer: Arc::new(Pacer::per_second(CALLS_PER_SECOND)),
        })
    }

    /// Send one reply to a client: text split under the limit, the keyboard on the last piece.
    pub async fn send_reply(&self, user_id: &str, reply: &Reply) -> Result<(), SendError> {
        let user: i64 = user_id
            .parse()
            .map_err(|_| SendError::Permanent(format!("bad MAX user id {user_id:?}")))?;
        let pieces = split_text(&reply.text, MAX_TEXT);
        let last = pieces.len().saturating_sub(1);
        for (i, piece) in pieces.iter().enumerate() {
            let mut body = json!({ "text": piece, "notify": true });
            if i == last
                && let Some(keyboard) = keyboard(reply)
            {
                body["attachments"] = json!([keyboard]);
            }
            self.call(
                reqwest::Method::POST,
                "/messages",
                &[("user_id", user.to_string())],
                Some(&body),
            )
            .await?;
        }
        Ok(())
    }

    /// Answer a pressed button: the keyboard message becomes its text with the choice, or a
    /// short notice when the pressed message is unknown.
    pub async fn answer(
        &self,
        callback_id: &str,
        replaced: Option<&(String, String)>,
    ) -> Result<(), SendError> {
        let body = match replaced {
            Some((text, title)) => json!({
                "message": { "text": format!("{text}\n\n✓ {title}").trim(), "attachments": [] }
            }),
            None => json!({ "notification": "Принято" }),
        };
        self.call(
            reqwest::Method::POST,
            "/answers",
            &[("callback_id", callback_id.to_string())],
            Some(&body),
        )
        .await
        .map(drop)
    }

    /// Subscribe the webhook `url` with `secret` for the update types the bot handles.
    pub async fn subscribe(&self, url: &str, secret: &str) -> Result<(), SendError> {
        let body = json!({ "url": url, "update_types": UPDATE_TYPES, "secret": secret });
        self.call(reqwest::Method::POST, "/subscriptions", &[], Some(&body))
            .await
            .map(drop)
    }

    /// The subscriptions MAX has for this bot (their URLs).
    pub async fn subscriptions(&self) -> Result<Vec<String>, SendError> {
        let answer = self
            .call(reqwest::Method::GET, "/subscriptions", &[], None)
            .await?;
        Ok(answer["subscriptions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["url"].as_str().map(str::to_string))
            .collect())
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, SendError> {
        self.pacer.turn().await;
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method, &url)
            .timeout(CALL_TIMEOUT)
            .header(reqwest::header::AUTHORIZATION, &self.token)
            .query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let resp = request
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("{path}: {}", e.without_url())))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() && answer["success"].as_bool() != Some(false) {
            return Ok(answer);
        }
        let code = answer["code"].as_str().unwrap_or("");
        let message = answer["message"].as_str().unwrap_or("no message");
        let what = format!("MAX {path}: {} {code} {message}", status.as_u16());
        match status.as_u16() {
            429 => Err(SendError::RetryAfter(retry_after.unwrap_or(1).max(1))),
            401 => Err(SendError::Permanent(format!(
                "{what}: the token is wrong or revoked; set BOT_MAX_TOKEN to the bot's token \
                 (business.max.ru → Чат-боты → Настройки)"
            ))),
            s if s >= 500 || code == "attachment.not.ready" => Err(SendError::Transient(what)),
            // The user stopped or blocked the bot ("chat.denied" and the like).
            403 => Err(SendError::Blocked(what)),
            _ => Err(SendError::Permanent(what)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Button;

    fn parse(v: Value) -> Arrival {
        parse_update(v.to_string().as_bytes(), Utc::now()).expect("an update")
    }

    #[test]
    fn a_message_is_deduplicated_by_its_mid_and_seq_beyond_f64_is_fine() {
        let a = parse(json!({
            "update_type": "message_created", "timestamp": 1_792_051_200_123_i64,
            "message": {
                "sender": {"user_id": 3_216_549, "first_name": "Анна", "is_bot": false},
                "recipient": {"chat_id": 90_417_735, "chat_type": "dialog", "user_id": 1},
                "timestamp": 1_792_051_200_123_i64,
                "body": {"mid": "mid.abc", "seq": 115_380_412_345_678_901_i64, "text": "привет"}
            }
        }));
        assert_eq!(a.inbound_id, "max:mid.abc");
        let Delivery::Inbound { inbound, ack } = a.what else {
            panic!("{a:?}");
        };
        assert_eq!(inbound.client.id, "3216549");
        assert_eq!(inbound.at.timestamp_millis(), 1_792_051_200_123);
        assert_eq!(
            inbound.event,
            Event::Text {
                text: "привет".into()
            }
        );
        assert_eq!(ack, None);
    }

    #[test]
    fn the_own_contact_is_the_phone_and_someone_elses_is_text() {
        let card = |owner: i64| {
            json!({
                "update_type": "message_created", "timestamp": 1,
                "message": {
                    "sender": {"user_id": 7, "is_bot": false}, "timestamp": 1,
                    "body": {"mid": "m1", "text": null, "attachments": [{"type": "contact",
                        "payload": {"vcf_info": "BEGIN:VCARD\r\nTEL;TYPE=cell:+79131234567\r\nEND:VCARD",
                                    "hash": "x", "max_info": {"user_id": owner, "first_name": "Анна"}}}]}
                }
            })
        };
        let Delivery::Inbound { inbound, .. } = parse(card(7)).what else {
            panic!();
        };
        assert_eq!(
            inbound.event,
            Event::Contact {
                phone: "+79131234567".into(),
                name: Some("Анна".into())
            }
        );
        let Delivery::Inbound { inbound, .. } = parse(card(8)).what else {
            panic!();
        };
        assert_eq!(
            inbound.event,
            Event::Text {
                text: "+79131234567 Анна".into()
            }
        );
    }

    #[test]
    fn a_callback_is_a_button_with_the_choice_to_show() {
        let a = parse(json!({
            "update_type": "message_callback", "timestamp": 5,
            "callback": {"timestamp": 5, "callback_id": "cb-1", "payload": "slot:x",
                         "user": {"user_id": 7, "is_bot": false}},
            "message": {"sender": {"user_id": 1, "is_bot": true}, "timestamp": 4,
                        "body": {"mid": "m0", "text": "Выберите время",
                                 "attachments": [{"type": "inline_keyboard", "payload": {"buttons":
                                     [[{"type": "callback", "text": "Пт 10:00", "payload": "slot:x"}]]}}]}}
        }));
        assert_eq!(a.inbound_id, "max:cb:cb-1");
        let Delivery::Inbound { inbound, ack } = a.what else {
            panic!();
        };
        assert_eq!(
            inbound.event,
            Event::Button {
                payload: "slot:x".into()
            }
        );
        assert_eq!(
            ack,
            Some(Ack::Max {
                callback_id: "cb-1".into(),
                replaced: Some(("Выберите время".into(), "Пт 10:00".into()))
            })
        );
    }

    #[test]
    fn start_stop_and_unknown_updates() {
        let a = parse(
            json!({"update_type": "bot_started", "timestamp": 9, "chat_id": 5,
                              "user": {"user_id": 7, "is_bot": false}, "payload": "vk-ad"}),
        );
        assert_eq!(a.inbound_id, "max:start:7:9");
        assert!(matches!(a.what, Delivery::Inbound { .. }));
        let a = parse(
            json!({"update_type": "bot_stopped", "timestamp": 9, "chat_id": 5,
                              "user": {"user_id": 7, "is_bot": false}}),
        );
        assert_eq!(a.what, Delivery::Stopped(client(7)));
        let a = parse(json!({"update_type": "chat_title_changed", "timestamp": 9}));
        assert!(matches!(a.what, Delivery::Ignored(_)));
        assert!(parse_update(b"[1,2]", Utc::now()).is_err());
    }

    #[test]
    fn the_keyboard_has_one_callback_button_a_row_or_asks_for_the_phone() {
        let mut reply = Reply {
            text: "Когда?".into(),
            buttons: vec![
                Button::new("Пт 10:00", "slot:a"),
                Button::new("Сб", "slot:b"),
            ],
            template: None,
            request_contact: false,
        };
        let k = keyboard(&reply).expect("keyboard");
        assert_eq!(k["payload"]["buttons"][1][0]["payload"], "slot:b");
        assert_eq!(k["payload"]["buttons"][0][0]["type"], "callback");
        reply.buttons.clear();
        assert!(keyboard(&reply).is_none());
        reply.request_contact = true;
        let k = keyboard(&reply).expect("contact button");
        assert_eq!(k["payload"]["buttons"][0][0]["type"], "request_contact");
    }
}
