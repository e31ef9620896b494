//! One turn, written: the engine's decision on the locked conversation and the stored
//! schedule, then its effects — bookings (re-checked under the staff lock, renumbered when the
//! engine's number is taken), reminders, leads, contact, hand-offs — the new state, and the
//! replies with their outbox jobs. Shared by inbound messages (`inbound.rs`) and the
//! scheduler's reminder and no-show turns (`jobs.rs`). A booking that lost its slot returns
//! `None`: the caller rolls back and runs the turn again on the fresh schedule.

use super::StoreError;
use super::model::{JobPayload, ReminderDue};
use super::tx::{NewJob, NewMessage, Tx};
use crate::calendar::{ScheduleAvailability, reminders_for};
use crate::domain::{Booking, BookingChange, BookingId, BookingStatus, Effect, Inbound};
use crate::engine::{Conversation, Engine, Turn};
use crate::nlu::Understanding;
use chrono::{DateTime, Duration, Utc};

/// How often a turn is re-run after losing its slot before giving up.
pub(super) const MAX_ATTEMPTS: u32 = 20;

/// What a committed-to-be turn wrote.
pub(super) struct Applied {
    pub turn: Turn,
    pub replies: Vec<i64>,
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
        outbox(tx, client_id, None, &JobPayload::Send { message: id }, now).await?;
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
            crm_booking(tx, client_id, &booking.id, BookingChange::Created, now).await?;
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
            crm_booking(tx, client_id, id, BookingChange::Moved, now).await?;
        }
        Effect::BookingCancelled { id } => {
            tx.set_status(id, BookingStatus::Cancelled, now).await?;
            tx.drop_reminders(id).await?;
            crm_booking(tx, client_id, id, BookingChange::Cancelled, now).await?;
        }
        Effect::BookingConfirmed { id } => {
            tx.set_status(id, BookingStatus::Confirmed, now).await?;
            crm_booking(tx, client_id, id, BookingChange::Confirmed, now).await?;
        }
        Effect::LeadQualified { lead } => {
            let id = tx.insert_lead(client_id, lead, now).await?;
            outbox(tx, client_id, None, &JobPayload::CrmLead { lead: id }, now).await?;
        }
        Effect::ContactCaptured { contact } => tx.update_contact(client_id, contact).await?,
        Effect::HandoffRequested { reason } => {
            let payload = JobPayload::Handoff { reason: *reason };
            outbox(tx, client_id, None, &payload, now).await?;
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
        let payload = JobPayload::Reminder(ReminderDue {
            booking: booking.id.clone(),
            kind: due.kind,
        });
        tx.insert_job(&NewJob {
            client_id: Some(client_id),
            booking: Some(&booking.id),
            payload: &payload,
            due_at: due.at,
        })
        .await?;
    }
    Ok(())
}

/// An outbox job due at once.
pub(super) async fn outbox(
    tx: &mut Tx,
    client_id: i64,
    booking: Option<&BookingId>,
    payload: &JobPayload,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    tx.insert_job(&NewJob {
        client_id: Some(client_id),
        booking,
        payload,
        due_at: now,
    })
    .await
}

/// Tell the CRM worker a booking changed.
pub(super) async fn crm_booking(
    tx: &mut Tx,
    client_id: i64,
    id: &BookingId,
    change: BookingChange,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let payload = JobPayload::CrmBooking {
        booking: id.clone(),
        change,
    };
    outbox(tx, client_id, Some(id), &payload, now).await?;
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
