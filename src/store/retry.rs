//! What becomes of an outbox job after one attempt — one policy for every worker (the channel
//! sender and the CRM): done, again later with exponential backoff (or when a rate limit's
//! pause ends, whichever is later), or a dead letter once the policy's attempts are used up or
//! at once when no retry can help. [`Store::settle`] writes the outcome.

use super::model::Job;
use super::{Store, StoreError};
use chrono::{DateTime, Duration, Utc};

/// What to do with a job after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    Done,
    /// The reply `message` was handed to its channel: it is marked sent and its job done in
    /// one transaction (the shorter the gap after the call, the rarer an uncertain send).
    Sent(i64),
    /// Failed with this error; again later.
    Retry(String),
    /// No retry can help: a dead letter with this reason.
    Dead(String),
}

impl Fate {
    /// A failure: a dead letter when no retry can help, else again later.
    pub fn failed(fatal: bool, error: &dyn std::fmt::Display) -> Fate {
        if fatal {
            Fate::Dead(error.to_string())
        } else {
            Fate::Retry(error.to_string())
        }
    }
}

/// How a kind of job is retried: `first`, doubled per attempt up to `max`, for at most
/// `attempts` attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first: Duration,
    pub max: Duration,
    pub attempts: i64,
}

impl RetryPolicy {
    /// Replies and managers' notices: 2 s, 4 s … at most 5 minutes, 8 attempts.
    pub const SEND: RetryPolicy = RetryPolicy {
        first: Duration::seconds(2),
        max: Duration::seconds(300),
        attempts: 8,
    };
    /// CRM pushes and fetches: 30 s, 1 min … at most an hour, 30 attempts (about a day).
    pub const CRM: RetryPolicy = RetryPolicy {
        first: Duration::seconds(30),
        max: Duration::seconds(3600),
        attempts: 30,
    };

    /// The wait after the `attempts`-th failed attempt.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let doublings = u32::try_from(attempts.clamp(1, 16) - 1).unwrap_or(0);
        let factor = 1i32.checked_shl(doublings).unwrap_or(i32::MAX);
        self.first
            .checked_mul(factor)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// What [`Store::settle`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// The fate applied: a `Retry` past the policy's attempts became `Dead`.
    pub fate: Fate,
    /// When a retried job is due again.
    pub retry_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Apply `fate` to a claimed job: complete it, retry it after the policy's backoff or the
    /// rate limit's `pause`, whichever is later (a dead letter once the attempts are used
    /// up), or close it as a dead letter.
    pub async fn settle(
        &self,
        job: &Job,
        fate: Fate,
        policy: &RetryPolicy,
        pause: Duration,
        now: DateTime<Utc>,
    ) -> Result<Settled, StoreError> {
        let mut retry_at = None;
        let fate = match fate {
            Fate::Done => {
                self.complete_job(job.id, now).await?;
                Fate::Done
            }
            Fate::Sent(message) => {
                self.complete_send(job.id, message, now).await?;
                Fate::Sent(message)
            }
            Fate::Retry(error) if job.attempts >= policy.attempts => {
                let reason = format!("gave up after {} attempts: {error}", job.attempts);
                self.dead_letter(job, &reason, now).await?;
                Fate::Dead(reason)
            }
            Fate::Retry(error) => {
                let at = now + policy.backoff(job.attempts).max(pause);
                self.retry_job(job.id, &error, at).await?;
                retry_at = Some(at);
                Fate::Retry(error)
            }
            Fate::Dead(reason) => {
                self.dead_letter(job, &reason, now).await?;
                Fate::Dead(reason)
            }
        };
        Ok(Settled { fate, retry_at })
    }

    async fn dead_letter(
        &self,
        job: &Job,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        tracing::warn!(job = job.id, kind = job.kind.as_str(), %reason, "job dead-lettered");
        self.fail_job(job.id, reason, now).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crm_backoff_doubles_from_thirty_seconds_up_to_an_hour() {
        let p = RetryPolicy::CRM;
        let secs: Vec<i64> = (1..=9).map(|a| p.backoff(a).num_seconds()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(p.backoff(0).num_seconds(), 30);
        assert_eq!(p.backoff(i64::MAX).num_seconds(), 3600);
        // About a day of outage before a job is given up.
        let total: i64 = (1..p.attempts).map(|a| p.backoff(a).num_seconds()).sum();
        assert!((20 * 3600..30 * 3600).contains(&total), "{total}");
    }

    #[test]
    fn send_backoff_doubles_from_two_seconds_up_to_five_minutes() {
        let p = RetryPolicy::SEND;
        let secs: Vec<i64> = (1..=10).map(|a| p.backoff(a).num_seconds()).collect();
        assert_eq!(secs, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }
}
