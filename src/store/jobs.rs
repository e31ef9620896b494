//! Scheduled work and the outbox. Every job is a row in `jobs` (kind, JSON payload, due time,
//! attempts, last error, done time):
//! - *turn jobs* (`reminder`, `no_show`) are engine turns at a moment: [`Store::run_due`] claims
//!   one due job at a time (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two replicas never take
//!   the same one), runs the turn on the stored conversation and schedule, stores the replies
//!   and marks the job done, all in one transaction;
//! - *outbox jobs* (`send`, `crm_lead`, `crm_booking`, `crm_fetch`, `handoff`) are carried out
//!   by workers outside the database: [`Store::claim_outbox`] leases them, then the worker
//!   calls [`Store::complete_job`] or [`Store::retry_job`]. A worker that dies lets its lease
//!   expire and another one takes the job again (at-least-once delivery).
//!
//! Also here: attendance after the visit ([`Store::mark_booking`]), which schedules the
//! no-show follow-up.

use super::model::{Attendance, Job, JobKind, JobPayload, NoShowDue, RanJob};
use super::reads::StoredBooking;
use super::turn::{MAX_ATTEMPTS, TurnInput, apply_turn, crm_booking, outbox};
use super::tx::{NewJob, NewMessage, Tx};
use super::{Store, StoreError};
use crate::calendar::no_show_followup_at;
use crate::config::Profile;
use crate::domain::{BookingChange, BookingId, BookingStatus, ClientRef, Inbound};
use crate::engine::Engine;
use chrono::{DateTime, Duration, Utc};

impl Store {
    /// Run up to `limit` due turn jobs (reminders, no-show follow-ups), each in its own
    /// transaction. Safe to call from several replicas at once.
    pub async fn run_due(
        &self,
        engine: &Engine,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<RanJob>, StoreError> {
        let mut ran = Vec::new();
        let mut retries = 0;
        while ran.len() < limit {
            match self.run_one_due(engine, now).await {
                Ok(Some(job)) => ran.push(job),
                Ok(None) => break,
                Err(e) if e.is_retryable() && retries < MAX_ATTEMPTS => retries += 1,
                Err(e) => return Err(e),
            }
        }
        Ok(ran)
    }

    async fn run_one_due(
        &self,
        engine: &Engine,
        now: DateTime<Utc>,
    ) -> Result<Option<RanJob>, StoreError> {
        for _ in 0..MAX_ATTEMPTS {
            let mut tx = self.write().await?;
            let Some(job) = tx.claim_due(&JobKind::TURNS, now, 1).await?.pop() else {
                tx.commit().await?;
                return Ok(None);
            };
            let event = job.payload().and_then(|p| {
                p.turn_event()
                    .ok_or_else(|| format!("job {} is not a turn", job.id))
            });
            let (event, client_id) = match (event, job.client_id) {
                (Ok(event), Some(client_id)) => (event, client_id),
                (Err(e), _) => return self.give_up(tx, job, &e, now).await,
                (_, None) => return self.give_up(tx, job, "no client", now).await,
            };
            let client = tx.client_ref(client_id).await?;
            let conv = tx.lock_conversation(client_id, &client, now).await?;
            let inbound = Inbound {
                client: client.clone(),
                at: now,
                event,
            };
            match apply_turn(
                &mut tx,
                engine,
                client_id,
                &conv,
                TurnInput {
                    inbound: &inbound,
                    understood: None,
                    reply_to: None,
                },
                now,
            )
            .await?
            {
                Some(applied) => {
                    tx.finish_job(job.id, now, None).await?;
                    self.commit(tx).await?;
                    return Ok(Some(RanJob {
                        job: Job {
                            done_at: Some(now),
                            ..job
                        },
                        client: Some(client),
                        replies: applied.replies,
                    }));
                }
                None => tx.rollback().await?,
            }
        }
        Err(StoreError::Contended(MAX_ATTEMPTS))
    }

    /// Close a job that can never run, recording why.
    async fn give_up(
        &self,
        mut tx: Tx,
        job: Job,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<RanJob>, StoreError> {
        tx.finish_job(job.id, now, Some(error)).await?;
        self.commit(tx).await?;
        Ok(Some(RanJob {
            job: Job {
                done_at: Some(now),
                last_error: Some(error.to_string()),
                ..job
            },
            client: None,
            replies: Vec::new(),
        }))
    }

    /// Lease up to `limit` due outbox jobs of `kinds` for `lease`: nobody else gets them until
    /// the lease ends, so finish each with [`Store::complete_job`] or [`Store::retry_job`].
    pub async fn claim_outbox(
        &self,
        kinds: &[JobKind],
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        let mut tx = self.write().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut jobs = tx.claim_due(kinds, now, limit).await?;
        for job in &mut jobs {
            tx.lease_job(job.id, now + lease).await?;
            job.attempts += 1;
        }
        tx.commit().await?;
        Ok(jobs)
    }

    /// The job is done. False when it was done already.
    pub async fn complete_job(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = tx.finish_job(id, now, None).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// A manager's message to a client (relayed from the managers' chat, or written by
    /// `operator` in the console), identified by `inbound_id` for dedup: stored as an outgoing
    /// `manager` message with its `send` job. None when the id was seen before or the client
    /// is unknown.
    pub async fn manager_message(
        &self,
        inbound_id: &str,
        client: &ClientRef,
        text: &str,
        operator: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.write().await?;
        let Some(client_id) = tx.find_client(client).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        if !tx.claim_inbound(inbound_id, now).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        let id = tx
            .insert_message(&NewMessage {
                client_id,
                direction: "out",
                channel: client.channel.as_str(),
                kind: "manager",
                text,
                payload: None,
                inbound_id: None,
                reply_to: None,
                received_at: None,
                created_at: now,
                operator,
            })
            .await?;
        let payload = JobPayload::Send { message: id };
        outbox(&mut tx, client_id, None, &payload, now).await?;
        self.commit(tx).await?;
        Ok(Some(id))
    }

    /// The client stopped the bot on their channel (MAX `bot_stopped`, VK `message_deny`):
    /// their pending reminders and follow-ups are dropped. How many; 0 for an unknown client.
    pub async fn client_stopped(&self, client: &ClientRef) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let dropped = match tx.find_client(client).await? {
            Some(id) => tx.drop_client_turns(id).await?,
            None => 0,
        };
        tx.commit().await?;
        Ok(dropped)
    }

    /// Retention: empty the texts of messages older than `before` (`BOT_RETENTION_DAYS`);
    /// their rows and times stay for the KPIs. How many were emptied.
    pub async fn forget_texts(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let n = tx.forget_texts(before).await?;
        self.commit(tx).await?;
        Ok(n)
    }

    /// Give up on a job for good (dead letter): it is closed with `error` as the reason.
    pub async fn fail_job(
        &self,
        id: i64,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = tx.finish_job(id, now, Some(error)).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Record that the job's message is being handed to its channel now (call right before a
    /// send that cannot be deduplicated by the channel). False when the job is done already.
    pub async fn start_send(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let started = tx.start_send(id, at).await?;
        tx.commit().await?;
        Ok(started)
    }

    /// The attempt failed with `error`; try again at `retry_at` (a fresh send attempt).
    pub async fn retry_job(
        &self,
        id: i64,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let found = tx.retry_job(id, error, retry_at).await?;
        tx.commit().await?;
        Ok(found)
    }

    /// Replies were handed to their channel at `at` (response-time KPIs read this), in one
    /// transaction; how many of `ids` are replies.
    pub async fn mark_messages_sent(
        &self,
        ids: &[i64],
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut tx = self.write().await?;
        let mut found = 0;
        for id in ids {
            found += usize::from(tx.mark_message_sent(*id, at).await?);
        }
        tx.commit().await?;
        Ok(found)
    }

    /// A reply went out: its message is marked sent at `at` and its send job done, at once.
    pub async fn complete_send(
        &self,
        job: i64,
        message: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        tx.mark_message_sent(message, at).await?;
        let done = tx.finish_job(job, at, None).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Jobs not done yet, by due time.
    pub async fn pending_jobs(&self) -> Result<Vec<Job>, StoreError> {
        let mut tx = self.read().await?;
        let jobs = tx.pending_jobs().await?;
        tx.commit().await?;
        Ok(jobs)
    }

    /// Dead letters (jobs given up with an error), most recent first.
    pub async fn dead_jobs(&self) -> Result<Vec<Job>, StoreError> {
        let mut tx = self.read().await?;
        let jobs = tx.dead_jobs().await?;
        tx.commit().await?;
        Ok(jobs)
    }

    /// Retry a dead letter: back in the queue at `now`. False when `id` is not a dead letter.
    pub async fn reopen_job(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let reopened = tx.reopen_job(id, now).await?;
        tx.commit().await?;
        Ok(reopened)
    }

    pub async fn job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        let mut tx = self.read().await?;
        let job = tx.job(id).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// Record how a visit went, once it is over. A no-show schedules the follow-up turn for
    /// the next morning outside quiet hours (`calendar::no_show_followup_at`); pending
    /// reminders are dropped either way.
    pub async fn mark_booking(
        &self,
        profile: &Profile,
        id: &BookingId,
        attendance: Attendance,
        now: DateTime<Utc>,
    ) -> Result<StoredBooking, StoreError> {
        let mut tx = self.write().await?;
        let stored = tx
            .booking(id)
            .await?
            .ok_or_else(|| StoreError::NoBooking(id.to_string()))?;
        let cannot = |reason: String| StoreError::CannotMark {
            id: id.to_string(),
            mark: attendance.as_str(),
            reason,
        };
        if !stored.booking.is_active() {
            let status = super::status_str(stored.booking.status);
            return Err(cannot(format!("it is {status}")));
        }
        if stored.booking.slot.end > now {
            let end = stored.booking.slot.end.to_rfc3339();
            return Err(cannot(format!("the visit ends at {end}; mark it after")));
        }
        let status = match attendance {
            Attendance::Completed => BookingStatus::Completed,
            Attendance::NoShow => BookingStatus::NoShow,
        };
        tx.set_status(id, status, now).await?;
        tx.drop_reminders(id).await?;
        if attendance == Attendance::NoShow {
            let due = NoShowDue {
                booking: id.clone(),
            };
            tx.insert_job(&NewJob {
                client_id: Some(stored.client_id),
                booking: Some(id),
                payload: &JobPayload::NoShow(due),
                due_at: no_show_followup_at(profile, &stored.booking, now),
            })
            .await?;
        }
        let change = match attendance {
            Attendance::Completed => BookingChange::Completed,
            Attendance::NoShow => BookingChange::NoShow,
        };
        crm_booking(&mut tx, stored.client_id, id, change, now).await?;
        let updated = tx
            .booking(id)
            .await?
            .ok_or_else(|| StoreError::NoBooking(id.to_string()))?;
        self.commit(tx).await?;
        Ok(updated)
    }
}
