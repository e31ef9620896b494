use serde_json::json;
use std::time::Duration;
use testkit::app::{SECRET, TOKEN, spawn_app, spawn_with_telegram, tg_contact, tg_press, tg_text};
use testkit::telegram::TelegramEmulator;

#[tokio::test]
async fn wrong_or_missing_secret_is_rejected_and_nothing_processed() {
    let app = spawn_with_telegram().await;
    let update = tg_text(1, 555, "хочу записаться на маникюр");
    assert_eq!(app.telegram_update(Some("wrong"), &update).await, 401);
    assert_eq!(app.telegram_update(None, &update).await, 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.counts().await.messages, 0);
    assert!(app.emulator().calls("sendMessage").is_empty());
    // The same update with the right secret is then processed (it was not marked seen).
    assert_eq!(app.telegram_update(Some(SECRET), &update).await, 200);
    app.emulator().wait_for("sendMessage", 1, 5).await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_duplicate_update_is_processed_once() {
    let app = spawn_with_telegram().await;
    let update = tg_text(42, 777, "сколько стоит маникюр?");
    assert_eq!(app.telegram_update(Some(SECRET), &update).await, 200);
    assert_eq!(app.telegram_update(Some(SECRET), &update).await, 200);
    app.emulator().wait_for("sendMessage", 1, 5).await;
    app.outbox_drained().await;
    let store = app.store().await;
    assert_eq!(store.counts().await.expect("counts").processed_inbound, 1);
    let client = bot::domain::ClientRef {
        channel: bot::domain::ChannelKind::Telegram,
        id: "777".into(),
    };
    let messages = store.messages(&client).await.expect("messages");
    let (inbound, replies): (Vec<_>, Vec<_>) = messages.iter().partition(|m| m.inbound);
    assert_eq!(inbound.len(), 1);
    // Each stored reply was sent exactly once.
    assert_eq!(app.emulator().calls("sendMessage").len(), replies.len());
    assert!(replies.iter().all(|m| m.sent_at.is_some()), "{replies:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn slot_offer_arrives_with_an_inline_keyboard_and_a_press_is_answered() {
    let app = spawn_with_telegram().await;
    let emu = app.emulator();
    assert_eq!(
        app.telegram_update(Some(SECRET), &tg_text(1, 901, "хочу записаться на маникюр"))
            .await,
        200
    );
    emu.wait_for("sendMessage", 1, 5).await;
    assert_eq!(
        app.telegram_update(Some(SECRET), &tg_text(2, 901, "завтра после обеда"))
            .await,
        200
    );
    let sent = emu.wait_for("sendMessage", 2, 5).await;
    let offer = &sent[1].params;
    assert_eq!(offer["chat_id"], 901);
    let button = &offer["reply_markup"]["inline_keyboard"][0][0];
    let data = button["callback_data"]
        .as_str()
        .expect("callback_data")
        .to_string();
    assert!(data.starts_with("slot:"), "{offer}");

    let press = tg_press(3, "cbq-1", Some(&data));
    assert_eq!(app.telegram_update(Some(SECRET), &press).await, 200);
    let answers = emu.wait_for("answerCallbackQuery", 1, 5).await;
    assert_eq!(answers[0].params["callback_query_id"], "cbq-1");
    let sent = emu.wait_for("sendMessage", 3, 5).await;
    assert!(
        sent[2].params["text"]
            .as_str()
            .is_some_and(|t| t.contains("21.11")),
        "{:?}",
        sent[2].params
    );

    // A shared contact is the phone: the booking is made and confirmed.
    let contact = tg_contact(
        4,
        901,
        json!({ "phone_number": "79131234567", "first_name": "Марина", "user_id": 901 }),
    );
    assert_eq!(app.telegram_update(Some(SECRET), &contact).await, 200);
    let sent = emu.wait_for("sendMessage", 4, 5).await;
    let text = sent[3].params["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(text.contains("21.11"), "{text}");
    assert_eq!(app.counts().await.active_bookings, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn someone_elses_contact_card_is_read_as_typed_text() {
    let app = spawn_with_telegram().await;
    let card = tg_contact(
        7,
        902,
        json!({ "phone_number": "+79131234567", "first_name": "Анна",
                "last_name": "Петрова", "user_id": 903 }),
    );
    assert_eq!(app.telegram_update(Some(SECRET), &card).await, 200);
    app.emulator().wait_for("sendMessage", 1, 5).await;
    let client = bot::domain::ClientRef {
        channel: bot::domain::ChannelKind::Telegram,
        id: "902".into(),
    };
    let messages = app.store().await.messages(&client).await.expect("messages");
    let inbound: Vec<_> = messages.iter().filter(|m| m.inbound).collect();
    assert_eq!(inbound.len(), 1, "{messages:?}");
    assert_eq!(inbound[0].kind, "text", "not the client's own contact");
    assert_eq!(inbound[0].text, "+79131234567 Анна Петрова");
    app.shutdown().await;
}

#[tokio::test]
async fn a_redelivered_button_press_is_not_answered_again() {
    let app = spawn_with_telegram().await;
    let emu = app.emulator();
    for press in [
        tg_press(20, "cbq-data", Some("prices")),
        tg_press(21, "cbq-bare", None),
    ] {
        assert_eq!(app.telegram_update(Some(SECRET), &press).await, 200);
        assert_eq!(app.telegram_update(Some(SECRET), &press).await, 200);
    }
    emu.wait_for("answerCallbackQuery", 2, 5).await;
    app.outbox_drained().await;
    let answered: Vec<_> = emu
        .calls("answerCallbackQuery")
        .iter()
        .map(|c| c.params["callback_query_id"].clone())
        .collect();
    assert_eq!(answered.len(), 2, "{answered:?}");
    emu.assert_none_refused("answerCallbackQuery");
    assert_eq!(app.counts().await.processed_inbound, 2);
    app.shutdown().await;
}

#[tokio::test]
async fn group_messages_are_ignored() {
    let app = spawn_with_telegram().await;
    let update = json!({
        "update_id": 9,
        "message": { "message_id": 1, "date": 1_763_607_600,
                     "chat": { "id": -100_123, "type": "supergroup", "title": "Салон" },
                     "text": "хочу записаться" }
    });
    assert_eq!(app.telegram_update(Some(SECRET), &update).await, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.emulator().calls("sendMessage").is_empty());
    assert_eq!(app.counts().await.messages, 0);
    app.shutdown().await;
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after() {
    let app = spawn_with_telegram().await;
    app.emulator().rate_limit_next(1, 1);
    let started = std::time::Instant::now();
    assert_eq!(
        app.telegram_update(Some(SECRET), &tg_text(5, 321, "где вы находитесь?"))
            .await,
        200
    );
    let sent = app.emulator().wait_for("sendMessage", 1, 6).await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(sent.len(), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn without_a_token_telegram_is_off() {
    let app = spawn_app().await;
    let status = app
        .telegram_update(Some(SECRET), &tg_text(1, 1, "привет"))
        .await;
    assert_eq!(status, 404);
    app.shutdown().await;
}

#[tokio::test]
async fn the_emulator_refuses_what_telegram_refuses() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let emu = TelegramEmulator::start(TOKEN).await;
    let http = reqwest::Client::new();
    let keyboard = |b: serde_json::Value| json!({ "inline_keyboard": [[b]] });
    let send = format!("/bot{TOKEN}/sendMessage");
    let cases = [
        (
            "wrong token",
            "/bot1:other/sendMessage".to_string(),
            json!({ "chat_id": 1, "text": "hi" }),
            401,
        ),
        (
            "unknown method",
            format!("/bot{TOKEN}/sendMagic"),
            json!({}),
            404,
        ),
        ("no chat", send.clone(), json!({ "text": "hi" }), 400),
        (
            "empty text",
            send.clone(),
            json!({ "chat_id": 1, "text": "" }),
            400,
        ),
        (
            "long text",
            send.clone(),
            json!({ "chat_id": 1, "text": "я".repeat(4097) }),
            400,
        ),
        (
            "long callback_data",
            send.clone(),
            json!({ "chat_id": 1, "text": "t", "reply_markup": keyboard(json!({ "text": "b", "callback_data": "x".repeat(65) })) }),
            400,
        ),
        (
            "two actions",
            send.clone(),
            json!({ "chat_id": 1, "text": "t", "reply_markup": keyboard(json!({ "text": "b", "callback_data": "x", "url": "https://a" })) }),
            400,
        ),
        (
            "no callback id",
            format!("/bot{TOKEN}/answerCallbackQuery"),
            json!({}),
            400,
        ),
        (
            "valid",
            send.clone(),
            json!({ "chat_id": 1, "text": "ok" }),
            200,
        ),
        (
            "first answer",
            format!("/bot{TOKEN}/answerCallbackQuery"),
            json!({ "callback_query_id": "q1" }),
            200,
        ),
        (
            "second answer to one press",
            format!("/bot{TOKEN}/answerCallbackQuery"),
            json!({ "callback_query_id": "q1" }),
            400,
        ),
    ];
    for (what, path, body, want) in cases {
        let resp = http
            .post(format!("{}{path}", emu.url()))
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), want, "{what}");
        let answer: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(answer["ok"], want == 200, "{what}: {answer}");
    }
    assert_eq!(emu.calls("sendMessage").len(), 1);
    let refused = std::panic::catch_unwind(|| emu.assert_none_refused("answerCallbackQuery"));
    assert!(refused.is_err(), "the second answer to q1 was refused");
    emu.assert_none_refused("getMe");
}

#[tokio::test]
async fn one_message_per_second_in_a_chat_while_other_chats_are_not_held_up() {
    let app = spawn_with_telegram().await;
    let emu = app.emulator();
    for (id, chat, text) in [
        (1, 11, "сколько стоит маникюр?"),
        (2, 11, "где вы находитесь?"),
        (3, 12, "сколько стоит педикюр?"),
    ] {
        assert_eq!(
            app.telegram_update(Some(SECRET), &tg_text(id, chat, text))
                .await,
            200
        );
    }
    emu.wait_for("sendMessage", 3, 10).await;
    app.outbox_drained().await;
    let sent = emu.calls("sendMessage");
    let times = |chat: i64| -> Vec<std::time::Instant> {
        sent.iter()
            .filter(|c| c.params["chat_id"] == chat)
            .map(|c| c.at)
            .collect()
    };
    let (a, b) = (times(11), times(12));
    assert!(a.len() >= 2 && !b.is_empty(), "{sent:?}");
    for pair in a.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(
            gap >= Duration::from_millis(950),
            "two messages {gap:?} apart in one chat"
        );
    }
    let apart = if a[0] > b[0] {
        a[0] - b[0]
    } else {
        b[0] - a[0]
    };
    assert!(
        apart < Duration::from_millis(700),
        "chat 12 waited for chat 11: {apart:?}"
    );
}

#[tokio::test]
async fn serve_and_set_webhook_refuse_a_secret_telegram_would_refuse() {
    let emu = TelegramEmulator::start(TOKEN).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("bot.db").display());
    let says_why =
        |err: &str| err.contains("BOT_TELEGRAM_SECRET") && err.contains("A-Z a-z 0-9 _ -");
    for secret in ["with space", "ключ", "a.b", &"a".repeat(257)] {
        let env = [
            ("BOT_TELEGRAM_TOKEN", TOKEN),
            ("BOT_TELEGRAM_SECRET", secret),
        ];
        let serve = tokio::task::spawn_blocking({
            let (db, secret) = (db.clone(), secret.to_string());
            move || {
                let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bot"))
                    .args(["serve", "--listen", "127.0.0.1:0", "--db", db.as_str()])
                    .env("BOT_TELEGRAM_TOKEN", TOKEN)
                    .env("BOT_TELEGRAM_SECRET", secret)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("start bot serve");
                let deadline = std::time::Instant::now() + Duration::from_secs(20);
                while child.try_wait().ok().flatten().is_none()
                    && std::time::Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = child.kill();
                child.wait_with_output().expect("bot serve output")
            }
        });
        let out = serve.await.expect("join");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "serve with {secret:?}: {err}");
        assert!(says_why(&err), "{err}");

        let args = [
            "telegram",
            "set-webhook",
            "--url",
            "https://salon.example/webhooks/telegram",
        ];
        let mut env = env.to_vec();
        let api_url = emu.url();
        env.push(("BOT_TELEGRAM_API_URL", api_url.as_str()));
        let (code, _, err) = testkit::run_bot!(&args, &env).await;
        assert_eq!(code, 2, "set-webhook with {secret:?}: {err}");
        assert!(says_why(&err), "{err}");
    }
    assert!(emu.calls("setWebhook").is_empty());
}
