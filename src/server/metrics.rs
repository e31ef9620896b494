//! Metrics of the running server in the OpenMetrics text format (`prometheus-client`): messages
//! in and out per channel, the reply latency histogram (inbound received → replies ready),
//! errors by kind, and the queue depth (pending jobs, read from the store at scrape time).

use crate::domain::ChannelKind;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::time::Duration;

/// The `Content-Type` of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Histogram bucket bounds, seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Channel {
    channel: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    messages_in: Family<Channel, Counter>,
    messages_out: Family<Channel, Counter>,
    latency: Histogram,
    queue_depth: Gauge,
    errors: Family<Kind, Counter>,
    /// LLM calls by outcome (`used`, or the fallback's cause), their latency and tokens.
    llm_calls: Family<Kind, Counter>,
    llm_latency: Histogram,
    llm_tokens: Family<Kind, Counter>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::default();
        let messages_in = Family::<Channel, Counter>::default();
        let messages_out = Family::<Channel, Counter>::default();
        // Every channel shows from the start, at 0.
        for c in ChannelKind::ALL {
            let label = Channel {
                channel: c.as_str(),
            };
            drop(messages_in.get_or_create(&label));
            drop(messages_out.get_or_create(&label));
        }
        let latency = Histogram::new(BUCKETS);
        let queue_depth = Gauge::default();
        let errors = Family::<Kind, Counter>::default();
        registry.register(
            "bot_messages_in",
            "Client messages received",
            messages_in.clone(),
        );
        registry.register(
            "bot_messages_out",
            "Replies handed to a channel",
            messages_out.clone(),
        );
        registry.register_with_unit(
            "bot_reply_latency",
            "From a message received to its replies ready",
            Unit::Seconds,
            latency.clone(),
        );
        registry.register(
            "bot_queue_depth",
            "Jobs not done yet (outbox, reminders, CRM); -1 when the store cannot tell",
            queue_depth.clone(),
        );
        registry.register("bot_errors", "Errors by kind", errors.clone());
        let llm_calls = Family::<Kind, Counter>::default();
        let llm_latency = Histogram::new(BUCKETS);
        let llm_tokens = Family::<Kind, Counter>::default();
        registry.register(
            "bot_llm_calls",
            "Messages the LLM was asked about, by outcome (used, or why the rules answered alone)",
            llm_calls.clone(),
        );
        registry.register_with_unit(
            "bot_llm_latency",
            "From asking the LLM to its answer or the fallback",
            Unit::Seconds,
            llm_latency.clone(),
        );
        registry.register(
            "bot_llm_tokens",
            "Tokens sent (in) and received (out)",
            llm_tokens.clone(),
        );
        Metrics {
            registry,
            messages_in,
            messages_out,
            latency,
            queue_depth,
            errors,
            llm_calls,
            llm_latency,
            llm_tokens,
        }
    }
}

impl Metrics {
    pub fn message_in(&self, channel: ChannelKind) {
        self.messages_in
            .get_or_create(&Channel {
                channel: channel.as_str(),
            })
            .inc();
    }

    pub fn messages_out(&self, channel: ChannelKind, n: usize) {
        self.messages_out
            .get_or_create(&Channel {
                channel: channel.as_str(),
            })
            .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    }

    pub fn reply_latency(&self, d: Duration) {
        self.latency.observe(d.as_secs_f64());
    }

    /// One question to the LLM: its outcome, how long it took, the tokens it used.
    pub fn llm(&self, outcome: &'static str, took: Duration, tokens_in: u64, tokens_out: u64) {
        self.llm_calls.get_or_create(&Kind { kind: outcome }).inc();
        self.llm_latency.observe(took.as_secs_f64());
        self.llm_tokens
            .get_or_create(&Kind { kind: "in" })
            .inc_by(tokens_in);
        self.llm_tokens
            .get_or_create(&Kind { kind: "out" })
            .inc_by(tokens_out);
    }

    pub fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&Kind { kind }).inc();
    }

    /// The exposition text; `queue_depth` is the number of pending jobs (None if unknown).
    pub fn render(&self, queue_depth: Option<i64>) -> String {
        self.queue_depth.set(queue_depth.unwrap_or(-1));
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_in_the_exposition() {
        let m = Metrics::default();
        m.message_in(ChannelKind::Web);
        m.messages_out(ChannelKind::Web, 2);
        m.reply_latency(Duration::from_millis(3));
        m.error("bad_request");
        let text = m.render(Some(4));
        for line in [
            "bot_messages_in_total{channel=\"web\"} 1",
            "bot_messages_in_total{channel=\"telegram\"} 0",
            "bot_messages_out_total{channel=\"web\"} 2",
            "bot_reply_latency_seconds_count 1",
            "bot_reply_latency_seconds_bucket{le=\"0.005\"} 1",
            "bot_reply_latency_seconds_bucket{le=\"0.0025\"} 0",
            "bot_queue_depth 4",
            "bot_errors_total{kind=\"bad_request\"} 1",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
