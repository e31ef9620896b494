use bot::domain::{ChannelKind, ClientRef};
use bot::engine::Owner;
use serde_json::json;
use testkit::app::{MANAGERS, SECRET, spawn_with_telegram, tg_text};

fn manager_reply(update_id: i64, notice: &str, text: &str) -> serde_json::Value {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": update_id, "date": 1_763_607_900,
            "from": { "id": 77, "is_bot": false, "first_name": "Ольга" },
            "chat": { "id": MANAGERS, "type": "supergroup", "title": "Администраторы" },
            "text": text,
            "reply_to_message": {
                "message_id": 1, "date": 1_763_607_800,
                "chat": { "id": MANAGERS, "type": "supergroup" },
                "text": notice
            }
        }
    })
}

fn to_client(emu: &testkit::telegram::TelegramEmulator, chat: i64) -> usize {
    emu.calls("sendMessage")
        .iter()
        .filter(|c| c.params["chat_id"] == chat)
        .count()
}

#[tokio::test]
async fn managers_get_the_notice_their_reply_reaches_the_client_and_release_returns_the_bot() {
    let app = spawn_with_telegram().await;
    let emu = app.emulator();
    let chat = 3030;
    let complaint = "ужасно покрасили волосы, хочу пожаловаться";
    assert_eq!(
        app.telegram_update(Some(SECRET), &tg_text(1, chat, complaint))
            .await,
        200
    );
    let notice = emu.wait_for_message(MANAGERS, "#client", 5).await.params["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(notice.contains(complaint), "{notice}");
    assert!(notice.contains("telegram"), "{notice}");

    // The bot is silent now; what the client writes goes to the managers.
    app.outbox_drained().await;
    let told = to_client(emu, chat);
    let waiting = "алло, вы тут?";
    assert_eq!(
        app.telegram_update(Some(SECRET), &tg_text(5, chat, waiting))
            .await,
        200
    );
    let forwarded = emu.wait_for_message(MANAGERS, waiting, 5).await;
    let forwarded = forwarded.params["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        forwarded.contains(&format!("#client telegram:{chat}")),
        "{forwarded}"
    );
    app.outbox_drained().await;
    assert_eq!(
        to_client(emu, chat),
        told,
        "the bot stays silent during a hand-off"
    );

    let answer = "Здравствуйте! Я Ольга, администратор. Очень жаль, давайте разберёмся.";
    assert_eq!(
        app.telegram_update(Some(SECRET), &manager_reply(2, &notice, answer))
            .await,
        200
    );
    // A redelivery of the manager's reply is not relayed twice.
    assert_eq!(
        app.telegram_update(Some(SECRET), &manager_reply(2, &notice, answer))
            .await,
        200
    );
    emu.wait_for_message(chat, answer, 5).await;
    app.outbox_drained().await;
    let relays = emu
        .calls("sendMessage")
        .iter()
        .filter(|c| c.params["text"] == answer)
        .count();
    assert_eq!(relays, 1);

    let client = ClientRef {
        channel: ChannelKind::Telegram,
        id: chat.to_string(),
    };
    let store = app.store().await;
    let conv = store
        .conversation(&client)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(conv.owner, Owner::Human);
    assert_eq!(
        app.telegram_update(Some(SECRET), &manager_reply(3, &notice, "/release"))
            .await,
        200
    );
    let mut owner = Owner::Human;
    for _ in 0..100 {
        let conv = store
            .conversation(&client)
            .await
            .expect("read")
            .expect("exists");
        owner = conv.owner;
        if owner == Owner::Bot {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(owner, Owner::Bot);
    app.shutdown().await;
}

#[tokio::test]
async fn a_web_client_sees_the_managers_answer() {
    let app = spawn_with_telegram().await;
    let emu = app.emulator();
    let first = app
        .say("web-vera", "ужасно покрасили волосы, хочу пожаловаться")
        .await;
    assert_eq!(first["handoff"], true, "{first}");
    let notice = emu
        .wait_for_message(MANAGERS, "#client web:web-vera", 5)
        .await;
    let notice = notice.params["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let answer = "Вера, здравствуйте! Администратор Ольга, перезвоню вам через 5 минут.";
    assert_eq!(
        app.telegram_update(Some(SECRET), &manager_reply(7, &notice, answer))
            .await,
        200
    );
    let after = first["last_id"].as_i64().unwrap_or(0);
    let url = format!("/api/v1/messages?client_id=web-vera&after={after}");
    let mut got = serde_json::Value::Null;
    for _ in 0..100 {
        got = app.get_json(&url).await;
        if got["messages"].as_array().is_some_and(|m| !m.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(got["messages"][0]["from"], "manager", "{got}");
    assert_eq!(got["messages"][0]["text"], answer);
    assert_eq!(got["handoff"], true);
    app.shutdown().await;
}

/// `bot handoff list|release` on the server's database, at the test clock. Run off the test's
/// runtime: the server shares it and must keep running meanwhile.
async fn handoff_cli(db_url: &str, args: &[&str]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_bot"));
    cmd.arg("handoff")
        .args(args)
        .args(["--db", db_url, "--now", "2026-11-20T04:30:00Z"]);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("the CLI thread")
        .expect("run bot handoff");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_lists_who_waits_for_a_human_and_gives_a_conversation_back() {
    let app = testkit::app::spawn_app().await;
    let first = app
        .say("web-ira", "позовите администратора, пожалуйста")
        .await;
    assert_eq!(first["handoff"], true, "{first}");
    app.say("web-ira", "алло, вы тут?").await;
    app.say("web-oleg", "сколько стоит стрижка?").await;

    let (ok, out, err) = handoff_cli(&app.db_url, &["list", "--format", "json"]).await;
    assert!(ok, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let rows = rows.as_array().expect("a list");
    assert_eq!(rows.len(), 1, "only the handed-over conversation: {out}");
    assert_eq!(rows[0]["conversation"], "web:web-ira");
    assert_eq!(rows[0]["unanswered"], true);
    assert_eq!(rows[0]["reason"], "requested");
    assert_eq!(rows[0]["last_message"], "алло, вы тут?");
    assert_eq!(rows[0]["callback"], false);
    // Handed over at 10:00 Novosibirsk (the test clock, which runs on), listed at 11:30.
    let waiting = rows[0]["waiting_seconds"].as_i64().unwrap_or_default();
    assert!((5300..=5400).contains(&waiting), "{out}");
    let (ok, table, _) = handoff_cli(&app.db_url, &["list"]).await;
    assert!(
        ok && table.contains("web:web-ira") && table.contains("1 h 2"),
        "{table}"
    );

    let (ok, _, err) = handoff_cli(&app.db_url, &["release", "web:web-oleg"]).await;
    assert!(!ok && err.contains("not with a manager"), "{err}");
    let (ok, _, err) = handoff_cli(&app.db_url, &["release", "fax:1"]).await;
    assert!(!ok && err.contains("CHANNEL:ID"), "{err}");
    let (ok, out, err) = handoff_cli(&app.db_url, &["release", "web:web-ira"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("web:web-ira"), "{out}");

    let again = app.say("web-ira", "хочу записаться на маникюр").await;
    assert_eq!(again["handoff"], false, "{again}");
    assert!(
        !testkit::app::texts(&again).is_empty(),
        "the bot answers again"
    );
    let (ok, out, _) = handoff_cli(&app.db_url, &["list", "--format", "json"]).await;
    assert!(ok && out.trim() == "[]", "{out}");
    app.shutdown().await;
}

#[tokio::test]
async fn without_a_managers_channel_the_client_gets_the_phone_and_is_called_back() {
    let app = testkit::app::spawn_without_managers().await;
    let first = app.say("web-lida", "соедините с администратором").await;
    assert_eq!(first["handoff"], false, "the bot keeps answering: {first}");
    let texts = testkit::app::texts(&first);
    assert!(texts.contains("+7 383 213-45-67"), "{texts}");
    let noted = app.say("web-lida", "89135556677").await;
    let texts = testkit::app::texts(&noted);
    assert!(texts.contains("+79135556677"), "{texts}");
    let price = app.say("web-lida", "сколько стоит маникюр?").await;
    assert!(!testkit::app::texts(&price).is_empty(), "{price}");
    // The hand-off job has nothing to deliver: closed, not a dead letter.
    let store = app.store().await;
    let mut waiting = true;
    for _ in 0..250 {
        let pending = store.pending_jobs().await.expect("jobs");
        waiting = pending
            .iter()
            .any(|j| j.kind == bot::store::JobKind::Handoff);
        if !waiting {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!waiting, "the hand-off job stayed in the outbox");
    assert!(store.dead_jobs().await.expect("dead").is_empty());

    let (ok, out, err) = handoff_cli(&app.db_url, &["list", "--format", "json"]).await;
    assert!(ok, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(rows[0]["conversation"], "web:web-lida", "{out}");
    assert_eq!(rows[0]["callback"], true, "{out}");
    assert_eq!(rows[0]["phone"], "+79135556677", "{out}");
    assert_eq!(rows[0]["last_message"], "сколько стоит маникюр?", "{out}");
    let (ok, table, _) = handoff_cli(&app.db_url, &["list"]).await;
    assert!(ok && table.contains("call back"), "{table}");

    let (ok, _, err) = handoff_cli(&app.db_url, &["release", "web:web-lida"]).await;
    assert!(ok, "{err}");
    let (ok, out, _) = handoff_cli(&app.db_url, &["list", "--format", "json"]).await;
    assert!(ok && out.trim() == "[]", "{out}");
    app.shutdown().await;
}
