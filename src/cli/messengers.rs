//! `bot max subscribe --url URL` and `bot vk check`: tell MAX where `bot serve` receives its
//! updates (with `BOT_MAX_SECRET`, which MAX sends back in `X-Max-Bot-Api-Secret`), and verify
//! that the VK community token, id and confirmation string agree with what VK expects. Tokens
//! and secrets come only from the environment.

use crate::channels::max::{self, MaxApi, MaxConfig};
use crate::channels::vk::{VkApi, VkConfig};
use anyhow::{Context, bail};
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum MaxCommand {
    /// Subscribe the webhook URL (https://…/webhooks/max) with the secret; lists the
    /// subscriptions MAX then has.
    Subscribe {
        /// The public HTTPS URL of `POST /webhooks/max` (port 443, a trusted certificate).
        #[arg(long)]
        url: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum VkCommand {
    /// Check the community token and that BOT_VK_CONFIRMATION is the string VK expects; exit 1
    /// when they disagree.
    Check,
}

pub fn run_max(cmd: MaxCommand) -> ExitCode {
    super::db::block_on(async move {
        match cmd {
            MaxCommand::Subscribe { url } => {
                let Some(config) = MaxConfig::from_env() else {
                    bail!("BOT_MAX_TOKEN is not set");
                };
                let Some(secret) = config.secret.clone() else {
                    bail!("BOT_MAX_SECRET is not set (5 to 256 characters of A-Z a-z 0-9 _ -)");
                };
                if !max::valid_secret(&secret) {
                    bail!("BOT_MAX_SECRET must be 5 to 256 characters of A-Z a-z 0-9 _ -");
                }
                if !url.starts_with("https://") {
                    bail!("MAX delivers only to HTTPS on port 443: {url} is not https://");
                }
                let api = MaxApi::new(&config)?;
                api.subscribe(&url, &secret)
                    .await
                    .context("POST /subscriptions")?;
                println!("subscribed: {url}");
                for s in api.subscriptions().await.context("GET /subscriptions")? {
                    println!("subscription: {s}");
                }
                Ok(())
            }
        }
    })
}

pub fn run_vk(cmd: VkCommand) -> ExitCode {
    match cmd {
        VkCommand::Check => super::db::block_on_code(async move {
            let Some(config) = VkConfig::from_env()? else {
                bail!("BOT_VK_TOKEN is not set");
            };
            let Some(group) = config.group_id else {
                bail!("BOT_VK_GROUP_ID is not set (the community's numeric id)");
            };
            let api = VkApi::new(&config)?;
            let expected = api
                .confirmation_code(group)
                .await
                .context("groups.getCallbackConfirmationCode")?;
            let mut ok = true;
            match config.confirmation.as_deref() {
                Some(c) if c == expected => println!("confirmation: ok"),
                Some(_) => {
                    ok = false;
                    println!(
                        "confirmation: BOT_VK_CONFIRMATION differs from what VK expects ({expected}); set it to that"
                    );
                }
                None => {
                    ok = false;
                    println!("confirmation: BOT_VK_CONFIRMATION is not set; VK expects {expected}");
                }
            }
            if config.secret.is_none() {
                ok = false;
                println!("secret: BOT_VK_SECRET is not set; every event would be refused");
            } else {
                println!("secret: set");
            }
            println!("token: ok (community {group})");
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }),
    }
}
