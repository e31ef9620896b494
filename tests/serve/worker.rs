use crate::support::{SECRET, spawn_with_telegram, tg_text};
use chrono::{TimeZone, Utc};
use serde_json::json;

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
