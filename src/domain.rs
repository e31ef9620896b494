//! Shared vocabulary of the bot: channels, clients, intents, inbound events, replies, bookings,
//! leads and the effects a dialog turn produces, and where a lead stands in the CRM. Plain data
//! only: no I/O, no parsing of external formats (that is `channels/`), no business rules (that
//! is `engine/`).

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Declares [`ChannelKind`] with its `ALL` list and spelling from one list, so a channel is
/// added in one line and every `match` on it points at the places that must learn it.
macro_rules! channel_kinds {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal ),+ $(,)?) => {
        /// Where a conversation happens.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum ChannelKind {
            $( $(#[$doc])* $variant, )+
        }

        impl ChannelKind {
            pub const ALL: &'static [ChannelKind] = &[$(ChannelKind::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $( ChannelKind::$variant => $name, )+
                }
            }
        }
    };
}

channel_kinds! {
    Telegram = "telegram",
    Whatsapp = "whatsapp",
    Instagram = "instagram",
    Web = "web",
    /// MAX, VK's national messenger (Bot API at platform-api2.max.ru).
    Max = "max",
    /// VK community messages (Callback API).
    Vk = "vk",
}

impl ChannelKind {
    /// The channel spelled as [`ChannelKind::as_str`] spells it.
    pub fn parse(s: &str) -> Option<ChannelKind> {
        ChannelKind::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// WhatsApp identifies a client by phone number, so the bot never has to ask for one there.
    pub fn provides_phone(self) -> bool {
        matches!(self, ChannelKind::Whatsapp)
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A client as one channel knows them (Telegram chat id, WhatsApp phone, web session id...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClientRef {
    pub channel: ChannelKind,
    pub id: String,
}

impl ClientRef {
    /// `channel:id`, as [`ClientRef`]'s `Display` writes it (`telegram:901`, `web:abc`).
    pub fn parse(s: &str) -> Option<ClientRef> {
        let (channel, id) = s.trim().split_once(':')?;
        let channel = ChannelKind::parse(channel)?;
        (!id.is_empty()).then(|| ClientRef {
            channel,
            id: id.to_string(),
        })
    }
}

impl fmt::Display for ClientRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.channel, self.id)
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }
    };
}

id_type!(
    /// A service id from the business profile (`manicure`, `dentist`...).
    ServiceId
);
id_type!(
    /// A staff member id from the business profile.
    StaffId
);
id_type!(
    /// A booking number, shown to the client and used to find the booking again.
    BookingId
);

/// What the client wants from this message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    Book,
    Reschedule,
    Cancel,
    Price,
    Promo,
    FreeTime,
    Faq,
    Human,
    Greeting,
    Thanks,
    Confirm,
    Deny,
    Other,
}

impl Intent {
    pub const ALL: [Intent; 13] = [
        Intent::Book,
        Intent::Reschedule,
        Intent::Cancel,
        Intent::Price,
        Intent::Promo,
        Intent::FreeTime,
        Intent::Faq,
        Intent::Human,
        Intent::Greeting,
        Intent::Thanks,
        Intent::Confirm,
        Intent::Deny,
        Intent::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Book => "book",
            Intent::Reschedule => "reschedule",
            Intent::Cancel => "cancel",
            Intent::Price => "price",
            Intent::Promo => "promo",
            Intent::FreeTime => "free_time",
            Intent::Faq => "faq",
            Intent::Human => "human",
            Intent::Greeting => "greeting",
            Intent::Thanks => "thanks",
            Intent::Confirm => "confirm",
            Intent::Deny => "deny",
            Intent::Other => "other",
        }
    }

    /// Intents for which a date or time in the message is a wanted booking slot (a yes/no
    /// may carry one too: "да, давайте в 15:30", "нет, лучше в субботу"). Everywhere else a
    /// date is a trap ("у меня день рождения 25 ноября") and is not taken as a slot.
    pub fn takes_slot(self) -> bool {
        matches!(
            self,
            Intent::Book
                | Intent::Reschedule
                | Intent::Cancel
                | Intent::FreeTime
                | Intent::Confirm
                | Intent::Deny
        )
    }
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A vague time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartOfDay {
    Morning,
    Afternoon,
    Evening,
}

impl PartOfDay {
    pub fn as_str(self) -> &'static str {
        match self {
            PartOfDay::Morning => "morning",
            PartOfDay::Afternoon => "afternoon",
            PartOfDay::Evening => "evening",
        }
    }

    /// Local clock range the part of day covers, start inclusive, end exclusive.
    pub fn range(self) -> (NaiveTime, NaiveTime) {
        let t = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap_or(NaiveTime::MIN);
        match self {
            PartOfDay::Morning => (t(6), t(12)),
            PartOfDay::Afternoon => (t(13), t(17)),
            PartOfDay::Evening => (t(17), t(23)),
        }
    }
}

/// A wanted date and/or time, in the business's local time. All parts optional: "завтра" has a
/// date only, "после 6" a lower bound only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct When {
    pub date: Option<NaiveDate>,
    /// An exact clock time, or the start of a range/bound ("с 10 до 12" → 10:00).
    pub time: Option<NaiveTime>,
    pub part_of_day: Option<PartOfDay>,
    /// End of a range or an upper bound ("с 10 до 12" → 12:00, "до обеда" → 12:00).
    pub until: Option<NaiveTime>,
    /// `time` is a lower bound, not an exact time ("после 6", "с 10 до 12").
    pub time_is_bound: bool,
}

impl When {
    pub fn is_empty(&self) -> bool {
        self.date.is_none()
            && self.time.is_none()
            && self.part_of_day.is_none()
            && self.until.is_none()
    }

    /// An exact moment: a date and an exact (not bound) time.
    pub fn exact(&self) -> Option<(NaiveDate, NaiveTime)> {
        match (self.date, self.time) {
            (Some(d), Some(t)) if !self.time_is_bound => Some((d, t)),
            _ => None,
        }
    }

    /// Fill the parts this `When` lacks from `other` (a later message refines an earlier one).
    pub fn merged_over(&self, earlier: &When) -> When {
        let has_time = self.time.is_some() || self.part_of_day.is_some() || self.until.is_some();
        When {
            date: self.date.or(earlier.date),
            time: if has_time { self.time } else { earlier.time },
            part_of_day: if has_time {
                self.part_of_day
            } else {
                earlier.part_of_day
            },
            until: if has_time { self.until } else { earlier.until },
            time_is_bound: if has_time {
                self.time_is_bound
            } else {
                earlier.time_is_bound
            },
        }
    }
}

/// Which reminder fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReminderKind {
    /// The day-before reminder (asks to confirm).
    DayBefore,
    /// The short reminder a few hours before.
    Soon,
}

/// What happened in the conversation, as the engine sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Event {
    /// The client wrote text.
    Text { text: String },
    /// The client pressed a quick-reply button; `payload` is what the bot put on it.
    Button { payload: String },
    /// The client shared a contact card (Telegram `request_contact`, WhatsApp contacts).
    Contact { phone: String, name: Option<String> },
    /// A scheduled reminder for a booking is due.
    Reminder {
        booking: BookingId,
        kind: ReminderKind,
    },
    /// The visit was missed (marked no-show); the follow-up is due.
    NoShow { booking: BookingId },
    /// A manager released a handed-off conversation back to the bot.
    Released,
}

impl Event {
    /// The event with [`clean_text`] applied to everything the client wrote.
    pub fn cleaned(self) -> Event {
        let clean = |s: String| match clean_text(&s) {
            std::borrow::Cow::Borrowed(_) => s,
            std::borrow::Cow::Owned(c) => c,
        };
        match self {
            Event::Text { text } => Event::Text { text: clean(text) },
            Event::Button { payload } => Event::Button {
                payload: clean(payload),
            },
            Event::Contact { phone, name } => Event::Contact {
                phone: clean(phone),
                name: name.map(clean),
            },
            other => other,
        }
    }
}

/// Text as the bot keeps it: control characters other than newline and tab removed, the same
/// on every channel and both backends. PostgreSQL refuses NUL in text (a message with `\u0000`
/// failed there and was refetched forever), and the others only garble managers' screens.
pub fn clean_text(s: &str) -> std::borrow::Cow<'_, str> {
    let kept = |c: &char| !c.is_control() || matches!(c, '\n' | '\t');
    if s.chars().all(|c| kept(&c)) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(s.chars().filter(kept).collect())
    }
}

/// One inbound event from one client at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    pub client: ClientRef,
    pub at: DateTime<Utc>,
    pub event: Event,
}

/// A quick-reply button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub title: String,
    pub payload: String,
}

impl Button {
    pub fn new(title: impl Into<String>, payload: impl Into<String>) -> Self {
        Button {
            title: title.into(),
            payload: payload.into(),
        }
    }
}

/// One message the bot sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Button>,
    /// The profile template this reply was rendered from (for coverage), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Ask the channel for the client's phone (Telegram `request_contact` keyboard).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub request_contact: bool,
}

/// Lifecycle of a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    Booked,
    Confirmed,
    Cancelled,
    Rescheduled,
    Completed,
    NoShow,
}

/// A time interval on one staff member's schedule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Slot {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub staff: StaffId,
}

/// A visit of a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    pub id: BookingId,
    pub client: ClientRef,
    pub service: ServiceId,
    pub slot: Slot,
    pub status: BookingStatus,
}

impl Booking {
    /// Booked or confirmed: occupies its slot.
    pub fn is_active(&self) -> bool {
        matches!(
            self.status,
            BookingStatus::Booked | BookingStatus::Confirmed
        )
    }
}

/// What the bot knows of the client's contact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// The fields a lead may carry, as named in a profile's qualification rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadField {
    Service,
    Datetime,
    Phone,
    Name,
    Email,
}

impl LeadField {
    pub fn as_str(self) -> &'static str {
        match self {
            LeadField::Service => "service",
            LeadField::Datetime => "datetime",
            LeadField::Phone => "phone",
            LeadField::Name => "name",
            LeadField::Email => "email",
        }
    }
}

/// The CRM source every lead of the bot carries.
pub const LEAD_SOURCE: &str = "chat_bot";

/// A potential client, as the CRM will see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lead {
    pub client: ClientRef,
    pub source: String,
    pub channel: ChannelKind,
    pub service: Option<ServiceId>,
    pub desired_at: Option<DateTime<Utc>>,
    pub contact: Contact,
    /// Which fields the bot had when the lead qualified.
    pub fields: Vec<LeadField>,
    /// Where the client came from: the deep-link payload of their first start
    /// (`t.me/<bot>?start=vk_ads`, `max.ru/<bot>?start=…`); the CRM's UTM_SOURCE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub came_from: Option<String>,
}

/// The deep-link payload of a start command (`/start vk_ads`), as a campaign tag: at most 64
/// characters of `A-Z a-z 0-9 _ - .`; anything else is not a tag.
pub fn start_payload(text: &str) -> Option<String> {
    let rest = text.trim().strip_prefix("/start")?;
    let tag = rest.strip_prefix(' ')?.trim();
    let valid = !tag.is_empty()
        && tag.len() <= 64
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    valid.then(|| tag.to_string())
}

/// Why a conversation went to a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    /// The client asked for a person.
    Requested,
    Complaint,
    /// The bot failed to understand several times in a row.
    Misunderstanding,
    /// A medical question at a clinic: never answered by the bot.
    Medical,
    /// A health or safety question about a procedure (allergy, a reaction, contraindications)
    /// at any business.
    Safety,
    /// A pilot (`bot pilot`) gave the client to the managers' arm: the bot never answers them.
    Pilot,
    /// A question neither the FAQ nor the LLM (from the business's knowledge) could answer.
    Question,
}

impl HandoffReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffReason::Requested => "requested",
            HandoffReason::Complaint => "complaint",
            HandoffReason::Misunderstanding => "misunderstanding",
            HandoffReason::Medical => "medical",
            HandoffReason::Safety => "safety",
            HandoffReason::Pilot => "pilot",
            HandoffReason::Question => "question",
        }
    }
}

/// What changed about a booking: written to the CRM job of the change, shown on the lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingChange {
    Created,
    Moved,
    Cancelled,
    Confirmed,
    Completed,
    NoShow,
}

impl BookingChange {
    pub const ALL: [BookingChange; 6] = [
        BookingChange::Created,
        BookingChange::Moved,
        BookingChange::Cancelled,
        BookingChange::Confirmed,
        BookingChange::Completed,
        BookingChange::NoShow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BookingChange::Created => "created",
            BookingChange::Moved => "moved",
            BookingChange::Cancelled => "cancelled",
            BookingChange::Confirmed => "confirmed",
            BookingChange::Completed => "completed",
            BookingChange::NoShow => "no_show",
        }
    }
}

/// A side effect a turn asks the outside world to carry out. The engine decides; `store`,
/// `crm` and the workers do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Effect {
    BookingRequested {
        booking: Booking,
    },
    BookingMoved {
        id: BookingId,
        from: Slot,
        to: Slot,
    },
    BookingCancelled {
        id: BookingId,
    },
    /// The client confirmed they will come (reply to a reminder).
    BookingConfirmed {
        id: BookingId,
    },
    LeadQualified {
        lead: Lead,
    },
    ContactCaptured {
        contact: Contact,
    },
    HandoffRequested {
        reason: HandoffReason,
    },
}

impl Effect {
    pub fn kind(&self) -> &'static str {
        match self {
            Effect::BookingRequested { .. } => "booking_requested",
            Effect::BookingMoved { .. } => "booking_moved",
            Effect::BookingCancelled { .. } => "booking_cancelled",
            Effect::BookingConfirmed { .. } => "booking_confirmed",
            Effect::LeadQualified { .. } => "lead_qualified",
            Effect::ContactCaptured { .. } => "contact_captured",
            Effect::HandoffRequested { .. } => "handoff_requested",
        }
    }
}

/// A CRM object that follows one of our leads: the lead itself, or the deal it became.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CrmEntity {
    Lead,
    Deal,
}

impl CrmEntity {
    pub fn as_str(self) -> &'static str {
        match self {
            CrmEntity::Lead => "lead",
            CrmEntity::Deal => "deal",
        }
    }

    pub fn parse(s: &str) -> Option<CrmEntity> {
        [CrmEntity::Lead, CrmEntity::Deal]
            .into_iter()
            .find(|e| e.as_str() == s)
    }
}

impl fmt::Display for CrmEntity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a lead stands in the CRM, for the conversion KPI: the CRM's status semantics
/// (in process, success, failure) whatever the portal calls its statuses or stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrmSemantic {
    InWork,
    Converted,
    Junk,
}

impl CrmSemantic {
    pub const ALL: [CrmSemantic; 3] = [
        CrmSemantic::InWork,
        CrmSemantic::Converted,
        CrmSemantic::Junk,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CrmSemantic::InWork => "in_work",
            CrmSemantic::Converted => "converted",
            CrmSemantic::Junk => "junk",
        }
    }

    pub fn parse(s: &str) -> Option<CrmSemantic> {
        CrmSemantic::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for CrmSemantic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ChannelKind::ALL` comes from the same list as the enum; each spelling reads back.
    #[test]
    fn channel_kinds_spell_and_parse_back_once_each() {
        let names: std::collections::HashSet<&str> =
            ChannelKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), ChannelKind::ALL.len());
        for k in ChannelKind::ALL {
            assert_eq!(ChannelKind::parse(k.as_str()), Some(*k));
            let json = serde_json::to_string(k).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert_eq!(ChannelKind::parse("MAX"), None);
    }

    #[test]
    fn a_start_payload_is_a_short_campaign_tag_or_nothing() {
        assert_eq!(start_payload("/start vk_ads"), Some("vk_ads".into()));
        assert_eq!(
            start_payload(" /start  promo-2026.11 "),
            Some("promo-2026.11".into())
        );
        for none in [
            "/start",
            "/start ",
            "/startvk",
            "start vk",
            "/start a b",
            "/start ТГ",
        ] {
            assert_eq!(start_payload(none), None, "{none:?}");
        }
        assert_eq!(start_payload(&format!("/start {}", "x".repeat(65))), None);
    }

    #[test]
    fn clean_text_drops_control_characters_but_keeps_lines() {
        for (raw, want) in [
            ("привет", "привет"),
            ("при\u{0}вет", "привет"),
            ("a\u{1b}[31mb", "a[31mb"),
            (
                "строка 1\nстрока 2\tи табуляция",
                "строка 1\nстрока 2\tи табуляция",
            ),
            ("\u{7f}\u{85}\r", ""),
        ] {
            assert_eq!(clean_text(raw), want, "{raw:?}");
        }
        let e = Event::Contact {
            phone: "+7\u{0}913".into(),
            name: Some("Ан\u{0}на".into()),
        };
        assert_eq!(
            e.cleaned(),
            Event::Contact {
                phone: "+7913".into(),
                name: Some("Анна".into())
            }
        );
    }
}
