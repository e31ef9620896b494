//! Personal data stays out of the logs: the real `bot serve` binary at `RUST_LOG=info` takes a
//! whole booking conversation — a name, a phone, the texts — and a dead letter, and its log
//! holds none of them.

use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;
use testkit::app::friday_10am;

const NAME: &str = "Аграфена";
const PHONE_DIGITS: &str = "9137654321";

#[tokio::test]
async fn a_whole_conversation_leaves_no_name_phone_or_text_in_the_info_log() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("serve.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bot"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--db",
            &format!("sqlite://{}", dir.path().join("bot.db").display()),
        ])
        .env("BOT_NOW", friday_10am().to_rfc3339())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start bot serve");
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..500 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(up, "bot serve did not come up");
    let say = |body: Value| {
        let (http, url) = (http.clone(), format!("{base}/api/v1/messages"));
        async move {
            let resp = http.post(url).json(&body).send().await.expect("post");
            assert!(resp.status().is_success());
            resp.json::<Value>().await.expect("json")
        }
    };
    let client = "wprivacy0123456789abcdef0123456789";
    say(json!({"client_id": client, "text": "хочу записаться на маникюр завтра после обеда"}))
        .await;
    let offer = say(json!({"client_id": client, "text": "в 15:00"})).await;
    if let Some(p) = offer["replies"][0]["buttons"][0]["payload"].as_str() {
        say(json!({"client_id": client, "button": p})).await;
    }
    let done = say(json!({"client_id": client, "text": format!("{NAME}, +7 913 765-43-21")})).await;
    assert!(
        done.to_string().contains(NAME) || done.to_string().contains("Записала"),
        "{done}"
    );
    // A complaint: a hand-off, and with no managers' channel a call back.
    say(json!({"client_id": client, "text": "у меня жалоба, мастер испортила ногти"})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("web chat") || text.contains("bot serve"),
        "the log was written: {text}"
    );
    for secret in [NAME, PHONE_DIGITS, "765-43-21", "маникюр", "жалоба", client] {
        assert!(!text.contains(secret), "{secret:?} in the log:\n{text}");
    }
}
