//! One turn, written: the engine's decision on the locked conversation and the stored
//! schedule, then its effects — bookings (re-checked under the staff lock, renumbered when the
//! engine's number is taken), reminders, leads, contact, hand-offs — the new state, and the
//! replies with their outbox jobs. Shared by inbound messages (`inbound.rs`) and the
//! scheduler's reminder and no-show turns (`jobs.rs`). A booking that lost its slot returns
//! `None`: the caller rolls back and runs the turn again on the fresh schedule.

use super::StoreError;
use super::model::{JobPayload, ReminderDue};
use super::tx::{NewJob, NewMessage, Tx};
use crate::calendar::ScheduleAvailability;
use crate::domain::{BookingChange, BookingId, Effect, Inbound};
use crate::engine::plan::{Step, booking_numbers, plan};
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
    for old in turn.new_booking_ids() {
        if tx.booking_exists(&old).await? {
            let new = free_booking_id(tx, &old).await?;
            turn.renumber(&old, &new);
        }
    }
    for step in plan(engine.profile(), &turn.effects, &bookings, now) {
        if !carry_out(tx, engine.profile(), client_id, step, now).await? {
            return Ok(None);
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
                operator: None,
            })
            .await?;
        outbox(tx, client_id, None, &JobPayload::Send { message: id }, now).await?;
        replies.push(id);
    }
    Ok(Some(Applied { turn, replies }))
}

/// Carry out one step of the turn's plan. False when a booking lost its slot (or its booking
/// changed) since the schedule was read: the turn must be re-run.
pub(super) async fn carry_out(
    tx: &mut Tx,
    profile: &crate::config::Profile,
    client_id: i64,
    step: Step,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    match step {
        Step::Free { slot, except } => {
            let buffer = Duration::minutes(i64::from(profile.booking.buffer_minutes));
            return Ok(tx
                .overlapping(&slot, buffer, except.as_ref())
                .await?
                .is_none());
        }
        Step::Insert(booking) => tx.insert_booking(&booking, client_id, now).await?,
        Step::Move { id, to } => return tx.move_booking(&id, &to, now).await,
        Step::Status { id, status } => {
            tx.set_status(&id, status, now).await?;
        }
        Step::DropReminders(id) => {
            tx.drop_reminders(&id).await?;
        }
        Step::Remind { booking, kind, at } => {
            tx.insert_job(&NewJob {
                client_id: Some(client_id),
                booking: Some(&booking),
                payload: &JobPayload::Reminder(ReminderDue {
                    booking: booking.clone(),
                    kind,
                }),
                due_at: at,
            })
            .await?;
        }
        Step::Crm { booking, change } => crm_booking(tx, client_id, &booking, change, now).await?,
        Step::Lead(lead) => {
            let id = tx.insert_lead(client_id, &lead, now).await?;
            outbox(tx, client_id, None, &JobPayload::CrmLead { lead: id }, now).await?;
        }
        Step::Contact(contact) => {
            tx.update_contact(client_id, &contact).await?;
            if let Some(phone) = &contact.phone {
                tx.link_pilot_phone(client_id, phone).await?;
            }
        }
        Step::Handoff(reason) => {
            outbox(tx, client_id, None, &JobPayload::Handoff { reason }, now).await?;
        }
    }
    Ok(true)
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

/// The engine numbers bookings with 6 digits from a hash; when the number is taken, the first
/// free one of [`booking_numbers`] (the reply text is rewritten to match).
pub(super) async fn free_booking_id(
    tx: &mut Tx,
    taken: &BookingId,
) -> Result<BookingId, StoreError> {
    for candidate in booking_numbers(taken) {
        if !tx.booking_exists(&candidate).await? {
            return Ok(candidate);
        }
    }
    Err(StoreError::corrupt("booking numbers", "all taken"))
}
