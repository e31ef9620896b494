use bot::channels::telegram::{TelegramApi, TelegramConfig};
use std::time::Duration;
use testkit::app::{SECRET, TOKEN, friday_10am, spawn_polling, tg_press, tg_text};
use testkit::telegram::TelegramEmulator;

async fn until_confirmed(emu: &TelegramEmulator) {
    for _ in 0..250 {
        if emu.unconfirmed() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("updates were not confirmed by an offset");
}

#[tokio::test]
async fn polling_processes_each_update_once_and_confirms_it() {
    let app = spawn_polling().await;
    let emu = app.emulator();
    emu.push_update(tg_text(10, 55, "сколько стоит маникюр?"));
    let sent = emu.wait_for("sendMessage", 1, 5).await;
    assert_eq!(sent[0].params["chat_id"], 55);
    until_confirmed(emu).await;

    // Telegram hands the same update out again (say the offset was lost): it is ignored.
    emu.push_update(tg_text(10, 55, "сколько стоит маникюр?"));
    emu.push_update(tg_text(11, 55, "где вы находитесь?"));
    until_confirmed(emu).await;
    app.outbox_drained().await;
    assert_eq!(app.counts().await.processed_inbound, 2);
    let client = bot::domain::ClientRef {
        channel: bot::domain::ChannelKind::Telegram,
        id: "55".into(),
    };
    let messages = app.store().await.messages(&client).await.expect("messages");
    let replies = messages.iter().filter(|m| !m.inbound).count();
    assert_eq!(messages.len() - replies, 2);
    assert_eq!(emu.calls("sendMessage").len(), replies);
    app.shutdown().await;
}

#[tokio::test]
async fn a_press_fetched_again_is_not_answered_again() {
    let app = spawn_polling().await;
    let emu = app.emulator();
    emu.push_update(tg_press(30, "cbq-poll", Some("prices")));
    emu.wait_for("answerCallbackQuery", 1, 5).await;
    until_confirmed(emu).await;
    // The bot stopped before Telegram saw the offset move past the update: after the restart
    // (no offset known) the same update is handed out again. Nothing happens, no second answer.
    let app = app.restart_at(friday_10am()).await;
    let emu = app.emulator();
    emu.push_update(tg_press(30, "cbq-poll", Some("prices")));
    until_confirmed(emu).await;
    app.outbox_drained().await;
    assert_eq!(emu.calls("answerCallbackQuery").len(), 1);
    emu.assert_none_refused("answerCallbackQuery");
    assert_eq!(app.counts().await.processed_inbound, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn set_webhook_registers_the_url_with_the_secret() {
    let emu = TelegramEmulator::start(TOKEN).await;
    let api = TelegramApi::new(&TelegramConfig {
        token: TOKEN.into(),
        secret: Some(SECRET.into()),
        api_url: emu.url(),
        groups: Vec::new(),
    })
    .expect("client");
    api.set_webhook("https://salon.example/webhooks/telegram", SECRET)
        .await
        .expect("setWebhook");
    assert_eq!(
        emu.webhook().as_deref(),
        Some("https://salon.example/webhooks/telegram")
    );
    let calls = emu.calls("setWebhook");
    assert_eq!(calls[0].params["secret_token"], SECRET);
    assert_eq!(
        calls[0].params["allowed_updates"],
        serde_json::json!(["message", "callback_query"])
    );

    // Telegram refuses a plain-HTTP URL, and the error says why.
    let err = api
        .set_webhook("http://salon.example/hook", SECRET)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("HTTPS"), "{err}");
    // While a webhook is set, polling is refused until it is deleted.
    assert!(api.get_updates(None, 0).await.is_err());
    api.delete_webhook().await.expect("deleteWebhook");
    assert_eq!(
        api.get_updates(None, 0).await.expect("updates"),
        serde_json::json!([])
    );
}
