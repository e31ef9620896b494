//! Telegram Bot API: the one place that parses Telegram updates (webhook bodies) and the one
//! place that calls the Bot API (`sendMessage`, `answerCallbackQuery`). Only private chats are
//! served; groups and channels are ignored. Update kinds this bot does not know parse as
//! [`UpdateKind::Ignored`], never as an error, because Telegram keeps adding kinds.
//!
//! Sending never retries by itself: a 429 comes back as [`SendError::RetryAfter`] and a
//! network or 5xx failure as [`SendError::Transient`], and the outbox worker reschedules the
//! job. The base URL is configurable so tests talk to a local emulator.

pub use super::SendError;
use super::{Ack, Arrival, Delivery, split_text, truncated};
use crate::domain::{ChannelKind, ClientRef, Event, Inbound, Reply};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// The public Bot API.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";
/// The header Telegram sends the webhook secret in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";
/// Longest text of one message (characters).
pub const MAX_TEXT: usize = 4096;
/// Longest `callback_data` (bytes).
pub const MAX_CALLBACK_DATA: usize = 64;

/// The update kinds the bot asks Telegram for.
pub const ALLOWED_UPDATES: [&str; 2] = ["message", "callback_query"];
/// Time limit of one ordinary Bot API call.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// How the bot reaches Telegram.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    pub token: String,
    /// The webhook secret (`X-Telegram-Bot-Api-Secret-Token`); without it every webhook call
    /// is refused.
    pub secret: Option<String>,
    pub api_url: String,
    /// Group chats the bot answers like a private chat (a group of a family or a company
    /// booking together). Other groups and channels are ignored; the managers' chat is never
    /// one of these.
    pub groups: Vec<i64>,
}

/// A parsed update.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub update_id: i64,
    pub kind: UpdateKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UpdateKind {
    /// Something from a private chat for the engine (text, contact, button press).
    Inbound {
        inbound: Inbound,
        /// A button press to acknowledge with `answerCallbackQuery`.
        callback_id: Option<String>,
    },
    /// A button press that cannot go to the engine (no data, not from a private chat): only
    /// acknowledged.
    CallbackOnly { callback_id: String },
    /// A text reply, in a group, to an earlier message: how managers answer a hand-off
    /// notice in their chat.
    GroupReply {
        chat_id: i64,
        text: String,
        replied_to: String,
    },
    /// Not for the bot (groups, channels, edits, stickers, unknown kinds); the reason is logged.
    Ignored(&'static str),
}

impl Update {
    /// The dedup key of this update in the store.
    pub fn inbound_id(&self) -> String {
        format!("tg:{}", self.update_id)
    }

    /// The update as the server handles every channel's deliveries.
    pub fn arrival(self) -> Arrival {
        let inbound_id = self.inbound_id();
        let ack = |callback_id| Ack::Telegram { callback_id };
        let what = match self.kind {
            UpdateKind::Inbound {
                inbound,
                callback_id,
            } => Delivery::Inbound {
                inbound,
                ack: callback_id.map(ack),
            },
            UpdateKind::CallbackOnly { callback_id } => Delivery::AckOnly(ack(callback_id)),
            UpdateKind::GroupReply {
                chat_id,
                text,
                replied_to,
            } => Delivery::GroupReply {
                chat_id,
                text,
                replied_to,
            },
            UpdateKind::Ignored(why) => Delivery::Ignored(why),
        };
        Arrival { inbound_id, what }
    }
}

#[derive(Deserialize)]
struct RawUpdate {
    update_id: i64,
    message: Option<RawMessage>,
    callback_query: Option<RawCallback>,
}

#[derive(Deserialize)]
struct RawMessage {
    date: i64,
    /// The sender (absent in channels).
    from: Option<RawUser>,
    chat: RawChat,
    text: Option<String>,
    contact: Option<RawContact>,
    reply_to_message: Option<Box<RawReplied>>,
}

#[derive(Deserialize)]
struct RawReplied {
    text: Option<String>,
}

#[derive(Deserialize)]
struct RawChat {
    id: i64,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct RawContact {
    phone_number: String,
    first_name: Option<String>,
    last_name: Option<String>,
    /// The Telegram user of the card, when the person has an account.
    user_id: Option<i64>,
}

#[derive(Deserialize)]
struct RawCallback {
    id: String,
    from: RawUser,
    message: Option<RawCallbackMessage>,
    data: Option<String>,
}

#[derive(Deserialize)]
struct RawUser {
    id: i64,
}

#[derive(Deserialize)]
struct RawCallbackMessage {
    chat: RawChat,
}

/// Parse a webhook body. Errors only when it is not an update at all.
pub fn parse_update(
    body: &[u8],
    now: DateTime<Utc>,
    groups: &[i64],
) -> Result<Update, serde_json::Error> {
    Ok(from_raw(serde_json::from_slice(body)?, now, groups))
}

/// Parse the `result` of `getUpdates`: the updates, and the offset that confirms them all.
/// An element that is not an update is skipped (its id still advances the offset).
pub fn parse_updates(
    result: Value,
    now: DateTime<Utc>,
    groups: &[i64],
) -> (Vec<Update>, Option<i64>) {
    let items = match result {
        Value::Array(items) => items,
        _ => Vec::new(),
    };
    let mut next = None;
    let mut updates = Vec::with_capacity(items.len());
    for item in items {
        if let Some(id) = item["update_id"].as_i64() {
            next = Some(next.map_or(id + 1, |n: i64| n.max(id + 1)));
        }
        match serde_json::from_value::<RawUpdate>(item) {
            Ok(raw) => updates.push(from_raw(raw, now, groups)),
            Err(e) => tracing::warn!(error = %e, "skipping an update that cannot be read"),
        }
    }
    (updates, next)
}

fn from_raw(raw: RawUpdate, now: DateTime<Utc>, groups: &[i64]) -> Update {
    let kind = if let Some(m) = raw.message {
        message_kind(m, groups)
    } else if let Some(cb) = raw.callback_query {
        callback_kind(cb, now, groups)
    } else {
        UpdateKind::Ignored("update kind not handled")
    };
    Update {
        update_id: raw.update_id,
        kind: cleaned(kind),
    }
}

/// Control characters (a NUL above all, which PostgreSQL refuses) never get past parsing, and
/// a text longer than Telegram allows is cut to [`MAX_TEXT`] characters (never dropped).
fn cleaned(kind: UpdateKind) -> UpdateKind {
    match kind {
        UpdateKind::Inbound {
            mut inbound,
            callback_id,
        } => {
            inbound.event = match inbound.event.cleaned() {
                Event::Text { text } => Event::Text {
                    text: truncated(text, MAX_TEXT, ChannelKind::Telegram),
                },
                other => other,
            };
            UpdateKind::Inbound {
                inbound,
                callback_id,
            }
        }
        UpdateKind::GroupReply {
            chat_id,
            text,
            replied_to,
        } => UpdateKind::GroupReply {
            chat_id,
            text: crate::domain::clean_text(&text).into_owned(),
            replied_to,
        },
        other => other,
    }
}

fn client(chat_id: i64) -> ClientRef {
    ClientRef {
        channel: ChannelKind::Telegram,
        id: chat_id.to_string(),
    }
}

/// A private chat, or a group the bot is configured to answer.
fn served(chat: &RawChat, groups: &[i64]) -> bool {
    chat.kind == "private"
        || (matches!(chat.kind.as_str(), "group" | "supergroup") && groups.contains(&chat.id))
}

fn message_kind(m: RawMessage, groups: &[i64]) -> UpdateKind {
    if !served(&m.chat, groups) {
        let replied_to = m.reply_to_message.and_then(|r| r.text);
        return match (m.chat.kind.as_str(), m.text, replied_to) {
            ("group" | "supergroup", Some(text), Some(replied_to)) => UpdateKind::GroupReply {
                chat_id: m.chat.id,
                text,
                replied_to,
            },
            _ => UpdateKind::Ignored("not a private chat"),
        };
    }
    let sender = m.from.as_ref().map(|u| u.id);
    let event = if let Some(c) = m.contact {
        contact_event(c, sender)
    } else if let Some(text) = m.text.filter(|t| !t.trim().is_empty()) {
        Event::Text { text }
    } else {
        return UpdateKind::Ignored("message without text or contact");
    };
    let at = DateTime::from_timestamp(m.date, 0).unwrap_or_default();
    UpdateKind::Inbound {
        inbound: Inbound {
            client: client(m.chat.id),
            at,
            event,
        },
        callback_id: None,
    }
}

/// A contact card. Only the sender's own card (the «share my phone» button) is the client's
/// contact; anyone else's card reads as if the client had typed its number and name, so the
/// engine weighs it like any typed message instead of taking it as the client's own phone.
/// The phone goes first: a name first could read as a master's name ("Анна Петрова …").
fn contact_event(c: RawContact, sender: Option<i64>) -> Event {
    let name = match (c.first_name, c.last_name) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (f, l) => f.or(l),
    };
    if c.user_id.is_some() && c.user_id == sender {
        return Event::Contact {
            phone: c.phone_number,
            name,
        };
    }
    let text = match name {
        Some(name) => format!("{} {name}", c.phone_number),
        None => c.phone_number,
    };
    Event::Text {
        text: text.trim().to_string(),
    }
}

/// Callback queries carry no date: the time of arrival stands for it.
fn callback_kind(cb: RawCallback, now: DateTime<Utc>, groups: &[i64]) -> UpdateKind {
    let private = cb.message.as_ref().is_none_or(|m| served(&m.chat, groups));
    let chat_id = cb.message.as_ref().map_or(cb.from.id, |m| m.chat.id);
    match cb.data.filter(|d| !d.is_empty()) {
        Some(payload) if private => UpdateKind::Inbound {
            inbound: Inbound {
                client: client(chat_id),
                at: now,
                event: Event::Button { payload },
            },
            callback_id: Some(cb.id),
        },
        _ => UpdateKind::CallbackOnly { callback_id: cb.id },
    }
}

/// A webhook secret Telegram accepts: 1–256 characters of `A-Z a-z 0-9 _ -`.
pub fn valid_secret(secret: &str) -> bool {
    (1..=256).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The `reply_markup` of a reply: an inline keyboard for buttons (one per row), or a "share
/// phone" keyboard when the bot asks for the contact.
pub fn reply_markup(reply: &Reply) -> Option<Value> {
    let rows: Vec<Value> = reply
        .buttons
        .iter()
        .filter(|b| !b.payload.is_empty() && b.payload.len() <= MAX_CALLBACK_DATA)
        .map(|b| json!([{ "text": b.title, "callback_data": b.payload }]))
        .collect();
    if !rows.is_empty() {
        return Some(json!({ "inline_keyboard": rows }));
    }
    reply.request_contact.then(|| {
        json!({
            "keyboard": [[{ "text": "📱 Поделиться номером", "request_contact": true }]],
            "resize_keyboard": true,
            "one_time_keyboard": true,
        })
    })
}

/// A thin Bot API client.
#[derive(Debug, Clone)]
pub struct TelegramApi {
    http: reqwest::Client,
    base: String,
    token: String,
    groups: std::sync::Arc<[i64]>,
}

impl TelegramApi {
    pub fn new(config: &TelegramConfig) -> Result<TelegramApi, SendError> {
        Ok(TelegramApi {
            http: super::http_client()?,
            base: config.api_url.trim_end_matches('/').to_string(),
            token: config.token.clone(),
            groups: config.groups.clone().into(),
        })
    }

    /// The group chats answered like private ones.
    pub fn groups(&self) -> &[i64] {
        &self.groups
    }

    /// Send one reply to a chat: text split under the limit, the keyboard on the last piece.
    pub async fn send_reply(&self, chat_id: i64, reply: &Reply) -> Result<(), SendError> {
        let pieces = split_text(&reply.text, MAX_TEXT);
        let last = pieces.len().saturating_sub(1);
        for (i, piece) in pieces.iter().enumerate() {
            let mut body = json!({ "chat_id": chat_id, "text": piece });
            if i == last
                && let Some(markup) = reply_markup(reply)
            {
                body["reply_markup"] = markup;
            }
            self.call("sendMessage", &body).await?;
        }
        Ok(())
    }

    /// Register the webhook `url` with the secret Telegram will send back in
    /// `X-Telegram-Bot-Api-Secret-Token`; only the update kinds the bot handles.
    pub async fn set_webhook(&self, url: &str, secret: &str) -> Result<(), SendError> {
        let body = json!({
            "url": url,
            "secret_token": secret,
            "allowed_updates": ALLOWED_UPDATES,
        });
        self.call("setWebhook", &body).await.map(drop)
    }

    /// Remove the webhook (polling does not work while one is set); pending updates stay.
    pub async fn delete_webhook(&self) -> Result<(), SendError> {
        self.call("deleteWebhook", &json!({ "drop_pending_updates": false }))
            .await
            .map(drop)
    }

    /// Long-poll for updates from `offset`, waiting up to `timeout` seconds.
    pub async fn get_updates(&self, offset: Option<i64>, timeout: u64) -> Result<Value, SendError> {
        let mut body = json!({ "timeout": timeout, "allowed_updates": ALLOWED_UPDATES });
        if let Some(offset) = offset {
            body["offset"] = json!(offset);
        }
        self.call_with_timeout("getUpdates", &body, Duration::from_secs(timeout + 10))
            .await
    }

    /// Stop the progress indicator of a pressed button.
    pub async fn answer_callback(&self, callback_id: &str) -> Result<(), SendError> {
        self.call(
            "answerCallbackQuery",
            &json!({ "callback_query_id": callback_id }),
        )
        .await
        .map(drop)
    }

    async fn call(&self, method: &str, body: &Value) -> Result<Value, SendError> {
        self.call_with_timeout(method, body, CALL_TIMEOUT).await
    }

    async fn call_with_timeout(
        &self,
        method: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, SendError> {
        let url = format!("{}/bot{}/{method}", self.base, self.token);
        let resp = self
            .http
            .post(&url)
            .timeout(timeout)
            .json(body)
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("{method}: {}", e.without_url())))?;
        let status = resp.status();
        let answer: Value = resp
            .json()
            .await
            .map_err(|e| SendError::Transient(format!("{method}: {}", e.without_url())))?;
        if answer["ok"].as_bool() == Some(true) {
            return Ok(answer["result"].clone());
        }
        let description = answer["description"].as_str().unwrap_or("no description");
        let code = answer["error_code"]
            .as_u64()
            .unwrap_or(u64::from(status.as_u16()));
        if code == 429 {
            let after = answer["parameters"]["retry_after"].as_u64().unwrap_or(1);
            return Err(SendError::RetryAfter(after));
        }
        let what = format!("{method}: {code} {description}");
        if status.is_server_error() || code >= 500 {
            Err(SendError::Transient(what))
        } else if code == 403 {
            // "Forbidden: bot was blocked by the user" (or the user is deactivated).
            Err(SendError::Blocked(what))
        } else {
            Err(SendError::Permanent(what))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Button;

    #[test]
    fn a_long_or_nul_text_is_cut_and_cleaned_never_dropped() {
        let text = format!("запишите\u{0} {}", "я".repeat(5000));
        let body = json!({
            "update_id": 7,
            "message": {
                "message_id": 1, "date": 1_763_607_600,
                "from": {"id": 5, "is_bot": false, "first_name": "М"},
                "chat": {"id": 5, "type": "private"},
                "text": text
            }
        })
        .to_string();
        let update = parse_update(body.as_bytes(), Utc::now(), &[]).expect("update");
        let UpdateKind::Inbound { inbound, .. } = update.kind else {
            panic!("dropped: {:?}", update.kind);
        };
        let Event::Text { text } = inbound.event else {
            panic!("not text");
        };
        assert_eq!(text.chars().count(), MAX_TEXT);
        assert!(text.starts_with("запишите я"), "{}", &text[..40]);
    }

    #[test]
    fn split_keeps_every_piece_under_the_limit_and_loses_nothing() {
        let text = "Слово ".repeat(2000);
        let pieces = split_text(&text, MAX_TEXT);
        assert!(pieces.len() >= 3);
        assert!(pieces.iter().all(|p| p.chars().count() <= MAX_TEXT));
        let words: usize = pieces.iter().map(|p| p.split_whitespace().count()).sum();
        assert_eq!(words, 2000);
        assert_eq!(split_text("коротко", MAX_TEXT), vec!["коротко"]);
        let solid = "я".repeat(10);
        assert_eq!(split_text(&solid, 4), vec!["яяяя", "яяяя", "яя"]);
    }

    #[test]
    fn group_messages_are_ignored_unless_configured_and_unknown_kinds_always() {
        let now = Utc::now();
        let group = br#"{"update_id":1,"message":{"message_id":1,"date":1,"chat":{"id":-100,"type":"group"},"text":"hi"}}"#;
        let poll = br#"{"update_id":2,"poll":{"id":"x"}}"#;
        let channel = br#"{"update_id":3,"message":{"message_id":1,"date":1,"chat":{"id":-100,"type":"channel"},"text":"hi"}}"#;
        for body in [&group[..], &poll[..]] {
            let u = parse_update(body, now, &[]).expect("an update");
            assert!(matches!(u.kind, UpdateKind::Ignored(_)), "{u:?}");
        }
        // A configured group is answered like a private chat; a channel never is.
        let u = parse_update(group, now, &[-100]).expect("an update");
        let UpdateKind::Inbound { inbound, .. } = u.kind else {
            panic!("{u:?}");
        };
        assert_eq!(inbound.client.id, "-100");
        let u = parse_update(channel, now, &[-100]).expect("an update");
        assert!(matches!(u.kind, UpdateKind::Ignored(_)), "{u:?}");
        let u = parse_update(group, now, &[-200]).expect("an update");
        assert!(matches!(u.kind, UpdateKind::Ignored(_)), "{u:?}");
        assert!(parse_update(b"[]", now, &[]).is_err());
    }

    #[test]
    fn only_the_senders_own_contact_card_is_the_clients_contact() {
        let now = Utc::now();
        let update = |user_id: &str| {
            let body = format!(
                r#"{{"update_id":1,"message":{{"message_id":1,"date":1,"from":{{"id":901,"is_bot":false,"first_name":"Марина"}},"chat":{{"id":901,"type":"private"}},"contact":{{"phone_number":"+79131234567","first_name":"Анна","last_name":"Петрова"{user_id}}}}}}}"#
            );
            match parse_update(body.as_bytes(), now, &[]).map(|u| u.kind) {
                Ok(UpdateKind::Inbound { inbound, .. }) => inbound.event,
                other => panic!("{user_id}: {other:?}"),
            }
        };
        assert_eq!(
            update(r#","user_id":901"#),
            Event::Contact {
                phone: "+79131234567".into(),
                name: Some("Анна Петрова".into()),
            }
        );
        for other in [r#","user_id":902"#, ""] {
            assert_eq!(
                update(other),
                Event::Text {
                    text: "+79131234567 Анна Петрова".into()
                },
                "someone else's card {other:?}"
            );
        }
    }

    #[test]
    fn webhook_secrets_follow_telegrams_alphabet() {
        assert!(valid_secret("abc_DEF-123"));
        for bad in ["", "with space", "ключ", &"a".repeat(257)] {
            assert!(!valid_secret(bad), "{bad:?}");
        }
    }

    #[test]
    fn long_callback_data_is_not_sent_as_a_button() {
        let reply = Reply {
            text: "t".into(),
            buttons: vec![
                Button::new("ok", "yes"),
                Button::new("long", "x".repeat(65)),
            ],
            template: None,
            request_contact: false,
        };
        let markup = reply_markup(&reply).expect("a keyboard");
        assert_eq!(markup["inline_keyboard"].as_array().map(Vec::len), Some(1));
    }
}
