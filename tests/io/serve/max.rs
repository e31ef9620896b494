//! MAX end to end: the real server with MAX on against the MAX emulator, updates delivered to
//! `POST /webhooks/max` the way MAX does (secret header, redelivery until 200).

use bot::domain::{ChannelKind, ClientRef};
use bot::store::JobKind;
use serde_json::Value;
use std::time::Duration;
use testkit::app::{TestApp, spawn_with_messengers};
use testkit::max;

const T0: i64 = 1_763_607_600_000;

fn client(user: i64) -> ClientRef {
    ClientRef {
        channel: ChannelKind::Max,
        id: user.to_string(),
    }
}

/// The client `user` writes `text` (message id from `n`); the bot's messages to them after.
async fn write(app: &TestApp, user: i64, n: i64, text: &str, expect: usize) -> Vec<Value> {
    let mid = format!("mid.{user}.{n}");
    assert_eq!(
        app.max_update(&max::text(&mid, user, text, T0 + n)).await,
        200
    );
    app.max().wait_messages(user, expect, 5).await
}

#[tokio::test]
async fn a_booking_on_max_with_buttons_answered_and_the_keyboard_replaced() {
    let app = spawn_with_messengers().await;
    let user = 3_216_549;
    let sent = write(&app, user, 1, "хочу записаться на маникюр", 1).await;
    let n = sent.len();
    let sent = write(&app, user, 2, "завтра после обеда", n + 1).await;
    let offer = sent.last().expect("an offer").clone();
    let slots: Vec<String> = max::payloads(&offer);
    assert!(!slots.is_empty(), "no buttons: {offer}");
    assert_eq!(
        offer["attachments"][0]["payload"]["buttons"][0][0]["type"],
        "callback"
    );
    let before = sent.len();
    let press = max::press("cb-1", user, &slots[0], Some(&offer), T0 + 3);
    assert_eq!(app.max_update(&press).await, 200);
    let answers = app.max().wait_calls("POST /answers", 1, 5).await;
    assert_eq!(answers[0].query["callback_id"], "cb-1");
    let shown = answers[0].body["message"]["text"].as_str().unwrap_or("");
    assert!(
        shown.contains('✓'),
        "the keyboard is replaced by the choice: {shown}"
    );
    let after = app.max().wait_messages(user, before + 1, 5).await;
    let said: String = after[before..]
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert!(
        said.contains("Как к вам") || said.contains("имя") || said.contains("Записала"),
        "{said}"
    );
    // The press, delivered again, is neither processed nor answered twice.
    assert_eq!(app.max_update(&press).await, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.max().calls("POST /answers").len(), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn a_wrong_or_missing_secret_is_refused_and_nothing_processed() {
    let app = spawn_with_messengers().await;
    let update = max::text("mid.x", 77, "сколько стоит маникюр?", T0);
    let url = app.url("/webhooks/max");
    assert_eq!(
        max::deliver(&app.http, &url, Some("wrong-secret"), &update).await,
        401
    );
    assert_eq!(max::deliver(&app.http, &url, None, &update).await, 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.counts().await.messages, 0);
    assert!(app.max().calls("POST /messages").is_empty());
    // The same update with the right secret is then processed (it was not marked seen).
    assert_eq!(app.max_update(&update).await, 200);
    app.max().wait_messages(77, 1, 5).await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_redelivered_update_is_processed_once() {
    let app = spawn_with_messengers().await;
    let update = max::text("mid.same", 88, "сколько стоит маникюр?", T0);
    for _ in 0..3 {
        assert_eq!(app.max_update(&update).await, 200);
    }
    app.max().wait_messages(88, 1, 5).await;
    app.outbox_drained().await;
    let store = app.store().await;
    let messages = store.messages(&client(88)).await.expect("messages");
    let (inbound, replies): (Vec<_>, Vec<_>) = messages.iter().partition(|m| m.inbound);
    assert_eq!(inbound.len(), 1);
    assert_eq!(app.max().messages_to(88).len(), replies.len());
    assert!(replies.iter().all(|m| m.sent_at.is_some()), "{replies:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn the_clients_own_contact_card_gives_the_phone() {
    let app = spawn_with_messengers().await;
    write(&app, 99, 1, "хочу записаться на маникюр", 1).await;
    let card = max::contact("mid.card", 99, "+79131234567", T0 + 5);
    assert_eq!(app.max_update(&card).await, 200);
    app.outbox_drained().await;
    let conversation = app
        .store()
        .await
        .conversation(&client(99))
        .await
        .expect("read")
        .expect("a conversation");
    assert_eq!(
        conversation.contact.phone.as_deref(),
        Some("+79131234567"),
        "{:?}",
        conversation.contact
    );
    app.shutdown().await;
}

/// `user` books a manicure: the first offered slot, name and phone given.
async fn book(app: &TestApp, user: i64) {
    let n = app.max().messages_to(user).len();
    let sent = write(
        app,
        user,
        20,
        "хочу записаться на маникюр завтра после обеда",
        n + 1,
    )
    .await;
    let offer = sent
        .iter()
        .rev()
        .find(|m| !max::payloads(m).is_empty())
        .expect("an offer with buttons")
        .clone();
    let slot = max::payloads(&offer)[0].clone();
    let n = sent.len();
    let press = max::press(&format!("cb-{user}"), user, &slot, Some(&offer), T0 + 21);
    assert_eq!(app.max_update(&press).await, 200);
    let sent = app.max().wait_messages(user, n + 1, 5).await;
    let n = sent.len();
    write(app, user, 22, "Анна, +7 913 123-45-67", n + 1).await;
    app.outbox_drained().await;
}

#[tokio::test]
async fn started_greets_stopped_drops_reminders_unknown_is_ignored() {
    let app = spawn_with_messengers().await;
    let user = 4242;
    assert_eq!(
        app.max_update(&max::started(user, Some("vk-ad"), T0)).await,
        200
    );
    let greeting = app.max().wait_messages(user, 1, 5).await;
    assert!(
        greeting[0]["text"].as_str().is_some_and(|t| !t.is_empty()),
        "{greeting:?}"
    );
    // A booking, then the client stops the bot: its reminders are dropped.
    book(&app, user).await;
    app.outbox_drained().await;
    let reminders = |jobs: &[bot::store::Job]| {
        jobs.iter()
            .filter(|j| matches!(j.kind, JobKind::Reminder | JobKind::NoShow))
            .count()
    };
    // The deep link's campaign travels with the lead (Bitrix24's UTM_SOURCE).
    let leads = app.store().await.leads().await.expect("leads");
    assert_eq!(leads.len(), 1, "{leads:?}");
    assert_eq!(leads[0].came_from.as_deref(), Some("vk-ad"));
    let before = app.store().await.pending_jobs().await.expect("jobs");
    assert!(
        reminders(&before) > 0,
        "the booking has reminders: {before:?}"
    );
    assert_eq!(app.max_update(&max::stopped(user, T0 + 10)).await, 200);
    let pending = app.store().await.pending_jobs().await.expect("jobs");
    assert_eq!(reminders(&pending), 0, "{pending:?}");
    // Unknown kinds are accepted and ignored.
    let odd = serde_json::json!({"update_type": "chat_title_changed", "timestamp": T0});
    assert_eq!(app.max_update(&odd).await, 200);
    assert_eq!(app.max_update(&serde_json::json!([1, 2])).await, 400);
    app.shutdown().await;
}

#[tokio::test]
async fn a_429_is_waited_out_and_a_revoked_token_dead_letters_with_the_fix() {
    let app = spawn_with_messengers().await;
    app.max().rate_limit(1);
    write(&app, 501, 1, "сколько стоит маникюр?", 1).await;
    assert!(
        app.max()
            .refused()
            .iter()
            .any(|(_, status, _)| *status == 429)
    );
    app.max().revoke_token();
    assert_eq!(
        app.max_update(&max::text("mid.r", 502, "сколько стоит педикюр?", T0))
            .await,
        200
    );
    let dead = app.dead_letters().await;
    let reason = dead
        .first()
        .and_then(|j| j.last_error.clone())
        .unwrap_or_default();
    assert!(
        reason.contains("verify.token") && reason.contains("BOT_MAX_TOKEN"),
        "{reason}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn bot_max_subscribe_registers_the_webhook_with_the_secret() {
    let emu = max::MaxEmulator::start().await;
    let url = emu.url();
    let env = [
        ("BOT_MAX_TOKEN", max::TOKEN),
        ("BOT_MAX_SECRET", max::SECRET),
        ("BOT_MAX_API_URL", url.as_str()),
    ];
    let args = [
        "max",
        "subscribe",
        "--url",
        "https://bot.example.ru/webhooks/max",
    ];
    let (code, out, err) = testkit::run_bot!(&args, &env).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("subscription: https://bot.example.ru/webhooks/max"),
        "{out}"
    );
    let subs = emu.calls("POST /subscriptions");
    assert_eq!(subs[0].body["secret"], max::SECRET);
    assert!(
        subs[0].body["update_types"]
            .as_array()
            .is_some_and(|t| t.len() >= 4)
    );
    // Plain HTTP is refused before MAX is asked; so is a missing secret.
    let args = [
        "max",
        "subscribe",
        "--url",
        "http://bot.example.ru/webhooks/max",
    ];
    let (code, _, err) = testkit::run_bot!(&args, &env).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("HTTPS"), "{err}");
    let (code, _, err) = testkit::run_bot!(&args, &env[..1]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("BOT_MAX_SECRET"), "{err}");
    assert_eq!(emu.calls("POST /subscriptions").len(), 1);
}
