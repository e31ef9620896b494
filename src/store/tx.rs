//! A transaction on either backend, and every statement the store runs: the one place that
//! knows the tables, except the CRM status tables, which `crm.rs` owns. Statements are written
//! once in portable SQL and run through the typed driver of each backend by the `on!` macro
//! (each arm is type-checked for its database); the few that must differ are chosen with
//! `Tx::pick`.

use super::jobs::{Job, JobKind};
use super::reads::{Counts, StoredBooking, StoredLead, StoredMessage, WaitingHandoff};
use super::{StoreError, parse_channel, parse_status, status_str};
use crate::domain::{
    Booking, BookingId, BookingStatus, ClientRef, Contact, Lead, ServiceId, Slot, StaffId,
};
use crate::engine::Conversation;
use chrono::{DateTime, Duration, Utc};
use sqlx::{Postgres, Sqlite, Transaction};

pub(super) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Run `$body` with `$c` bound to the transaction's connection, on whichever backend it is.
macro_rules! on {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}
pub(super) use on;

/// (client, text, JSON payload, sent_at) of a stored reply.
pub(super) type OutgoingRow = (ClientRef, String, Option<String>, Option<DateTime<Utc>>);

type BookingRow = (
    String,
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    String,
);

fn booking_from(row: BookingRow) -> Result<Booking, StoreError> {
    let (id, channel, external_id, service, staff, start, end, status) = row;
    Ok(Booking {
        id: BookingId(id),
        client: ClientRef {
            channel: parse_channel(&channel)?,
            id: external_id,
        },
        service: ServiceId(service),
        slot: Slot {
            start,
            end,
            staff: StaffId(staff),
        },
        status: parse_status(&status)?,
    })
}

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

/// The columns of a `StoredLead`, read the same way by every lead query.
macro_rules! lead_select {
    () => {
        "SELECT l.id, c.channel, c.external_id, l.service, l.desired_at, \
         l.name, l.phone, l.email, l.fields, l.qualified_at, l.crm_state \
         FROM leads l JOIN clients c ON c.id = l.client_id"
    };
}

type LeadRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    DateTime<Utc>,
    String,
);

fn lead_from(row: LeadRow) -> Result<StoredLead, StoreError> {
    let (id, channel, ext, service, desired_at, name, phone, email, fields, at, crm) = row;
    Ok(StoredLead {
        id,
        client: ClientRef {
            channel: parse_channel(&channel)?,
            id: ext,
        },
        service: service.map(ServiceId),
        desired_at,
        contact: Contact { name, phone, email },
        fields: fields
            .split(',')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect(),
        qualified_at: at,
        crm_state: crm,
    })
}

/// A message row to insert.
pub(super) struct NewMessage<'a> {
    pub client_id: i64,
    /// `in` or `out`.
    pub direction: &'static str,
    pub channel: &'a str,
    /// `text`, `button`, `contact` (in) or `reply` (out).
    pub kind: &'static str,
    pub text: &'a str,
    /// JSON: the buttons of a reply, the contact card of an inbound.
    pub payload: Option<String>,
    pub inbound_id: Option<&'a str>,
    pub reply_to: Option<i64>,
    /// When the channel received it (inbound only).
    pub received_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A job row to insert.
pub(super) struct NewJob<'a> {
    pub kind: JobKind,
    pub client_id: Option<i64>,
    pub booking: Option<&'a BookingId>,
    pub payload: String,
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
    fn is_postgres(&self) -> bool {
        matches!(self, Tx::Postgres(_))
    }

    /// The statement for this backend.
    fn pick(&self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        if self.is_postgres() { postgres } else { sqlite }
    }

    pub(super) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    pub(super) async fn rollback(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(t) => t.rollback().await?,
            Tx::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }

    /// Write the heartbeat row: proof that this database takes writes now.
    pub(super) async fn beat(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO heartbeat (id, beat_at) VALUES (1, $1) \
                           ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at";
        on!(self, |c| sqlx::query(SQL)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected());
        Ok(())
    }

    // ---- dedup ------------------------------------------------------------------------------

    /// Record `id` as processed; false when it already was (a redelivered webhook). On
    /// PostgreSQL a concurrent transaction with the same id waits here until the first commits.
    pub(super) async fn claim_inbound(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO processed_inbound (id, processed_at) VALUES ($1, $2) \
                           ON CONFLICT (id) DO NOTHING";
        let n = on!(self, |c| sqlx::query(SQL)
            .bind(id)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    // ---- clients and conversations ----------------------------------------------------------

    /// The id of `client`, created on first contact.
    pub(super) async fn client_id(
        &mut self,
        client: &ClientRef,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        const INSERT: &str = "INSERT INTO clients (channel, external_id, created_at) \
                              VALUES ($1, $2, $3) ON CONFLICT (channel, external_id) DO NOTHING";
        const SELECT: &str = "SELECT id FROM clients WHERE channel = $1 AND external_id = $2";
        let channel = client.channel.as_str();
        Ok(on!(self, |c| {
            sqlx::query(INSERT)
                .bind(channel)
                .bind(&client.id)
                .bind(now)
                .execute(&mut *c)
                .await?;
            sqlx::query_scalar::<_, i64>(SELECT)
                .bind(channel)
                .bind(&client.id)
                .fetch_one(c)
                .await?
        }))
    }

    pub(super) async fn client_ref(&mut self, client_id: i64) -> Result<ClientRef, StoreError> {
        const SQL: &str = "SELECT channel, external_id FROM clients WHERE id = $1";
        let (channel, id) = on!(self, |c| sqlx::query_as::<_, (String, String)>(SQL)
            .bind(client_id)
            .fetch_one(c)
            .await?);
        Ok(ClientRef {
            channel: parse_channel(&channel)?,
            id,
        })
    }

    pub(super) async fn find_client(
        &mut self,
        client: &ClientRef,
    ) -> Result<Option<i64>, StoreError> {
        const SQL: &str = "SELECT id FROM clients WHERE channel = $1 AND external_id = $2";
        Ok(on!(self, |c| sqlx::query_scalar::<_, i64>(SQL)
            .bind(client.channel.as_str())
            .bind(&client.id)
            .fetch_optional(c)
            .await?))
    }

    /// Keep what the bot learnt of the client's contact (known values are never erased).
    pub(super) async fn update_contact(
        &mut self,
        client_id: i64,
        contact: &Contact,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE clients SET name = COALESCE($2, name), \
                           phone = COALESCE($3, phone), email = COALESCE($4, email) WHERE id = $1";
        on!(self, |c| sqlx::query(SQL)
            .bind(client_id)
            .bind(&contact.name)
            .bind(&contact.phone)
            .bind(&contact.email)
            .execute(c)
            .await?
            .rows_affected());
        Ok(())
    }

    /// The conversation of `client_id`, created on first contact, locked until commit (other
    /// replicas processing the same client wait, so no turn is lost).
    pub(super) async fn lock_conversation(
        &mut self,
        client_id: i64,
        client: &ClientRef,
        now: DateTime<Utc>,
    ) -> Result<Conversation, StoreError> {
        const INSERT: &str = "INSERT INTO conversations \
             (client_id, state, owner, stage, turns, created_at, updated_at) \
             VALUES ($1, $2, 'bot', 'idle', 0, $3, $3) ON CONFLICT (client_id) DO NOTHING";
        let select = self.pick(
            "SELECT state FROM conversations WHERE client_id = $1",
            "SELECT state FROM conversations WHERE client_id = $1 FOR UPDATE",
        );
        let fresh = serde_json::to_string(&Conversation::new(client.clone()))
            .map_err(|e| StoreError::corrupt("conversation", e))?;
        let state = on!(self, |c| {
            sqlx::query(INSERT)
                .bind(client_id)
                .bind(&fresh)
                .bind(now)
                .execute(&mut *c)
                .await?;
            sqlx::query_scalar::<_, String>(select)
                .bind(client_id)
                .fetch_one(c)
                .await?
        });
        serde_json::from_str(&state).map_err(|e| StoreError::corrupt("conversation state", e))
    }

    pub(super) async fn save_conversation(
        &mut self,
        client_id: i64,
        conv: &Conversation,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE conversations SET state = $2, owner = $3, stage = $4, \
                           turns = $5, updated_at = $6, \
                           callback_since = CASE WHEN $7 THEN COALESCE(callback_since, $6) END \
                           WHERE client_id = $1";
        let state =
            serde_json::to_string(conv).map_err(|e| StoreError::corrupt("conversation", e))?;
        // A call back is the bot's conversation meanwhile; `callback_since` lists it.
        let owner = match conv.owner {
            crate::engine::Owner::Bot | crate::engine::Owner::Callback => "bot",
            crate::engine::Owner::Human => "human",
        };
        let callback = conv.owner == crate::engine::Owner::Callback;
        let stage = stage_name(&state);
        on!(self, |c| sqlx::query(SQL)
            .bind(client_id)
            .bind(&state)
            .bind(owner)
            .bind(&stage)
            .bind(i64::from(conv.turns))
            .bind(now)
            .bind(callback)
            .execute(c)
            .await?
            .rows_affected());
        Ok(())
    }

    pub(super) async fn conversation(
        &mut self,
        client_id: i64,
    ) -> Result<Option<Conversation>, StoreError> {
        const SQL: &str = "SELECT state FROM conversations WHERE client_id = $1";
        let state = on!(self, |c| sqlx::query_scalar::<_, String>(SQL)
            .bind(client_id)
            .fetch_optional(c)
            .await?);
        state
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(|e| StoreError::corrupt("conversation state", e))
    }

    // ---- messages ---------------------------------------------------------------------------

    pub(super) async fn insert_message(&mut self, m: &NewMessage<'_>) -> Result<i64, StoreError> {
        const SQL: &str = "INSERT INTO messages (client_id, direction, channel, kind, text, \
             payload, inbound_id, reply_to, received_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id";
        Ok(on!(self, |c| sqlx::query_scalar::<_, i64>(SQL)
            .bind(m.client_id)
            .bind(m.direction)
            .bind(m.channel)
            .bind(m.kind)
            .bind(m.text)
            .bind(&m.payload)
            .bind(m.inbound_id)
            .bind(m.reply_to)
            .bind(m.received_at)
            .bind(m.created_at)
            .fetch_one(c)
            .await?))
    }

    /// Run an `UPDATE … WHERE id = $1` that sets a time `$2`; true when it changed one row.
    async fn update_one(
        &mut self,
        sql: &'static str,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = on!(self, |c| sqlx::query(sql)
            .bind(id)
            .bind(at)
            .execute(c)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    pub(super) async fn mark_message_sent(
        &mut self,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE messages SET sent_at = $2 WHERE id = $1 AND direction = 'out'";
        self.update_one(SQL, id, at).await
    }

    /// The contact the bot keeps for a client: (name, phone).
    pub(super) async fn client_contact(
        &mut self,
        client_id: i64,
    ) -> Result<(Option<String>, Option<String>), StoreError> {
        const SQL: &str = "SELECT name, phone FROM clients WHERE id = $1";
        Ok(on!(self, |c| sqlx::query_as::<
            _,
            (Option<String>, Option<String>),
        >(SQL)
        .bind(client_id)
        .fetch_optional(c)
        .await?)
        .unwrap_or_default())
    }

    /// A reply with its client, for the outbox worker: (client, text, payload, sent_at).
    pub(super) async fn outgoing(&mut self, id: i64) -> Result<Option<OutgoingRow>, StoreError> {
        const SQL: &str = "SELECT c.channel, c.external_id, m.text, m.payload, m.sent_at \
             FROM messages m JOIN clients c ON c.id = m.client_id \
             WHERE m.id = $1 AND m.direction = 'out'";
        type Row = (
            String,
            String,
            String,
            Option<String>,
            Option<DateTime<Utc>>,
        );
        let row = on!(self, |c| sqlx::query_as::<_, Row>(SQL)
            .bind(id)
            .fetch_optional(c)
            .await?);
        row.map(|(channel, external, text, payload, sent_at)| {
            let client = ClientRef {
                channel: parse_channel(&channel)?,
                id: external,
            };
            Ok((client, text, payload, sent_at))
        })
        .transpose()
    }

    pub(super) async fn messages(
        &mut self,
        client_id: i64,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        const SQL: &str = "SELECT id, direction, kind, text, payload, inbound_id, reply_to, \
             received_at, created_at, sent_at FROM messages WHERE client_id = $1 ORDER BY id";
        type Row = (
            i64,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<DateTime<Utc>>,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
        );
        let rows = on!(self, |c| sqlx::query_as::<_, Row>(SQL)
            .bind(client_id)
            .fetch_all(c)
            .await?);
        Ok(rows
            .into_iter()
            .map(
                |(
                    id,
                    direction,
                    kind,
                    text,
                    payload,
                    inbound_id,
                    reply_to,
                    received_at,
                    created_at,
                    sent_at,
                )| StoredMessage {
                    id,
                    inbound: direction == "in",
                    kind,
                    text,
                    payload,
                    inbound_id,
                    reply_to,
                    received_at,
                    created_at,
                    sent_at,
                },
            )
            .collect())
    }

    // ---- bookings ---------------------------------------------------------------------------

    /// What the engine needs to see of the schedule: every active booking that has not long
    /// ended, plus all bookings of the client (any status: a no-show follow-up looks one up).
    pub(super) async fn schedule_bookings(
        &mut self,
        now: DateTime<Utc>,
        client_id: i64,
    ) -> Result<Vec<Booking>, StoreError> {
        // Two indexed halves (by end time, by client) rather than one OR that scans history.
        const SQL: &str = "SELECT b.id, c.channel, c.external_id, b.service, b.staff, \
             b.start_at, b.end_at, b.status FROM bookings b JOIN clients c ON c.id = b.client_id \
             WHERE b.end_at > $1 AND b.status IN ('booked', 'confirmed') \
             UNION SELECT b.id, c.channel, c.external_id, b.service, b.staff, \
             b.start_at, b.end_at, b.status FROM bookings b JOIN clients c ON c.id = b.client_id \
             WHERE b.client_id = $2 ORDER BY 6, 1";
        let since = now - Duration::days(1);
        let rows = on!(self, |c| sqlx::query_as::<_, BookingRow>(SQL)
            .bind(since)
            .bind(client_id)
            .fetch_all(c)
            .await?);
        rows.into_iter().map(booking_from).collect()
    }

    /// Serialise writers of `staff`'s schedule until commit. On SQLite the write transaction
    /// already holds the database lock; the row is kept for symmetry.
    pub(super) async fn lock_staff(&mut self, staff: &StaffId) -> Result<(), StoreError> {
        const INSERT: &str =
            "INSERT INTO schedule_locks (staff) VALUES ($1) ON CONFLICT (staff) DO NOTHING";
        let lock = self.pick(
            "SELECT staff FROM schedule_locks WHERE staff = $1",
            "SELECT staff FROM schedule_locks WHERE staff = $1 FOR UPDATE",
        );
        on!(self, |c| {
            sqlx::query(INSERT)
                .bind(staff.as_str())
                .execute(&mut *c)
                .await?;
            sqlx::query(lock)
                .bind(staff.as_str())
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// An active booking of `staff` (other than `except`) closer than `buffer` to [start, end).
    /// Call with the staff member locked.
    pub(super) async fn overlapping(
        &mut self,
        slot: &Slot,
        buffer: Duration,
        except: Option<&BookingId>,
    ) -> Result<Option<BookingId>, StoreError> {
        const SQL: &str = "SELECT id FROM bookings WHERE staff = $1 \
             AND status IN ('booked', 'confirmed') AND start_at < $3 AND end_at > $2 \
             AND id <> $4 ORDER BY start_at LIMIT 1";
        let except = except.map(BookingId::as_str).unwrap_or("");
        let id = on!(self, |c| sqlx::query_scalar::<_, String>(SQL)
            .bind(slot.staff.as_str())
            .bind(slot.start - buffer)
            .bind(slot.end + buffer)
            .bind(except)
            .fetch_optional(c)
            .await?);
        Ok(id.map(BookingId))
    }

    pub(super) async fn booking_exists(&mut self, id: &BookingId) -> Result<bool, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM bookings WHERE id = $1";
        let n = on!(self, |c| sqlx::query_scalar::<_, i64>(SQL)
            .bind(id.as_str())
            .fetch_one(c)
            .await?);
        Ok(n > 0)
    }

    pub(super) async fn insert_booking(
        &mut self,
        b: &Booking,
        client_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO bookings (id, client_id, service, staff, start_at, end_at, \
             status, sequence, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8)";
        on!(self, |c| sqlx::query(SQL)
            .bind(b.id.as_str())
            .bind(client_id)
            .bind(b.service.as_str())
            .bind(b.slot.staff.as_str())
            .bind(b.slot.start)
            .bind(b.slot.end)
            .bind(status_str(b.status))
            .bind(now)
            .execute(c)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Move an active booking to `to` (back to `booked`: a moved visit is confirmed anew);
    /// bumps its iCalendar sequence. False when it is not active.
    pub(super) async fn move_booking(
        &mut self,
        id: &BookingId,
        to: &Slot,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE bookings SET staff = $2, start_at = $3, end_at = $4, \
             status = 'booked', sequence = sequence + 1, updated_at = $5 \
             WHERE id = $1 AND status IN ('booked', 'confirmed')";
        let n = on!(self, |c| sqlx::query(SQL)
            .bind(id.as_str())
            .bind(to.staff.as_str())
            .bind(to.start)
            .bind(to.end)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Set the status of an active booking; false when it is not active.
    pub(super) async fn set_status(
        &mut self,
        id: &BookingId,
        status: BookingStatus,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE bookings SET status = $2, sequence = sequence + 1, \
             updated_at = $3 WHERE id = $1 AND status IN ('booked', 'confirmed')";
        let n = on!(self, |c| sqlx::query(SQL)
            .bind(id.as_str())
            .bind(status_str(status))
            .bind(now)
            .execute(c)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    pub(super) async fn booking(
        &mut self,
        id: &BookingId,
    ) -> Result<Option<StoredBooking>, StoreError> {
        const SQL: &str = "SELECT b.id, c.channel, c.external_id, b.service, b.staff, \
             b.start_at, b.end_at, b.status, c.name, b.sequence, b.updated_at, b.client_id \
             FROM bookings b JOIN clients c ON c.id = b.client_id WHERE b.id = $1";
        let row = on!(self, |c| sqlx::query_as::<_, StoredBookingRow>(SQL)
            .bind(id.as_str())
            .fetch_optional(c)
            .await?);
        row.map(stored_booking_from).transpose()
    }

    /// Bookings (any status) starting in [from, to), earliest first.
    pub(super) async fn bookings_between(
        &mut self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StoredBooking>, StoreError> {
        const SQL: &str = "SELECT b.id, c.channel, c.external_id, b.service, b.staff, \
             b.start_at, b.end_at, b.status, c.name, b.sequence, b.updated_at, b.client_id \
             FROM bookings b JOIN clients c ON c.id = b.client_id \
             WHERE b.start_at >= $1 AND b.start_at < $2 ORDER BY b.start_at, b.id";
        let rows = on!(self, |c| sqlx::query_as::<_, StoredBookingRow>(SQL)
            .bind(from)
            .bind(to)
            .fetch_all(c)
            .await?);
        rows.into_iter().map(stored_booking_from).collect()
    }

    // ---- leads ------------------------------------------------------------------------------

    pub(super) async fn insert_lead(
        &mut self,
        client_id: i64,
        lead: &Lead,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        const SQL: &str = "INSERT INTO leads (client_id, channel, source, service, desired_at, \
             name, phone, email, fields, qualified_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id";
        let fields: Vec<&str> = lead.fields.iter().map(|f| f.as_str()).collect();
        Ok(on!(self, |c| sqlx::query_scalar::<_, i64>(SQL)
            .bind(client_id)
            .bind(lead.channel.as_str())
            .bind(&lead.source)
            .bind(lead.service.as_ref().map(ServiceId::as_str))
            .bind(lead.desired_at)
            .bind(&lead.contact.name)
            .bind(&lead.contact.phone)
            .bind(&lead.contact.email)
            .bind(fields.join(","))
            .bind(now)
            .fetch_one(c)
            .await?))
    }

    /// Conversations a human owns, with the latest hand-off job (reason, time) and the times
    /// of the client's and the managers' last messages.
    pub(super) async fn handoffs(&mut self) -> Result<Vec<WaitingHandoff>, StoreError> {
        const SQL: &str = "SELECT c.channel, c.external_id, c.name, c.phone, v.updated_at, \
             (SELECT j.payload FROM jobs j WHERE j.client_id = c.id AND j.kind = 'handoff' \
              ORDER BY j.id DESC LIMIT 1), \
             (SELECT j.created_at FROM jobs j WHERE j.client_id = c.id AND j.kind = 'handoff' \
              ORDER BY j.id DESC LIMIT 1), \
             (SELECT m.created_at FROM messages m WHERE m.client_id = c.id \
              AND m.direction = 'in' ORDER BY m.id DESC LIMIT 1), \
             (SELECT m.created_at FROM messages m WHERE m.client_id = c.id \
              AND m.kind = 'manager' ORDER BY m.id DESC LIMIT 1), \
             (SELECT m.text FROM messages m WHERE m.client_id = c.id \
              AND m.direction = 'in' ORDER BY m.id DESC LIMIT 1), \
             v.callback_since IS NOT NULL \
             FROM conversations v JOIN clients c ON c.id = v.client_id \
             WHERE v.owner = 'human' OR v.callback_since IS NOT NULL ORDER BY c.id";
        type Row = (
            String,
            String,
            Option<String>,
            Option<String>,
            DateTime<Utc>,
            Option<String>,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
            Option<String>,
            bool,
        );
        let rows = on!(self, |c| sqlx::query_as::<_, Row>(SQL).fetch_all(c).await?);
        rows.into_iter()
            .map(
                |(
                    channel,
                    id,
                    name,
                    phone,
                    updated,
                    payload,
                    handed,
                    inbound,
                    manager,
                    last_text,
                    callback,
                )| {
                    let reason = payload
                        .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
                        .and_then(|v| v["reason"].as_str().map(str::to_string));
                    Ok(WaitingHandoff {
                        client: ClientRef {
                            channel: parse_channel(&channel)?,
                            id,
                        },
                        name,
                        phone,
                        reason,
                        since: handed.unwrap_or(updated),
                        last_inbound_at: inbound,
                        last_manager_at: manager,
                        last_message: last_text,
                        callback,
                    })
                },
            )
            .collect()
    }

    pub(super) async fn leads(&mut self) -> Result<Vec<StoredLead>, StoreError> {
        const SQL: &str = concat!(lead_select!(), " ORDER BY l.id");
        let rows = on!(self, |c| sqlx::query_as::<_, LeadRow>(SQL)
            .fetch_all(c)
            .await?);
        rows.into_iter().map(lead_from).collect()
    }

    pub(super) async fn lead(&mut self, id: i64) -> Result<Option<StoredLead>, StoreError> {
        const SQL: &str = concat!(lead_select!(), " WHERE l.id = $1");
        let row = on!(self, |c| sqlx::query_as::<_, LeadRow>(SQL)
            .bind(id)
            .fetch_optional(c)
            .await?);
        row.map(lead_from).transpose()
    }

    /// The client's most recent lead.
    pub(super) async fn latest_lead_of(
        &mut self,
        client_id: i64,
    ) -> Result<Option<StoredLead>, StoreError> {
        const SQL: &str = concat!(
            lead_select!(),
            " WHERE l.client_id = $1 ORDER BY l.id DESC LIMIT 1"
        );
        let row = on!(self, |c| sqlx::query_as::<_, LeadRow>(SQL)
            .bind(client_id)
            .fetch_optional(c)
            .await?);
        row.map(lead_from).transpose()
    }

    /// The client of our lead `id`, when the lead exists.
    pub(super) async fn lead_client(&mut self, id: i64) -> Result<Option<i64>, StoreError> {
        const SQL: &str = "SELECT client_id FROM leads WHERE id = $1";
        Ok(on!(self, |c| sqlx::query_scalar::<_, i64>(SQL)
            .bind(id)
            .fetch_optional(c)
            .await?))
    }

    /// Our lead pushed to the CRM as `crm_id`, and its client.
    pub(super) async fn lead_by_crm_id(
        &mut self,
        crm_id: i64,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        const SQL: &str =
            "SELECT id, client_id FROM leads WHERE crm_id = $1 ORDER BY id DESC LIMIT 1";
        Ok(on!(self, |c| sqlx::query_as::<_, (i64, i64)>(SQL)
            .bind(crm_id.to_string())
            .fetch_optional(c)
            .await?))
    }

    /// The lead reached the CRM as `crm_id`. False when the lead does not exist.
    pub(super) async fn set_lead_synced(
        &mut self,
        id: i64,
        crm_id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE leads SET crm_id = $2, crm_state = 'synced', \
             crm_synced_at = $3, crm_error = NULL WHERE id = $1";
        let n = on!(self, |c| sqlx::query(SQL)
            .bind(id)
            .bind(crm_id.to_string())
            .bind(now)
            .execute(c)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    // ---- jobs -------------------------------------------------------------------------------

    pub(super) async fn insert_job(&mut self, job: &NewJob<'_>) -> Result<i64, StoreError> {
        const SQL: &str = "INSERT INTO jobs (kind, client_id, booking_id, payload, due_at, \
             created_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id";
        Ok(on!(self, |c| sqlx::query_scalar::<_, i64>(SQL)
            .bind(job.kind.as_str())
            .bind(job.client_id)
            .bind(job.booking.map(BookingId::as_str))
            .bind(&job.payload)
            .bind(job.due_at)
            .fetch_one(c)
            .await?))
    }

    /// Whether a job of `kind` with exactly this payload waits and was never tried.
    pub(super) async fn untried_job(
        &mut self,
        kind: JobKind,
        payload: &str,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM jobs WHERE kind = $1 AND payload = $2 \
             AND done_at IS NULL AND attempts = 0";
        let n = on!(self, |c| sqlx::query_scalar::<_, i64>(SQL)
            .bind(kind.as_str())
            .bind(payload)
            .fetch_one(c)
            .await?);
        Ok(n > 0)
    }

    /// Remove the pending reminders of a booking (it moved or was cancelled). On PostgreSQL a
    /// reminder a scheduler is running right now is skipped, not waited for: its turn will
    /// find the booking changed.
    pub(super) async fn drop_reminders(&mut self, booking: &BookingId) -> Result<u64, StoreError> {
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

    /// The earliest due job of `kind`, locked until commit; jobs other transactions hold are
    /// skipped (PostgreSQL), and leased ones wait for their lease to expire.
    pub(super) async fn claim_due(
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
    pub(super) async fn lease_job(
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

    pub(super) async fn finish_job(
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
    pub(super) async fn start_send(
        &mut self,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE jobs SET send_started_at = $2 WHERE id = $1 AND done_at IS NULL";
        self.update_one(SQL, id, at).await
    }

    /// A failed attempt: record the error and try again at `retry_at`.
    pub(super) async fn retry_job(
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
    pub(super) async fn pending_jobs(&mut self) -> Result<Vec<Job>, StoreError> {
        const SQL: &str = concat!(job_select!(), " WHERE done_at IS NULL ORDER BY due_at, id");
        let rows = on!(self, |c| sqlx::query_as::<_, JobRow>(SQL)
            .fetch_all(c)
            .await?);
        rows.into_iter().map(job_from).collect()
    }

    /// Dead letters: jobs given up with an error, most recent first.
    pub(super) async fn dead_jobs(&mut self) -> Result<Vec<Job>, StoreError> {
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
    pub(super) async fn reopen_job(
        &mut self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE jobs SET done_at = NULL, attempts = 0, due_at = $2, \
             locked_until = NULL, send_started_at = NULL \
             WHERE id = $1 AND done_at IS NOT NULL AND last_error IS NOT NULL";
        self.update_one(SQL, id, now).await
    }

    pub(super) async fn job(&mut self, id: i64) -> Result<Option<Job>, StoreError> {
        const SQL: &str = concat!(job_select!(), " WHERE id = $1");
        let row = on!(self, |c| sqlx::query_as::<_, JobRow>(SQL)
            .bind(id)
            .fetch_optional(c)
            .await?);
        row.map(job_from).transpose()
    }

    // ---- statistics ---------------------------------------------------------------------------

    pub(super) async fn counts(&mut self) -> Result<Counts, StoreError> {
        const SQL: &str = "SELECT (SELECT COUNT(*) FROM clients), \
             (SELECT COUNT(*) FROM conversations), (SELECT COUNT(*) FROM messages), \
             (SELECT COUNT(*) FROM bookings), \
             (SELECT COUNT(*) FROM bookings WHERE status IN ('booked', 'confirmed')), \
             (SELECT COUNT(*) FROM leads), (SELECT COUNT(*) FROM jobs), \
             (SELECT COUNT(*) FROM jobs WHERE done_at IS NULL), \
             (SELECT COUNT(*) FROM processed_inbound)";
        type Row = (i64, i64, i64, i64, i64, i64, i64, i64, i64);
        let r = on!(self, |c| sqlx::query_as::<_, Row>(SQL).fetch_one(c).await?);
        Ok(Counts {
            clients: r.0,
            conversations: r.1,
            messages: r.2,
            bookings: r.3,
            active_bookings: r.4,
            leads: r.5,
            jobs: r.6,
            pending_jobs: r.7,
            processed_inbound: r.8,
        })
    }
}

type StoredBookingRow = (
    String,
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    String,
    Option<String>,
    i64,
    DateTime<Utc>,
    i64,
);

fn stored_booking_from(row: StoredBookingRow) -> Result<StoredBooking, StoreError> {
    let (id, channel, ext, service, staff, start, end, status, name, sequence, updated, cid) = row;
    Ok(StoredBooking {
        booking: booking_from((id, channel, ext, service, staff, start, end, status))?,
        client_name: name,
        sequence,
        updated_at: updated,
        client_id: cid,
    })
}

/// The `stage` tag of a serialized conversation, for reporting without parsing JSON in SQL.
fn stage_name(state_json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(state_json)
        .ok()
        .and_then(|v| v["stage"]["stage"].as_str().map(str::to_string))
        .unwrap_or_else(|| "idle".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_name_reads_the_serde_tag() {
        let conv = Conversation::new(ClientRef {
            channel: crate::domain::ChannelKind::Web,
            id: "1".into(),
        });
        let json = serde_json::to_string(&conv).unwrap_or_default();
        assert_eq!(stage_name(&json), "idle");
        assert_eq!(stage_name("{\"stage\":{\"stage\":\"booking\"}}"), "booking");
    }
}
