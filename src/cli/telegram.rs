//! `bot telegram set-webhook --url URL`: tell Telegram where `bot serve` receives updates, with
//! the secret (`BOT_TELEGRAM_SECRET`) it must send back. Token and secret come only from the
//! environment.

use super::serve::{env_secret, telegram_secret};
use crate::channels::telegram::{DEFAULT_API_URL, TelegramApi, TelegramConfig};
use anyhow::{Context, bail};
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum TelegramCommand {
    /// Register the webhook URL (https://…/webhooks/telegram) with the secret token.
    SetWebhook {
        /// The public HTTPS URL of `POST /webhooks/telegram`.
        #[arg(long)]
        url: String,
        /// Telegram Bot API base URL.
        #[arg(long, env = "BOT_TELEGRAM_API_URL", default_value = DEFAULT_API_URL)]
        api_url: String,
    },
}

pub fn run(cmd: TelegramCommand) -> ExitCode {
    super::db::block_on(async move {
        match cmd {
            TelegramCommand::SetWebhook { url, api_url } => {
                let Some(token) = env_secret("BOT_TELEGRAM_TOKEN") else {
                    bail!("BOT_TELEGRAM_TOKEN is not set");
                };
                let Some(secret) = telegram_secret()? else {
                    bail!(
                        "BOT_TELEGRAM_SECRET is not set (1 to 256 characters of A-Z a-z 0-9 _ -)"
                    );
                };
                let api = TelegramApi::new(&TelegramConfig {
                    token,
                    secret: Some(secret.clone()),
                    api_url,
                    groups: Vec::new(),
                })?;
                api.set_webhook(&url, &secret).await.context("setWebhook")?;
                println!("webhook set: {url}");
                Ok(())
            }
        }
    })
}
