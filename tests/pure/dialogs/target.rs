//! `bot test dialogs --target URL`: the specs replayed over HTTP against the real server (in
//! this process, on port 0, a fresh SQLite file, the clock at the dialogs' `now`), run as the
//! binary. What the web API shows is checked for real and can fail; what it cannot show is
//! reported as skipped with the reason; an unreachable server is a usage error.

use super::{assert_says, folder, output_text as text, repo};
use bot::server::{self, Bitrix24Config, Clock, ServeConfig};
use chrono::{TimeZone, Utc};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The server, stopped when dropped.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Server {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The demo salon on 127.0.0.1:0, its clock at the reference dialogs' `now` (Friday
/// 20 Nov 2026, 10:00 in Novosibirsk).
async fn serve() -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = ServeConfig {
        profile: bot::config::demo_salon(),
        db_url: format!("sqlite://{}", dir.path().join("bot.db").display()),
        listen: "127.0.0.1:0".parse().expect("address"),
        telegram: None,
        max: None,
        vk: None,
        clock: Clock::starting_at(Utc.with_ymd_and_hms(2026, 11, 20, 3, 0, 0).unwrap()),
        worker_interval: Duration::from_millis(200),
        telegram_polling: false,
        // A managers' channel is set up (its notices wait in the outbox: Telegram is off).
        managers_chat: Some(-100_500),
        bitrix24: Bitrix24Config::default(),
        http: Default::default(),
        access: Default::default(),
        retention: None,
        llm: None,
    };
    let bound = server::bind(config).await.expect("server binds");
    let addr = bound.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = bound
            .run(async {
                let _ = stopped.await;
            })
            .await;
    });
    Server {
        addr,
        stop: Some(stop),
        _dir: dir,
    }
}

/// `bot test dialogs ARGS` in `dir`, off the runtime so that the server keeps answering.
async fn bot(args: Vec<String>, dir: PathBuf) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_bot"))
            .args(["test", "dialogs"])
            .args(&args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .output()
            .expect("run bot")
    })
    .await
    .expect("the command ran")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A copy of 09-faq and its fragment, each file's text changed by `edit(name, text)`,
/// replayed against `server`.
async fn faq_copy(server: &Server, edit: impl Fn(&str, String) -> String) -> Output {
    let dialogs = repo().join("dialogs");
    let files: Vec<(&str, String)> = ["09-faq.yaml", "fragments/thanks.yaml"]
        .into_iter()
        .map(|f| (f, edit(f, read(&dialogs.join(f)))))
        .collect();
    let files: Vec<(&str, &str)> = files.iter().map(|(f, t)| (*f, t.as_str())).collect();
    let dir = folder(&files);
    bot(
        args(&["09-faq.yaml", "--target", &server.url()]),
        dir.path().to_path_buf(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_dialogs_pass_over_http_and_what_cannot_be_checked_is_skipped_with_why() {
    let server = serve().await;
    let junit = tempfile::tempdir().expect("temp dir");
    let junit_file = junit.path().join("junit.xml");
    let o = bot(
        args(&[
            "dialogs",
            "--target",
            &server.url(),
            "--format",
            "json",
            "--junit",
            &junit_file.display().to_string(),
        ]),
        repo(),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    let s = &doc["summary"];
    let files = crate::dialogs::reference_dialog_files();
    assert_eq!(s["dialogs"], files, "{s}");
    assert_eq!(s["failed"], 0, "{s}");
    assert!(s["passed"].as_u64() >= Some(3), "{s}");
    assert!(s["steps_skipped"].as_u64() > Some(0), "{s}");
    assert!(s["checks_skipped"].as_u64() > Some(0), "{s}");
    assert_eq!(s["target"], server.url().as_str(), "{s}");
    let dialog = |id: &str| {
        doc["dialogs"]
            .as_array()
            .and_then(|d| d.iter().find(|x| x["id"] == id))
            .unwrap_or_else(|| panic!("{id} in {}", text(&o)))
    };
    // Checked over HTTP, every path, every phrase.
    for id in ["01-booking", "09-faq"] {
        let d = dialog(id);
        assert_eq!(d["verdict"], "pass", "{d}");
        assert_eq!(d["variations_replayed"], d["variations"], "{d}");
    }
    let assert_skipped = |id: &str, why: &str| {
        let d = dialog(id);
        assert_eq!(d["verdict"], "skipped", "{d}");
        assert!(
            d["skipped"][0]["why"]
                .as_str()
                .is_some_and(|w| w.contains(why)),
            "{d}"
        );
    };
    // A dialog for a business without managers is not replayed against one with them.
    assert_skipped("11-handoff-no-managers", "without a managers' channel");
    // A dialog that starts with a booking cannot be set up over HTTP.
    assert_skipped("03-cancel", "bookings (B1)");
    // A contact card cannot be sent: the rest of the path is skipped, what came before passed.
    let d = dialog("04-price");
    assert_eq!(d["verdict"], "pass", "{d}");
    let rest = d["skipped"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["what"] == "rest"))
        .unwrap_or_else(|| panic!("{d}"));
    assert_eq!(rest["step"], 4, "{d}");
    assert!(
        rest["why"]
            .as_str()
            .is_some_and(|w| w.contains("contact card"))
    );
    // What the NLU understood and the effects are not pretended to be checked.
    let whats: Vec<&str> = dialog("01-booking")["skipped"]
        .as_array()
        .map(|s| s.iter().filter_map(|x| x["what"].as_str()).collect())
        .unwrap_or_default();
    for want in ["understood", "booked", "lead", "step"] {
        assert!(whats.contains(&want), "{want} in {whats:?}");
    }
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("BOT_NOW") && err.contains("2026-11-20T03:00:00Z"),
        "{}",
        text(&o)
    );
    let xml = read(&junit_file);
    assert!(
        xml.contains("<skipped message=\"needs in-process: the dialog starts with bookings"),
        "{xml}"
    );
    assert!(xml.contains("not checked over HTTP"), "{xml}");

    // The same run as a table says what was skipped and why, and runs again on the same
    // server: the slots booked by the first run were given back.
    let o = bot(args(&["dialogs", "--target", &server.url()]), repo()).await;
    assert_says(
        &o,
        0,
        &[
            "skipped (needs in-process)",
            "skipped in 02-reschedule (dialogs/02-reschedule.yaml) — needs in-process:",
            "understood — what the NLU understood is not in the HTTP answer",
            "this step and the rest of the path — a contact card cannot be shared",
            "not checked over HTTP (needs in-process):",
            &format!("0 failed, {} skipped", s["skipped"]),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_expected_text_or_template_key_fails_over_http_naming_the_step() {
    let server = serve().await;
    let o = faq_copy(&server, |_, d| {
        d.replace("Работаем без перерывов", "Работаем с перерывом")
    })
    .await;
    assert_says(
        &o,
        1,
        &[
            "FAIL 09-faq (09-faq.yaml)",
            "step 2 steps[1].bot (часы работы) at 09-faq.yaml:19:7",
            "bot:     «Работаем без перерывов",
            "failed:  template: does not match",
        ],
    );
    // Replies carry no template key over HTTP: the text is matched against the variations.
    let o = faq_copy(&server, |_, d| d.replace("key: thanks", "key: booked")).await;
    assert_says(
        &o,
        1,
        &[
            "step 5 steps[0].bot (спасибо) at fragments/thanks.yaml:",
            "failed:  key: text matches no variation of template booked",
        ],
    );
}

const HANDOFF: &str = "id: web-handoff\ntitle: Жалоба в веб-чате\nnow: 2026-11-20 10:00\nsteps:\n  - client: [\"ужасно покрасили волосы, хочу пожаловаться\", \"Я очень недовольна окрашиванием, это кошмар\"]\n    bot: {key: handoff_complaint, contains: [администратор]}\n    handoff: complaint\n  - client: [\"алло, вы тут?\", \"ответьте пожалуйста!\"]\n    silent: true\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_silence_and_latency_are_checked_over_http() {
    let server = serve().await;
    let url = server.url();
    let run = |yaml: String| {
        let url = url.clone();
        async move {
            let dir = folder(&[("d.yaml", &yaml)]);
            bot(
                args(&["d.yaml", "--target", &url]),
                dir.path().to_path_buf(),
            )
            .await
        }
    };
    let o = run(HANDOFF.to_string()).await;
    assert_says(
        &o,
        0,
        &["handoff reason — the reason of a hand-off is not in the HTTP answer"],
    );

    for (yaml, want) in [
        (
            HANDOFF.replace("    handoff: complaint\n", ""),
            "failed:  handoff: unexpected hand-off",
        ),
        (
            HANDOFF.replace("handoff: complaint", "handoff: false"),
            "failed:  handoff: the conversation was handed off",
        ),
        (
            HANDOFF.replace("    silent: true\n", "    bot: {contains: [алло]}\n"),
            "failed:  messages: expected 1 message(s), the bot sent 0",
        ),
        (
            HANDOFF.replace(
                "    bot: {key: handoff_complaint, contains: [администратор]}\n",
                "    silent: true\n",
            ),
            "failed:  silent: the bot sent 1 message(s)",
        ),
        (
            HANDOFF.replace(
                "title: Жалоба в веб-чате\n",
                "title: Жалоба в веб-чате\nlatency: 0ms\n",
            ),
            "failed:  latency: the HTTP round trip took",
        ),
    ] {
        assert_says(&run(yaml).await, 1, &[want]);
    }
}

#[test]
fn an_unreachable_target_exits_2_naming_the_url() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = folder(&[("d.yaml", HANDOFF)]);
    let run = |target: &str| {
        Command::new(env!("CARGO_BIN_EXE_bot"))
            .args(["test", "dialogs", "d.yaml", "--target", target])
            .current_dir(dir.path())
            .output()
            .expect("run bot")
    };
    let o = run(&url);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("cannot reach bot serve at {url}")) && err.contains("refused"),
        "{}",
        text(&o)
    );
    assert!(o.stdout.is_empty(), "{}", text(&o));
    let o = run("localhost:8080");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not an http(s) URL"),
        "{}",
        text(&o)
    );
}
