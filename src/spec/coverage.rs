//! What the dialogs exercised of a profile, and what none of them did: intents understood,
//! reply templates sent, escalation paths taken, effects produced, events replayed, FAQ
//! entries answered and services booked. `Seen` is gathered from every recorded turn;
//! `coverage` compares it with everything the profile makes possible.

use super::replay::TurnRecord;
use crate::config::Profile;
use crate::config::templates::TemplateKey;
use crate::domain::{Effect, Event, HandoffReason, Intent, ReminderKind};
use serde::Serialize;
use std::collections::BTreeSet;

/// What the runs touched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    pub intents: BTreeSet<&'static str>,
    pub templates: BTreeSet<String>,
    pub escalations: BTreeSet<&'static str>,
    pub effects: BTreeSet<&'static str>,
    pub events: BTreeSet<&'static str>,
    pub faq: BTreeSet<String>,
    pub services: BTreeSet<String>,
}

impl Seen {
    pub fn record(&mut self, turn: &TurnRecord) {
        if let Some(u) = &turn.understanding {
            self.intents.insert(u.intent.as_str());
            if let Some(f) = &u.faq {
                self.faq.insert(f.clone());
            }
        }
        for r in &turn.replies {
            if let Some(t) = &r.template {
                if let Some(id) = t.strip_prefix("faq:") {
                    self.faq.insert(id.to_string());
                }
                self.templates.insert(t.clone());
            }
        }
        for e in &turn.effects {
            self.effects.insert(e.kind());
            match e {
                Effect::HandoffRequested { reason } => {
                    self.escalations.insert(reason.as_str());
                }
                Effect::BookingRequested { booking } => {
                    self.services.insert(booking.service.to_string());
                }
                _ => {}
            }
        }
        let event = match &turn.event {
            Event::Text { .. } => "text",
            Event::Button { payload } => {
                if let Some(id) = payload.strip_prefix("faq:") {
                    self.faq.insert(id.to_string());
                }
                "button"
            }
            Event::Contact { .. } => "contact",
            Event::Reminder {
                kind: ReminderKind::DayBefore,
                ..
            } => "reminder_day_before",
            Event::Reminder {
                kind: ReminderKind::Soon,
                ..
            } => "reminder_soon",
            Event::NoShow { .. } => "no_show",
            Event::Released => {
                self.escalations.insert("released");
                "released"
            }
        };
        self.events.insert(event);
    }

    pub fn merge(&mut self, other: &Seen) {
        self.intents.extend(other.intents.iter().copied());
        self.templates.extend(other.templates.iter().cloned());
        self.escalations.extend(other.escalations.iter().copied());
        self.effects.extend(other.effects.iter().copied());
        self.events.extend(other.events.iter().copied());
        self.faq.extend(other.faq.iter().cloned());
        self.services.extend(other.services.iter().cloned());
    }
}

/// One part of the profile: what was exercised and what was not.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Area {
    pub name: &'static str,
    pub covered: Vec<String>,
    pub missing: Vec<String>,
}

impl Area {
    fn new<'a>(
        name: &'static str,
        all: impl IntoIterator<Item = &'a str>,
        seen: impl Fn(&str) -> bool,
    ) -> Area {
        let (covered, missing): (Vec<String>, Vec<String>) =
            all.into_iter().map(str::to_string).partition(|x| seen(x));
        Area {
            name,
            covered,
            missing,
        }
    }

    pub fn percent(&self) -> u32 {
        let total = self.covered.len() + self.missing.len();
        (self.covered.len() * 100)
            .checked_div(total)
            .map_or(100, |p| p as u32)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Coverage {
    pub profile: String,
    pub areas: Vec<Area>,
}

const EFFECTS: &[&str] = &[
    "booking_requested",
    "booking_moved",
    "booking_cancelled",
    "booking_confirmed",
    "lead_qualified",
    "contact_captured",
    "handoff_requested",
];

const EVENTS: &[&str] = &[
    "text",
    "button",
    "contact",
    "reminder_day_before",
    "reminder_soon",
    "no_show",
    "released",
];

/// Coverage of `profile` by what was `seen`. Things the profile cannot do (medical hand-off
/// at a salon, promotions when it has none) are left out rather than reported missing.
pub fn coverage(profile_name: &str, profile: &Profile, seen: &Seen) -> Coverage {
    let medical = profile.escalation.medical_questions_to_human;
    let has_promos = !profile.promotions.is_empty();
    let templates = TemplateKey::ALL.iter().filter(|k| match k {
        TemplateKey::HandoffMedical => medical,
        TemplateKey::PromoList => has_promos,
        _ => true,
    });
    let escalations = [
        HandoffReason::Requested,
        HandoffReason::Complaint,
        HandoffReason::Misunderstanding,
        HandoffReason::Medical,
        HandoffReason::Safety,
    ]
    .into_iter()
    .filter(|r| medical || *r != HandoffReason::Medical)
    .map(HandoffReason::as_str)
    .chain(["released"]);
    Coverage {
        profile: profile_name.to_string(),
        areas: vec![
            Area::new("intents", Intent::ALL.iter().map(|i| i.as_str()), |x| {
                seen.intents.contains(x)
            }),
            Area::new("reply templates", templates.map(|k| k.as_str()), |x| {
                seen.templates.contains(x)
            }),
            Area::new("escalation paths", escalations, |x| {
                seen.escalations.contains(x)
            }),
            Area::new("effects", EFFECTS.iter().copied(), |x| {
                seen.effects.contains(x)
            }),
            Area::new("events", EVENTS.iter().copied(), |x| {
                seen.events.contains(x)
            }),
            Area::new(
                "faq entries",
                profile.faq.iter().map(|f| f.id.as_str()),
                |x| seen.faq.contains(x),
            ),
            Area::new(
                "services booked",
                profile.services.iter().map(|s| s.id.as_str()),
                |x| seen.services.contains(x),
            ),
        ],
    }
}
