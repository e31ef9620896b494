//! A dialog spec after checking: every id exists in the profile, every date, time, duration,
//! template and regex is valid, includes are expanded, and each step knows the file, line and
//! field path it came from. Built only by `spec::load`; the runner trusts it.

use super::matcher::MessageExpect;
use crate::domain::{
    Booking, BookingId, ChannelKind, ClientRef, Contact, HandoffReason, Intent, LeadField,
    ReminderKind, ServiceId, StaffId,
};
use chrono::{DateTime, Utc};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use super::format::Combine;

/// Where something was written: `dialogs/03-cancel.yaml:14:5` and `steps[2].bot`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Origin {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub path: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Which business profile a dialog talks to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProfileRef {
    Salon,
    Clinic,
    File(PathBuf),
}

impl fmt::Display for ProfileRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileRef::Salon => f.write_str("salon (demo)"),
            ProfileRef::Clinic => f.write_str("clinic (demo)"),
            ProfileRef::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Dialog {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub file: String,
    pub profile: ProfileRef,
    pub channel: ChannelKind,
    pub client: ClientRef,
    /// Whether `client.id` was given (repeats then keep it as is).
    pub fixed_client_id: bool,
    /// What the bot knows of the client before the first message.
    pub known: Contact,
    pub now: DateTime<Utc>,
    pub latency: Duration,
    pub combine: Combine,
    pub max_paths: usize,
    pub bookings: Vec<Booking>,
    pub steps: Vec<Step>,
    /// A managers' channel is set up (hand-offs reach a person).
    pub managers: bool,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub origin: Origin,
    pub name: Option<String>,
    /// Values set before the step runs (`with:` of an include).
    pub set: Vec<(String, String)>,
    pub action: Action,
    pub expect: Expect,
    pub latency: Option<Duration>,
}

impl Step {
    /// How many variations the step's action has (1 for events).
    pub fn variations(&self) -> usize {
        match &self.action {
            Action::Text(v) => v.len(),
            Action::Press(v) => v.len(),
            _ => 1,
        }
    }
}

/// What happens in a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The client writes one of these phrases (the path decides which).
    Text(Vec<String>),
    /// The client presses one of these buttons (the path decides which).
    Press(Vec<Press>),
    Contact {
        phone: String,
        name: Option<String>,
    },
    /// The next reminder of this kind becomes due.
    Reminder(ReminderKind),
    /// This booking was missed (id may hold `${...}`).
    NoShow(String),
    /// Time passes.
    Wait(chrono::Duration),
    /// A manager releases the conversation.
    Release,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Press {
    Title(String),
    Payload(String),
    /// 1-based.
    Index(usize),
}

impl fmt::Display for Press {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Press::Title(t) => write!(f, "«{t}»"),
            Press::Payload(p) => write!(f, "payload {p}"),
            Press::Index(i) => write!(f, "button #{i}"),
        }
    }
}

/// `false` in the spec (must not happen) or the details that must hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Want<T> {
    Absent,
    Present(T),
}

/// A date and/or time a booking must have; strings may hold `${...}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct When {
    pub date: Option<String>,
    pub time: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BookingExpect {
    pub id: Option<String>,
    pub service: Option<ServiceId>,
    pub staff: Option<StaffId>,
    pub at: When,
    /// For a move: where it was.
    pub from: When,
    /// Store the booking id as `${name}`.
    pub capture: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LeadExpect {
    pub fields: Vec<LeadField>,
    pub service: Option<ServiceId>,
    pub at: When,
    pub phone: Option<String>,
    pub name: Option<String>,
    pub channel: ChannelKind,
    pub source: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnderstoodExpect {
    pub intent: Option<Intent>,
    pub service: Option<ServiceId>,
    pub staff: Option<StaffId>,
    pub at: When,
    pub phone: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub faq: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReminderExpect {
    pub kind: Option<ReminderKind>,
    pub at: DateTime<Utc>,
}

/// Everything that must hold after a step.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub silent: bool,
    /// The messages of the step, in order (None: not checked).
    pub messages: Option<Vec<(Origin, MessageExpect)>>,
    pub understood: Option<UnderstoodExpect>,
    pub booked: Option<Want<BookingExpect>>,
    pub moved: Option<Want<BookingExpect>>,
    pub cancelled: Option<Want<BookingExpect>>,
    pub confirmed: Option<bool>,
    pub lead: Option<Want<LeadExpect>>,
    pub contact: Option<Want<Contact>>,
    pub handoff: Option<Want<Option<HandoffReason>>>,
    pub reminders: Option<Vec<ReminderExpect>>,
}

impl Dialog {
    /// The variation each step uses on each path (see README: how variations combine).
    pub fn paths(&self) -> Vec<Vec<usize>> {
        let counts: Vec<usize> = self.steps.iter().map(|s| s.variations().max(1)).collect();
        match self.combine {
            Combine::Zip => {
                let n = counts.iter().copied().max().unwrap_or(1);
                (0..n)
                    .map(|i| counts.iter().map(|c| i % c).collect())
                    .collect()
            }
            Combine::Product => {
                let mut out = vec![Vec::with_capacity(counts.len())];
                for c in &counts {
                    let mut next = Vec::with_capacity(out.len() * c);
                    for prefix in &out {
                        for i in 0..*c {
                            let mut p = prefix.clone();
                            p.push(i);
                            next.push(p);
                        }
                    }
                    out = next;
                    if out.len() > self.max_paths {
                        out.truncate(self.max_paths);
                    }
                }
                out
            }
        }
    }

    /// All client phrases and button choices written in the spec.
    pub fn variation_count(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s.action, Action::Text(_) | Action::Press(_)))
            .map(Step::variations)
            .sum()
    }

    pub fn booking_ids(&self) -> impl Iterator<Item = &BookingId> {
        self.bookings.iter().map(|b| &b.id)
    }
}
