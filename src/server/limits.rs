//! Rate limits on the public endpoints: per IP address on everything a stranger can call (the
//! chat page, the web chat API, health and metrics), and per web client id on the chat API, so
//! one script can neither flood the server nor drown one conversation. Webhooks are exempt:
//! they prove themselves with a secret, and providers deliver from a few addresses at high
//! rates (MAX up to 100 a second). Over the limit: 429 with `Retry-After`.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// Requests a second allowed (with a burst of twice as many); 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Per IP address, on the public endpoints (`BOT_RATE_LIMIT_IP`).
    pub per_ip: u32,
    /// Per web client id, on the chat API (`BOT_RATE_LIMIT_CLIENT`).
    pub per_client: u32,
}

impl RateLimits {
    /// What `bot serve` uses unless told otherwise: room for a busy salon behind one proxy
    /// address, and far more than a person types.
    pub const SERVE: RateLimits = RateLimits {
        per_ip: 100,
        per_client: 5,
    };
    /// No limits (a library user or a test that drives load).
    pub const OFF: RateLimits = RateLimits {
        per_ip: 0,
        per_client: 0,
    };
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::OFF
    }
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_second: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
    Some(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

/// The limiters of one server.
pub(crate) struct Limiters {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_client: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl std::fmt::Debug for Limiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiters")
            .field("per_ip", &self.per_ip.is_some())
            .field("per_client", &self.per_client.is_some())
            .finish()
    }
}

impl Limiters {
    pub(crate) fn new(limits: RateLimits) -> Limiters {
        Limiters {
            per_ip: limiter(limits.per_ip),
            per_client: limiter(limits.per_client),
            clock: DefaultClock::default(),
        }
    }

    /// Ok, or how long `ip` must wait.
    pub(crate) fn ip(&self, ip: IpAddr) -> Result<(), Duration> {
        match &self.per_ip {
            Some(l) => l
                .check_key(&ip)
                .map_err(|n| n.wait_time_from(self.clock.now())),
            None => Ok(()),
        }
    }

    /// Ok, or how long the web client `id` must wait.
    pub(crate) fn client(&self, id: &str) -> Result<(), Duration> {
        match &self.per_client {
            Some(l) => l
                .check_key(&id.to_string())
                .map_err(|n| n.wait_time_from(self.clock.now())),
            None => Ok(()),
        }
    }

    /// Forget keys that have been quiet (their buckets are full again), so memory stays
    /// bounded by the recently active clients (the worker calls it once a minute).
    pub(crate) fn tidy(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_client {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// Whole seconds to wait, at least one (the `Retry-After` of a 429).
pub fn retry_after(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_client_waits_and_others_do_not() {
        let l = Limiters::new(RateLimits {
            per_ip: 0,
            per_client: 2,
        });
        for _ in 0..4 {
            assert!(l.client("a").is_ok());
        }
        let wait = l.client("a").expect_err("over the burst");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(l.client("b").is_ok(), "another client is not held up");
        assert!(
            l.ip("127.0.0.1".parse().unwrap()).is_ok(),
            "no IP limit set"
        );
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after(Duration::from_millis(1)), 1);
        assert_eq!(retry_after(Duration::ZERO), 1);
        assert_eq!(retry_after(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after(Duration::from_secs(3)), 3);
    }
}
