//! Messaging channels at the edge of the bot: each file owns one channel's wire format — its
//! settings (from the environment), the parsing of its webhook bodies into [`Arrival`]s, the
//! verification of its calls, and a sender that turns a `domain::Reply` into the provider's
//! request within the provider's limits. Channels decide nothing about the dialog (that is
//! `engine/`) and store nothing (that is `store/`); the server and its workers call them.
//!
//! The seam: [`Channels`] holds the messengers that are on, and [`Channels::sender`] matches
//! every [`ChannelKind`] without a catch-all, so a new channel is a new file, a line in
//! `domain::channel_kinds!`, and the arms the compiler then asks for.

pub mod max;
pub mod telegram;
pub mod vk;
pub mod web;

use crate::domain::{ChannelKind, ClientRef, Inbound, Reply};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why a call to a messenger failed; every channel maps its own errors to these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Rate limited: wait this many seconds before the next call.
    #[error("rate limited, retry after {0} s")]
    RetryAfter(u64),
    /// Network trouble or a provider failure: worth retrying.
    #[error("unavailable: {0}")]
    Transient(String),
    /// The provider refused the call (bad recipient, no permission, bad token): retrying will
    /// not help. The text says what to fix where that is known.
    #[error("refused: {0}")]
    Permanent(String),
    /// The client does not accept messages on this channel (blocked the bot, forbade the
    /// community's messages): no retry, and no more reminders there.
    #[error("blocked by the client: {0}")]
    Blocked(String),
}

/// One webhook delivery (or polled update), as every channel tells it to the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    /// The dedup key in the store: the same delivery twice has the same id.
    pub inbound_id: String,
    pub what: Delivery,
}

/// What a delivery asks of the bot.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Something for the engine; `ack` is a button press to answer once the event is stored.
    Inbound { inbound: Inbound, ack: Option<Ack> },
    /// A button press that cannot go to the engine: only answered.
    AckOnly(Ack),
    /// The client stopped the bot or forbade messages: no more reminders on this channel.
    Stopped(ClientRef),
    /// A text reply, in a group, to an earlier message: how managers answer a hand-off
    /// notice in their Telegram chat.
    GroupReply {
        chat_id: i64,
        text: String,
        replied_to: String,
    },
    /// Not for the bot (groups, edits, unknown kinds); the reason is logged.
    Ignored(&'static str),
}

/// The answer a pressed button waits for, per channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// `answerCallbackQuery`.
    Telegram { callback_id: String },
    /// `POST /answers`: the keyboard message is replaced by its text and the choice.
    Max {
        callback_id: String,
        /// The pressed message's text and the chosen button's title, when MAX sent them.
        replaced: Option<(String, String)>,
    },
    /// `messages.sendMessageEventAnswer`: a snackbar, so the button stops spinning.
    Vk {
        event_id: String,
        user_id: i64,
        peer_id: i64,
    },
}

/// The messengers `bot serve` can push to (the web chat answers in its HTTP response).
#[derive(Debug, Clone, Default)]
pub struct Channels {
    pub telegram: Option<telegram::TelegramApi>,
    pub max: Option<max::MaxApi>,
    pub vk: Option<vk::VkApi>,
}

/// How to reach one client's messenger.
#[derive(Debug, Clone, Copy)]
pub enum Sender<'a> {
    Telegram(&'a telegram::TelegramApi),
    Max(&'a max::MaxApi),
    Vk(&'a vk::VkApi),
}

/// Why a reply cannot go out through its client's channel now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSender {
    /// Web replies are returned in the HTTP response: nothing to push.
    InResponse,
    /// The channel is off: the variable to set.
    Off(&'static str),
}

impl Channels {
    /// The sender for clients of `kind`.
    pub fn sender(&self, kind: ChannelKind) -> Result<Sender<'_>, NoSender> {
        match kind {
            ChannelKind::Web => Err(NoSender::InResponse),
            ChannelKind::Telegram => self
                .telegram
                .as_ref()
                .map(Sender::Telegram)
                .ok_or(NoSender::Off("BOT_TELEGRAM_TOKEN")),
            ChannelKind::Max => self
                .max
                .as_ref()
                .map(Sender::Max)
                .ok_or(NoSender::Off("BOT_MAX_TOKEN")),
            ChannelKind::Vk => self
                .vk
                .as_ref()
                .map(Sender::Vk)
                .ok_or(NoSender::Off("BOT_VK_TOKEN")),
            ChannelKind::Whatsapp | ChannelKind::Instagram => {
                Err(NoSender::Off("a build with this channel"))
            }
        }
    }

    /// Answer a pressed button on its channel (best effort: the press itself is stored).
    pub async fn answer(&self, ack: &Ack) -> Result<(), SendError> {
        let off = |name: &str| SendError::Permanent(format!("{name} is off"));
        match ack {
            Ack::Telegram { callback_id } => {
                let api = self.telegram.as_ref().ok_or_else(|| off("telegram"))?;
                api.answer_callback(callback_id).await
            }
            Ack::Max {
                callback_id,
                replaced,
            } => {
                let api = self.max.as_ref().ok_or_else(|| off("max"))?;
                api.answer(callback_id, replaced.as_ref()).await
            }
            Ack::Vk {
                event_id,
                user_id,
                peer_id,
            } => {
                let api = self.vk.as_ref().ok_or_else(|| off("vk"))?;
                api.answer_event(event_id, *user_id, *peer_id).await
            }
        }
    }
}

impl Sender<'_> {
    /// Send `reply` to the client `to` (the id the channel gave), for outbox job `job`.
    pub async fn send(&self, to: &str, reply: &Reply, job: i64) -> Result<(), SendError> {
        match self {
            Sender::Telegram(api) => {
                let chat = to
                    .parse::<i64>()
                    .map_err(|_| SendError::Permanent(format!("bad chat id {to:?}")))?;
                api.send_reply(chat, reply).await
            }
            Sender::Max(api) => api.send_reply(to, reply).await,
            Sender::Vk(api) => api.send_reply(to, reply, job).await,
        }
    }

    /// Whether the provider recognises a repeated send (VK's `random_id`): then a send cut off
    /// by a crash is simply sent again; otherwise it becomes a dead letter for a human.
    pub fn deduplicates(&self) -> bool {
        matches!(self, Sender::Vk(_))
    }

    /// The least time between two messages to one chat (Telegram asks for one a second).
    pub fn per_chat_gap(&self) -> Duration {
        match self {
            Sender::Telegram(_) => Duration::from_secs(1),
            Sender::Max(_) | Sender::Vk(_) => Duration::ZERO,
        }
    }

    pub fn kind(&self) -> ChannelKind {
        match self {
            Sender::Telegram(_) => ChannelKind::Telegram,
            Sender::Max(_) => ChannelKind::Max,
            Sender::Vk(_) => ChannelKind::Vk,
        }
    }
}

/// Constant-time comparison of a webhook secret (the time does not tell how much matched).
pub fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Split `text` into pieces of at most `max` characters, preferring line breaks, then spaces.
pub fn split_text(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.chars().count() > max {
        let cut = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let head = &rest[..cut];
        let at = head
            .rfind('\n')
            .or_else(|| head.rfind(' '))
            .filter(|&i| i > 0)
            .unwrap_or(cut);
        pieces.push(rest[..at].to_string());
        rest = rest[at..].trim_start_matches(['\n', ' ']);
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest.to_string());
    }
    pieces
}

/// `text` cut to `max` characters, with a note in the log (a text longer than the channel
/// allows is cut, never dropped).
pub fn truncated(mut text: String, max: usize, channel: ChannelKind) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max) {
        tracing::warn!(
            %channel,
            chars = text.chars().count(),
            kept = max,
            "text longer than the limit; the rest is not read"
        );
        text.truncate(cut);
    }
    text
}

/// Calls spread evenly under a provider's overall rate (MAX 30/s, VK 20/s): each call waits
/// for its turn, shared by every task that sends through the same client.
#[derive(Debug)]
pub struct Pacer {
    gap: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    pub fn per_second(calls: u32) -> Pacer {
        Pacer {
            gap: Duration::from_secs(1) / calls.max(1),
            next: Mutex::new(None),
        }
    }

    /// Wait for this call's turn.
    pub async fn turn(&self) {
        let wait = {
            let Ok(mut next) = self.next.lock() else {
                return;
            };
            let now = Instant::now();
            let at = next.map_or(now, |n| n.max(now));
            *next = Some(at + self.gap);
            at.saturating_duration_since(now)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The HTTP client every channel calls its provider with: ring as the TLS provider (installed
/// once; `main` does it too), a connect time limit.
pub(crate) fn http_client() -> Result<reqwest::Client, SendError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| SendError::Permanent(format!("http client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_kind_has_a_sender_answer() {
        let none = Channels::default();
        for kind in ChannelKind::ALL {
            // No channel is on: each kind says why, none panics or falls through.
            assert!(none.sender(*kind).is_err(), "{kind}");
        }
        assert_eq!(
            none.sender(ChannelKind::Web).err(),
            Some(NoSender::InResponse)
        );
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"ab", b"abc"));
        assert!(!same_secret(b"", b"abc"));
    }

    #[tokio::test]
    async fn the_pacer_spreads_calls() {
        let pacer = Pacer::per_second(100);
        let started = Instant::now();
        for _ in 0..6 {
            pacer.turn().await;
        }
        // Six calls at 100/s: the sixth waits five gaps of 10 ms.
        assert!(started.elapsed() >= Duration::from_millis(45));
    }
}
