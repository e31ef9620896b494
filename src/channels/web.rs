//! The web channel: the JSON API `POST /api/v1/messages` that the embedded chat page, a
//! salon's website widget and the API test tools speak. Owns the request and response shapes
//! and their validation; the server handler calls [`WebMessage::into_inbound`] and
//! [`WebResponse::new`].

use crate::domain::{Button, ChannelKind, ClientRef, Event, Inbound, Reply, clean_text};
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
    /// The text is longer than a messenger allows (`MAX_TEXT` characters after decoding): the
    /// API answers 422 rather than reading part of it.
    pub fn text_too_long(&self) -> bool {
        self.text
            .as_deref()
            .is_some_and(|t| t.chars().nth(MAX_TEXT).is_some())
    }

    /// Validate and turn into an inbound event; also returns the inbound id used for dedup.
    pub fn into_inbound(
        self,
        fresh_id: impl FnOnce() -> String,
        at: DateTime<Utc>,
    ) -> Result<(String, Inbound), Invalid> {
        let client_id = valid_client_id(&self.client_id)?;
        let event = match (self.text, self.button) {
            (Some(_), Some(_)) => {
                return Err(Invalid("send either text or button, not both".into()));
            }
            (None, None) => return Err(Invalid("missing field: text or button".into())),
            (Some(text), None) => {
                let text = clean_text(&text).into_owned();
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
                let payload = clean_text(&payload).into_owned();
                if payload.is_empty() || payload.len() > MAX_BUTTON {
                    return Err(Invalid(format!("button must be 1 to {MAX_BUTTON} bytes")));
                }
                Event::Button { payload }
            }
        };
        let inbound_id = match self.message_id {
            Some(id)
                if !id.is_empty()
                    && id.len() <= MAX_CLIENT_ID
                    && !id.chars().any(char::is_control) =>
            {
                message_key(client_id, &id)
            }
            Some(_) => {
                return Err(Invalid(
                    "message_id must be 1 to 128 bytes without control characters".into(),
                ));
            }
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

/// A client id as given (trimmed), or why it is refused: empty, too long, control characters,
/// or characters that show nothing or turn the text around (zero-width, bidi controls): the id
/// is shown to managers, and such characters make one id look like another.
fn valid_client_id(raw: &str) -> Result<&str, Invalid> {
    let id = raw.trim();
    if id.is_empty() {
        return Err(Invalid("client_id must not be empty".into()));
    }
    if id.chars().count() > MAX_CLIENT_ID || id.chars().any(char::is_control) {
        return Err(Invalid(format!(
            "client_id must be 1 to {MAX_CLIENT_ID} printable characters"
        )));
    }
    if id.chars().any(invisible) {
        return Err(Invalid(
            "client_id must not contain invisible or text-direction characters \
             (U+200B-U+200F, U+202A-U+202E, U+2060-U+2064, U+2066-U+2069, U+FEFF)"
                .into(),
        ));
    }
    Ok(id)
}

/// Zero-width and bidirectional formatting characters.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebPoll {
    pub client_id: String,
    pub after: Option<i64>,
}

impl WebPoll {
    /// Read the query string (`client_id=…&after=…`). Stricter than a form decoder: a
    /// %-escape that is not UTF-8 (`%ff`) is refused, not turned into U+FFFD, which would make
    /// different ids one client; unknown or repeated parameters are refused too.
    pub fn from_query(query: &str) -> Result<WebPoll, Invalid> {
        WebPoll::from_query_and_header(query, None)
    }

    /// Read the query string, the client id from the `X-Client-Id` header when given (then the
    /// query must not name another one).
    pub fn from_query_and_header(query: &str, header: Option<&str>) -> Result<WebPoll, Invalid> {
        let mut client_id = None;
        let mut after = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (key, value) = (form_decode(key)?, form_decode(value)?);
            let repeated = match key.as_str() {
                "client_id" => client_id.replace(value).is_some(),
                "after" => {
                    let id = value.parse::<i64>().map_err(|_| {
                        Invalid(format!(
                            "after must be a message id (an integer), not {value:?}"
                        ))
                    })?;
                    after.replace(id).is_some()
                }
                _ => {
                    return Err(Invalid(format!(
                        "unknown query parameter {key:?} (expected client_id, after)"
                    )));
                }
            };
            if repeated {
                return Err(Invalid(format!("query parameter {key} is given twice")));
            }
        }
        let client_id = match (header, client_id) {
            (Some(h), Some(q)) if h != q => {
                return Err(Invalid(
                    "X-Client-Id and the client_id parameter name different clients".into(),
                ));
            }
            (Some(h), _) => h.to_string(),
            (None, Some(q)) => q,
            (None, None) => {
                return Err(Invalid(
                    "missing client id: send the X-Client-Id header (or client_id=…)".into(),
                ));
            }
        };
        Ok(WebPoll { client_id, after })
    }

    pub fn client(&self) -> Result<ClientRef, Invalid> {
        Ok(ClientRef {
            channel: ChannelKind::Web,
            id: valid_client_id(&self.client_id)?.to_string(),
        })
    }
}

/// One name or value of a form-encoded query: `+` is a space, %-escapes must make UTF-8.
fn form_decode(raw: &str) -> Result<String, Invalid> {
    percent_encoding::percent_decode_str(&raw.replace('+', " "))
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| Invalid("the query string has %-escapes that are not UTF-8".into()))
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
    /// The client's view of outgoing message `id` as stored: its `kind` (`manager` or a bot
    /// reply), text, and the reply JSON that carries its buttons.
    pub fn new(id: i64, kind: &str, text: &str, reply_json: Option<&str>) -> WebOutbound {
        let buttons = reply_json
            .and_then(|p| serde_json::from_str::<Reply>(p).ok())
            .map(|r| r.buttons)
            .unwrap_or_default();
        let from = if kind == "manager" { "manager" } else { "bot" };
        WebOutbound {
            id,
            from: from.to_string(),
            text: text.to_string(),
            buttons,
        }
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
            (msg("an\u{200B}na", Some("hi"), None), "zero-width space"),
            (
                msg("\u{202E}anna", Some("hi"), None),
                "right-to-left override",
            ),
            (msg("anna\u{2066}", Some("hi"), None), "isolate"),
            (msg("\u{FEFF}anna", Some("hi"), None), "byte order mark"),
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
    fn invisible_characters_are_refused_in_polled_client_ids_too() {
        for id in ["an\u{200D}na", "\u{2064}x", "x\u{200F}", "\u{202A}x"] {
            let poll = WebPoll {
                client_id: id.into(),
                after: None,
            };
            let err = poll.client().expect_err(id);
            assert!(err.0.contains("invisible"), "{id:?}: {err}");
        }
        // Letters, emoji and spaces inside are fine.
        for id in ["анна", "a b", "💅 Маша"] {
            let poll = WebPoll {
                client_id: id.into(),
                after: None,
            };
            assert!(poll.client().is_ok(), "{id:?}");
        }
    }

    #[test]
    fn the_poll_query_is_read_strictly() {
        let ok = |q: &str| WebPoll::from_query(q).expect(q);
        assert_eq!(
            ok("client_id=%D0%B0%2B+b&after=5"),
            WebPoll {
                client_id: "а+ b".into(),
                after: Some(5)
            }
        );
        assert_eq!(ok("after=1&client_id=x").client_id, "x");
        assert_eq!(ok("client_id=x").after, None);
        for bad in [
            "client_id=%ff%fe",
            "client_id=a%C0",
            "client_id=a&after=x",
            "client_id=a&after=",
            "client_id=a&client_id=b",
            "client_id=a&admin=1",
            "%ff=a",
            "after=1",
            "",
        ] {
            assert!(WebPoll::from_query(bad).is_err(), "{bad:?} was accepted");
        }
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
