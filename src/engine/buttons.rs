//! Quick-reply button payloads: what the bot puts on a button and reads back when it is
//! pressed. One textual format, parsed in one place; unknown payloads are `None`, never a panic.

use crate::domain::{Slot, StaffId};
use chrono::{DateTime, Utc};

/// What a pressed button means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// "Да" / "Подтверждаю".
    Yes,
    /// "Нет".
    No,
    /// Start a booking.
    Book,
    /// Ask for prices.
    Prices,
    /// Current promotions.
    Promos,
    /// Talk to a person.
    Human,
    /// The nearest free slots for the service being booked (instead of naming a day).
    Nearest,
    /// Move the booking (after a reminder or a no-show).
    Reschedule,
    /// Cancel the booking.
    Cancel,
    /// A FAQ entry by id.
    Faq(String),
    /// One offered slot.
    Slot {
        start: DateTime<Utc>,
        staff: StaffId,
    },
}

impl Payload {
    pub fn slot(slot: &Slot) -> Payload {
        Payload::Slot {
            start: slot.start,
            staff: slot.staff.clone(),
        }
    }

    pub fn encode(&self) -> String {
        match self {
            Payload::Yes => "yes".into(),
            Payload::No => "no".into(),
            Payload::Book => "book".into(),
            Payload::Prices => "prices".into(),
            Payload::Promos => "promos".into(),
            Payload::Human => "human".into(),
            Payload::Nearest => "nearest".into(),
            Payload::Reschedule => "reschedule".into(),
            Payload::Cancel => "cancel".into(),
            Payload::Faq(id) => format!("faq:{id}"),
            Payload::Slot { start, staff } => {
                format!("slot:{}|{}", start.format("%Y-%m-%dT%H:%MZ"), staff)
            }
        }
    }

    pub fn parse(s: &str) -> Option<Payload> {
        Some(match s.trim() {
            "yes" => Payload::Yes,
            "no" => Payload::No,
            "book" => Payload::Book,
            "prices" => Payload::Prices,
            "promos" => Payload::Promos,
            "human" => Payload::Human,
            "nearest" => Payload::Nearest,
            "reschedule" => Payload::Reschedule,
            "cancel" => Payload::Cancel,
            other => {
                if let Some(id) = other.strip_prefix("faq:") {
                    Payload::Faq(id.to_string())
                } else {
                    let rest = other.strip_prefix("slot:")?;
                    let (start, staff) = rest.split_once('|')?;
                    let start = chrono::NaiveDateTime::parse_from_str(start, "%Y-%m-%dT%H:%MZ")
                        .ok()?
                        .and_utc();
                    if staff.is_empty() {
                        return None;
                    }
                    Payload::Slot {
                        start,
                        staff: StaffId(staff.to_string()),
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn payloads_round_trip() {
        let start = Utc.with_ymd_and_hms(2026, 11, 20, 8, 0, 0).unwrap();
        for p in [
            Payload::Yes,
            Payload::No,
            Payload::Book,
            Payload::Prices,
            Payload::Promos,
            Payload::Human,
            Payload::Nearest,
            Payload::Reschedule,
            Payload::Cancel,
            Payload::Faq("address".into()),
            Payload::Slot {
                start,
                staff: StaffId("olga".into()),
            },
        ] {
            assert_eq!(Payload::parse(&p.encode()), Some(p));
        }
    }

    #[test]
    fn junk_payloads_are_none() {
        for s in [
            "",
            "slot:",
            "slot:2026|",
            "slot:bad|olga",
            "maybe",
            "slot:2026-11-20T08:00Z|",
        ] {
            assert_eq!(Payload::parse(s), None, "{s:?}");
        }
    }
}
