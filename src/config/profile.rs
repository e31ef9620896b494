//! The business profile as the rest of the bot sees it: validated, typed, ready to use. Built
//! only by `config::load` (from YAML) — every invariant documented here was checked there, so
//! users of these types never re-validate.

use crate::domain::{LeadField, ServiceId, StaffId};
use chrono::{NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;
use std::collections::BTreeMap;

/// What kind of business; clinics never answer medical questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusinessKind {
    Salon,
    Clinic,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Business {
    pub name: String,
    pub kind: BusinessKind,
    pub address: String,
    /// As shown to clients.
    pub phone: String,
    pub timezone: Tz,
    pub website: Option<String>,
}

/// Opening interval of one day, local time; `open < close`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayHours {
    pub open: NaiveTime,
    pub close: NaiveTime,
}

/// Hours per weekday; `None` = closed that day.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WeekHours {
    /// Indexed by `Weekday::num_days_from_monday()`.
    pub days: [Option<DayHours>; 7],
}

impl WeekHours {
    pub fn on(&self, day: Weekday) -> Option<DayHours> {
        self.days[day.num_days_from_monday() as usize]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Staff {
    pub id: StaffId,
    /// Display name ("Ольга").
    pub name: String,
    /// "мастер маникюра", "врач-терапевт".
    pub role: String,
    /// Other ways clients call them (diminutives, surname, inflected forms are derived).
    pub aliases: Vec<String>,
    /// Services they perform; every id exists in `Profile::services`.
    pub services: Vec<ServiceId>,
    /// Their own hours; defaults to the business hours when the profile gives none.
    pub hours: WeekHours,
}

/// A price or a price range, in whole roubles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Price {
    Fixed(u32),
    Range { from: u32, to: u32 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub id: ServiceId,
    /// Nominative, as used inside a sentence ("маникюр", "женская стрижка").
    pub name: String,
    /// Accusative, for "записала вас на {service}" ("стрижку"); defaults to `name`.
    pub accusative: String,
    pub price: Price,
    /// What the price depends on, explained with ranges ("зависит от длины волос").
    pub price_note: Option<String>,
    /// Minutes, > 0.
    pub duration_minutes: u32,
    /// Words and phrases clients use for it (besides `name`).
    pub synonyms: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Promotion {
    pub id: String,
    pub title: String,
    pub text: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
    /// Services it applies to; empty = all.
    pub services: Vec<ServiceId>,
    pub discount_percent: Option<u32>,
    pub conditions: Option<String>,
}

impl Promotion {
    pub fn is_valid_on(&self, day: NaiveDate) -> bool {
        self.valid_from.is_none_or(|f| f <= day) && self.valid_until.is_none_or(|u| day <= u)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Faq {
    /// `address`, `hours`, `parking`, `payment`, `what_to_bring`, ...
    pub id: String,
    /// Words and phrases that identify the question.
    pub keywords: Vec<String>,
    pub answer: String,
}

/// Booking rules of the schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct BookingRules {
    /// Grid of start times, minutes (slots start at :00, :30 with 30).
    pub slot_step_minutes: u32,
    /// Pause after each visit on the staff member's schedule.
    pub buffer_minutes: u32,
    /// A booking must start at least this long after now.
    pub min_notice_minutes: u32,
    /// How far ahead bookings are accepted.
    pub horizon_days: u32,
    /// How many free slots to offer at once.
    pub suggestions: usize,
}

impl Default for BookingRules {
    fn default() -> Self {
        BookingRules {
            slot_step_minutes: 30,
            buffer_minutes: 0,
            min_notice_minutes: 60,
            horizon_days: 60,
            suggestions: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Qualification {
    /// A lead is qualified once the bot has all of these. Default: service, datetime, phone.
    pub required: Vec<LeadField>,
}

impl Default for Qualification {
    fn default() -> Self {
        Qualification {
            required: vec![LeadField::Service, LeadField::Datetime, LeadField::Phone],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    /// Hand off after this many misunderstood messages in a row.
    pub max_misunderstandings: u32,
    /// Words of a complaint ("жалоба", "ужасно", "верните деньги").
    pub complaint_keywords: Vec<String>,
    /// Never answer medical questions (clinics): hand them to a person.
    pub medical_questions_to_human: bool,
    /// Words that make a message a medical question ("болит", "температура", "диагноз").
    pub medical_keywords: Vec<String>,
}

impl Default for Escalation {
    fn default() -> Self {
        Escalation {
            max_misunderstandings: 2,
            complaint_keywords: Vec::new(),
            medical_questions_to_human: false,
            medical_keywords: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reminders {
    /// Hours before the visit; default 24 and 2.
    pub before_hours: Vec<u32>,
    /// No reminder is sent in this local interval (wraps midnight when start > end).
    pub quiet_from: NaiveTime,
    pub quiet_until: NaiveTime,
}

/// A validated business profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub business: Business,
    pub hours: WeekHours,
    pub holidays: Vec<NaiveDate>,
    pub booking: BookingRules,
    pub staff: Vec<Staff>,
    pub services: Vec<Service>,
    pub promotions: Vec<Promotion>,
    pub faq: Vec<Faq>,
    /// Reply variations per template; every `TemplateKey` is present (profile or built-in default),
    /// every variation uses only the placeholders its key allows.
    pub templates: BTreeMap<crate::config::templates::TemplateKey, Vec<String>>,
    pub qualification: Qualification,
    pub escalation: Escalation,
    pub reminders: Reminders,
}

impl Profile {
    pub fn service(&self, id: &ServiceId) -> Option<&Service> {
        self.services.iter().find(|s| &s.id == id)
    }

    pub fn staff_member(&self, id: &StaffId) -> Option<&Staff> {
        self.staff.iter().find(|s| &s.id == id)
    }

    pub fn is_holiday(&self, day: NaiveDate) -> bool {
        self.holidays.contains(&day)
    }
}
