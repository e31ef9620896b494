//! The server's notion of "now". Production reads the system clock; tests (and demos) start
//! the clock at a fixed instant (`--now` / `BOT_NOW`) from which it runs forward in real time,
//! so dates in replies are stable while latencies and ordering stay real.

use chrono::{DateTime, Utc};
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
pub enum Clock {
    System,
    /// Started at `start` when the process was at `at`.
    From {
        start: DateTime<Utc>,
        at: Instant,
    },
}

impl Clock {
    pub fn starting_at(start: DateTime<Utc>) -> Clock {
        Clock::From {
            start,
            at: Instant::now(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::From { start, at } => {
                let elapsed = chrono::Duration::from_std(at.elapsed()).unwrap_or_default();
                *start + elapsed
            }
        }
    }
}
