//! One inbound event → one transaction: dedup by inbound id, the message row, the conversation
//! (locked), the engine turn on the stored schedule, the new state, the replies with their
//! outbox jobs, and the turn's effects — bookings with their reminders, leads, contact,
//! hand-offs. A booking that lost a race to another transaction (found under the staff lock)
//! rolls everything back and re-runs the turn on the fresh schedule, so the client is offered
//! the next free slots instead of a double booking.
//!
//! `apply_turn` is shared with the scheduler (`jobs.rs`), whose reminder and no-show jobs are
//! turns too.

use super::jobs::JobKind;
use super::tx::{NewJob, NewMessage, Tx};
use super::{Store, StoreError};
use crate::calendar::{ScheduleAvailability, reminders_for};
use crate::domain::{Booking, BookingId, BookingStatus, Effect, Event, Inbound};
use crate::engine::{Conversation, Engine, Turn};
use crate::nlu::Understanding;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

/// How often a turn is re-run after losing its slot before giving up.
pub(super) const MAX_ATTEMPTS: u32 = 20;

/// The result of a processed inbound event.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    /// The turn as stored (booking numbers may differ from the engine's if one was taken).
    pub turn: Turn,
    /// The stored client message (None for events that are not messages).
    pub message: Option<i64>,
    /// The stored replies, in order; each has an outbox `send` job.
    pub replies: Vec<i64>,
    /// How many times the turn ran (more than 1 after losing a slot to another client).
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// This inbound id was processed before; nothing was changed.
    Duplicate,
    Processed(Box<Processed>),
}

/// What a committed-to-be turn wrote.
pub(super) struct Applied {
    pub turn: Turn,
    pub replies: Vec<i64>,
}

impl Store {
    /// Process one inbound event identified by `inbound_id` (the channel's update/message id)
    /// in one transaction. A redelivered id is `Duplicate` and changes nothing.
    pub async fn process_inbound(
        &self,
        engine: &Engine,
        inbound_id: &str,
        inbound: &Inbound,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        // Understanding is pure and may take a while on a long message: done once, before any
        // transaction, so no writer waits for it.
        let understood = engine.understand(inbound, now);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let busy = match self
                .try_inbound(engine, inbound_id, inbound, understood.as_ref(), now)
                .await
            {
                Ok(Some(Outcome::Processed(mut p))) => {
                    p.attempts = attempt;
                    return Ok(Outcome::Processed(p));
                }
                Ok(Some(Outcome::Duplicate)) => return Ok(Outcome::Duplicate),
                Ok(None) => None,
                Err(e) if e.is_retryable() => Some(e),
                Err(e) => return Err(e),
            };
            if attempt >= MAX_ATTEMPTS {
                return Err(busy.unwrap_or(StoreError::Contended(attempt)));
            }
            if busy.is_some() {
                // The database is busy (another process writes, a deadlock was broken): give it
                // a moment, 1, 4, 9 … ms, about 2.9 s over all attempts.
                let wait = u64::from(attempt * attempt);
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
    }

    /// Record an inbound id that carries no event for the engine (a button press that is only
    /// acknowledged), so a redelivery is recognised. False when it was seen before.
    pub async fn claim_inbound(
        &self,
        inbound_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        if !tx.claim_inbound(inbound_id, now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        self.commit(tx).await?;
        Ok(true)
    }

    /// One attempt; None when a booking lost its slot (rolled back, to be re-run).
    async fn try_inbound(
        &self,
        engine: &Engine,
        inbound_id: &str,
        inbound: &Inbound,
        understood: Option<&Understanding>,
        now: DateTime<Utc>,
    ) -> Result<Option<Outcome>, StoreError> {
        let mut tx = self.write().await?;
        if !tx.claim_inbound(inbound_id, now).await? {
            tx.rollback().await?;
            return Ok(Some(Outcome::Duplicate));
        }
        let client_id = tx.client_id(&inbound.client, now).await?;
        let conv = tx
            .lock_conversation(client_id, &inbound.client, now)
            .await?;
        let message = match as_message(&inbound.event) {
            Some((kind, text, payload)) => Some(
                tx.insert_message(&NewMessage {
                    client_id,
                    direction: "in",
                    channel: inbound.client.channel.as_str(),
                    kind,
                    text,
                    payload,
                    inbound_id: Some(inbound_id),
                    reply_to: None,
                    received_at: Some(inbound.at),
                    created_at: now,
                })
                .await?,
            ),
            None => None,
        };
        let Some(applied) = apply_turn(
            &mut tx,
            engine,
            client_id,
            &conv,
            TurnInput {
                inbound,
                understood,
                reply_to: message,
            },
            now,
        )
        .await?
        else {
            tx.rollback().await?;
            return Ok(None);
        };
        self.commit(tx).await?;
        Ok(Some(Outcome::Processed(Box::new(Processed {
            turn: applied.turn,
            message,
            replies: applied.replies,
            attempts: 1,
        }))))
    }
}

/// The message row of an inbound event: (kind, text, JSON payload). Reminders, no-shows and
/// releases are not client messages.
fn as_message(event: &Event) -> Option<(&'static str, &str, Option<String>)> {
    match event {
        Event::Text { text } => Some(("text", text, None)),
        Event::Button { payload } => Some(("button", payload, None)),
        Event::Contact { phone, name } => Some((
            "contact",
            phone,
            Some(json!({ "phone": phone, "name": name }).to_string()),
        )),
        Event::Reminder { .. } | Event::NoShow { .. } | Event::Released => None,
    }
}

/// What a turn is about: the inbound event, what was understood of it before the transaction,
/// and the stored client message the replies answer.
pub(super) struct TurnInput<'a> {
    pub inbound: &'a Inbound,
    pub understood: Option<&'a Understanding>,
    pub reply_to: Option<i64>,
}

/// Run the engine turn for a locked conversation on the stored schedule and write its
/// outcome into `tx`. None when a booking effect lost its slot: the caller rolls back.
pub(super) async fn apply_turn(
    tx: &mut Tx,
    engine: &Engine,
    client_id: i64,
    conv: &Conversation,
    input: TurnInput<'_>,
    now: DateTime<Utc>,
) -> Result<Option<Applied>, StoreError> {
    let TurnInput {
        inbound,
        understood,
        reply_to,
    } = input;
    let bookings = tx.schedule_bookings(now, client_id).await?;
    let mut turn = {
        let avail = ScheduleAvailability::new(engine.profile(), &bookings);
        engine.decide(conv, inbound, understood.cloned(), now, &avail)
    };
    // Lock every schedule the turn writes, in one order (no deadlock between two turns).
    let mut staff: Vec<_> = turn
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::BookingRequested { booking } => Some(booking.slot.staff.clone()),
            Effect::BookingMoved { to, .. } => Some(to.staff.clone()),
            _ => None,
        })
        .collect();
    staff.sort();
    staff.dedup();
    for s in &staff {
        tx.lock_staff(s).await?;
    }
    let mut renamed: Vec<(BookingId, BookingId)> = Vec::new();
    for effect in &mut turn.effects {
        let ok = apply_effect(tx, engine, client_id, effect, &bookings, now, &mut renamed).await?;
        if !ok {
            return Ok(None);
        }
    }
    for (old, new) in &renamed {
        for reply in &mut turn.replies {
            reply.text = reply.text.replace(old.as_str(), new.as_str());
        }
    }
    tx.save_conversation(client_id, &turn.conversation, now)
        .await?;
    let mut replies = Vec::with_capacity(turn.replies.len());
    for reply in &turn.replies {
        let payload = serde_json::to_string(reply).map_err(|e| StoreError::corrupt("reply", e))?;
        let id = tx
            .insert_message(&NewMessage {
                client_id,
                direction: "out",
                channel: inbound.client.channel.as_str(),
                kind: "reply",
                text: &reply.text,
                payload: Some(payload),
                inbound_id: None,
                reply_to,
                received_at: None,
                created_at: now,
            })
            .await?;
        outbox(
            tx,
            JobKind::Send,
            client_id,
            None,
            json!({ "message": id }),
            now,
        )
        .await?;
        replies.push(id);
    }
    Ok(Some(Applied { turn, replies }))
}

/// Write one effect. False when a booking lost its slot (or its booking changed) since the
/// schedule was read: the turn must be re-run.
async fn apply_effect(
    tx: &mut Tx,
    engine: &Engine,
    client_id: i64,
    effect: &mut Effect,
    seen: &[Booking],
    now: DateTime<Utc>,
    renamed: &mut Vec<(BookingId, BookingId)>,
) -> Result<bool, StoreError> {
    let profile = engine.profile();
    let buffer = Duration::minutes(i64::from(profile.booking.buffer_minutes));
    match effect {
        Effect::BookingRequested { booking } => {
            if tx.overlapping(&booking.slot, buffer, None).await?.is_some() {
                return Ok(false);
            }
            if tx.booking_exists(&booking.id).await? {
                let fresh = free_booking_id(tx, &booking.id).await?;
                renamed.push((booking.id.clone(), fresh.clone()));
                booking.id = fresh;
            }
            tx.insert_booking(booking, client_id, now).await?;
            schedule_reminders(tx, engine, booking, client_id, now).await?;
            crm_booking(tx, client_id, &booking.id, "created", now).await?;
        }
        Effect::BookingMoved { id, to, .. } => {
            if tx.overlapping(to, buffer, Some(id)).await?.is_some() {
                return Ok(false);
            }
            if !tx.move_booking(id, to, now).await? {
                return Ok(false);
            }
            tx.drop_reminders(id).await?;
            if let Some(b) = seen.iter().find(|b| &b.id == id) {
                let moved = Booking {
                    slot: to.clone(),
                    status: BookingStatus::Booked,
                    ..b.clone()
                };
                schedule_reminders(tx, engine, &moved, client_id, now).await?;
            }
            crm_booking(tx, client_id, id, "moved", now).await?;
        }
        Effect::BookingCancelled { id } => {
            tx.set_status(id, BookingStatus::Cancelled, now).await?;
            tx.drop_reminders(id).await?;
            crm_booking(tx, client_id, id, "cancelled", now).await?;
        }
        Effect::BookingConfirmed { id } => {
            tx.set_status(id, BookingStatus::Confirmed, now).await?;
            crm_booking(tx, client_id, id, "confirmed", now).await?;
        }
        Effect::LeadQualified { lead } => {
            let id = tx.insert_lead(client_id, lead, now).await?;
            outbox(
                tx,
                JobKind::CrmLead,
                client_id,
                None,
                json!({ "lead": id }),
                now,
            )
            .await?;
        }
        Effect::ContactCaptured { contact } => tx.update_contact(client_id, contact).await?,
        Effect::HandoffRequested { reason } => {
            let payload = json!({ "reason": reason.as_str() });
            outbox(tx, JobKind::Handoff, client_id, None, payload, now).await?;
        }
    }
    Ok(true)
}

/// Jobs for the reminders of a booking made or moved at `now` (per profile, quiet hours
/// respected, none in the past).
pub(super) async fn schedule_reminders(
    tx: &mut Tx,
    engine: &Engine,
    booking: &Booking,
    client_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for due in reminders_for(engine.profile(), booking, now) {
        let event = Event::Reminder {
            booking: booking.id.clone(),
            kind: due.kind,
        };
        tx.insert_job(&NewJob {
            kind: JobKind::Reminder,
            client_id: Some(client_id),
            booking: Some(&booking.id),
            payload: serde_json::to_string(&event).map_err(|e| StoreError::corrupt("event", e))?,
            due_at: due.at,
        })
        .await?;
    }
    Ok(())
}

/// An outbox job due at once.
pub(super) async fn outbox(
    tx: &mut Tx,
    kind: JobKind,
    client_id: i64,
    booking: Option<&BookingId>,
    payload: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    tx.insert_job(&NewJob {
        kind,
        client_id: Some(client_id),
        booking,
        payload: payload.to_string(),
        due_at: now,
    })
    .await
}

/// Tell the CRM worker a booking changed.
pub(super) async fn crm_booking(
    tx: &mut Tx,
    client_id: i64,
    id: &BookingId,
    change: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let payload = json!({ "booking": id.as_str(), "change": change });
    outbox(tx, JobKind::CrmBooking, client_id, Some(id), payload, now).await?;
    Ok(())
}

/// The engine numbers bookings with 6 digits from a hash; when the number is taken, probe the
/// following numbers for a free one (the reply text is rewritten to match).
async fn free_booking_id(tx: &mut Tx, taken: &BookingId) -> Result<BookingId, StoreError> {
    let base: u64 = taken.as_str().parse().unwrap_or(0);
    for step in 1..1_000_000u64 {
        let candidate = BookingId(format!("{:06}", (base + step * 7_919) % 1_000_000));
        if !tx.booking_exists(&candidate).await? {
            return Ok(candidate);
        }
    }
    Err(StoreError::corrupt("booking numbers", "all taken"))
}
