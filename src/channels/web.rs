//! The web channel: the JSON API `POST /api/v1/messages` that the embedded chat page, a
//! salon's website widget and the API test tools speak. Owns the request and response shapes
//! and their validation; the server handler calls [`WebMessage::into_inbound`] and
//! [`WebResponse::new`].

use crate::domain::{Button, ChannelKind, ClientRef, Event, Inbound, Reply};
use crate::store::StoredMessage;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest accepted client id (characters).
pub const MAX_CLIENT_ID: usize = 128;
/// Longest accepted message text (characters), as in messengers.
pub const MAX_TEXT: usize = 4096;
/// Longest accepted button payload (bytes).
pub const MAX_BUTTON: usize = 256;

/// One message from the web chat: exactly one of `text` or `button`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebMessage {
    pub client_id: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub button: Option<String>,
    /// Optional idempotency key: a message resent with the same id is processed once.
    #[serde(default)]
    pub message_id: Option<String>,
}

/// Why a web message was refused (a 400 with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl WebMessage {
    /// Validate and turn into an inbound event; also returns the inbound id used for dedup.
    pub fn into_inbound(
        self,
        fresh_id: impl FnOnce() -> String,
        at: DateTime<Utc>,
    ) -> Result<(String, Inbound), Invalid> {
        let client_id = self.client_id.trim();
        if client_id.is_empty() {
            return Err(Invalid("client_id must not be empty".into()));
        }
        if client_id.chars().count() > MAX_CLIENT_ID || client_id.chars().any(char::is_control) {
            return Err(Invalid(format!(
                "client_id must be at most {MAX_CLIENT_ID} printable characters"
            )));
        }
        let event = match (self.text, self.button) {
            (Some(_), Some(_)) => {
                return Err(Invalid("send either text or button, not both".into()));
            }
            (None, None) => return Err(Invalid("missing field: text or button".into())),
            (Some(text), None) => {
                if text.trim().is_empty() {
                    return Err(Invalid("text must not be empty".into()));
                }
                if text.chars().count() > MAX_TEXT {
                    return Err(Invalid(format!(
                        "text must be at most {MAX_TEXT} characters"
                    )));
                }
                Event::Text { text }
            }
            (None, Some(payload)) => {
                if payload.is_empty() || payload.len() > MAX_BUTTON {
                    return Err(Invalid(format!("button must be 1 to {MAX_BUTTON} bytes")));
                }
                Event::Button { payload }
            }
        };
        let inbound_id = match self.message_id {
            Some(id) if !id.is_empty() && id.len() <= MAX_CLIENT_ID => message_key(client_id, &id),
            Some(_) => return Err(Invalid("message_id must be 1 to 128 bytes".into())),
            None => fresh_id(),
        };
        let inbound = Inbound {
            client: ClientRef {
                channel: ChannelKind::Web,
                id: client_id.to_string(),
            },
            at,
            event,
        };
        Ok((inbound_id, inbound))
    }
}

/// The dedup key of a client's `message_id`. The client id's length (bytes) comes first, so
/// the key reads back one way only: client `a:b` with message `c` is not client `a` with
/// message `b:c`. It has at least three `:` after `web`, so it never equals a server-made
/// key of a message without an id (`web:{start}:{n}`, two numbers).
pub fn message_key(client_id: &str, message_id: &str) -> String {
    format!("web:{}:{client_id}:{message_id}", client_id.len())
}

/// The bot's answer to one web message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebResponse {
    pub conversation_id: String,
    pub replies: Vec<WebReply>,
    /// The conversation is with a manager now; the bot stays silent.
    pub handoff: bool,
    /// The id of the last reply; `GET /api/v1/messages?after=` continues from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_id: Option<i64>,
    /// This `message_id` was processed before: nothing new happened, and `replies` are the
    /// ones stored for its first delivery.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebReply {
    pub text: String,
    pub buttons: Vec<Button>,
}

impl WebResponse {
    pub fn new(client: &ClientRef, replies: &[Reply], handoff: bool) -> WebResponse {
        WebResponse {
            conversation_id: client.to_string(),
            replies: replies
                .iter()
                .map(|r| WebReply {
                    text: r.text.clone(),
                    buttons: r.buttons.clone(),
                })
                .collect(),
            handoff,
            last_id: None,
            duplicate: false,
        }
    }
}

/// `GET /api/v1/messages?client_id=…&after=ID`: what the bot or a manager sent since `after`
/// (reminders, follow-ups, a manager's answer after a hand-off). The chat page polls it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebPoll {
    pub client_id: String,
    #[serde(default)]
    pub after: Option<i64>,
}

impl WebPoll {
    pub fn client(&self) -> Result<ClientRef, Invalid> {
        let id = self.client_id.trim();
        if id.is_empty() || id.chars().count() > MAX_CLIENT_ID || id.chars().any(char::is_control) {
            return Err(Invalid(format!(
                "client_id must be 1 to {MAX_CLIENT_ID} printable characters"
            )));
        }
        Ok(ClientRef {
            channel: ChannelKind::Web,
            id: id.to_string(),
        })
    }
}

/// One message the client has not seen yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebOutbound {
    pub id: i64,
    /// `bot` or `manager`.
    pub from: String,
    pub text: String,
    pub buttons: Vec<Button>,
}

impl WebOutbound {
    /// The client's view of a stored outgoing message (None for the client's own).
    pub fn of(m: &StoredMessage) -> Option<WebOutbound> {
        if m.inbound {
            return None;
        }
        let buttons = m
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str::<Reply>(p).ok())
            .map(|r| r.buttons)
            .unwrap_or_default();
        let from = if m.kind == "manager" {
            "manager"
        } else {
            "bot"
        };
        Some(WebOutbound {
            id: m.id,
            from: from.to_string(),
            text: m.text.clone(),
            buttons,
        })
    }
}

impl From<WebOutbound> for WebReply {
    fn from(m: WebOutbound) -> WebReply {
        WebReply {
            text: m.text,
            buttons: m.buttons,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebUpdates {
    pub conversation_id: String,
    pub messages: Vec<WebOutbound>,
    pub handoff: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(client: &str, text: Option<&str>, button: Option<&str>) -> WebMessage {
        WebMessage {
            client_id: client.into(),
            text: text.map(Into::into),
            button: button.map(Into::into),
            message_id: None,
        }
    }

    #[test]
    fn refuses_what_is_not_one_message() {
        let now = Utc::now();
        let id = || "x".to_string();
        for (m, why) in [
            (msg("", Some("hi"), None), "empty client"),
            (msg("a", None, None), "nothing"),
            (msg("a", Some("hi"), Some("yes")), "both"),
            (msg("a", Some("  "), None), "blank text"),
            (msg("a", Some(&"я".repeat(MAX_TEXT + 1)), None), "long text"),
            (
                msg(&"c".repeat(MAX_CLIENT_ID + 1), Some("hi"), None),
                "long id",
            ),
            (msg("a\u{7}", Some("hi"), None), "control char"),
        ] {
            assert!(m.into_inbound(id, now).is_err(), "{why} was accepted");
        }
        let (inbound_id, inbound) = msg("a", Some("привет"), None)
            .into_inbound(id, now)
            .expect("valid");
        assert_eq!(inbound_id, "x");
        assert_eq!(inbound.client.id, "a");
    }

    #[test]
    fn message_ids_of_different_clients_never_share_a_key() {
        let now = Utc::now();
        let key = |client: &str, id: &str| {
            WebMessage {
                message_id: Some(id.into()),
                ..msg(client, Some("привет"), None)
            }
            .into_inbound(|| "fresh".to_string(), now)
            .map(|(key, _)| key)
            .expect("valid")
        };
        assert_ne!(key("a:b", "c"), key("a", "b:c"));
        assert_ne!(key("1", "2:3"), key("1:2", "3"));
        assert_eq!(key("a", "m1"), key(" a ", "m1"), "the trimmed id counts");
        // A server-made key (no message_id) has two numbers after `web`.
        let fresh = format!("web:{}:{}", i64::MAX, u64::MAX);
        for (client, id) in [("1", "2"), ("9", "9"), ("12", "34")] {
            assert_ne!(key(client, id), fresh);
            assert!(key(client, id).matches(':').count() >= 3);
        }
    }
}
