//! Prometheus text metrics of the running server, kept in atomics (no registry crate): messages
//! in and out per channel, the reply latency histogram (inbound received → replies ready),
//! errors by kind, and the outbox queue depth (read from the store at scrape time).

use crate::domain::ChannelKind;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const CHANNELS: [ChannelKind; 4] = [
    ChannelKind::Telegram,
    ChannelKind::Whatsapp,
    ChannelKind::Instagram,
    ChannelKind::Web,
];
/// Histogram bucket bounds, seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Default)]
pub struct Metrics {
    messages_in: [AtomicU64; 4],
    messages_out: [AtomicU64; 4],
    latency_buckets: [AtomicU64; 12],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    errors: Mutex<Vec<(&'static str, u64)>>,
}

fn index(channel: ChannelKind) -> usize {
    CHANNELS.iter().position(|c| *c == channel).unwrap_or(0)
}

impl Metrics {
    pub fn message_in(&self, channel: ChannelKind) {
        self.messages_in[index(channel)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn messages_out(&self, channel: ChannelKind, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.messages_out[index(channel)].fetch_add(n, Ordering::Relaxed);
    }

    pub fn reply_latency(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(&self.latency_buckets) {
            if secs <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn error(&self, kind: &'static str) {
        let Ok(mut errors) = self.errors.lock() else {
            return;
        };
        match errors.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => errors.push((kind, 1)),
        }
    }

    /// The exposition text; `queue_depth` is the number of pending jobs (None if unknown).
    pub fn render(&self, queue_depth: Option<i64>) -> String {
        let mut out = String::new();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP bot_messages_in_total Client messages received."
        );
        let _ = writeln!(out, "# TYPE bot_messages_in_total counter");
        for (c, n) in CHANNELS.iter().zip(&self.messages_in) {
            let _ = writeln!(out, "bot_messages_in_total{{channel=\"{c}\"}} {}", load(n));
        }
        let _ = writeln!(
            out,
            "# HELP bot_messages_out_total Replies handed to a channel."
        );
        let _ = writeln!(out, "# TYPE bot_messages_out_total counter");
        for (c, n) in CHANNELS.iter().zip(&self.messages_out) {
            let _ = writeln!(out, "bot_messages_out_total{{channel=\"{c}\"}} {}", load(n));
        }
        let _ = writeln!(
            out,
            "# HELP bot_reply_latency_seconds From a message received to its replies ready."
        );
        let _ = writeln!(out, "# TYPE bot_reply_latency_seconds histogram");
        for (bound, n) in BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "bot_reply_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                load(n)
            );
        }
        let count = load(&self.latency_count);
        let _ = writeln!(
            out,
            "bot_reply_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        #[allow(clippy::cast_precision_loss)]
        let sum = load(&self.latency_sum_micros) as f64 / 1e6;
        let _ = writeln!(out, "bot_reply_latency_seconds_sum {sum}");
        let _ = writeln!(out, "bot_reply_latency_seconds_count {count}");
        let _ = writeln!(
            out,
            "# HELP bot_queue_depth Jobs not done yet (outbox, reminders)."
        );
        let _ = writeln!(out, "# TYPE bot_queue_depth gauge");
        let _ = writeln!(out, "bot_queue_depth {}", queue_depth.unwrap_or(-1));
        let _ = writeln!(out, "# HELP bot_errors_total Errors by kind.");
        let _ = writeln!(out, "# TYPE bot_errors_total counter");
        if let Ok(errors) = self.errors.lock() {
            for (kind, n) in errors.iter() {
                let _ = writeln!(out, "bot_errors_total{{kind=\"{kind}\"}} {n}");
            }
        }
        out
    }
}
