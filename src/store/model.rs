//! The store's job types: what a row of `jobs` is ([`Job`]), which kinds there are
//! ([`JobKind`]), and what each kind carries ([`JobPayload`]).
//!
//! A job's payload is typed: written and read only through [`JobPayload`], one
//! `#[serde(tag = "kind", content = "payload")]` enum whose tag is the row's `kind` column and
//! whose content is the row's `payload` column, so the JSON stored is the same as before the
//! type existed (no migration): `{"message": 7}`, `{"lead": 3}`, `{"booking": "042137",
//! "change": "moved"}`, `{"entity": "lead", "id": 42}`, `{"reason": "complaint"}`, and the
//! reminder and no-show turns as the `Event` they become (`{"type": "reminder", …}`).

use super::StoreError;
use crate::domain::{
    BookingChange, BookingId, ClientRef, CrmEntity, Event, HandoffReason, ReminderKind,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Send a stored reply through its channel.
    Send,
    /// A booking reminder turn.
    Reminder,
    /// The follow-up after a missed visit.
    NoShow,
    /// Push a qualified lead to the CRM.
    CrmLead,
    /// Tell the CRM a booking changed.
    CrmBooking,
    /// Read a CRM object's status after its event.
    CrmFetch,
    /// Notify managers that a conversation was handed to them.
    Handoff,
}

impl JobKind {
    pub const ALL: [JobKind; 7] = [
        JobKind::Send,
        JobKind::Reminder,
        JobKind::NoShow,
        JobKind::CrmLead,
        JobKind::CrmBooking,
        JobKind::CrmFetch,
        JobKind::Handoff,
    ];
    /// Jobs that are engine turns, run by [`super::Store::run_due`].
    pub const TURNS: [JobKind; 2] = [JobKind::Reminder, JobKind::NoShow];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Send => "send",
            JobKind::Reminder => "reminder",
            JobKind::NoShow => "no_show",
            JobKind::CrmLead => "crm_lead",
            JobKind::CrmBooking => "crm_booking",
            JobKind::CrmFetch => "crm_fetch",
            JobKind::Handoff => "handoff",
        }
    }

    pub(super) fn parse(s: &str) -> Result<JobKind, StoreError> {
        JobKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| StoreError::corrupt("job kind", s))
    }
}

/// A reminder turn, stored as its `Event` (`{"type": "reminder", "booking", "kind"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "reminder")]
pub struct ReminderDue {
    pub booking: BookingId,
    pub kind: ReminderKind,
}

/// A no-show follow-up turn, stored as its `Event` (`{"type": "no_show", "booking"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "no_show")]
pub struct NoShowDue {
    pub booking: BookingId,
}

/// What a job carries: the tag is the row's `kind`, the content its `payload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum JobPayload {
    /// The stored reply `message` goes out through its client's channel.
    Send {
        message: i64,
    },
    Reminder(ReminderDue),
    NoShow(NoShowDue),
    /// Our lead `lead` goes to the CRM.
    CrmLead {
        lead: i64,
    },
    CrmBooking {
        booking: BookingId,
        change: BookingChange,
    },
    CrmFetch {
        entity: CrmEntity,
        id: i64,
    },
    Handoff {
        reason: HandoffReason,
    },
}

impl JobPayload {
    pub fn kind(&self) -> JobKind {
        match self {
            JobPayload::Send { .. } => JobKind::Send,
            JobPayload::Reminder(_) => JobKind::Reminder,
            JobPayload::NoShow(_) => JobKind::NoShow,
            JobPayload::CrmLead { .. } => JobKind::CrmLead,
            JobPayload::CrmBooking { .. } => JobKind::CrmBooking,
            JobPayload::CrmFetch { .. } => JobKind::CrmFetch,
            JobPayload::Handoff { .. } => JobKind::Handoff,
        }
    }

    /// The `payload` column: this value without its tag.
    pub fn to_column(&self) -> Result<String, StoreError> {
        let mut tagged = serde_json::to_value(self).map_err(|e| StoreError::corrupt("job", e))?;
        let content = tagged
            .get_mut("payload")
            .map(Value::take)
            .unwrap_or(Value::Null);
        Ok(content.to_string())
    }

    /// Read a row's `kind` and `payload` columns back.
    pub fn from_columns(kind: JobKind, payload: &str) -> Result<JobPayload, String> {
        let content: Value = serde_json::from_str(payload).map_err(|e| e.to_string())?;
        let tagged = serde_json::json!({ "kind": kind.as_str(), "payload": content });
        let parsed = serde_json::from_value::<JobPayload>(tagged).map_err(|e| e.to_string())?;
        match parsed {
            JobPayload::CrmFetch { id, .. } if id <= 0 => Err(format!("CRM id {id}")),
            other => Ok(other),
        }
    }

    /// The engine event of a turn job.
    pub fn turn_event(&self) -> Option<Event> {
        match self {
            JobPayload::Reminder(r) => Some(Event::Reminder {
                booking: r.booking.clone(),
                kind: r.kind,
            }),
            JobPayload::NoShow(n) => Some(Event::NoShow {
                booking: n.booking.clone(),
            }),
            _ => None,
        }
    }
}

/// A job row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub kind: JobKind,
    pub client_id: Option<i64>,
    pub booking: Option<BookingId>,
    /// The `payload` column as stored: JSON, per kind (read it with [`Job::payload`]).
    pub payload: String,
    pub due_at: DateTime<Utc>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub done_at: Option<DateTime<Utc>>,
    /// Set just before a worker handed the job to a channel that cannot deduplicate; still
    /// set on a job that is not done means the process died mid-send.
    pub send_started_at: Option<DateTime<Utc>>,
}

impl Job {
    /// What the job carries; Err says why its stored payload cannot be read (a dead letter).
    pub fn payload(&self) -> Result<JobPayload, String> {
        JobPayload::from_columns(self.kind, &self.payload)
            .map_err(|e| format!("bad {} payload {}: {e}", self.kind.as_str(), self.payload))
    }
}

/// A turn job the scheduler ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RanJob {
    pub job: Job,
    pub client: Option<ClientRef>,
    /// Stored replies (each with a `send` job); empty when the turn had nothing to say (the
    /// booking was cancelled meanwhile) or the job was unusable (`last_error` says why).
    pub replies: Vec<i64>,
}

/// How a visit went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attendance {
    Completed,
    NoShow,
}

impl Attendance {
    pub fn as_str(self) -> &'static str {
        match self {
            Attendance::Completed => "completed",
            Attendance::NoShow => "no-show",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_payload() -> Vec<JobPayload> {
        let booking = BookingId("042137".into());
        let mut all = vec![
            JobPayload::Send { message: 7 },
            JobPayload::Reminder(ReminderDue {
                booking: booking.clone(),
                kind: ReminderKind::DayBefore,
            }),
            JobPayload::NoShow(NoShowDue {
                booking: booking.clone(),
            }),
            JobPayload::CrmLead { lead: 3 },
            JobPayload::CrmFetch {
                entity: CrmEntity::Deal,
                id: 42,
            },
            JobPayload::Handoff {
                reason: HandoffReason::Complaint,
            },
        ];
        all.extend(
            BookingChange::ALL
                .into_iter()
                .map(|change| JobPayload::CrmBooking {
                    booking: booking.clone(),
                    change,
                }),
        );
        all
    }

    #[test]
    fn payloads_keep_the_json_written_before_they_were_typed() {
        let cases = [
            (JobPayload::Send { message: 7 }, r#"{"message":7}"#),
            (JobPayload::CrmLead { lead: 3 }, r#"{"lead":3}"#),
            (
                JobPayload::CrmBooking {
                    booking: BookingId("042137".into()),
                    change: BookingChange::NoShow,
                },
                r#"{"booking":"042137","change":"no_show"}"#,
            ),
            (
                JobPayload::CrmFetch {
                    entity: CrmEntity::Lead,
                    id: 42,
                },
                r#"{"entity":"lead","id":42}"#,
            ),
            (
                JobPayload::Handoff {
                    reason: HandoffReason::Misunderstanding,
                },
                r#"{"reason":"misunderstanding"}"#,
            ),
        ];
        for (payload, json) in cases {
            assert_eq!(payload.to_column().unwrap(), json, "{payload:?}");
        }
        // Turn jobs were written as their `Event`, in serde's tag-first order.
        let event = Event::Reminder {
            booking: BookingId("042137".into()),
            kind: ReminderKind::Soon,
        };
        let old = serde_json::to_string(&event).unwrap();
        let read = JobPayload::from_columns(JobKind::Reminder, &old).unwrap();
        assert_eq!(read.turn_event(), Some(event));
        let old = r#"{"type":"no_show","booking":"000001"}"#;
        let read = JobPayload::from_columns(JobKind::NoShow, old).unwrap();
        assert_eq!(
            read.turn_event(),
            Some(Event::NoShow {
                booking: BookingId("000001".into())
            })
        );
    }

    #[test]
    fn every_payload_round_trips_through_its_columns() {
        let all = every_payload();
        for kind in JobKind::ALL {
            assert!(all.iter().any(|p| p.kind() == kind), "{kind:?} has no case");
        }
        for payload in all {
            let column = payload.to_column().unwrap();
            let back = JobPayload::from_columns(payload.kind(), &column).unwrap();
            assert_eq!(back, payload, "{column}");
        }
    }

    #[test]
    fn junk_and_mismatched_payloads_are_refused() {
        for (kind, junk) in [
            (JobKind::Send, "nonsense"),
            (JobKind::Send, r#"{"lead":3}"#),
            (JobKind::CrmFetch, r#"{"entity":"x","id":1}"#),
            (JobKind::CrmFetch, r#"{"entity":"lead","id":-1}"#),
            (
                JobKind::CrmBooking,
                r#"{"booking":"1","change":"exploded"}"#,
            ),
            (JobKind::Handoff, r#"{"reason":"boredom"}"#),
            (JobKind::Reminder, r#"{"type":"no_show","booking":"1"}"#),
            (JobKind::NoShow, r#"{"type":"text","text":"hi"}"#),
        ] {
            assert!(
                JobPayload::from_columns(kind, junk).is_err(),
                "{kind:?} {junk} was accepted"
            );
        }
    }
}
