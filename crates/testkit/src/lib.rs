//! The test kit of `bot`, a dev-only crate compiled once for every test binary and bench:
//! - emulators of the services the bot talks to, speaking their wire formats on 127.0.0.1:0
//!   and recording what they were asked ([`telegram`], [`max`], [`vk`], [`bitrix24`], [`llm`]);
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
pub mod console;
pub mod db;
pub mod llm;
pub mod max;
pub mod pg;
pub mod telegram;
pub mod tmpfs;
pub mod vk;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Serve `app` on a fresh loopback port in the background (an emulator); its address.
pub async fn serve_loopback(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind emulator");
    let addr = listener.local_addr().expect("emulator address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Poll `check` every 20 ms until it gives a value, or panic after `secs` seconds with what
/// `waited_for` says (given the last state).
pub async fn eventually<T>(secs: u64, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match check() {
            Ok(value) => return value,
            Err(why) => assert!(Instant::now() < deadline, "after {secs} s: {why}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `got` when it has at least `n` items, else why not (for [`eventually`]).
pub fn at_least<T: std::fmt::Debug>(got: Vec<T>, n: usize, what: &str) -> Result<Vec<T>, String> {
    if got.len() >= n {
        Ok(got)
    } else {
        Err(format!("{} of {n} {what}: {got:#?}", got.len()))
    }
}
