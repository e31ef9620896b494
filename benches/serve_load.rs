//! Load generator for `bot serve`: starts the real server in-process on a fresh SQLite file
//! and replays many concurrent web conversations over HTTP (booking with a slot button and a
//! contact, price questions), paced to a target rate, then reports throughput and reply
//! latency percentiles. `cargo bench --bench serve_load`; tune with `LOAD_RATE` (messages/s,
//! default 200), `LOAD_CLIENTS` (concurrent conversations, default 50), `LOAD_SECONDS`
//! (default 10), and `LOAD_HEAVY_RATE` (default 0): that many 4 096-character messages a
//! second mixed in, each from a new client (pasted text, a long word, Latin `x`); the reported
//! latencies are those of the normal traffic, so they show what expensive messages do to it.
//! `LOAD_MIX=1` spreads the conversations over the web chat, Telegram, MAX and VK (each
//! messenger against its emulator, updates posted to its webhook) and reports the latency of
//! each: the web chat's answer, and each webhook's acknowledgement (stored and processed).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use bot::server::{self, Clock, ServeConfig};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rate = env_num("LOAD_RATE", 200).max(1);
    let clients = env_num("LOAD_CLIENTS", 50).max(1);
    let seconds = env_num("LOAD_SECONDS", 10).max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let mix = env_num("LOAD_MIX", 0) > 0;
    let telegram_emu = testkit::telegram::TelegramEmulator::start(testkit::app::TOKEN).await;
    let (max_emu, vk_emu) = (
        testkit::max::MaxEmulator::start().await,
        testkit::vk::VkEmulator::start().await,
    );
    let config = ServeConfig {
        profile: bot::config::demo_salon(),
        db_url: format!("sqlite://{}", dir.path().join("load.db").display()),
        listen: "127.0.0.1:0".parse().expect("address"),
        telegram: mix.then(|| bot::channels::telegram::TelegramConfig {
            token: testkit::app::TOKEN.into(),
            secret: Some(testkit::app::SECRET.into()),
            api_url: telegram_emu.url(),
            groups: Vec::new(),
        }),
        max: mix.then(|| testkit::app::messenger_max(max_emu.url())),
        vk: mix.then(|| testkit::app::messenger_vk(vk_emu.url())),
        clock: Clock::starting_at(Utc.with_ymd_and_hms(2026, 11, 20, 3, 0, 0).unwrap()),
        worker_interval: Duration::from_secs(1),
        telegram_polling: false,
        managers_chat: None,
        bitrix24: server::Bitrix24Config::default(),
        http: Default::default(),
        access: Default::default(),
        retention: None,
        llm: None,
    };
    let bound = server::bind(config).await.expect("server binds");
    let base = format!("http://{}", bound.local_addr());
    let url = format!("{base}/api/v1/messages");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bound.run(async {
        let _ = stop_rx.await;
    }));

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::try_from(clients).unwrap_or(64))
        .build()
        .expect("client");
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    // Each conversation sends one message every `clients / rate` seconds.
    let gap = Duration::from_secs_f64(clients as f64 / rate as f64);
    let started = Instant::now();
    let heavy_rate = env_num("LOAD_HEAVY_RATE", 0);
    let heavy = (heavy_rate > 0).then(|| {
        let (http, url, errors) = (http.clone(), url.clone(), Arc::clone(&errors));
        tokio::spawn(async move {
            let gap = Duration::from_secs_f64(1.0 / heavy_rate as f64);
            let mut next = Instant::now();
            let mut sent = 0u64;
            let mut inflight = Vec::new();
            while Instant::now() < deadline {
                tokio::time::sleep_until(next.into()).await;
                next += gap;
                let text = heavy_text(sent);
                let body = json!({ "client_id": format!("heavy-{sent}"), "text": text });
                let (http, url, errors) = (http.clone(), url.clone(), Arc::clone(&errors));
                inflight.push(tokio::spawn(async move {
                    match http.post(&url).json(&body).send().await {
                        Ok(r) if r.status().is_success() => {}
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }));
                sent += 1;
            }
            for t in inflight {
                let _ = t.await;
            }
            sent
        })
    });
    let mut tasks = Vec::new();
    for c in 0..clients {
        let http = http.clone();
        let url = url.clone();
        let errors = Arc::clone(&errors);
        let channel = if mix {
            CHANNELS[(c % 4) as usize]
        } else {
            "web"
        };
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut round = 0u64;
            let mut next = Instant::now() + gap.mul_f64(c as f64 / clients as f64);
            while Instant::now() < deadline {
                round += 1;
                let client = format!("load-{c}-{round}");
                let mut last = Value::Null;
                for step in 0..5 {
                    tokio::time::sleep_until(next.into()).await;
                    next += gap;
                    if Instant::now() >= deadline {
                        break;
                    }
                    let body = match step {
                        0 => json!({ "client_id": client, "text": "хочу записаться на маникюр" }),
                        1 => json!({ "client_id": client, "text": "в понедельник после обеда" }),
                        2 => match last["replies"][0]["buttons"][0]["payload"].as_str() {
                            Some(p) => json!({ "client_id": client, "button": p }),
                            None => json!({ "client_id": client, "text": "сколько стоит педикюр?" }),
                        },
                        3 => json!({ "client_id": client, "text": "Меня зовут Марина, мой номер 8 913 123-45-67" }),
                        _ => json!({ "client_id": client, "text": "спасибо!" }),
                    };
                    let t = Instant::now();
                    if channel != "web" {
                        let n = c * 1_000_000 + round * 10 + step;
                        let text = body["text"].as_str().unwrap_or("в 15:00").to_string();
                        let ok = post_webhook(&http, &base, channel, c, n, &text).await;
                        if ok {
                            latencies.push((channel, t.elapsed()));
                        } else {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                        continue;
                    }
                    match http.post(&url).json(&body).send().await {
                        Ok(r) if r.status().is_success() => {
                            last = r.json().await.unwrap_or(Value::Null);
                            latencies.push((channel, t.elapsed()));
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            latencies
        }));
    }
    let mut by_channel = Vec::new();
    for t in tasks {
        by_channel.extend(t.await.unwrap_or_default());
    }
    let mut all: Vec<Duration> = by_channel.iter().map(|(_, d)| *d).collect();
    let elapsed = started.elapsed();
    let heavy_sent = match heavy {
        Some(h) => h.await.unwrap_or(0),
        None => 0,
    };
    let _ = stop_tx.send(());
    let _ = server.await;
    all.sort();
    let pct = |p: f64| percentile(&all, p);
    println!(
        "serve_load: {} messages in {:.1} s = {:.0} msg/s (target {rate}), {clients} concurrent conversations, {} errors",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        errors.load(Ordering::Relaxed)
    );
    if heavy_sent > 0 {
        println!("mixed in: {heavy_sent} messages of 4096 characters ({heavy_rate}/s)");
    }
    println!(
        "reply latency ms: p50 {:.1} · p95 {:.1} · p99 {:.1} · max {:.1}",
        pct(0.50),
        pct(0.95),
        pct(0.99),
        pct(1.0)
    );
    if mix {
        for channel in CHANNELS {
            let mut own: Vec<Duration> = by_channel
                .iter()
                .filter(|(c, _)| *c == channel)
                .map(|(_, d)| *d)
                .collect();
            own.sort();
            println!(
                "  {channel}: {} messages, p50 {:.1} · p95 {:.1} · p99 {:.1} ms",
                own.len(),
                percentile(&own, 0.50),
                percentile(&own, 0.95),
                percentile(&own, 0.99)
            );
        }
        println!(
            "  sent meanwhile: Telegram {}, MAX {}, VK {} messages",
            telegram_emu.calls("sendMessage").len(),
            max_emu.calls("POST /messages").len(),
            vk_emu.calls("messages.send").len()
        );
    }
}

const CHANNELS: [&str; 4] = ["web", "telegram", "max", "vk"];

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Post message `n` of conversation `c` to the `channel` webhook as that messenger does; true
/// when it was accepted.
async fn post_webhook(
    http: &reqwest::Client,
    base: &str,
    channel: &str,
    c: u64,
    n: u64,
    text: &str,
) -> bool {
    let user = 10_000 + i64::try_from(c).unwrap_or(0);
    let n = i64::try_from(n).unwrap_or(0);
    let request = match channel {
        "telegram" => http
            .post(format!("{base}/webhooks/telegram"))
            .header("X-Telegram-Bot-Api-Secret-Token", testkit::app::SECRET)
            .json(&testkit::app::tg_text(n, user, text)),
        "max" => http
            .post(format!("{base}/webhooks/max"))
            .header("X-Max-Bot-Api-Secret", testkit::max::SECRET)
            .json(&testkit::max::text(&format!("mid.{n}"), user, text, n)),
        _ => http
            .post(format!("{base}/webhooks/vk"))
            .json(&testkit::vk::message(&format!("e{n}"), user, text, None)),
    };
    request.send().await.is_ok_and(|r| r.status().is_success())
}

/// An expensive message of 4 096 characters: a pasted wall of words, one long word, Latin x.
fn heavy_text(n: u64) -> String {
    const LETTERS: &[char] = &[
        'а', 'б', 'в', 'г', 'д', 'е', 'ж', 'з', 'и', 'к', 'л', 'м', 'н',
    ];
    let word = |len: usize, seed: u64| -> String {
        (0..len)
            .map(|i| LETTERS[(i * 7 + (seed as usize) * 13 + i * i) % LETTERS.len()])
            .collect()
    };
    match n % 3 {
        0 => (0..)
            .map(|i| word(9, n + i))
            .take_while({
                let mut len = 0;
                move |w| {
                    len += w.chars().count() + 1;
                    len <= 4096
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        1 => word(4096, n),
        _ => "x".repeat(4096),
    }
}
