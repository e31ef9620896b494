use crate::support::{SECRET, TOKEN, spawn_polling, tg_text};
use crate::telegram_emulator::TelegramEmulator;
use std::time::Duration;

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
async fn set_webhook_registers_the_url_with_the_secret() {
    let emu = TelegramEmulator::start(TOKEN).await;
    let run = |url: &str, secret: &str| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_bot"))
            .args(["telegram", "set-webhook", "--url", url])
            .env("BOT_TELEGRAM_TOKEN", TOKEN)
            .env("BOT_TELEGRAM_SECRET", secret)
            .env("BOT_TELEGRAM_API_URL", emu.url())
            .output()
    };
    let out = run("https://salon.example/webhooks/telegram", SECRET)
        .await
        .expect("bot runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        emu.webhook().as_deref(),
        Some("https://salon.example/webhooks/telegram")
    );
    let calls = emu.calls("setWebhook");
    assert_eq!(calls[0].params["secret_token"], SECRET);

    // Telegram refuses a plain-HTTP URL; the command says so and exits 2.
    let out = run("http://salon.example/hook", SECRET)
        .await
        .expect("bot runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTPS"));
    // A secret Telegram would refuse is caught before calling it.
    let out = run("https://salon.example/hook", "no spaces allowed")
        .await
        .expect("bot runs");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(emu.calls("setWebhook").len(), 1);
}
