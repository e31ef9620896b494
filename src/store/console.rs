//! What the managers' console (`console/`) keeps and changes: login sessions (the cookie's
//! token is stored only as its SHA-256, so a copy of the database opens no session), a
//! client's whole file for the conversation view, the note about a client, and the bookings an
//! operator makes, moves or cancels for a client.
//!
//! An operator's booking goes through the bot's own path: the conversation is locked, the
//! slot must be one the schedule rules offer (`Availability::slot_at`: the master works then,
//! the minimum notice, the horizon, the buffer), and the effect is carried out by the same
//! plan and staff lock as a turn's (`engine::plan`, `turn::carry_out`), with its reminders and
//! CRM update. The client is told in the same transaction, by a message signed by the
//! operator that the outbox sends through the client's channel.

use super::reads::{StoredBooking, StoredMessage};
use super::turn::{carry_out, free_booking_id, outbox};
use super::tx::{NewMessage, Tx, on};
use super::{JobPayload, Store, StoreError};
use crate::calendar::{Availability, ScheduleAvailability};
use crate::config::Profile;
use crate::domain::{Booking, BookingId, BookingStatus, ClientRef, Effect, ServiceId, StaffId};
use crate::engine::plan::plan;
use chrono::{DateTime, Utc};

/// A signed-in operator's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub operator_id: i64,
    pub operator: String,
    /// The token every form of this session carries (compared with what a POST sends).
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

/// Everything the console shows about one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFile {
    pub client: ClientRef,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub note: Option<String>,
    /// With a manager now (the bot is silent).
    pub with_manager: bool,
    /// Waiting for a call back (no managers' channel was set up when the bot handed over).
    pub callback: bool,
    pub messages: Vec<StoredMessage>,
    /// All their bookings, earliest first.
    pub bookings: Vec<StoredBooking>,
}

/// What an operator does to a client's bookings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookingAction {
    /// Book `service` at `start`, with `staff` or any master who does it.
    Book {
        service: ServiceId,
        staff: Option<StaffId>,
        start: DateTime<Utc>,
    },
    /// Move one of the client's active bookings to `start` (the same master when free).
    Move {
        id: BookingId,
        start: DateTime<Utc>,
    },
    Cancel {
        id: BookingId,
    },
}

/// Why an operator's booking action was not done (nothing was changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the client is unknown")]
    UnknownClient,
    #[error("no such service")]
    UnknownService,
    #[error("the booking is not an active booking of this client")]
    NotTheirs,
    /// Busy, closed, too soon or too far ahead: the schedule rules offer no such slot.
    #[error("no free slot at that time")]
    NoSlot,
}

/// The outcome of a booking action: the booking as it now is.
pub type BookingOutcome = Result<Booking, Refusal>;

impl Store {
    /// Open a session for `operator_id` until `expires_at`; expired sessions are purged.
    pub async fn open_session(
        &self,
        operator_id: i64,
        token_hash: &str,
        csrf: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const PURGE: &str = "DELETE FROM console_sessions WHERE expires_at <= $1";
        const INSERT: &str = "INSERT INTO console_sessions \
             (token_hash, operator_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
        let mut tx = self.write().await?;
        on!(&mut tx, |c| {
            sqlx::query(PURGE).bind(now).execute(&mut *c).await?;
            sqlx::query(INSERT)
                .bind(token_hash)
                .bind(operator_id)
                .bind(csrf)
                .bind(now)
                .bind(expires_at)
                .execute(c)
                .await?
                .rows_affected()
        });
        self.commit(tx).await
    }

    /// The live session of a token's hash (None: unknown, expired, or its operator removed).
    pub async fn session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        const SQL: &str = "SELECT s.operator_id, o.name, s.csrf, s.expires_at \
             FROM console_sessions s JOIN operators o ON o.id = s.operator_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2";
        let mut tx = self.read().await?;
        let row = on!(&mut tx, |c| sqlx::query_as::<
            _,
            (i64, String, String, DateTime<Utc>),
        >(SQL)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(c)
        .await?);
        tx.commit().await?;
        Ok(
            row.map(|(operator_id, operator, csrf, expires_at)| ConsoleSession {
                operator_id,
                operator,
                csrf,
                expires_at,
            }),
        )
    }

    /// End a session (sign out).
    pub async fn close_session(&self, token_hash: &str) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM console_sessions WHERE token_hash = $1";
        let mut tx = self.write().await?;
        on!(&mut tx, |c| sqlx::query(SQL)
            .bind(token_hash)
            .execute(c)
            .await?
            .rows_affected());
        tx.commit().await?;
        Ok(())
    }

    /// Everything about one client, or None when the store does not know them.
    pub async fn client_file(&self, client: &ClientRef) -> Result<Option<ClientFile>, StoreError> {
        const SQL: &str = "SELECT c.name, c.phone, c.note, v.owner, v.callback_since IS NOT NULL \
             FROM clients c LEFT JOIN conversations v ON v.client_id = c.id WHERE c.id = $1";
        let mut tx = self.read().await?;
        let Some(id) = tx.find_client(client).await? else {
            tx.commit().await?;
            return Ok(None);
        };
        type Row = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<bool>,
        );
        let (name, phone, note, owner, callback) = on!(&mut tx, |c| sqlx::query_as::<_, Row>(SQL)
            .bind(id)
            .fetch_one(c)
            .await?);
        let messages = tx.messages(id).await?;
        let bookings = tx.client_bookings(id).await?;
        tx.commit().await?;
        Ok(Some(ClientFile {
            client: client.clone(),
            name,
            phone,
            note,
            with_manager: owner.as_deref() == Some("human"),
            callback: callback.unwrap_or(false),
            messages,
            bookings,
        }))
    }

    /// Keep `note` about a client (empty clears it). False when the client is unknown.
    pub async fn set_note(&self, client: &ClientRef, note: &str) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE clients SET note = $2 WHERE id = $1";
        let mut tx = self.write().await?;
        let Some(id) = tx.find_client(client).await? else {
            tx.rollback().await?;
            return Ok(false);
        };
        let note = Some(note.trim()).filter(|n| !n.is_empty());
        on!(&mut tx, |c| sqlx::query(SQL)
            .bind(id)
            .bind(note)
            .execute(c)
            .await?
            .rows_affected());
        tx.commit().await?;
        Ok(true)
    }

    /// Book, move or cancel for `client` as `operator` (see the module's description); `tell`
    /// words the message the client gets about the result. A refusal changes nothing.
    pub async fn operator_booking(
        &self,
        profile: &Profile,
        client: &ClientRef,
        action: &BookingAction,
        operator: &str,
        tell: &(dyn Fn(&Booking, &BookingAction) -> String + Sync),
        now: DateTime<Utc>,
    ) -> Result<BookingOutcome, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .try_operator_booking(profile, client, action, operator, tell, now)
                .await
            {
                Ok(Some(outcome)) => return Ok(outcome),
                // The slot was taken between the read and the staff lock: look again.
                Ok(None) if attempt < super::turn::MAX_ATTEMPTS => {}
                Ok(None) => return Err(StoreError::Contended(attempt)),
                Err(e) if e.is_retryable() && attempt < super::turn::MAX_ATTEMPTS => {
                    tokio::time::sleep(std::time::Duration::from_millis(u64::from(
                        attempt * attempt,
                    )))
                    .await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn try_operator_booking(
        &self,
        profile: &Profile,
        client: &ClientRef,
        action: &BookingAction,
        operator: &str,
        tell: &(dyn Fn(&Booking, &BookingAction) -> String + Sync),
        now: DateTime<Utc>,
    ) -> Result<Option<BookingOutcome>, StoreError> {
        let mut tx = self.write().await?;
        let Some(client_id) = tx.find_client(client).await? else {
            tx.rollback().await?;
            return Ok(Some(Err(Refusal::UnknownClient)));
        };
        // The client's own turns wait meanwhile (and this waits for theirs).
        tx.lock_conversation(client_id, client, now).await?;
        let bookings = tx.schedule_bookings(now, client_id).await?;
        let decided = {
            let avail = ScheduleAvailability::new(profile, &bookings);
            decide(profile, &avail, client, action, now)
        };
        let (effect, booking) = match decided {
            Ok(d) => d,
            Err(refusal) => {
                tx.rollback().await?;
                return Ok(Some(Err(refusal)));
            }
        };
        let mut effects = vec![effect];
        let mut booking = booking;
        if let Some(staff) = match &effects[0] {
            Effect::BookingRequested { booking } => Some(booking.slot.staff.clone()),
            Effect::BookingMoved { to, .. } => Some(to.staff.clone()),
            _ => None,
        } {
            tx.lock_staff(&staff).await?;
        }
        if let Effect::BookingRequested { booking: new } = &mut effects[0]
            && tx.booking_exists(&new.id).await?
        {
            new.id = free_booking_id(&mut tx, &new.id).await?;
            booking.id = new.id.clone();
        }
        for step in plan(profile, &effects, &bookings, now) {
            if !carry_out(&mut tx, profile, client_id, step, now).await? {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        let text = tell(&booking, action);
        let message = tx
            .insert_message(&NewMessage {
                client_id,
                direction: "out",
                channel: client.channel.as_str(),
                kind: "manager",
                text: &text,
                payload: None,
                inbound_id: None,
                reply_to: None,
                received_at: None,
                created_at: now,
                operator: Some(operator),
            })
            .await?;
        outbox(&mut tx, client_id, None, &JobPayload::Send { message }, now).await?;
        self.commit(tx).await?;
        Ok(Some(Ok(booking)))
    }
}

/// The effect an operator's action has on the schedule as read, and the booking as it will
/// be; or why it cannot be done.
fn decide(
    profile: &Profile,
    avail: &ScheduleAvailability<'_>,
    client: &ClientRef,
    action: &BookingAction,
    now: DateTime<Utc>,
) -> Result<(Effect, Booking), Refusal> {
    let active = |id: &BookingId| {
        avail
            .booking(id)
            .filter(|b| &b.client == client && b.is_active())
            .ok_or(Refusal::NotTheirs)
    };
    match action {
        BookingAction::Book {
            service,
            staff,
            start,
        } => {
            if profile.service(service).is_none() {
                return Err(Refusal::UnknownService);
            }
            let slot = avail
                .slot_at(service, staff.as_ref(), *start, now, None)
                .ok_or(Refusal::NoSlot)?;
            let booking = Booking {
                id: fresh_id(client, &slot.start, now),
                client: client.clone(),
                service: service.clone(),
                slot,
                status: BookingStatus::Booked,
            };
            Ok((
                Effect::BookingRequested {
                    booking: booking.clone(),
                },
                booking,
            ))
        }
        BookingAction::Move { id, start } => {
            let old = active(id)?;
            let to = avail
                .slot_at(&old.service, Some(&old.slot.staff), *start, now, Some(id))
                .or_else(|| avail.slot_at(&old.service, None, *start, now, Some(id)))
                .ok_or(Refusal::NoSlot)?;
            let moved = Booking {
                slot: to.clone(),
                ..old.clone()
            };
            Ok((
                Effect::BookingMoved {
                    id: id.clone(),
                    from: old.slot,
                    to,
                },
                moved,
            ))
        }
        BookingAction::Cancel { id } => {
            let old = active(id)?;
            let cancelled = Booking {
                status: BookingStatus::Cancelled,
                ..old
            };
            Ok((Effect::BookingCancelled { id: id.clone() }, cancelled))
        }
    }
}

/// A six-digit number for an operator's booking, from the client, the slot and the time (a
/// taken number is replaced under the lock, as for the bot's bookings).
fn fresh_id(client: &ClientRef, start: &DateTime<Utc>, now: DateTime<Utc>) -> BookingId {
    let h = crate::engine::reply::stable_hash(&[
        client.to_string().as_bytes(),
        start.to_rfc3339().as_bytes(),
        &now.timestamp_micros().to_le_bytes(),
    ]);
    BookingId(format!("{:06}", h % 1_000_000))
}
