//! VK community messages: the one place that parses VK Callback API calls and calls the VK
//! API. Facts: `../shared/reference/channels-ru.md` §2.
//!
//! - The Callback API first asks for the confirmation string (answered as plain text); every
//!   other call carries the community's `secret` in the JSON body (compared in constant time)
//!   and is answered `ok` once stored — VK resends anything else. Dedup key: `event_id`.
//! - `message_new` carries the client's text, or our payload when a keyboard button was
//!   pressed (a JSON string `{"p": "…"}`); VK's own «Начать» button sends
//!   `{"command":"start"}`. `message_event` is a press of a callback button (its payload may
//!   arrive as an object or a string) and is answered with `messages.sendMessageEventAnswer`.
//!   `message_deny` means the client forbade messages.
//! - Sending: `messages.send` (form body, `v=5.199`) with a `random_id` derived from our outbox
//!   job, so a retried send is never shown twice; errors arrive with HTTP 200 as
//!   `{"error": {"error_code", "error_msg"}}`: 6 (too many requests) and 10 are retried, 9
//!   (flood control) waits longer, 901/902/900 (the client does not accept messages) and the
//!   rest are not retried. At most 20 calls a second.

use super::{Ack, Arrival, Delivery, Pacer, SendError, split_text, truncated};
use crate::domain::{ChannelKind, ClientRef, Event, Inbound, Reply};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The VK API.
pub const DEFAULT_API_URL: &str = "https://api.vk.com";
/// The API version every call names.
pub const API_VERSION: &str = "5.199";
/// Longest text of one message we send (characters; VK's own limit is 9 000).
pub const MAX_TEXT: usize = 4096;
/// Longest keyboard button payload, as JSON (characters).
pub const MAX_PAYLOAD: usize = 255;
/// Longest button label VK shows (characters).
pub const MAX_LABEL: usize = 40;
/// Rows of an inline keyboard.
pub const MAX_ROWS: usize = 10;
/// Calls a second a community token allows.
pub const CALLS_PER_SECOND: u32 = 20;
/// Time limit of one API call.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// How the bot reaches VK (`BOT_VK_TOKEN`, `BOT_VK_GROUP_ID`, `BOT_VK_SECRET`,
/// `BOT_VK_CONFIRMATION`, `BOT_VK_API_URL`).
#[derive(Clone)]
pub struct VkConfig {
    pub token: String,
    pub group_id: Option<i64>,
    /// The Callback API secret key; without it every event is refused.
    pub secret: Option<String>,
    /// The string the confirmation call is answered with.
    pub confirmation: Option<String>,
    pub api_url: String,
}

impl std::fmt::Debug for VkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VkConfig")
            .field("token", &"***")
            .field("group_id", &self.group_id)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("confirmation", &self.confirmation)
            .field("api_url", &self.api_url)
            .finish()
    }
}

/// A VK setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("BOT_VK_GROUP_ID must be the community's numeric id, not {0:?}")]
pub struct BadGroupId(pub String);

impl VkConfig {
    /// From the environment; Ok(None) when `BOT_VK_TOKEN` is not set (the channel is off).
    pub fn from_env() -> Result<Option<VkConfig>, BadGroupId> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let Some(token) = var("BOT_VK_TOKEN") else {
            return Ok(None);
        };
        let group_id = match var("BOT_VK_GROUP_ID") {
            Some(g) => Some(
                g.trim()
                    .trim_start_matches("club")
                    .parse::<i64>()
                    .map_err(|_| BadGroupId(g.clone()))?,
            ),
            None => None,
        };
        Ok(Some(VkConfig {
            token,
            group_id,
            secret: var("BOT_VK_SECRET"),
            confirmation: var("BOT_VK_CONFIRMATION"),
            api_url: var("BOT_VK_API_URL").unwrap_or_else(|| DEFAULT_API_URL.to_string()),
        }))
    }
}

/// One Callback API call, as the webhook sees it before the secret is checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub kind: String,
    pub group_id: Option<i64>,
    pub secret: Option<String>,
    pub event_id: Option<String>,
    object: Value,
}

#[derive(Deserialize)]
struct RawCall {
    #[serde(rename = "type")]
    kind: String,
    group_id: Option<i64>,
    secret: Option<String>,
    event_id: Option<String>,
    #[serde(default)]
    object: Value,
}

/// Read a Callback API body. Errors only when it is not a VK call at all.
pub fn parse_call(body: &[u8]) -> Result<Call, serde_json::Error> {
    let raw: RawCall = serde_json::from_slice(body)?;
    Ok(Call {
        kind: raw.kind,
        group_id: raw.group_id,
        secret: raw.secret,
        event_id: raw.event_id,
        object: raw.object,
    })
}

fn client(user_id: i64) -> ClientRef {
    ClientRef {
        channel: ChannelKind::Vk,
        id: user_id.to_string(),
    }
}

/// Our machine key inside a VK button payload (`{"p": "slot:…"}`), given as a JSON string or
/// already parsed.
fn our_payload(payload: &Value) -> Option<String> {
    let parsed;
    let object = match payload {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).ok()?;
            &parsed
        }
        other => other,
    };
    object["p"].as_str().map(str::to_string)
}

impl Call {
    /// The call as the server handles every channel's deliveries (the secret already checked).
    pub fn arrival(self, now: DateTime<Utc>) -> Arrival {
        let inbound_id = match &self.event_id {
            Some(id) => format!("vk:{id}"),
            None => format!("vk:{}:{}", self.kind, now.timestamp_micros()),
        };
        let what = match self.kind.as_str() {
            "message_new" => message_new(&self.object, now),
            "message_event" => message_event(&self.object, now),
            "message_deny" => match self.object["user_id"].as_i64() {
                Some(user) => Delivery::Stopped(client(user)),
                None => Delivery::Ignored("message_deny without a user"),
            },
            _ => Delivery::Ignored("event type not handled"),
        };
        Arrival { inbound_id, what }
    }
}

fn message_new(object: &Value, now: DateTime<Utc>) -> Delivery {
    let m = &object["message"];
    let (Some(from), Some(peer)) = (m["from_id"].as_i64(), m["peer_id"].as_i64()) else {
        return Delivery::Ignored("message without a sender");
    };
    if from <= 0 || peer != from || m["out"].as_i64() == Some(1) {
        return Delivery::Ignored("not a private message from a person");
    }
    let at = m["date"]
        .as_i64()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or(now);
    let text = m["text"].as_str().unwrap_or("").to_string();
    let event = match m.get("payload").and_then(our_payload) {
        Some(payload) if !payload.is_empty() => Event::Button { payload },
        _ if !text.trim().is_empty() => Event::Text {
            text: truncated(text, MAX_TEXT, ChannelKind::Vk),
        },
        _ => return Delivery::Ignored("message without text"),
    };
    Delivery::Inbound {
        inbound: Inbound {
            client: client(from),
            at,
            event: event.cleaned(),
        },
        ack: None,
    }
}

fn message_event(object: &Value, now: DateTime<Utc>) -> Delivery {
    let (Some(user), Some(peer), Some(event_id)) = (
        object["user_id"].as_i64(),
        object["peer_id"].as_i64(),
        object["event_id"].as_str(),
    ) else {
        return Delivery::Ignored("message_event without user, peer or event id");
    };
    let ack = Ack::Vk {
        event_id: event_id.to_string(),
        user_id: user,
        peer_id: peer,
    };
    match our_payload(&object["payload"]).filter(|p| !p.is_empty()) {
        Some(payload) if user > 0 && peer == user => Delivery::Inbound {
            inbound: Inbound {
                client: client(user),
                at: now,
                event: Event::Button { payload }.cleaned(),
            },
            ack: Some(ack),
        },
        _ => Delivery::AckOnly(ack),
    }
}

/// The `keyboard` of a reply: inline callback buttons with our payloads, one a row, at most
/// ten rows. Buttons whose payload does not fit VK's 255 characters are left out.
pub fn keyboard(reply: &Reply) -> Option<Value> {
    let rows: Vec<Value> = reply
        .buttons
        .iter()
        .filter_map(|b| {
            let payload = json!({ "p": b.payload }).to_string();
            (!b.payload.is_empty() && payload.chars().count() <= MAX_PAYLOAD).then(|| {
                let label: String = b.title.chars().take(MAX_LABEL).collect();
                json!([{ "action": { "type": "callback", "label": label, "payload": payload },
                         "color": "primary" }])
            })
        })
        .take(MAX_ROWS)
        .collect();
    (!rows.is_empty()).then(|| json!({ "inline": true, "buttons": rows }))
}

/// The `random_id` of piece `piece` of the reply of outbox job `job`: the same on every retry
/// (VK shows a `random_id` once), never 0, within i32.
pub fn random_id(job: i64, piece: usize) -> i32 {
    // FNV-1a over the job id and the piece number, folded to 31 bits.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in job
        .to_le_bytes()
        .into_iter()
        .chain((piece as u64).to_le_bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let folded = ((hash >> 31) ^ hash) & 0x7fff_ffff;
    i32::try_from(folded.max(1)).unwrap_or(1)
}

/// A thin VK API client.
#[derive(Clone)]
pub struct VkApi {
    http: reqwest::Client,
    base: String,
    token: String,
    pacer: Arc<Pacer>,
}

impl std::fmt::Debug for VkApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VkApi").field("base", &self.base).finish()
    }
}

impl VkApi {
    pub fn new(config: &VkConfig) -> Result<VkApi, SendError> {
        Ok(VkApi {
            http: super::http_client()?,
            base: config.api_url.trim_end_matches('/').to_string(),
            token: config.token.clone(),
            pacer: Arc::new(Pacer::per_second(CALLS_PER_SECOND)),
        })
    }

    /// Send one reply for outbox job `job`: text split under the limit, the keyboard on the
    /// last piece, each piece with its stable `random_id`.
    pub async fn send_reply(
        &self,
        peer_id: &str,
        reply: &Reply,
        job: i64,
    ) -> Result<(), SendError> {
        let peer: i64 = peer_id
            .parse()
            .map_err(|_| SendError::Permanent(format!("bad VK peer id {peer_id:?}")))?;
        let pieces = split_text(&reply.text, MAX_TEXT);
        let last = pieces.len().saturating_sub(1);
        for (i, piece) in pieces.iter().enumerate() {
            let mut params = vec![
                ("peer_id", peer.to_string()),
                ("random_id", random_id(job, i).to_string()),
                ("message", piece.clone()),
                ("dont_parse_links", "1".to_string()),
            ];
            if i == last
                && let Some(keyboard) = keyboard(reply)
            {
                params.push(("keyboard", keyboard.to_string()));
            }
            self.call("messages.send", params).await?;
        }
        Ok(())
    }

    /// Stop the spinner of a pressed callback button.
    pub async fn answer_event(
        &self,
        event_id: &str,
        user_id: i64,
        peer_id: i64,
    ) -> Result<(), SendError> {
        let data = json!({ "type": "show_snackbar", "text": "Принято ✓" });
        self.call(
            "messages.sendMessageEventAnswer",
            vec![
                ("event_id", event_id.to_string()),
                ("user_id", user_id.to_string()),
                ("peer_id", peer_id.to_string()),
                ("event_data", data.to_string()),
            ],
        )
        .await
        .map(drop)
    }

    /// The confirmation string VK expects for the community's Callback API server.
    pub async fn confirmation_code(&self, group_id: i64) -> Result<String, SendError> {
        let answer = self
            .call(
                "groups.getCallbackConfirmationCode",
                vec![("group_id", group_id.to_string())],
            )
            .await?;
        answer["code"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| SendError::Permanent("no confirmation code in the answer".into()))
    }

    async fn call(
        &self,
        method: &str,
        mut params: Vec<(&str, String)>,
    ) -> Result<Value, SendError> {
        self.pacer.turn().await;
        params.push(("v", API_VERSION.to_string()));
        let url = format!("{}/method/{method}", self.base);
        let resp = self
            .http
            .post(&url)
            .timeout(CALL_TIMEOUT)
            .bearer_auth(&self.token)
            .form(&params)
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("{method}: {}", e.without_url())))?;
        let status = resp.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(SendError::Transient(format!("{method}: HTTP {status}")));
        }
        let answer: Value = resp
            .json()
            .await
            .map_err(|e| SendError::Transient(format!("{method}: {}", e.without_url())))?;
        if let Some(result) = answer.get("response") {
            return Ok(result.clone());
        }
        let code = answer["error"]["error_code"].as_i64().unwrap_or(0);
        let message = answer["error"]["error_msg"]
            .as_str()
            .unwrap_or("no message");
        let what = format!("{method}: VK error {code} {message}");
        Err(match code {
            6 => SendError::RetryAfter(1),
            9 => SendError::RetryAfter(60),
            10 => SendError::Transient(what),
            5 => SendError::Permanent(format!(
                "{what}: the community token is wrong or revoked; set BOT_VK_TOKEN"
            )),
            900..=902 => SendError::Blocked(format!(
                "{what}: the client does not accept messages from the community (they must \
                 write first or allow messages)"
            )),
            912 => SendError::Permanent(format!(
                "{what}: turn on «Возможности ботов» in the community's message settings"
            )),
            _ => SendError::Permanent(what),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Button;
    use std::collections::HashSet;

    fn arrival(v: Value) -> Arrival {
        parse_call(v.to_string().as_bytes())
            .expect("a call")
            .arrival(Utc::now())
    }

    #[test]
    fn a_message_and_a_pressed_text_button() {
        let a = arrival(
            json!({"type": "message_new", "event_id": "e1", "v": "5.199",
            "group_id": 1, "secret": "s",
            "object": {"message": {"date": 1_763_607_600, "from_id": 42, "peer_id": 42,
                "id": 3, "out": 0, "text": "хочу на маникюр"}, "client_info": {}}}),
        );
        assert_eq!(a.inbound_id, "vk:e1");
        let Delivery::Inbound { inbound, .. } = a.what else {
            panic!();
        };
        assert_eq!(inbound.client.id, "42");
        assert_eq!(inbound.at.timestamp(), 1_763_607_600);
        let a = arrival(json!({"type": "message_new", "event_id": "e2",
            "object": {"message": {"date": 1, "from_id": 42, "peer_id": 42, "text": "Пт 10:00",
                "payload": "{\"p\":\"slot:x\"}"}}}));
        let Delivery::Inbound { inbound, .. } = a.what else {
            panic!();
        };
        assert_eq!(
            inbound.event,
            Event::Button {
                payload: "slot:x".into()
            }
        );
        // VK's own «Начать» button: its text is what counts.
        let a = arrival(json!({"type": "message_new", "event_id": "e3",
            "object": {"message": {"date": 1, "from_id": 42, "peer_id": 42, "text": "Начать",
                "payload": "{\"command\":\"start\"}"}}}));
        let Delivery::Inbound { inbound, .. } = a.what else {
            panic!();
        };
        assert_eq!(
            inbound.event,
            Event::Text {
                text: "Начать".into()
            }
        );
    }

    #[test]
    fn a_callback_press_with_its_payload_as_object_or_string() {
        for payload in [json!({"p": "slot:y"}), json!("{\"p\":\"slot:y\"}")] {
            let a = arrival(json!({"type": "message_event", "event_id": "e4",
                "object": {"user_id": 42, "peer_id": 42, "event_id": "abc", "payload": payload}}));
            let Delivery::Inbound { inbound, ack } = a.what else {
                panic!();
            };
            assert_eq!(
                inbound.event,
                Event::Button {
                    payload: "slot:y".into()
                }
            );
            assert_eq!(
                ack,
                Some(Ack::Vk {
                    event_id: "abc".into(),
                    user_id: 42,
                    peer_id: 42
                })
            );
        }
    }

    #[test]
    fn deny_group_chats_and_unknown_events() {
        let a =
            arrival(json!({"type": "message_deny", "event_id": "e5", "object": {"user_id": 42}}));
        assert_eq!(a.what, Delivery::Stopped(client(42)));
        let a = arrival(json!({"type": "message_new", "event_id": "e6",
            "object": {"message": {"date": 1, "from_id": 42, "peer_id": 2_000_000_001_i64, "text": "hi"}}}));
        assert!(matches!(a.what, Delivery::Ignored(_)));
        let a = arrival(json!({"type": "wall_post_new", "event_id": "e7", "object": {}}));
        assert!(matches!(a.what, Delivery::Ignored(_)));
        assert!(parse_call(b"ok").is_err());
    }

    #[test]
    fn random_ids_are_stable_distinct_and_never_zero() {
        assert_eq!(random_id(7, 0), random_id(7, 0));
        let ids: HashSet<i32> = (0..10_000).map(|j| random_id(j, 0)).collect();
        assert!(ids.len() > 9_990, "{}", ids.len());
        assert!((0..10_000).all(|j| random_id(j, 1) > 0 && random_id(j, 0) > 0));
        assert_ne!(random_id(7, 0), random_id(7, 1));
    }

    #[test]
    fn the_keyboard_is_inline_with_our_payloads() {
        let reply = Reply {
            text: "Когда?".into(),
            buttons: (0..12)
                .map(|i| Button::new(format!("Вариант {i}"), format!("slot:{i}")))
                .collect(),
            template: None,
            request_contact: false,
        };
        let k = keyboard(&reply).expect("keyboard");
        assert_eq!(k["inline"], true);
        let rows = k["buttons"].as_array().unwrap();
        assert_eq!(rows.len(), MAX_ROWS);
        assert_eq!(rows[0][0]["action"]["type"], "callback");
        assert_eq!(rows[0][0]["action"]["payload"], "{\"p\":\"slot:0\"}");
    }
}
