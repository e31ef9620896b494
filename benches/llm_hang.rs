//! `cargo bench --bench llm_hang`: the reply latency of `bot serve` while the LLM hangs. The
//! real server runs in-process with `BOT_LLM_TIMEOUT_MS` (default 2000) against the
//! OpenAI-compatible emulator, which answers nothing for 60 s. `HANG_CLIENTS` conversations
//! (default 16, more than the gate's 4) each send `HANG_MESSAGES` (default 10) questions the
//! rules cannot answer, one after another, and as many price questions the rules answer alone;
//! it reports p50, p99 and max of each. Goal (issue «GPT beside the rules»): every reply within
//! 3 s; the rules' own answers unaffected.
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a failed unwrap is a failure

use bot::llm::{Auth, LlmConfig};
use bot::server::{self, Clock, ServeConfig};
use chrono::{TimeZone, Utc};
use serde_json::json;
use std::time::{Duration, Instant};
use testkit::llm::{LlmEmulator, Reply};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!(
        "n {:>4}  p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
        v.len(),
        at(0.5).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
        v[v.len() - 1].as_secs_f64() * 1000.0
    )
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let clients = env_num("HANG_CLIENTS", 16).max(1);
    let messages = env_num("HANG_MESSAGES", 10).max(1);
    let timeout = env_num("BOT_LLM_TIMEOUT_MS", 2000);
    let emu = LlmEmulator::start("k").await;
    emu.set_fallback(|_| {
        Reply::Delay(
            Duration::from_secs(60),
            Box::new(Reply::Content("{}".into())),
        )
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let config = ServeConfig {
        profile: bot::config::demo_salon(),
        db_url: format!("sqlite://{}", dir.path().join("hang.db").display()),
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
        access: Default::default(),
        retention: None,
        llm: Some(LlmConfig {
            base_url: emu.base_url(),
            api_key: Some("k".into()),
            model: "hanging".into(),
            auth: Auth::Bearer,
            project: None,
            timeout: Duration::from_millis(timeout),
            max_concurrency: 4,
            send_personal_data: false,
            context_turns: 6,
        }),
    };
    let bound = server::bind(config).await.expect("server binds");
    let url = format!("http://{}/api/v1/messages", bound.local_addr());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bound.run(async {
        let _ = stop_rx.await;
    }));
    let http = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (http, url) = (http.clone(), url.clone());
        tasks.spawn(async move {
            let mut asked = Vec::new();
            let mut rules = Vec::new();
            for i in 0..messages {
                for (text, into) in [
                    ("а вы выезжаете на дом?", &mut asked),
                    ("сколько стоит маникюр?", &mut rules),
                ] {
                    let body = json!({"client_id": format!("hang-{c}-{i}"), "text": text});
                    let t = Instant::now();
                    let resp = http.post(&url).json(&body).send().await.expect("send");
                    assert_eq!(resp.status(), 200);
                    let v: serde_json::Value = resp.json().await.expect("JSON");
                    assert!(!v["replies"].as_array().expect("replies").is_empty(), "{v}");
                    into.push(t.elapsed());
                }
            }
            (asked, rules)
        });
    }
    let (mut asked, mut rules) = (Vec::new(), Vec::new());
    while let Some(r) = tasks.join_next().await {
        let (a, r) = r.expect("task");
        asked.extend(a);
        rules.extend(r);
    }
    println!(
        "LLM hanging (deadline {timeout} ms, 4 at once), {clients} conversations × {messages}:"
    );
    println!(
        "  questions the model is asked about  {}",
        percentiles(asked)
    );
    println!(
        "  price questions (the rules alone)    {}",
        percentiles(rules)
    );
    println!(
        "  requests the hanging model received: {}",
        emu.requests().len()
    );
    let _ = stop_tx.send(());
    let _ = server.await;
}
