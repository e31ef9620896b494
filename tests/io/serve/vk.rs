//! VK community messages end to end: the real server with VK on against the VK emulator,
//! Callback API calls delivered to `POST /webhooks/vk` the way VK does.

use bot::domain::{ChannelKind, ClientRef};
use bot::store::JobKind;
use std::time::Duration;
use testkit::app::{TestApp, spawn_with_messengers};
use testkit::vk;

fn client(user: i64) -> ClientRef {
    ClientRef {
        channel: ChannelKind::Vk,
        id: user.to_string(),
    }
}

/// The client `user` writes `text` (event id `event`); what they saw after, `expect` at least.
async fn write(
    app: &TestApp,
    user: i64,
    event: &str,
    text: &str,
    expect: usize,
) -> Vec<(String, Option<serde_json::Value>)> {
    let (status, body) = app.vk_call(&vk::message(event, user, text, None)).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    app.vk().wait_shown(user, expect, 5).await
}

/// `user` books a manicure tomorrow afternoon: the `slot`-th slot offered, a name and `phone`;
/// event ids start with `prefix`.
async fn book_on_vk(app: &TestApp, user: i64, prefix: &str, slot: usize, phone: &str) {
    let text = "хочу записаться на маникюр завтра после обеда";
    write(app, user, &format!("{prefix}1"), text, 1).await;
    let keyboard = app
        .vk()
        .shown(user)
        .iter()
        .rev()
        .find_map(|(_, k)| k.clone());
    let slot = vk::payloads(&keyboard)[slot].clone();
    let n = app.vk().shown(user).len();
    let press = vk::press(&format!("{prefix}2"), user, &slot);
    assert_eq!(app.vk_call(&press).await.0, 200);
    app.vk().wait_shown(user, n + 1, 5).await;
    let n = app.vk().shown(user).len();
    let contact = format!("Анна, {phone}");
    write(app, user, &format!("{prefix}3"), &contact, n + 1).await;
}

#[tokio::test]
async fn the_confirmation_handshake_and_a_wrong_community() {
    let app = spawn_with_messengers().await;
    let confirm = serde_json::json!({"type": "confirmation", "group_id": vk::GROUP_ID});
    assert_eq!(
        app.vk_call(&confirm).await,
        (200, vk::CONFIRMATION.to_string())
    );
    let mut signed = confirm.clone();
    signed["secret"] = vk::SECRET.into();
    assert_eq!(app.vk_call(&signed).await.1, vk::CONFIRMATION);
    let other = serde_json::json!({"type": "confirmation", "group_id": 1});
    assert_eq!(app.vk_call(&other).await.0, 401);
    app.shutdown().await;
}

#[tokio::test]
async fn a_wrong_or_missing_secret_is_refused_and_nothing_processed() {
    let app = spawn_with_messengers().await;
    let object = vk::message("e1", 42, "сколько стоит маникюр?", None)["object"].clone();
    for secret in [Some("wrong"), None] {
        let call = vk::event("message_new", "e1", object.clone(), secret);
        assert_eq!(app.vk_call(&call).await.0, 401, "{secret:?}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.counts().await.messages, 0);
    assert!(app.vk().calls("messages.send").is_empty());
    // The same call with the right secret is then processed (it was not marked seen).
    write(&app, 42, "e1", "сколько стоит маникюр?", 1).await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_booking_on_vk_with_callback_buttons_answered_once() {
    let app = spawn_with_messengers().await;
    let user = 515;
    write(&app, user, "e1", "хочу записаться на маникюр", 1).await;
    let n = app.vk().shown(user).len();
    let shown = write(&app, user, "e2", "завтра после обеда", n + 1).await;
    let keyboard = shown
        .iter()
        .rev()
        .find_map(|(_, k)| k.clone())
        .expect("an offer with a keyboard");
    assert_eq!(keyboard["inline"], true);
    let payloads = vk::payloads(&Some(keyboard));
    assert!(!payloads.is_empty());
    let before = shown.len();
    let press = vk::press("e3", user, &payloads[0]);
    assert_eq!(app.vk_call(&press).await, (200, "ok".to_string()));
    let answers = app
        .vk()
        .wait_calls("messages.sendMessageEventAnswer", 1, 5)
        .await;
    assert_eq!(answers[0].params["event_id"], "ev-e3");
    let after = app.vk().wait_shown(user, before + 1, 5).await;
    assert!(after[before].0.contains("имя"), "{:?}", after[before]);
    // Delivered again (VK retries), the press is neither processed nor answered twice.
    assert_eq!(app.vk_call(&press).await.0, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.vk().calls("messages.sendMessageEventAnswer").len(), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn a_redelivered_event_is_processed_once() {
    let app = spawn_with_messengers().await;
    let call = vk::message("same", 77, "сколько стоит маникюр?", None);
    for _ in 0..3 {
        assert_eq!(app.vk_call(&call).await, (200, "ok".to_string()));
    }
    app.vk().wait_shown(77, 1, 5).await;
    app.outbox_drained().await;
    let messages = app.store().await.messages(&client(77)).await.expect("read");
    let (inbound, replies): (Vec<_>, Vec<_>) = messages.iter().partition(|m| m.inbound);
    assert_eq!(inbound.len(), 1);
    assert_eq!(app.vk().shown(77).len(), replies.len());
    app.shutdown().await;
}

#[tokio::test]
async fn a_retried_send_keeps_its_random_id_and_is_shown_once() {
    let app = spawn_with_messengers().await;
    app.vk().too_many(1);
    write(&app, 88, "e1", "сколько стоит маникюр?", 1).await;
    app.outbox_drained().await;
    let refused: Vec<_> = app
        .vk()
        .refused()
        .into_iter()
        .filter(|(c, code)| c.method == "messages.send" && *code == 6)
        .collect();
    assert_eq!(refused.len(), 1, "the first attempt hit error 6");
    let sent = app.vk().calls("messages.send");
    let first = &sent[0];
    assert_eq!(
        refused[0].0.params["random_id"], first.params["random_id"],
        "the retry reuses the random_id"
    );
    assert_eq!(app.vk().shown(88).len(), sent.len());
    app.shutdown().await;
}

#[tokio::test]
async fn a_client_who_forbids_messages_is_a_dead_letter_and_deny_drops_reminders() {
    let app = spawn_with_messengers().await;
    app.vk().deny(91);
    let (status, _) = app
        .vk_call(&vk::message("e1", 91, "сколько стоит маникюр?", None))
        .await;
    assert_eq!(status, 200);
    let store = app.store().await;
    let dead = app.dead_letters().await;
    let reason = dead
        .first()
        .and_then(|j| j.last_error.clone())
        .unwrap_or_default();
    assert!(
        reason.contains("901") && reason.contains("does not accept messages"),
        "{reason}"
    );

    // Another client books, then forbids messages: their reminders are dropped.
    let user = 92;
    book_on_vk(&app, user, "b", 0, "+7 913 123-45-67").await;
    let turns = |jobs: &[bot::store::Job]| {
        jobs.iter()
            .filter(|j| matches!(j.kind, JobKind::Reminder | JobKind::NoShow))
            .count()
    };
    assert!(turns(&store.pending_jobs().await.expect("jobs")) > 0);
    let deny = vk::event(
        "message_deny",
        "b4",
        serde_json::json!({"user_id": user}),
        Some(vk::SECRET),
    );
    assert_eq!(app.vk_call(&deny).await, (200, "ok".to_string()));
    assert_eq!(turns(&store.pending_jobs().await.expect("jobs")), 0);
    // A third client books, then blocks the community: the next reply meets 901, and the
    // reminders, which would meet it too, are dropped.
    let user = 93;
    book_on_vk(&app, user, "c", 1, "+7 913 765-43-21").await;
    assert!(turns(&store.pending_jobs().await.expect("jobs")) > 0);
    app.vk().deny(user);
    let (status, _) = app.vk_call(&vk::message("c4", user, "спасибо", None)).await;
    assert_eq!(status, 200);
    let mut left = usize::MAX;
    for _ in 0..250 {
        left = turns(&store.pending_jobs().await.expect("jobs"));
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left, 0, "the blocked client's reminders are dropped");

    // Unknown events are answered `ok` too; junk is a 400.
    let odd = vk::event(
        "wall_post_new",
        "b5",
        serde_json::json!({}),
        Some(vk::SECRET),
    );
    assert_eq!(app.vk_call(&odd).await, (200, "ok".to_string()));
    let junk = app
        .http
        .post(app.url("/webhooks/vk"))
        .body("ok")
        .send()
        .await
        .expect("post");
    assert_eq!(junk.status().as_u16(), 400);
    app.shutdown().await;
}

#[tokio::test]
async fn bot_vk_check_compares_the_confirmation_string() {
    let emu = vk::VkEmulator::start().await;
    let url = emu.url();
    let group = vk::GROUP_ID.to_string();
    let env = |confirmation: &'static str| {
        [
            ("BOT_VK_TOKEN", vk::TOKEN.to_string()),
            ("BOT_VK_GROUP_ID", group.clone()),
            ("BOT_VK_SECRET", vk::SECRET.to_string()),
            ("BOT_VK_CONFIRMATION", confirmation.to_string()),
            ("BOT_VK_API_URL", url.clone()),
        ]
    };
    let run = |env: [(&'static str, String); 5]| async move {
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        testkit::run_bot!(&["vk", "check"], &pairs).await
    };
    let (code, out, err) = run(env(vk::CONFIRMATION)).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("confirmation: ok"), "{out}");
    let (code, out, _) = run(env("stale")).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(vk::CONFIRMATION), "{out}");
    let mut wrong = env(vk::CONFIRMATION);
    wrong[0].1 = "revoked".into();
    let (code, _, err) = run(wrong).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("error 5") || err.contains("VK error 5"),
        "{err}"
    );
}
