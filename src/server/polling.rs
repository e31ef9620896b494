//! Telegram long polling (`--telegram-polling`) for businesses without a public HTTPS address:
//! `getUpdates` in a loop, each update handled exactly like a webhook delivery. No message is
//! lost or repeated across restarts: the offset only moves past updates the store has
//! committed, and an update fetched again after a restart is a duplicate `update_id` there.

use super::App;
use super::routes::handle_arrival;
use crate::channels::telegram::{SendError, parse_updates};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Seconds one `getUpdates` call waits for updates.
const POLL_TIMEOUT: u64 = 25;
/// Attempts at one update before it is given up and polling moves past it, so one update the
/// store cannot take never blocks every later one.
pub const MAX_UPDATE_ATTEMPTS: u32 = 5;

pub async fn run(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let Some(api) = app.channels.telegram.clone() else {
        return;
    };
    if let Err(e) = api.delete_webhook().await {
        tracing::warn!(error = %e, "deleteWebhook failed; polling may be refused");
    }
    tracing::info!("telegram: polling for updates");
    let mut offset: Option<i64> = None;
    // The update that failed last and how many times in a row.
    let mut failing: Option<(i64, u32)> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        let polled = tokio::select! {
            _ = stop.changed() => break,
            r = api.get_updates(offset, POLL_TIMEOUT) => r,
        };
        let pause = match polled {
            Ok(result) => {
                let (updates, next) = parse_updates(result, app.clock.now(), api.groups());
                let mut failed = None;
                for update in updates {
                    let id = update.update_id;
                    let Err(e) = handle_arrival(&app, update.arrival(), Instant::now()).await
                    else {
                        continue;
                    };
                    app.metrics.error("telegram_polling");
                    let attempts = match failing {
                        Some((f, n)) if f == id => n + 1,
                        _ => 1,
                    };
                    if attempts >= MAX_UPDATE_ATTEMPTS {
                        // Dead letter: logged with its id and cause, counted, and passed over.
                        tracing::error!(
                            update_id = id,
                            attempts,
                            error = %e,
                            "telegram update given up after repeated failures; moving on"
                        );
                        app.metrics.error("telegram_update_dropped");
                        failing = None;
                        continue;
                    }
                    tracing::error!(update_id = id, attempts, error = %e, "update not processed");
                    failing = Some((id, attempts));
                    failed = Some(id);
                    break;
                }
                // After a failure, fetch that update again (the ones before it are deduped).
                offset = failed.or(next).or(offset);
                failed.map(|_| Duration::from_secs(1))
            }
            Err(SendError::RetryAfter(secs)) => Some(Duration::from_secs(secs.max(1))),
            Err(e) => {
                tracing::warn!(error = %e, "getUpdates failed");
                app.metrics.error("telegram_polling");
                Some(Duration::from_secs(3))
            }
        };
        if let Some(pause) = pause {
            tokio::select! {
                _ = stop.changed() => break,
                () = tokio::time::sleep(pause) => {},
            }
        }
    }
    tracing::info!("telegram polling stopped");
}
