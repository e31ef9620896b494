//! The test kit of `bot`, a dev-only crate compiled once for every test binary and bench:
//! - emulators of the services the bot talks to, speaking their wire formats on 127.0.0.1:0
//!   and recording what they were asked ([`telegram`], [`max`], [`vk`], [`bitrix24`]);
//! - [`app`]: `spawn_app` and friends, the real `bot serve` on port 0 with a fresh SQLite file
//!   (or PostgreSQL schema), the demo salon and a fixed clock;
//! - [`db`]: a fresh store (SQLite file or PostgreSQL schema) with the engine and helpers to
//!   run turns on it;
//! - [`pg`]: throw-away PostgreSQL schemas; [`tmpfs`]: a tiny tmpfs to fill up;
//!   [`chromium`]: headless Chromium through chromedriver;
//! - [`run_bot!`]: the `bot` binary run as an operator would.

pub mod app;
pub mod bitrix24;
pub mod chromium;
pub mod cli;
pub mod db;
pub mod max;
pub mod pg;
pub mod telegram;
pub mod tmpfs;
pub mod vk;
