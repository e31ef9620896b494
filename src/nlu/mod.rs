//! Russian understanding: one client message + a reference time + a business profile →
//! `Understanding` (intent, date/time, service, staff, phone, name, e-mail, confidence).
//! Pure and fast: everything costly (regexes, stem tables, vocabularies) is compiled once per
//! profile in `Nlu::new`; `understand` only reads it. Dates are resolved in the business time
//! zone; a date or time is kept as a booking slot only when the intent is about booking.

pub mod datetime;
pub mod email;
pub mod intent;
pub mod name;
pub mod normalize;
pub mod phone;
pub mod service;
pub mod typo;

use crate::config::Profile;
use crate::domain::{Intent, ServiceId, StaffId, When};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// What a message says, as far as the bot can tell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Understanding {
    pub intent: Intent,
    /// The wanted date/time (for a reschedule: the new one).
    pub when: When,
    /// For a reschedule, the slot being moved away from ("с пятницы на субботу" → пятница).
    pub moved_from: Option<When>,
    pub service: Option<ServiceId>,
    pub staff: Option<StaffId>,
    /// E.164.
    pub phone: Option<String>,
    /// A phone-like number that does not validate (the bot asks again).
    pub invalid_phone: bool,
    /// The client's name, nominative.
    pub name: Option<String>,
    pub email: Option<String>,
    /// Matched FAQ entry id, if the message asks one.
    pub faq: Option<String>,
    /// Looks like a medical question (only acted upon at clinics).
    pub medical: bool,
    /// Looks like a complaint.
    pub complaint: bool,
    /// 0..1: how sure the intent is.
    pub confidence: f32,
}

/// Understanding compiled for one profile.
pub struct Nlu {
    // filled by the nlu implementation
}

impl Nlu {
    pub fn new(_profile: &Profile) -> Nlu {
        Nlu {}
    }

    /// Understand one message sent at `now`.
    pub fn understand(&self, _text: &str, _now: DateTime<Utc>) -> Understanding {
        Understanding {
            intent: Intent::Other,
            when: When::default(),
            moved_from: None,
            service: None,
            staff: None,
            phone: None,
            invalid_phone: false,
            name: None,
            email: None,
            faq: None,
            medical: false,
            complaint: false,
            confidence: 0.0,
        }
    }
}
