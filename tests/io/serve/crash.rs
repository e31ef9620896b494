//! `kill -9` under load: the real `bot serve` binary takes concurrent web, Telegram, MAX and VK
//! conversations and is killed (SIGKILL, no shutdown) twice mid-load, then started again on the
//! same SQLite file. Clients retry what got no 2xx, as Telegram redelivers a webhook and as the
//! chat page resends a `message_id`. Afterwards:
//! - every accepted message is stored and processed exactly once;
//! - every web message's answer (fresh or re-answered for a resent `message_id`) is the one
//!   stored for it;
//! - every stored Telegram and MAX reply reached its chat exactly once and in order, except a
//!   reply cut off mid-send, which is a dead letter saying so (never a second copy);
//! - every stored VK reply was shown exactly once and in order: a send cut off mid-send goes
//!   again with the same `random_id`, which VK shows once.

use bot::channels::web::message_key;
use bot::domain::{ChannelKind, ClientRef};
use bot::store::{JobKind, Store, StoredMessage};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use testkit::app::{SECRET, TOKEN, friday_10am, tg_text};
use testkit::max::MaxEmulator;
use testkit::telegram::TelegramEmulator;
use testkit::vk::VkEmulator;

const WEB_CLIENTS: usize = 10;
const TELEGRAM_CHATS: usize = 10;
const MAX_CHATS: usize = 10;
const VK_CHATS: usize = 10;
const SCRIPT: [&str; 6] = [
    "Здравствуйте!",
    "сколько стоит маникюр?",
    "хочу записаться на маникюр",
    "в понедельник после обеда",
    "а где вы находитесь?",
    "спасибо",
];
/// Kill the server when this many messages were accepted in all (of 240).
const KILL_AT: [usize; 2] = [70, 150];

/// Where the emulators listen.
struct Emulators {
    telegram: String,
    max: String,
    vk: String,
}

/// The `bot serve` process, killed with SIGKILL on drop.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Start the binary and wait until it answers `/healthz`.
async fn start(db_url: &str, port: u16, emulators: &Emulators, now: DateTime<Utc>) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_bot"))
        .args([
            "serve",
            "--db",
            db_url,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("BOT_TELEGRAM_TOKEN", TOKEN)
        .env("BOT_TELEGRAM_SECRET", SECRET)
        .env("BOT_TELEGRAM_API_URL", &emulators.telegram)
        .env("BOT_MAX_TOKEN", testkit::max::TOKEN)
        .env("BOT_MAX_SECRET", testkit::max::SECRET)
        .env("BOT_MAX_API_URL", &emulators.max)
        .env("BOT_VK_TOKEN", testkit::vk::TOKEN)
        .env("BOT_VK_GROUP_ID", testkit::vk::GROUP_ID.to_string())
        .env("BOT_VK_SECRET", testkit::vk::SECRET)
        .env("BOT_VK_CONFIRMATION", testkit::vk::CONFIRMATION)
        .env("BOT_VK_API_URL", &emulators.vk)
        .env("BOT_NOW", now.to_rfc3339())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bot serve");
    let server = Server { child };
    let http = reqwest::Client::new();
    for _ in 0..500 {
        let up = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if up {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("bot serve did not come up on port {port} within 10 s");
}

/// POST until a 2xx arrives (connection refused or reset while the server is down: retry),
/// with a secret header when given; the answer's JSON (null for VK's plain `ok`).
async fn deliver(
    http: &reqwest::Client,
    url: &str,
    body: &Value,
    header: Option<(&str, &str)>,
) -> Value {
    for _ in 0..3000 {
        let mut req = http.post(url).json(body).timeout(Duration::from_secs(10));
        if let Some((name, value)) = header {
            req = req.header(name, value);
        }
        if let Ok(resp) = req.send().await {
            let status = resp.status();
            if status.is_success() {
                if let Ok(text) = resp.text().await {
                    return serde_json::from_str(&text).unwrap_or(Value::Null);
                }
            } else {
                assert!(status.is_server_error(), "{status} for {body}");
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{url} never accepted {body}");
}

/// One web client's conversation: (message_id, the answer's texts) per message.
/// Run clients 0..`count` at once, each `client(http, base, n, accepted)`.
fn spawn_clients<C, F>(
    count: usize,
    client: C,
    http: &reqwest::Client,
    base: &str,
    accepted: &Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<F::Output>>
where
    C: Fn(reqwest::Client, String, usize, Arc<AtomicUsize>) -> F,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    (0..count)
        .map(|n| {
            tokio::spawn(client(
                http.clone(),
                base.to_string(),
                n,
                Arc::clone(accepted),
            ))
        })
        .collect()
}

async fn web_client(
    http: reqwest::Client,
    base: String,
    n: usize,
    accepted: Arc<AtomicUsize>,
) -> Vec<(String, Vec<String>)> {
    let mut answers = Vec::new();
    for (i, text) in SCRIPT.iter().enumerate() {
        let id = format!("m{i}");
        let body = json!({ "client_id": format!("crash-web-{n}"), "text": text, "message_id": id });
        let resp = deliver(&http, &format!("{base}/api/v1/messages"), &body, None).await;
        accepted.fetch_add(1, Ordering::SeqCst);
        let texts = resp["replies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["text"].as_str().map(String::from))
            .collect();
        answers.push((id, texts));
    }
    answers
}

/// One Telegram chat's conversation over the webhook.
async fn telegram_chat(http: reqwest::Client, base: String, n: usize, accepted: Arc<AtomicUsize>) {
    let chat = chat_id(n);
    for (i, text) in SCRIPT.iter().enumerate() {
        let update_id = chat * 100 + i64::try_from(i).unwrap_or_default();
        let update = tg_text(update_id, chat, text);
        let secret = Some(("X-Telegram-Bot-Api-Secret-Token", SECRET));
        deliver(&http, &format!("{base}/webhooks/telegram"), &update, secret).await;
        accepted.fetch_add(1, Ordering::SeqCst);
    }
}

/// One MAX chat's conversation over the webhook.
async fn max_chat(http: reqwest::Client, base: String, n: usize, accepted: Arc<AtomicUsize>) {
    let user = chat_id(n) + 1_000;
    for (i, text) in SCRIPT.iter().enumerate() {
        let ms = 1_763_607_600_000 + i64::try_from(i).unwrap_or_default();
        let update = testkit::max::text(&format!("mid.{user}.{i}"), user, text, ms);
        let secret = Some(("X-Max-Bot-Api-Secret", testkit::max::SECRET));
        deliver(&http, &format!("{base}/webhooks/max"), &update, secret).await;
        accepted.fetch_add(1, Ordering::SeqCst);
    }
}

/// One VK chat's conversation over the Callback API.
async fn vk_chat(http: reqwest::Client, base: String, n: usize, accepted: Arc<AtomicUsize>) {
    let user = chat_id(n) + 2_000;
    for (i, text) in SCRIPT.iter().enumerate() {
        let call = testkit::vk::message(&format!("{user}-{i}"), user, text, None);
        deliver(&http, &format!("{base}/webhooks/vk"), &call, None).await;
        accepted.fetch_add(1, Ordering::SeqCst);
    }
}

fn chat_id(n: usize) -> i64 {
    7_000 + i64::try_from(n).unwrap_or_default()
}

fn replies_to(messages: &[StoredMessage], inbound_id: &str) -> Vec<String> {
    let Some(first) = messages
        .iter()
        .find(|m| m.inbound && m.inbound_id.as_deref() == Some(inbound_id))
    else {
        return Vec::new();
    };
    messages
        .iter()
        .filter(|m| !m.inbound && m.reply_to == Some(first.id))
        .map(|m| m.text.clone())
        .collect()
}

/// `got` is `stored` in order, each reply once; a reply cut off mid-send (true) may be missing,
/// as the crash may have come before or after Telegram took it, but never twice.
fn delivered_once_in_order(stored: &[(&str, bool)], got: &[&str]) -> bool {
    let mut next = 0;
    for (text, cut_off) in stored {
        if got.get(next) == Some(text) {
            next += 1;
        } else if !cut_off {
            return false;
        }
    }
    next == got.len()
}

#[test]
fn the_delivery_check_can_fail() {
    let stored = [("a", false), ("b", true), ("c", false)];
    assert!(delivered_once_in_order(&stored, &["a", "b", "c"]));
    assert!(delivered_once_in_order(&stored, &["a", "c"]));
    assert!(!delivered_once_in_order(&stored, &["a", "b", "b", "c"]));
    assert!(!delivered_once_in_order(&stored, &["a", "a", "b", "c"]));
    assert!(!delivered_once_in_order(&stored, &["b", "c"]));
    assert!(!delivered_once_in_order(&stored, &["a", "c", "b"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_accepted_message_and_duplicates_no_reply() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = format!("sqlite://{}", dir.path().join("bot.db").display());
    let emulator = TelegramEmulator::start(TOKEN).await;
    let (max, vk) = (MaxEmulator::start().await, VkEmulator::start().await);
    let emulators = Emulators {
        telegram: emulator.url(),
        max: max.url(),
        vk: vk.url(),
    };
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut clock = friday_10am();
    let mut server = start(&db_url, port, &emulators, clock).await;

    let http = reqwest::Client::new();
    let accepted = Arc::new(AtomicUsize::new(0));
    let web = spawn_clients(WEB_CLIENTS, web_client, &http, &base, &accepted);
    let telegram = spawn_clients(TELEGRAM_CHATS, telegram_chat, &http, &base, &accepted);
    let max_chats = spawn_clients(MAX_CHATS, max_chat, &http, &base, &accepted);
    let vk_chats = spawn_clients(VK_CHATS, vk_chat, &http, &base, &accepted);

    for at in KILL_AT {
        while accepted.load(Ordering::SeqCst) < at {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(server); // SIGKILL: no graceful shutdown, work in flight is cut off
        // Restart a few minutes later by the bot's clock, so the dead process's job leases
        // (60 s) have run out, as they would have by the time a supervisor restarts it.
        clock += chrono::Duration::minutes(5);
        server = start(&db_url, port, &emulators, clock).await;
    }
    let mut web_answers = Vec::new();
    for task in web {
        web_answers.push(task.await.expect("web client"));
    }
    for task in telegram.into_iter().chain(max_chats).chain(vk_chats) {
        task.await.expect("messenger chat");
    }
    let total = (WEB_CLIENTS + TELEGRAM_CHATS + MAX_CHATS + VK_CHATS) * SCRIPT.len();
    assert_eq!(accepted.load(Ordering::SeqCst), total);

    // Wait until no reply waits in the outbox (one Telegram message a second per chat).
    let store = Store::open(&db_url).await.expect("store");
    let mut pending = Vec::new();
    for _ in 0..1500 {
        pending = store
            .pending_jobs()
            .await
            .expect("jobs")
            .into_iter()
            .filter(|j| j.kind == JobKind::Send)
            .collect();
        if pending.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(pending.is_empty(), "replies never sent: {pending:?}");
    // Long enough for a duplicate send to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let counts = store.counts().await.expect("counts");
    assert_eq!(counts.processed_inbound, i64::try_from(total).unwrap_or(0));

    // Web: each message stored once, and the answer the client kept is the stored one.
    for (n, answers) in web_answers.iter().enumerate() {
        let client = ClientRef {
            channel: ChannelKind::Web,
            id: format!("crash-web-{n}"),
        };
        let messages = store.messages(&client).await.expect("messages");
        assert_eq!(
            messages.iter().filter(|m| m.inbound).count(),
            SCRIPT.len(),
            "{client}"
        );
        for (id, got) in answers {
            let stored = replies_to(&messages, &message_key(&client.id, id));
            assert!(!stored.is_empty(), "{client} {id}: no reply stored");
            assert_eq!(got, &stored, "{client} {id}");
        }
    }

    // Telegram: what reached each chat is exactly the stored replies, in order, minus the
    // replies cut off mid-send (dead letters that say so).
    let dead = store.dead_jobs().await.expect("dead letters");
    let mut cut_off: HashMap<i64, String> = HashMap::new();
    for job in &dead {
        let reason = job.last_error.clone().unwrap_or_default();
        assert!(
            job.kind == JobKind::Send && reason.contains("interrupted while sending"),
            "unexpected dead letter: {job:?}"
        );
        let message = serde_json::from_str::<Value>(&job.payload)
            .ok()
            .and_then(|p| p["message"].as_i64())
            .expect("a send job names its message");
        cut_off.insert(message, reason);
    }
    // At most the sends in flight at each kill: one per Telegram or MAX chat.
    assert!(
        cut_off.len() <= KILL_AT.len() * (TELEGRAM_CHATS + MAX_CHATS),
        "{cut_off:?}"
    );
    let sent = emulator.calls("sendMessage");
    for n in 0..TELEGRAM_CHATS {
        let chat = chat_id(n);
        let client = ClientRef {
            channel: ChannelKind::Telegram,
            id: chat.to_string(),
        };
        let messages = store.messages(&client).await.expect("messages");
        assert_eq!(
            messages.iter().filter(|m| m.inbound).count(),
            SCRIPT.len(),
            "{client}"
        );
        let stored: Vec<(&str, bool)> = messages
            .iter()
            .filter(|m| !m.inbound)
            .map(|m| (m.text.as_str(), cut_off.contains_key(&m.id)))
            .collect();
        let got: Vec<&str> = sent
            .iter()
            .filter(|c| c.params["chat_id"] == chat)
            .filter_map(|c| c.params["text"].as_str())
            .collect();
        assert!(!stored.is_empty());
        assert!(
            delivered_once_in_order(&stored, &got),
            "chat {chat}: stored (text, cut off) {stored:?}, delivered {got:?}"
        );
    }
    // MAX: the same rule as Telegram (MAX cannot recognise a repeated send either).
    for n in 0..MAX_CHATS {
        let user = chat_id(n) + 1_000;
        let client = ClientRef {
            channel: ChannelKind::Max,
            id: user.to_string(),
        };
        let messages = store.messages(&client).await.expect("messages");
        assert_eq!(messages.iter().filter(|m| m.inbound).count(), SCRIPT.len());
        let stored: Vec<(&str, bool)> = messages
            .iter()
            .filter(|m| !m.inbound)
            .map(|m| (m.text.as_str(), cut_off.contains_key(&m.id)))
            .collect();
        let got_values = max.messages_to(user);
        let got: Vec<&str> = got_values
            .iter()
            .filter_map(|m| m["text"].as_str())
            .collect();
        assert!(!stored.is_empty());
        assert!(
            delivered_once_in_order(&stored, &got),
            "MAX {user}: stored (text, cut off) {stored:?}, delivered {got:?}"
        );
    }
    // VK: every stored reply shown exactly once, in order; nothing is cut off for good.
    for n in 0..VK_CHATS {
        let user = chat_id(n) + 2_000;
        let client = ClientRef {
            channel: ChannelKind::Vk,
            id: user.to_string(),
        };
        let messages = store.messages(&client).await.expect("messages");
        assert_eq!(messages.iter().filter(|m| m.inbound).count(), SCRIPT.len());
        let stored: Vec<&str> = messages
            .iter()
            .filter(|m| !m.inbound)
            .map(|m| m.text.as_str())
            .collect();
        assert!(
            messages.iter().all(|m| !cut_off.contains_key(&m.id)),
            "a VK send was dead-lettered"
        );
        let shown: Vec<String> = vk.shown(user).into_iter().map(|(t, _)| t).collect();
        assert_eq!(shown, stored, "VK {user}");
    }
    eprintln!(
        "kill -9 under load: {total} messages, {} kills, {} Telegram and {} MAX replies sent, \
         {} cut off mid-send, {} VK messages shown",
        KILL_AT.len(),
        sent.len(),
        max.calls("POST /messages").len(),
        cut_off.len(),
        (0..VK_CHATS)
            .map(|n| vk.shown(chat_id(n) + 2_000).len())
            .sum::<usize>()
    );
    store.close().await;
    drop(server);
}
