use chrono::{TimeZone, Utc};
use serde_json::json;
use testkit::app::{SECRET, spawn_with_telegram, tg_text};

#[tokio::test]
async fn after_a_restart_the_due_reminder_is_sent_and_nothing_is_sent_twice() {
    let app = spawn_with_telegram().await;
    let chat = 4242;
    let text = "Здравствуйте, хочу записаться на маникюр в субботу в 15:00";
    assert_eq!(
        app.telegram_update(Some(SECRET), &tg_text(1, chat, text))
            .await,
        200
    );
    app.emulator().wait_for("sendMessage", 1, 5).await;
    let contact = json!({
        "update_id": 2,
        "message": {
            "message_id": 2, "date": 1_763_607_700,
            "from": { "id": chat, "is_bot": false, "first_name": "Марина" },
            "chat": { "id": chat, "type": "private" },
            "contact": { "phone_number": "+79131234567", "first_name": "Марина", "user_id": chat }
        }
    });
    assert_eq!(app.telegram_update(Some(SECRET), &contact).await, 200);
    let before = app.emulator().wait_for("sendMessage", 2, 5).await;
    let booked = before
        .last()
        .and_then(|c| c.params["text"].as_str())
        .unwrap_or_default();
    assert!(
        booked.contains("21.11") && booked.contains("15:00"),
        "{booked}"
    );
    app.outbox_drained().await;
    let before = app.emulator().calls("sendMessage").len();

    // Friday 15:01 in Novosibirsk: the day-before reminder of Saturday 15:00 is due.
    let app = app
        .restart_at(Utc.with_ymd_and_hms(2026, 11, 20, 8, 1, 0).unwrap())
        .await;
    let sent = app.emulator().wait_for("sendMessage", before + 1, 5).await;
    let reminder = &sent[before].params;
    assert_eq!(reminder["chat_id"], chat);
    assert!(
        reminder["text"]
            .as_str()
            .is_some_and(|t| t.contains("15:00")),
        "{reminder}"
    );
    app.outbox_drained().await;
    let store = app.store().await;
    let pending: Vec<_> = store
        .pending_jobs()
        .await
        .expect("jobs")
        .into_iter()
        .filter(|j| j.kind == bot::store::JobKind::Send)
        .collect();
    assert!(pending.is_empty(), "unsent replies: {pending:?}");
    let client = bot::domain::ClientRef {
        channel: bot::domain::ChannelKind::Telegram,
        id: chat.to_string(),
    };
    let replies = store
        .messages(&client)
        .await
        .expect("messages")
        .into_iter()
        .filter(|m| !m.inbound)
        .count();
    assert_eq!(app.emulator().calls("sendMessage").len(), replies);
    app.shutdown().await;
}

/// A Telegram send cut off by a crash (recorded as started, never finished) may have reached
/// the chat: after the restart it is a dead letter with the reason, not a second message; a
/// retry by the operator sends it once.
#[tokio::test]
async fn a_send_cut_off_by_a_crash_is_dead_lettered_not_sent_twice() {
    use bot::store::JobKind;
    let app = spawn_with_telegram().await;
    let chat = 5151;
    app.telegram_update(Some(SECRET), &tg_text(1, chat, "сколько стоит маникюр?"))
        .await;
    app.emulator().wait_for("sendMessage", 1, 5).await;
    app.outbox_drained().await;
    let stopped = app.stop().await;

    // What the dead process left behind: a manager's answer, claimed and handed to Telegram.
    let store = bot::store::Store::open(&stopped.db_url)
        .await
        .expect("store");
    let client = bot::domain::ClientRef {
        channel: bot::domain::ChannelKind::Telegram,
        id: chat.to_string(),
    };
    let at = testkit::app::friday_10am() + chrono::Duration::minutes(1);
    let text = "Ответ администратора, который мог не дойти";
    store
        .manager_message("crash-test", &client, text, None, at)
        .await
        .expect("manager message")
        .expect("stored");
    let claimed = store
        .claim_outbox(&[JobKind::Send], at, chrono::Duration::seconds(60), 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert!(store.start_send(claimed[0].id, at).await.expect("start"));
    store.close().await;

    let app = stopped
        .start_at(at + chrono::Duration::minutes(2), Default::default())
        .await;
    let store = app.store().await;
    let dead = app.dead_letters().await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let reason = dead[0].last_error.clone().unwrap_or_default();
    assert!(
        reason.contains("interrupted while sending") && reason.contains("bot outbox retry"),
        "{reason}"
    );
    let to_chat = |app: &testkit::app::TestApp| {
        app.emulator()
            .calls("sendMessage")
            .iter()
            .filter(|c| c.params["text"] == text)
            .count()
    };
    assert_eq!(to_chat(&app), 0, "never sent a second time on its own");

    assert!(
        store
            .reopen_job(dead[0].id, at + chrono::Duration::minutes(2))
            .await
            .expect("retry")
    );
    app.emulator().wait_for_message(chat, text, 5).await;
    app.outbox_drained().await;
    assert_eq!(to_chat(&app), 1);
    assert!(store.dead_jobs().await.expect("dead letters").is_empty());
    app.shutdown().await;
}
