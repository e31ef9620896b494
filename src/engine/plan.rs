//! A turn's effects as the steps that carry them out, decided without I/O and shared by the
//! store (`store/turn.rs`, one transaction) and the dialog-spec replay (`spec/replay.rs`, in
//! memory), so a replay cannot drift from production: the same booking numbers, the same
//! reminders, the same status changes.
//!
//! Two parts: [`booking_numbers`], the numbers to try when the one the engine chose is taken
//! (the engine numbers bookings from a hash of the client and the slot), with
//! [`Turn::renumber`] to apply the choice; then [`plan`], the steps in order.

use super::Turn;
use crate::calendar::reminders_for;
use crate::config::Profile;
use crate::domain::{
    Booking, BookingChange, BookingId, BookingStatus, Contact, Effect, HandoffReason, Lead,
    ReminderKind, Slot,
};
use chrono::{DateTime, Utc};

/// One thing a turn does to the world.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The slot must still be free (of bookings other than `except`), or the turn is re-run
    /// on the fresh schedule. The store checks under the staff lock; a replay has no rivals.
    Free {
        slot: Slot,
        except: Option<BookingId>,
    },
    Insert(Booking),
    /// The booking moves to `to` (false in the store when it changed meanwhile: re-run).
    Move {
        id: BookingId,
        to: Slot,
    },
    Status {
        id: BookingId,
        status: BookingStatus,
    },
    /// The booking's pending reminders are dropped.
    DropReminders(BookingId),
    Remind {
        booking: BookingId,
        kind: ReminderKind,
        at: DateTime<Utc>,
    },
    /// The CRM hears of the change.
    Crm {
        booking: BookingId,
        change: BookingChange,
    },
    Lead(Lead),
    Contact(Contact),
    Handoff(HandoffReason),
}

/// How many booking numbers there are (six digits).
const NUMBERS: u64 = 1_000_000;
/// The stride between candidates: a prime, so every number is reached once.
const STRIDE: u64 = 7_919;

/// The numbers to try, in order, when `taken` is in use: every other six-digit number once.
pub fn booking_numbers(taken: &BookingId) -> impl Iterator<Item = BookingId> {
    let base: u64 = taken.as_str().parse().unwrap_or(0);
    (1..NUMBERS).map(move |step| BookingId(format!("{:06}", (base + step * STRIDE) % NUMBERS)))
}

impl Turn {
    /// The booking the engine numbered `old` is `new`: its effect and the replies say so.
    pub fn renumber(&mut self, old: &BookingId, new: &BookingId) {
        for effect in &mut self.effects {
            if let Effect::BookingRequested { booking } = effect
                && &booking.id == old
            {
                booking.id = new.clone();
            }
        }
        for reply in &mut self.replies {
            reply.text = reply.text.replace(old.as_str(), new.as_str());
        }
    }

    /// The numbers of the bookings this turn makes.
    pub fn new_booking_ids(&self) -> Vec<BookingId> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::BookingRequested { booking } => Some(booking.id.clone()),
                _ => None,
            })
            .collect()
    }
}

/// The steps of `effects`, in order, on the schedule `seen` (the bookings the turn was decided
/// on) at `now`: reminders per the profile (quiet hours respected, none in the past).
pub fn plan(
    profile: &Profile,
    effects: &[Effect],
    seen: &[Booking],
    now: DateTime<Utc>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let remind = |steps: &mut Vec<Step>, booking: &Booking| {
        steps.extend(
            reminders_for(profile, booking, now)
                .into_iter()
                .map(|r| Step::Remind {
                    booking: booking.id.clone(),
                    kind: r.kind,
                    at: r.at,
                }),
        );
    };
    for effect in effects {
        match effect {
            Effect::BookingRequested { booking } => {
                steps.push(Step::Free {
                    slot: booking.slot.clone(),
                    except: None,
                });
                steps.push(Step::Insert(booking.clone()));
                remind(&mut steps, booking);
                steps.push(crm(&booking.id, BookingChange::Created));
            }
            Effect::BookingMoved { id, to, .. } => {
                steps.push(Step::Free {
                    slot: to.clone(),
                    except: Some(id.clone()),
                });
                steps.push(Step::Move {
                    id: id.clone(),
                    to: to.clone(),
                });
                steps.push(Step::DropReminders(id.clone()));
                if let Some(b) = seen.iter().find(|b| &b.id == id) {
                    let moved = Booking {
                        slot: to.clone(),
                        status: BookingStatus::Booked,
                        ..b.clone()
                    };
                    remind(&mut steps, &moved);
                }
                steps.push(crm(id, BookingChange::Moved));
            }
            Effect::BookingCancelled { id } => {
                steps.push(Step::Status {
                    id: id.clone(),
                    status: BookingStatus::Cancelled,
                });
                steps.push(Step::DropReminders(id.clone()));
                steps.push(crm(id, BookingChange::Cancelled));
            }
            Effect::BookingConfirmed { id } => {
                steps.push(Step::Status {
                    id: id.clone(),
                    status: BookingStatus::Confirmed,
                });
                steps.push(crm(id, BookingChange::Confirmed));
            }
            Effect::LeadQualified { lead } => steps.push(Step::Lead(lead.clone())),
            Effect::ContactCaptured { contact } => steps.push(Step::Contact(contact.clone())),
            Effect::HandoffRequested { reason } => steps.push(Step::Handoff(*reason)),
        }
    }
    steps
}

fn crm(id: &BookingId, change: BookingChange) -> Step {
    Step::Crm {
        booking: id.clone(),
        change,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn booking_numbers_visit_every_other_number_once() {
        let taken = BookingId("999998".into());
        let all: HashSet<BookingId> = booking_numbers(&taken).collect();
        assert_eq!(all.len(), 999_999);
        assert!(!all.contains(&taken));
        let first: Vec<BookingId> = booking_numbers(&taken).take(2).collect();
        assert_eq!(
            first,
            [BookingId("007917".into()), BookingId("015836".into())]
        );
    }
}
