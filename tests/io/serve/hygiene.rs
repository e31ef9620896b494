//! What clients send that a database or a screen should never see: control characters
//! (a NUL, which PostgreSQL refuses), and an update that fails every time it is processed.
//! On PostgreSQL, because SQLite takes a NUL without complaint.

use bot::domain::{ChannelKind, ClientRef};
use serde_json::json;
use std::time::Duration;
use testkit::app::{PgSchema, TestApp, spawn_on_postgres, tg_text};

/// The app on a fresh PostgreSQL schema, Telegram by `polling` or off; None without PostgreSQL.
async fn app_on_postgres(polling: bool) -> Option<(PgSchema, TestApp)> {
    let pg = PgSchema::create().await?;
    let app = spawn_on_postgres(&pg.url, polling).await;
    Some((pg, app))
}

#[tokio::test]
async fn a_nul_in_text_or_button_is_stripped_and_a_nul_message_id_refused_on_postgres() {
    let Some((_pg, app)) = app_on_postgres(false).await else {
        return;
    };
    app.say("nul", "сколько стоит\u{0} маникюр?\u{1b}").await;
    app.press("nul", "\u{0}menu").await;
    let (status, body) = app
        .post_json(
            "/api/v1/messages",
            &json!({ "client_id": "nul", "text": "привет", "message_id": "a\u{0}b" }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("message_id"),
        "{body}"
    );
    let client = ClientRef {
        channel: ChannelKind::Web,
        id: "nul".into(),
    };
    let stored = app.store().await.messages(&client).await.expect("messages");
    let texts: Vec<&str> = stored
        .iter()
        .filter(|m| m.inbound)
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(texts, ["сколько стоит маникюр?", "menu"]);
    app.shutdown().await;
}

#[tokio::test]
async fn a_telegram_update_with_a_nul_is_processed_by_polling_on_postgres() {
    let Some((_pg, app)) = app_on_postgres(true).await else {
        return;
    };
    let emu = app.emulator();
    emu.push_update(tg_text(20, 77, "сколько стоит маникюр?\u{0}"));
    emu.push_update(tg_text(21, 77, "где вы находитесь?"));
    let sent = emu.wait_for("sendMessage", 2, 10).await;
    assert_eq!(sent[0].params["chat_id"], 77);
    app.shutdown().await;
}

#[tokio::test]
async fn polling_gives_up_an_update_that_always_fails_and_serves_the_next() {
    let Some((pg, app)) = app_on_postgres(true).await else {
        return;
    };
    // A fault inside the database: storing the message «яд» always fails.
    let admin = sqlx::PgPool::connect(&pg.url).await.expect("connect");
    sqlx::raw_sql(
        "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.text = 'яд' THEN RAISE EXCEPTION 'poisoned message'; END IF; RETURN NEW; \
         END $$; \
         CREATE TRIGGER poison BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION poison();",
    )
    .execute(&admin)
    .await
    .expect("trigger");
    admin.close().await;

    let emu = app.emulator();
    emu.push_update(tg_text(30, 88, "яд"));
    emu.push_update(tg_text(31, 88, "сколько стоит маникюр?"));
    // Five attempts a second apart, then the next update is served.
    let sent = emu.wait_for("sendMessage", 1, 30).await;
    assert_eq!(sent[0].params["chat_id"], 88);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("bot_errors_total{kind=\"telegram_update_dropped\"} 1"),
        "{metrics}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.shutdown().await;
}
