//! The fast tests: pure functions of their inputs (profiles, the NLU, the dialog engine, the
//! dialog-spec runner) and the CLI commands over them. No database, no network, no browser;
//! the whole binary runs in seconds. `cargo test --test pure engine::` runs one area.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod channels;
mod config;
mod dialogs;
mod engine;
mod import;
mod understand;
