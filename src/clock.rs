//! The server's notion of "now". Production reads the system clock; tests (and demos) start
//! the clock at a fixed instant (`--now` / `BOT_NOW`) from which it runs forward in real time,
//! so dates in replies are stable while latencies and ordering stay real. A test may also move
//! such a clock forward ([`Clock::advance`]): an hour of outage and its retries without
//! sleeping an hour. Clones share the jumps, so the test's handle moves the server's clock.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

#[derive(Debug, Clone)]
pub enum Clock {
    System,
    /// Started at `start` when the process was at `at`, plus the jumps made by `advance`.
    From {
        start: DateTime<Utc>,
        at: Instant,
        jumped_ms: Arc<AtomicI64>,
    },
}

impl Clock {
    pub fn starting_at(start: DateTime<Utc>) -> Clock {
        Clock::From {
            start,
            at: Instant::now(),
            jumped_ms: Arc::default(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::From {
                start,
                at,
                jumped_ms,
            } => {
                let elapsed = chrono::Duration::from_std(at.elapsed()).unwrap_or_default();
                *start + elapsed + chrono::Duration::milliseconds(jumped_ms.load(Ordering::SeqCst))
            }
        }
    }

    /// Move a started clock forward by `by` (every clone sees it). False for the system
    /// clock, which nobody moves.
    pub fn advance(&self, by: chrono::Duration) -> bool {
        match self {
            Clock::System => false,
            Clock::From { jumped_ms, .. } => {
                jumped_ms.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_clock_moves_for_every_clone_and_the_system_clock_does_not() {
        let start = DateTime::parse_from_rfc3339("2026-11-20T03:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        let clock = Clock::starting_at(start);
        let twin = clock.clone();
        assert!(clock.advance(chrono::Duration::hours(1)));
        let now = twin.now();
        assert!(now >= start + chrono::Duration::hours(1), "{now}");
        assert!(now < start + chrono::Duration::minutes(61), "{now}");
        assert!(!Clock::System.advance(chrono::Duration::hours(1)));
    }
}
