//! One conversation replayed in-process: the engine, a fresh `Conversation`, a throw-away
//! booking store (a `Vec<Booking>` the turn effects are applied to, read through
//! `ScheduleAvailability`), a virtual clock, and the reminders due for each booking
//! (`calendar::reminders_for`, recomputed when a booking is made or moved, dropped when it is
//! cancelled or missed). Time passing fires every reminder that became due, in order, as
//! `Event::Reminder` turns. Every turn is recorded with its wall-clock latency. A panic in
//! the engine becomes an error of the run, never of the runner.

use super::model::Dialog;
use crate::calendar::{ScheduleAvailability, reminders_for};
use crate::domain::{
    Booking, BookingId, BookingStatus, Button, ClientRef, Effect, Event, Inbound, ReminderKind,
    Reply,
};
use crate::engine::plan::{Step, booking_numbers, plan};
use crate::engine::{Conversation, Engine, Turn};
use crate::nlu::Understanding;
use chrono::{DateTime, Duration, Utc};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

/// Virtual time a client's message takes (typing, reading the answer).
pub const CLIENT_TURN: Duration = Duration::seconds(30);

/// A reminder waiting to fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub booking: BookingId,
    pub kind: ReminderKind,
    pub at: DateTime<Utc>,
}

/// One turn of the engine, as the runner saw it.
#[derive(Debug, Clone)]
pub struct TurnRecord {
    pub at: DateTime<Utc>,
    pub event: Event,
    pub replies: Vec<Reply>,
    pub effects: Vec<Effect>,
    pub understanding: Option<Understanding>,
    pub elapsed: std::time::Duration,
}

pub struct Replay<'a> {
    engine: &'a Engine,
    conv: Conversation,
    bookings: Vec<Booking>,
    pending: Vec<Pending>,
    now: DateTime<Utc>,
    last_buttons: Vec<Button>,
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

impl<'a> Replay<'a> {
    /// Start `dialog` for `client` (the dialog's client, or a variant of it on repeats).
    pub fn new(engine: &'a Engine, dialog: &Dialog, client: ClientRef) -> Replay<'a> {
        let mut conv = Conversation::new(client.clone());
        conv.contact = dialog.known.clone();
        let bookings: Vec<Booking> = dialog
            .bookings
            .iter()
            .cloned()
            .map(|mut b| {
                if b.client == dialog.client {
                    b.client = client.clone();
                }
                b
            })
            .collect();
        let mut replay = Replay {
            engine,
            conv,
            bookings: Vec::new(),
            pending: Vec::new(),
            now: dialog.now,
            last_buttons: Vec::new(),
        };
        for b in bookings {
            if b.is_active() {
                replay.schedule(&b);
            }
            replay.bookings.push(b);
        }
        replay
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    pub fn bookings(&self) -> &[Booking] {
        &self.bookings
    }

    /// Reminders not yet fired, earliest first.
    pub fn pending(&self) -> &[Pending] {
        &self.pending
    }

    /// The buttons of the most recent reply that offered any.
    pub fn last_buttons(&self) -> &[Button] {
        &self.last_buttons
    }

    pub fn conversation(&self) -> &Conversation {
        &self.conv
    }

    fn schedule(&mut self, booking: &Booking) {
        let profile = self.engine.profile();
        self.pending.retain(|p| p.booking != booking.id);
        self.pending.extend(
            reminders_for(profile, booking, self.now)
                .into_iter()
                .map(|r| Pending {
                    booking: booking.id.clone(),
                    kind: r.kind,
                    at: r.at,
                }),
        );
        self.pending.sort_by_key(|p| p.at);
    }

    /// Carry out a turn the way the store does (`engine::plan`): a taken booking number is
    /// replaced by the next free one, then the planned steps change the in-memory schedule
    /// and reminders. Leads, contacts, hand-offs and CRM news change neither.
    fn apply(&mut self, turn: &mut Turn) {
        for old in turn.new_booking_ids() {
            if self.bookings.iter().any(|b| b.id == old) {
                let free = booking_numbers(&old).find(|n| self.bookings.iter().all(|b| &b.id != n));
                if let Some(new) = free {
                    turn.renumber(&old, &new);
                }
            }
        }
        for step in plan(
            self.engine.profile(),
            &turn.effects,
            &self.bookings,
            self.now,
        ) {
            match step {
                Step::Insert(booking) => self.bookings.push(booking),
                Step::Move { id, to } => {
                    if let Some(b) = self.bookings.iter_mut().find(|b| b.id == id) {
                        b.slot = to;
                        b.status = BookingStatus::Booked;
                    }
                }
                Step::Status { id, status } => {
                    if let Some(b) = self.bookings.iter_mut().find(|b| b.id == id) {
                        b.status = status;
                    }
                }
                Step::DropReminders(id) => self.pending.retain(|p| p.booking != id),
                Step::Remind { booking, kind, at } => {
                    self.pending.push(Pending { booking, kind, at });
                    self.pending.sort_by_key(|p| p.at);
                }
                Step::Free { .. }
                | Step::Crm { .. }
                | Step::Lead(_)
                | Step::Contact(_)
                | Step::Handoff(_) => {}
            }
        }
    }

    /// One event through the engine at the current virtual time.
    pub fn send(&mut self, event: Event) -> Result<TurnRecord, String> {
        let inbound = Inbound {
            client: self.conv.client.clone(),
            at: self.now,
            event: event.clone(),
        };
        let started = Instant::now();
        let mut turn = {
            let avail = ScheduleAvailability::new(self.engine.profile(), &self.bookings);
            let engine = self.engine;
            let conv = &self.conv;
            let now = self.now;
            catch_unwind(AssertUnwindSafe(|| {
                engine.turn(conv, &inbound, now, &avail)
            }))
            .map_err(|p| format!("the engine panicked: {}", panic_text(p.as_ref())))?
        };
        let elapsed = started.elapsed();
        self.apply(&mut turn);
        if let Some(r) = turn.replies.iter().rev().find(|r| !r.buttons.is_empty()) {
            self.last_buttons = r.buttons.clone();
        }
        self.conv = turn.conversation;
        let record = TurnRecord {
            at: self.now,
            event,
            replies: turn.replies,
            effects: turn.effects,
            understanding: turn.understanding,
            elapsed,
        };
        if matches!(
            record.event,
            Event::Text { .. } | Event::Button { .. } | Event::Contact { .. }
        ) {
            self.now += CLIENT_TURN;
        }
        Ok(record)
    }

    /// Fire every reminder due at or before `until`, in order, then set the clock to `until`.
    fn fire_until(&mut self, until: DateTime<Utc>) -> Result<Vec<TurnRecord>, String> {
        let mut out = Vec::new();
        while let Some(first) = self.pending.first().filter(|p| p.at <= until).cloned() {
            self.pending.remove(0);
            self.now = self.now.max(first.at);
            out.push(self.send(Event::Reminder {
                booking: first.booking,
                kind: first.kind,
            })?);
        }
        self.now = self.now.max(until);
        Ok(out)
    }

    /// Time passes; reminders due meanwhile fire.
    pub fn wait(&mut self, d: Duration) -> Result<Vec<TurnRecord>, String> {
        let until = self.now + d;
        self.fire_until(until)
    }

    /// The clock moves to the next reminder of `kind` (firing any due before it).
    pub fn reminder(&mut self, kind: ReminderKind) -> Result<Vec<TurnRecord>, String> {
        let Some(next) = self.pending.iter().find(|p| p.kind == kind).cloned() else {
            let pending: Vec<String> = self
                .pending
                .iter()
                .map(|p| format!("{:?} at {}", p.kind, p.at))
                .collect();
            return Err(format!(
                "no {kind:?} reminder is scheduled (pending: {})",
                if pending.is_empty() {
                    "none".to_string()
                } else {
                    pending.join(", ")
                }
            ));
        };
        self.fire_until(next.at)
    }

    /// The visit was missed: the booking is marked, its reminders dropped, the follow-up sent.
    pub fn no_show(&mut self, id: &BookingId) -> Result<TurnRecord, String> {
        let Some(b) = self.bookings.iter_mut().find(|b| &b.id == id) else {
            let known: Vec<&str> = self.bookings.iter().map(|b| b.id.as_str()).collect();
            return Err(format!("no booking {id} (bookings: {})", known.join(", ")));
        };
        b.status = BookingStatus::NoShow;
        self.pending.retain(|p| &p.booking != id);
        self.send(Event::NoShow {
            booking: id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ChannelKind, Contact, ServiceId, Slot, StaffId};
    use crate::engine::{Draft, Payload, Stage};
    use chrono::TimeZone;

    /// A replay where the client, name and phone known, was offered `slot` for a manicure.
    fn offered<'a>(engine: &'a Engine, slot: &Slot, bookings: Vec<Booking>) -> Replay<'a> {
        let client = ClientRef {
            channel: ChannelKind::Web,
            id: "anna".into(),
        };
        let mut conv = Conversation::new(client);
        conv.contact = Contact {
            name: Some("Анна".into()),
            phone: Some("+79131234567".into()),
            email: None,
        };
        conv.draft = Draft {
            service: Some(ServiceId("manicure".into())),
            ..Draft::default()
        };
        conv.stage = Stage::ChoosingSlot {
            offered: vec![slot.clone()],
            moving: None,
        };
        Replay {
            engine,
            conv,
            bookings,
            pending: Vec::new(),
            now: Utc.with_ymd_and_hms(2026, 11, 20, 3, 0, 0).unwrap(),
            last_buttons: Vec::new(),
        }
    }

    fn booked(record: &TurnRecord) -> Booking {
        record
            .effects
            .iter()
            .find_map(|e| match e {
                Effect::BookingRequested { booking } => Some(booking.clone()),
                _ => None,
            })
            .expect("a booking")
    }

    #[test]
    fn a_taken_booking_number_is_replaced_as_the_store_does() {
        let engine = Engine::new(crate::config::demo_salon());
        let start = Utc.with_ymd_and_hms(2026, 11, 21, 5, 0, 0).unwrap();
        let slot = Slot {
            start,
            end: start + Duration::minutes(60),
            staff: StaffId("olga".into()),
        };
        let press = Event::Button {
            payload: Payload::slot(&slot).encode(),
        };
        let mut free = offered(&engine, &slot, Vec::new());
        let chosen = booked(&free.send(press.clone()).unwrap()).id;

        // Someone else's booking, another day, already has that number.
        let other = Booking {
            id: chosen.clone(),
            client: ClientRef {
                channel: ChannelKind::Web,
                id: "other".into(),
            },
            service: ServiceId("manicure".into()),
            slot: Slot {
                start: start + Duration::days(3),
                end: start + Duration::days(3) + Duration::minutes(60),
                staff: StaffId("olga".into()),
            },
            status: BookingStatus::Booked,
        };
        let mut taken = offered(&engine, &slot, vec![other.clone()]);
        let record = taken.send(press).unwrap();
        let renumbered = booked(&record).id;
        let expected = booking_numbers(&chosen).next().unwrap();
        assert_eq!(renumbered, expected);
        assert!(taken.bookings().contains(&other), "the other booking stays");
        assert!(taken.bookings().iter().any(|b| b.id == renumbered));
        let said: String = record.replies.iter().map(|r| r.text.as_str()).collect();
        assert!(!said.contains(chosen.as_str()), "{said}");
        assert!(taken.pending().iter().all(|p| p.booking != chosen));
    }
}
