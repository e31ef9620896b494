//! Jobs: reminders, follow-ups and the outbox; claimed, leased, retried, closed.

use super::{Tx, on};
use crate::domain::BookingId;
use crate::store::StoreError;
use crate::store::model::{Job, JobKind, JobPayload};
use chrono::{DateTime, Utc};

type JobRow = (
    i64,
    String,
    Option<i64>,
    Option<String>,
    String,
    DateTime<Utc>,
    i64,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

fn job_from(row: JobRow) -> Result<Job, StoreError> {
    let (id, kind, client_id, booking_id, payload, due_at, attempts, last_error, done_at, send) =
        row;
    Ok(Job {
        id,
        kind: JobKind::parse(&kind)?,
        client_id,
        booking: booking_id.map(BookingId),
        payload,
        due_at,
        attempts,
        last_error,
        done_at,
        send_started_at: send,
    })
}

/// A job row to insert.
pub(in crate::store) struct NewJob<'a> {
    pub client_id: Option<i64>,
    pub booking: Option<&'a BookingId>,
    pub payload: &'a JobPayload,
    pub due_at: DateTime<Utc>,
}

/// The columns of a `Job` row, read the same way by every job query.
macro_rules! job_select {
    () => {
        "SELECT id, kind, client_id, booking_id, payload, due_at, attempts, last_error, done_at, \
         send_started_at FROM jobs"
    };
}

impl Tx {
    pub(in crate::store) async fn insert_job(
        &mut self,
        job: &NewJob<'_>,
    ) -> Result<i64, StoreError> {
        const SQL: &str = "INSERT INTO jobs (kind, client_id, booking_id, payload, due_at, \
             created_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id";
        let payload = job.payload.to_column()?;
        Ok(on!(self, |c| sqlx::query_scalar::<_, i64>(SQL)
            .bind(job.payload.kind().as_str())
            .bind(job.client_id)
            .bind(job.booking.map(BookingId::as_str))
            .bind(&payload)
            .bind(job.due_at)
            .fetch_one(c)
            .await?))
    }

    /// Whether a job with exactly this payload waits and was never tried.
    pub(in crate::store) async fn untried_job(
        &mut self,
        payload: &JobPayload,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM jobs WHERE kind = $1 AND payload = $2 \
             AND done_at IS NULL AND attempts = 0";
        let column = payload.to_column()?;
        let n = on!(self, |c| sqlx::query_scalar::<_, i64>(SQL)
            .bind(payload.kind().as_str())
            .bind(&column)
            .fetch_one(c)
            .await?);
        Ok(n > 0)
    }

    /// Remove the pending reminders of a booking (it moved or was cancelled). On PostgreSQL a
    /// reminder a scheduler is running right now is skipped, not waited for: its turn will
    /// find the booking changed.
    pub(in crate::store) async fn drop_reminders(
        &mut self,
        booking: &BookingId,
    ) -> Result<u64, StoreError> {
        let sql = self.pick(
            "DELETE FROM jobs WHERE booking_id = $1 AND kind = 'reminder' AND done_at IS NULL",
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE booking_id = $1 \
             AND kind = 'reminder' AND done_at IS NULL FOR UPDATE SKIP LOCKED)",
        );
        Ok(on!(self, |c| sqlx::query(sql)
            .bind(booking.as_str())
            .execute(c)
            .await?
            .rows_affected()))
    }

    /// Remove the pending reminder and follow-up turns of a client (they stopped the bot).
    pub(in crate::store) async fn drop_client_turns(
        &mut self,
        client_id: i64,
    ) -> Result<u64, StoreError> {
        let sql = self.pick(
            "DELETE FROM jobs WHERE client_id = $1 AND kind IN ('reminder', 'no_show') \
             AND done_at IS NULL",
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE client_id = $1 \
             AND kind IN ('reminder', 'no_show') AND done_at IS NULL FOR UPDATE SKIP LOCKED)",
        );
        Ok(on!(self, |c| sqlx::query(sql)
            .bind(client_id)
            .execute(c)
            .await?
            .rows_affected()))
    }

    /// The earliest due job of `kind`, locked until commit; jobs other transactions hold are
    /// skipped (PostgreSQL), and leased ones wait for their lease to expire.
    pub(in crate::store) async fn claim_due(
        &mut self,
        kinds: &[JobKind],
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Job>, StoreError> {
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        // One placeholder per kind asked: `kind IN ($3, $4, …)`.
        let placeholders: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 3)).collect();
        let lock = if self.is_postgres() {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let sql = format!(
            "{} WHERE done_at IS NULL AND due_at <= $1 \
             AND (locked_until IS NULL OR locked_until <= $1) \
             AND kind IN ({}) ORDER BY due_at, id LIMIT $2{lock}",
            job_select!(),
            placeholders.join(", ")
        );
        let rows = on!(self, |c| {
            let mut q = sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(now)
                .bind(limit);
            for k in kinds {
                q = q.bind(k.as_str());
            }
            q.fetch_all(c).await?
        });
        rows.into_iter().map(job_from).collect()
    }

    /// Hold a claimed job for `until` (an outbox worker sends it outside the transaction).
    pub(in crate::store) async fn lease_job(
        &mut self,
        id: i64,
        until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const SQL: &str =
            "UPDATE jobs SET locked_until = $2, attempts = attempts + 1 WHERE id = $1";
        on!(self, |c| sqlx::query(SQL)
            .bind(id)
            .bind(until)
            .execute(c)
            .await?
            .rows_affected());
        Ok(())
    }

    pub(in crate::store) async fn finish_job(
        &mut self,
        id: i64,
        now: DateTime<Utc>,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        // A job closed with an error is a dead letter; one that finally succeeded is not, so
        // success clears the error of earlier attempts.
        const SQL: &str = "UPDATE jobs SET done_at = $2, locked_until = NULL, \
             last_error = $3 WHERE id = $1 AND done_at IS NULL";
        let n = on!(self, |c| sqlx::query(SQL)
            .bind(id)
            .bind(now)
            .bind(error)
            .execute(c)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// A worker is about to hand the job to a channel that cannot deduplicate.
    pub(in crate::store) async fn start_send(
        &mut self,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE jobs SET send_started_at = $2 WHERE id = $1 AND done_at IS NULL";
        self.update_one(SQL, id, at).await
    }

    /// A failed attempt: record the error and try again at `retry_at`.
    pub(in crate::store) async fn retry_job(
        &mut self,
        id: i64,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE jobs SET last_error = $2, due_at = $3, locked_until = NULL, \
             send_started_at = NULL WHERE id = $1 AND done_at IS NULL";
        let n = on!(self, |c| sqlx::query(SQL)
            .bind(id)
            .bind(error)
            .bind(retry_at)
            .execute(c)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Jobs not done yet, by due time.
    pub(in crate::store) async fn pending_jobs(&mut self) -> Result<Vec<Job>, StoreError> {
        const SQL: &str = concat!(job_select!(), " WHERE done_at IS NULL ORDER BY due_at, id");
        let rows = on!(self, |c| sqlx::query_as::<_, JobRow>(SQL)
            .fetch_all(c)
            .await?);
        rows.into_iter().map(job_from).collect()
    }

    /// Dead letters: jobs given up with an error, most recent first.
    pub(in crate::store) async fn dead_jobs(&mut self) -> Result<Vec<Job>, StoreError> {
        const SQL: &str = concat!(
            job_select!(),
            " WHERE done_at IS NOT NULL AND last_error IS NOT NULL \
             ORDER BY done_at DESC, id DESC"
        );
        let rows = on!(self, |c| sqlx::query_as::<_, JobRow>(SQL)
            .fetch_all(c)
            .await?);
        rows.into_iter().map(job_from).collect()
    }

    /// Put a dead letter back in the queue, due at `now`, with a fresh attempt count.
    pub(in crate::store) async fn reopen_job(
        &mut self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE jobs SET done_at = NULL, attempts = 0, due_at = $2, \
             locked_until = NULL, send_started_at = NULL \
             WHERE id = $1 AND done_at IS NOT NULL AND last_error IS NOT NULL";
        self.update_one(SQL, id, now).await
    }

    pub(in crate::store) async fn job(&mut self, id: i64) -> Result<Option<Job>, StoreError> {
        const SQL: &str = concat!(job_select!(), " WHERE id = $1");
        let row = on!(self, |c| sqlx::query_as::<_, JobRow>(SQL)
            .bind(id)
            .fetch_optional(c)
            .await?);
        row.map(job_from).transpose()
    }
}
