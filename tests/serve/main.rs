//! End-to-end tests of `bot serve`: the real server on port 0 with a fresh SQLite file per
//! test, spoken to over HTTP, with a Telegram Bot API emulator where Telegram is on.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod browser;
mod crash;
mod crm;
mod handoff;
mod health;
mod hygiene;
mod polling;
mod support;
mod telegram;
mod timeouts;
mod web;
mod worker;

#[path = "../support/bitrix24.rs"]
mod bitrix24_emulator;
#[path = "../support/chromium.rs"]
mod chromium;
#[path = "../support/cli.rs"]
mod cli;
#[path = "../support/pg.rs"]
mod pg;
#[path = "../support/telegram.rs"]
mod telegram_emulator;
#[path = "../support/tmpfs.rs"]
mod tmpfs;
