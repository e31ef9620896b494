//! Load generator for `bot serve`: starts the real server in-process on a fresh SQLite file
//! and replays many concurrent web conversations over HTTP (booking with a slot button and a
//! contact, price questions), paced to a target rate, then reports throughput and reply
//! latency percentiles. `cargo bench --bench serve_load`; tune with `LOAD_RATE` (messages/s,
//! default 200), `LOAD_CLIENTS` (concurrent conversations, default 50), `LOAD_SECONDS`
//! (default 10), and `LOAD_HEAVY_RATE` (default 0): that many 4 096-character messages a
//! second mixed in, each from a new client (pasted text, a long word, Latin `x`); the reported
//! latencies are those of the normal traffic, so they show what expensive messages do to it.
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
    let config = ServeConfig {
        profile: bot::config::demo_salon(),
        db_url: format!("sqlite://{}", dir.path().join("load.db").display()),
        listen: "127.0.0.1:0".parse().expect("address"),
        telegram: None,
        max: None,
        vk: None,
        clock: Clock::starting_at(Utc.with_ymd_and_hms(2026, 11, 20, 3, 0, 0).unwrap()),
        worker_interval: Duration::from_secs(1),
        telegram_polling: false,
        managers_chat: None,
        bitrix24: server::Bitrix24Config::default(),
        http: Default::default(),
    };
    let bound = server::bind(config).await.expect("server binds");
    let url = format!("http://{}/api/v1/messages", bound.local_addr());
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
                    match http.post(&url).json(&body).send().await {
                        Ok(r) if r.status().is_success() => {
                            last = r.json().await.unwrap_or(Value::Null);
                            latencies.push(t.elapsed());
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
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    let elapsed = started.elapsed();
    let heavy_sent = match heavy {
        Some(h) => h.await.unwrap_or(0),
        None => 0,
    };
    let _ = stop_tx.send(());
    let _ = server.await;
    all.sort();
    let pct = |p: f64| {
        let i = ((all.len() as f64 - 1.0) * p).round() as usize;
        all.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
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
