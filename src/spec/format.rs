//! The dialog spec format exactly as people write it in YAML: one `DialogFile` per dialog,
//! `FragmentFile` for shared parts pulled in with `include:`. Only shape lives here (serde with
//! `deny_unknown_fields` everywhere, so a typo is an error with its location); meaning —
//! which keys go together, dates, durations, placeholders, profile ids — is checked by
//! `spec::load` when it compiles these into `spec::model`.

use crate::domain::{BookingStatus, ChannelKind, HandoffReason, Intent, LeadField, ReminderKind};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// One dialog file in `dialogs/`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialogFile {
    pub id: Spanned<String>,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `salon` (default), `clinic`, or a profile YAML path relative to this file.
    #[serde(default)]
    pub profile: Option<Spanned<String>>,
    #[serde(default)]
    pub channel: Option<ChannelKind>,
    #[serde(default)]
    pub client: Option<ClientSpec>,
    /// Whether a managers' channel is set up (default true); `false` replays a web-only
    /// business, where a hand-off gives the phone and takes one for a call back.
    #[serde(default)]
    pub managers: Option<bool>,
    /// The virtual clock at the start: `2026-11-20 10:00` (business time) or RFC 3339.
    pub now: Spanned<String>,
    /// Per-turn latency budget (`3s` by default).
    #[serde(default)]
    pub latency: Option<Spanned<String>>,
    /// How client variations combine into paths: `zip` (default) or `product`.
    #[serde(default)]
    pub variations: Option<Spanned<Combine>>,
    /// Upper bound on paths for `variations: product` (default 64).
    #[serde(default)]
    pub max_paths: Option<u32>,
    /// Bookings that exist before the dialog starts.
    #[serde(default)]
    pub bookings: Vec<Spanned<BookingSpec>>,
    /// The step that starts the scenario (a client phrase with variations, or an event).
    #[serde(default)]
    pub trigger: Option<Spanned<StepSpec>>,
    pub steps: Vec<Spanned<StepSpec>>,
}

/// A file of shared steps (`include: fragments/contact.yaml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FragmentFile {
    #[serde(default)]
    pub description: Option<String>,
    pub steps: Vec<Spanned<StepSpec>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// Path i takes variation i mod n of every step; paths = the largest n.
    Zip,
    /// Every combination of variations (capped by `max_paths`).
    Product,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// Channel id of the client (default `test-<dialog id>`; on WhatsApp the phone digits).
    #[serde(default)]
    pub id: Option<String>,
    /// Name the bot already knows.
    #[serde(default)]
    pub name: Option<String>,
    /// Phone the bot already knows (E.164).
    #[serde(default)]
    pub phone: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingSpec {
    pub id: String,
    pub service: Spanned<String>,
    pub staff: Spanned<String>,
    /// Start, business time: `2026-11-21 15:00`, `21.11 15:00` or RFC 3339.
    pub at: Spanned<String>,
    #[serde(default)]
    pub status: Option<BookingStatus>,
    /// Someone else's booking (it only occupies the schedule).
    #[serde(default)]
    pub other_client: bool,
}

/// One step: what happens (exactly one action), then what must be true afterwards.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// A label shown in reports.
    #[serde(default)]
    pub name: Option<String>,

    // ---- actions ----
    /// The client writes: one phrase or a list of variations.
    #[serde(default)]
    pub client: Option<Texts>,
    /// The client presses a button offered by the last reply with buttons.
    #[serde(default)]
    pub press: Option<PressSpec>,
    /// The client shares a contact card.
    #[serde(default)]
    pub contact: Option<ContactSpec>,
    /// The reminder of this kind becomes due (the clock moves to it).
    #[serde(default)]
    pub reminder: Option<ReminderKind>,
    /// The booking with this id is marked as missed; the follow-up fires.
    #[serde(default)]
    pub no_show: Option<Spanned<String>>,
    /// Time passes (`23h`, `1d 2h`, `90m`); every reminder due meanwhile fires.
    #[serde(default)]
    pub wait: Option<Spanned<String>>,
    /// A manager gives the conversation back to the bot.
    #[serde(default)]
    pub release: Option<bool>,
    /// The steps of a fragment file, relative to this file.
    #[serde(default)]
    pub include: Option<Spanned<String>>,
    /// Variables set for an included fragment (`${name}` inside it).
    #[serde(default)]
    pub with: Option<BTreeMap<String, String>>,

    // ---- expectations ----
    /// What the bot answers: one message, or a list (several messages in one turn).
    #[serde(default)]
    pub bot: Option<Spanned<BotSpec>>,
    /// `true`: the bot sends nothing at all.
    #[serde(default)]
    pub silent: Option<bool>,
    /// What the bot understood from the client's text.
    #[serde(default)]
    pub understood: Option<Spanned<UnderstoodSpec>>,
    #[serde(default)]
    pub booked: Option<Spanned<Toggle<BookedSpec>>>,
    #[serde(default)]
    pub moved: Option<Spanned<Toggle<MovedSpec>>>,
    #[serde(default)]
    pub cancelled: Option<Spanned<Toggle<SlotSpec>>>,
    #[serde(default)]
    pub confirmed: Option<bool>,
    #[serde(default)]
    pub lead: Option<Spanned<Toggle<LeadSpec>>>,
    #[serde(default)]
    pub contact_captured: Option<Toggle<ContactSpec>>,
    #[serde(default)]
    pub handoff: Option<HandoffSpec>,
    /// Reminders pending after this step, exactly (empty list: none).
    #[serde(default)]
    pub reminders: Option<Vec<Spanned<ReminderSpec>>>,
    /// Latency budget of this step's turns (overrides the dialog's).
    #[serde(default)]
    pub latency: Option<Spanned<String>>,
}

/// One expected message.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageSpec {
    /// Exact text, whitespace- and case-insensitive.
    #[serde(default)]
    pub text: Option<String>,
    /// Text with placeholders `{date}` `{time}` `{service}` `{price}` `{name}` `{any}`.
    #[serde(default)]
    pub template: Option<String>,
    /// A regular expression that must match somewhere in the message.
    #[serde(default)]
    pub regex: Option<String>,
    /// All of these words/phrases must occur.
    #[serde(default)]
    pub contains: Option<Texts>,
    /// The reply comes from this profile template (any of its variations).
    #[serde(default)]
    pub key: Option<String>,
    /// One of these variations (each a template string or a single matcher).
    #[serde(default)]
    pub any: Option<Vec<Spanned<MatcherSpec>>>,
    /// Exactly these buttons, in order (titles, placeholders allowed); `[]`: no buttons.
    #[serde(default)]
    pub buttons: Option<Vec<String>>,
    /// At least these buttons, in any order.
    #[serde(default)]
    pub buttons_include: Option<Vec<String>>,
    /// The message must not contain any of these.
    #[serde(default)]
    pub not: Option<Texts>,
    /// `name: regex`: store the first group (or the whole match) as `${name}`.
    #[serde(default)]
    pub capture: Option<BTreeMap<String, String>>,
}

/// One allowed variation inside `any:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatcherFields {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default)]
    pub contains: Option<Texts>,
    #[serde(default)]
    pub key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnderstoodSpec {
    #[serde(default)]
    pub intent: Option<Intent>,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub staff: Option<String>,
    /// `21.11` or `2026-11-21`.
    #[serde(default)]
    pub date: Option<String>,
    /// `15:00`.
    #[serde(default)]
    pub time: Option<String>,
    /// E.164.
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// The FAQ entry id the question was matched to.
    #[serde(default)]
    pub faq: Option<String>,
}

/// Service, date and time of a booking.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotSpec {
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub staff: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookedSpec {
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub staff: Option<String>,
    /// Store the new booking's id as `${name}`.
    #[serde(default)]
    pub capture: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MovedSpec {
    /// The id of the moved booking.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub staff: Option<String>,
    #[serde(default)]
    pub from_date: Option<String>,
    #[serde(default)]
    pub from_time: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadSpec {
    /// At least these fields were known when the lead qualified.
    #[serde(default)]
    pub fields: Option<Vec<LeadField>>,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// Default: the dialog's channel.
    #[serde(default)]
    pub channel: Option<ChannelKind>,
    /// Default: `chat_bot`.
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactSpec {
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReminderSpec {
    #[serde(default)]
    pub kind: Option<ReminderKind>,
    /// Business time: `20.11 15:00` or `2026-11-20 15:00`.
    pub at: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PressFields {
    /// Button title.
    #[serde(default)]
    pub title: Option<String>,
    /// Button payload.
    #[serde(default)]
    pub payload: Option<String>,
    /// The n-th button (1-based) of the last reply with buttons.
    #[serde(default)]
    pub index: Option<usize>,
}

// ---- shapes that accept several YAML forms --------------------------------------------------

const QUOTE_HINT: &str = "a phrase that YAML reads as a number or true/false: put it in quotes";

/// Visitor methods that refuse numbers and booleans where text is expected.
macro_rules! reject_non_text {
    ($t:ty) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<$t, E> {
            Err(E::custom(QUOTE_HINT))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<$t, E> {
            Err(E::custom(QUOTE_HINT))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<$t, E> {
            Err(E::custom(QUOTE_HINT))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<$t, E> {
            Err(E::custom(QUOTE_HINT))
        }
    };
}

/// One phrase or a list of phrases. Numbers and booleans must be quoted: YAML would read
/// `+79131234567` as a number and lose the `+`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Texts(pub Vec<String>);

impl<'de> Deserialize<'de> for Texts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Texts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a phrase or a list of phrases")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Texts, E> {
                Ok(Texts(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Texts, A::Error> {
                let mut out = Vec::new();
                while let Some(Phrase(s)) = seq.next_element()? {
                    out.push(s);
                }
                Ok(Texts(out))
            }
            reject_non_text!(Texts);
        }
        d.deserialize_any(V)
    }
}

/// One phrase (inside a list).
struct Phrase(String);

impl<'de> Deserialize<'de> for Phrase {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Phrase;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a phrase")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Phrase, E> {
                Ok(Phrase(v.to_string()))
            }
            reject_non_text!(Phrase);
        }
        d.deserialize_any(V)
    }
}

/// `true` (expected, anything), `false` (must not happen) or a mapping of details.
#[derive(Debug)]
pub enum Toggle<T> {
    No,
    Yes(T),
}

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for Toggle<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for V<T> {
            type Value = Toggle<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true, false or a mapping")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Toggle<T>, E> {
                Ok(if v {
                    Toggle::Yes(T::default())
                } else {
                    Toggle::No
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Toggle<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Toggle::Yes)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// `bot:` — a template string, one message mapping, or a list of messages.
#[derive(Debug)]
pub enum BotSpec {
    One(Box<MessageSpec>),
    Many(Vec<Spanned<MessageSpec>>),
}

impl<'de> Deserialize<'de> for BotSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BotSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a template string, a message mapping or a list of messages")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<BotSpec, E> {
                Ok(BotSpec::One(Box::new(MessageSpec {
                    template: Some(v.to_string()),
                    ..MessageSpec::default()
                })))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<BotSpec, A::Error> {
                MessageSpec::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|m| BotSpec::One(Box::new(m)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<BotSpec, A::Error> {
                Vec::<Spanned<MessageSpec>>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(BotSpec::Many)
            }
        }
        d.deserialize_any(V)
    }
}

/// A variation inside `any:` — a template string or a one-matcher mapping.
#[derive(Debug)]
pub struct MatcherSpec(pub MatcherFields);

impl<'de> Deserialize<'de> for MatcherSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MatcherSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a template string or a mapping with one of text, template, regex, contains, key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MatcherSpec, E> {
                Ok(MatcherSpec(MatcherFields {
                    template: Some(v.to_string()),
                    ..MatcherFields::default()
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MatcherSpec, A::Error> {
                MatcherFields::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(MatcherSpec)
            }
        }
        d.deserialize_any(V)
    }
}

/// `press:` — a title, a list of title variations, or `{title | payload | index}`.
#[derive(Debug)]
pub enum PressSpec {
    Titles(Vec<String>),
    Fields(PressFields),
}

impl<'de> Deserialize<'de> for PressSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PressSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a button title, a list of titles, or a mapping with title, payload or index",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PressSpec, E> {
                Ok(PressSpec::Titles(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<PressSpec, A::Error> {
                Texts::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(|t| PressSpec::Titles(t.0))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PressSpec, A::Error> {
                PressFields::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(PressSpec::Fields)
            }
            reject_non_text!(PressSpec);
        }
        d.deserialize_any(V)
    }
}

/// `handoff:` — `true` (any reason), `false` (must not happen) or a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffSpec {
    No,
    Any,
    Reason(HandoffReason),
}

impl<'de> Deserialize<'de> for HandoffSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HandoffSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "true, false or one of requested, complaint, misunderstanding, medical, safety",
                )
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<HandoffSpec, E> {
                Ok(if v { HandoffSpec::Any } else { HandoffSpec::No })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HandoffSpec, E> {
                let reason = match v {
                    "requested" => HandoffReason::Requested,
                    "complaint" => HandoffReason::Complaint,
                    "misunderstanding" => HandoffReason::Misunderstanding,
                    "medical" => HandoffReason::Medical,
                    "safety" => HandoffReason::Safety,
                    other => {
                        return Err(E::custom(format!(
                            "unknown hand-off reason {other:?} (expected one of requested, complaint, misunderstanding, medical, safety, or true/false)"
                        )));
                    }
                };
                Ok(HandoffSpec::Reason(reason))
            }
        }
        d.deserialize_any(V)
    }
}
