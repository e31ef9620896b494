//! `bot pilot` against a running `bot serve`: the split of new clients by the binding hash,
//! sticky arms across a share change and a restart, the managers' arm (no bot reply, the
//! managers' chat told, a manager's reply timed), and two replicas on PostgreSQL agreeing on a
//! client who writes to both at once.

use bot::pilot::{self, Arm};
use serde_json::{Value, json};
use testkit::app::{
    MANAGERS, PgSchema, SECRET, TestApp, spawn_app, spawn_on_postgres, spawn_with_telegram, tg_text,
};

/// `bot pilot ARGS… --db <the app's> --now <the app's clock>`: (code, stdout, stderr).
async fn pilot_cli(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    pilot_cli_env(app, args, &[]).await
}

async fn pilot_cli_env(
    app: &TestApp,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let now = app.clock.now().to_rfc3339();
    let mut all = vec!["pilot"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--db", app.db_url.as_str(), "--now", now.as_str()]);
    testkit::run_bot!(&all, env).await
}

async fn pilot_json(app: &TestApp) -> Value {
    let (code, out, err) = pilot_cli(app, &["status", "--format", "json"]).await;
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Whether the bot answered the web message (the managers' arm gets `"replies": []`).
fn answered(body: &Value) -> bool {
    !body["replies"].as_array().expect("replies").is_empty()
}

/// Clients `ids` each write `text`, 16 at a time; whether the bot answered each.
async fn write_all(app: &TestApp, ids: &[String], text: &str) -> Vec<bool> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(16) {
        let mut set = tokio::task::JoinSet::new();
        for (i, id) in chunk.iter().enumerate() {
            let (http, url) = (app.http.clone(), app.url("/api/v1/messages"));
            let body = json!({ "client_id": id, "text": text });
            set.spawn(async move {
                let resp = http.post(url).json(&body).send().await.expect("request");
                assert_eq!(resp.status(), 200);
                (i, answered(&resp.json().await.expect("JSON")))
            });
        }
        let mut got: Vec<(usize, bool)> = set.join_all().await;
        got.sort_unstable();
        out.extend(got.into_iter().map(|(_, b)| b));
    }
    out
}

/// A Telegram text message sent at the app's clock (the KPIs read the channel's own time).
fn tg_now(app: &TestApp, update_id: i64, chat: i64, text: &str) -> Value {
    let mut update = tg_text(update_id, chat, text);
    update["message"]["date"] = json!(app.clock.now().timestamp());
    update
}

fn expected_arm(seed: &str, id: &str, share: f64) -> Arm {
    pilot::arm(pilot::hash_v2(seed, &format!("web:{id}")), share)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_new_clients_split_by_the_hash_and_each_keeps_its_arm() {
    let app = spawn_app().await;
    // A client known before the pilot keeps the bot.
    assert!(answered(&app.say("old-client", "здравствуйте").await));

    let (code, out, err) = pilot_cli(&app, &["--share", "10", "--seed", "e2e-seed"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("share:  10 %"), "{out}");
    assert!(out.contains("seed:   e2e-seed"), "{out}");
    assert!(
        err.contains("warning: no managers' channel"),
        "a web-only pilot starts, with a warning: {err}"
    );

    let ids: Vec<String> = (0..1000).map(|i| format!("p{i}")).collect();
    let first = write_all(&app, &ids, "Здравствуйте, сколько стоит маникюр?").await;
    for (id, bot) in ids.iter().zip(&first) {
        assert_eq!(
            *bot,
            expected_arm("e2e-seed", id, 10.0) == Arm::Bot,
            "client {id}: the arm is the hash's"
        );
    }
    let bots = first.iter().filter(|b| **b).count();
    // Binomial(1000, 0.1): mean 100, sd 9.5; ±3.5 sd.
    assert!((67..=133).contains(&bots), "{bots} of 1000 at 10 %");
    assert!(
        answered(&app.say("old-client", "а на завтра есть окна?").await),
        "known before the pilot: not in it"
    );

    // A share change moves nobody already assigned, and applies to new clients.
    let (code, out, err) = pilot_cli(&app, &["--share", "50"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("share 10 % → 50 %"), "{out}");
    let again = write_all(&app, &ids, "а на завтра?").await;
    assert_eq!(again, first, "every later message stays in its arm");
    let newer: Vec<String> = (0..200).map(|i| format!("q{i}")).collect();
    let second = write_all(&app, &newer, "добрый день").await;
    for (id, bot) in newer.iter().zip(&second) {
        assert_eq!(*bot, expected_arm("e2e-seed", id, 50.0) == Arm::Bot, "{id}");
    }

    // And a restart changes nothing either.
    let at = app.clock.now();
    let app = app.restart_at(at).await;
    let sample: Vec<String> = ids.iter().take(100).cloned().collect();
    let after = write_all(&app, &sample, "я снова тут").await;
    assert_eq!(after, first[..100].to_vec(), "sticky across a restart");

    let status = pilot_json(&app).await;
    let bot_new = second.iter().filter(|b| **b).count();
    assert_eq!(
        status["clients"]["bot"],
        (bots + bot_new) as u64,
        "{status}"
    );
    assert_eq!(
        status["clients"]["managers"],
        (1200 - bots - bot_new) as u64,
        "{status}"
    );
    assert_eq!(status["share"], 50.0);
    assert_eq!(status["seed"], "e2e-seed");
    // Expected: 10 % of the first thousand, 50 % of the next two hundred.
    let expected = status["expected"]["bot"].as_f64().unwrap_or_default();
    assert!((expected - 200.0).abs() < 1e-6, "{status}");
    let srm = status["srm_p"].as_f64().expect("srm_p");
    assert!(srm > 0.001, "no sample ratio mismatch: {status}");
    assert_eq!(status["srm_alarm"], false);
    for metric in ["qualified_pct", "booking_conversion_pct"] {
        let c = &status["comparisons"][metric];
        for field in [
            "diff_pp",
            "ci_low_pp",
            "ci_high_pp",
            "p_value",
            "chance_bot_better",
        ] {
            assert!(c.get(field).is_some(), "{metric}.{field}: {status}");
        }
    }
    // The bot answered its clients at once; the managers answered nobody.
    assert_eq!(status["first_response"]["managers"]["n"], 0, "{status}");
    assert!(
        status["first_response"]["bot"]["n"].as_u64().unwrap_or(0) > 0,
        "{status}"
    );

    // `bot report --format json` carries the same pilot and the KPIs per arm.
    let now = app.clock.now().to_rfc3339();
    let today = app
        .clock
        .now()
        .with_timezone(&chrono_tz::Asia::Novosibirsk)
        .date_naive()
        .to_string();
    let (code, out, err) = testkit::run_bot!(
        &[
            "report",
            "--from",
            today.as_str(),
            "--to",
            today.as_str(),
            "--format",
            "json",
            "--db",
            app.db_url.as_str(),
            "--now",
            now.as_str(),
        ],
        &[]
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).expect("report JSON");
    assert_eq!(
        report["pilot"], status,
        "the report's pilot is the status's"
    );
    assert_eq!(
        report["by_arm"]["bot"]["requests"].as_u64(),
        Some((bots + bot_new) as u64),
        "{}",
        report["by_arm"]
    );
    assert_eq!(
        report["by_arm"]["managers"]["answered"].as_u64(),
        Some(0),
        "{}",
        report["by_arm"]
    );

    let (code, out, err) = testkit::run_bot!(
        &[
            "pilot",
            "assign",
            "web:p0",
            "web:p1",
            "--format",
            "json",
            "--db",
            app.db_url.as_str()
        ],
        &[]
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let assigned: Value = serde_json::from_str(&out).expect("assign JSON");
    let p0 = &assigned["keys"][0];
    assert_eq!(p0["key"], "web:p0");
    assert_eq!(p0["h"].as_f64(), Some(pilot::hash_v2("e2e-seed", "web:p0")));
    let arm_p0 = if first[0] { "bot" } else { "managers" };
    assert_eq!(p0["arm"], arm_p0, "the stored arm: {assigned}");
    assert_eq!(p0["share_at_assignment"].as_f64(), Some(10.0), "{assigned}");
    let (code, out, err) = pilot_cli(&app, &["stop"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("stopped"), "{out}");
    let late = write_all(&app, &["late-client".to_string()], "привет").await;
    assert_eq!(late, vec![true], "after the stop new clients get the bot");
    app.shutdown().await;
}

#[tokio::test]
async fn the_managers_arm_gets_no_bot_reply_its_messages_reach_the_managers_and_a_reply_is_timed() {
    let app = spawn_with_telegram().await;
    // Everyone new to the managers.
    let chat_id = MANAGERS.to_string();
    let (code, _, err) = pilot_cli_env(
        &app,
        &["--share", "0", "--seed", "m"],
        &[("BOT_MANAGERS_CHAT_ID", chat_id.as_str())],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "the managers' chat is set: {err}");
    let emu = app.emulator();
    let chat = 4242;
    let first = "Здравствуйте, хочу записаться на стрижку";
    assert_eq!(
        app.telegram_update(Some(SECRET), &tg_now(&app, 1, chat, first))
            .await,
        200
    );
    let notice = emu.wait_for_message(MANAGERS, "#client", 5).await.params["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(notice.contains("пилот"), "{notice}");
    assert!(notice.contains(first), "{notice}");
    assert!(!notice.contains("/release"), "{notice}");
    let second = "можно в субботу?";
    assert_eq!(
        app.telegram_update(Some(SECRET), &tg_now(&app, 2, chat, second))
            .await,
        200
    );
    emu.wait_for_message(MANAGERS, second, 5).await;
    app.outbox_drained().await;
    let to_client = |emu: &testkit::telegram::TelegramEmulator| {
        emu.calls("sendMessage")
            .iter()
            .filter(|c| c.params["chat_id"] == chat)
            .count()
    };
    assert_eq!(
        to_client(emu),
        0,
        "the bot says nothing to a managers' client"
    );
    // A web client of the managers' arm gets an empty answer.
    let body = app.say("web-m", "сколько стоит маникюр?").await;
    assert_eq!(body["replies"], json!([]), "{body}");

    // The manager answers 90 s later: that is the arm's first response time.
    app.clock.advance(chrono::Duration::seconds(90));
    let reply = json!({
        "update_id": 3,
        "message": {
            "message_id": 3, "date": app.clock.now().timestamp(),
            "from": { "id": 77, "is_bot": false, "first_name": "Ольга" },
            "chat": { "id": MANAGERS, "type": "supergroup", "title": "Администраторы" },
            "text": "Здравствуйте! В субботу есть 12:00.",
            "reply_to_message": {
                "message_id": 1, "date": 1_763_607_800,
                "chat": { "id": MANAGERS, "type": "supergroup" },
                "text": notice
            }
        }
    });
    assert_eq!(app.telegram_update(Some(SECRET), &reply).await, 200);
    emu.wait_for_message(chat, "В субботу есть 12:00", 5).await;
    let status = pilot_json(&app).await;
    assert_eq!(status["clients"]["managers"], 2, "{status}");
    assert_eq!(status["clients"]["bot"], 0, "{status}");
    let times = &status["first_response"]["managers"];
    assert_eq!(
        times["n"], 1,
        "the web client is not answered yet: {status}"
    );
    // 90 s on the clock, plus the real time the test's clock also runs, less the channel's
    // whole-second date of the client's message.
    let median = times["median_s"].as_f64().unwrap_or_default();
    assert!((90.0..93.0).contains(&median), "{status}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_put_a_client_who_writes_to_both_into_one_arm() {
    let Some(pg) = PgSchema::create().await else {
        return;
    };
    let a = spawn_on_postgres(&pg.url, false).await;
    let b = spawn_on_postgres(&pg.url, false).await;
    // Each replica has its own test clock, a few ms apart: the pilot starts a minute before
    // both, so every client here is new to it.
    let start = (a.clock.now() - chrono::Duration::minutes(1)).to_rfc3339();
    let (code, _, err) = pilot_cli(
        &a,
        &[
            "--share",
            "50",
            "--seed",
            "replicas",
            "--start",
            start.as_str(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let ids: Vec<String> = (0..60).map(|i| format!("r{i}")).collect();
    // Each client writes to both replicas at the same moment.
    let mut answers = Vec::new();
    for id in &ids {
        let (x, y) = tokio::join!(a.say(id, "привет"), b.say(id, "здравствуйте"));
        answers.push((answered(&x), answered(&y)));
    }
    for (id, (x, y)) in ids.iter().zip(&answers) {
        let arm = expected_arm("replicas", id, 50.0);
        assert_eq!(*x, arm == Arm::Bot, "{id} on replica A");
        assert_eq!(*y, arm == Arm::Bot, "{id} on replica B");
    }
    let status = pilot_json(&a).await;
    assert_eq!(
        status["clients"]["bot"].as_u64().unwrap_or(0)
            + status["clients"]["managers"].as_u64().unwrap_or(0),
        60,
        "one assignment per client: {status}"
    );
    a.shutdown().await;
    b.shutdown().await;
}
