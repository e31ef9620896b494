//! The tests with I/O: the store on SQLite files and PostgreSQL, `bot serve` over HTTP with the
//! emulators of Telegram and Bitrix24, the Bitrix24 client, headless Chromium, a full disk.
//! The emulators and spawners come from the `testkit` crate. `cargo test --test io serve::`
//! runs one area.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod crm;
mod report;
mod serve;
mod store;
