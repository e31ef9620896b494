//! The profile YAML exactly as integrators write it: private raw structs that mirror the file,
//! with every user-written value wrapped in `Spanned` so validation can point at its line and
//! column. Only serde shapes live here; what the values must satisfy is `validate.rs`'s job.
//! Unknown keys are rejected everywhere (`deny_unknown_fields`).

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// Text with its place in the file.
pub(super) type Text = Spanned<String>;
/// A whole number with its place in the file; signed so negative input reaches validation.
pub(super) type Int = Spanned<i64>;
/// A list of texts, the list itself located too.
pub(super) type TextList = Spanned<Vec<Text>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    pub business: Spanned<RawBusiness>,
    pub hours: Spanned<RawWeek>,
    #[serde(default)]
    pub holidays: Vec<Text>,
    #[serde(default)]
    pub booking: Option<RawBooking>,
    pub staff: Spanned<Vec<RawStaff>>,
    pub services: Spanned<Vec<RawService>>,
    #[serde(default)]
    pub promotions: Vec<RawPromotion>,
    #[serde(default)]
    pub faq: Vec<RawFaq>,
    #[serde(default)]
    pub templates: Option<Entries<TextList>>,
    #[serde(default)]
    pub qualification: Option<RawQualification>,
    #[serde(default)]
    pub escalation: Option<Spanned<RawEscalation>>,
    #[serde(default)]
    pub reminders: Option<RawReminders>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBusiness {
    pub name: Text,
    pub kind: Text,
    pub address: Text,
    pub phone: Text,
    #[serde(default)]
    pub timezone: Option<Text>,
    #[serde(default)]
    pub website: Option<Text>,
}

/// Opening hours per weekday: `"HH:MM-HH:MM"` or `"closed"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeek {
    #[serde(default)]
    pub mon: Option<Text>,
    #[serde(default)]
    pub tue: Option<Text>,
    #[serde(default)]
    pub wed: Option<Text>,
    #[serde(default)]
    pub thu: Option<Text>,
    #[serde(default)]
    pub fri: Option<Text>,
    #[serde(default)]
    pub sat: Option<Text>,
    #[serde(default)]
    pub sun: Option<Text>,
}

impl RawWeek {
    /// The seven days, Monday first, with their YAML keys.
    pub fn days(&self) -> [(&'static str, Option<&Text>); 7] {
        [
            ("mon", self.mon.as_ref()),
            ("tue", self.tue.as_ref()),
            ("wed", self.wed.as_ref()),
            ("thu", self.thu.as_ref()),
            ("fri", self.fri.as_ref()),
            ("sat", self.sat.as_ref()),
            ("sun", self.sun.as_ref()),
        ]
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBooking {
    #[serde(default)]
    pub slot_step_minutes: Option<Int>,
    #[serde(default)]
    pub buffer_minutes: Option<Int>,
    #[serde(default)]
    pub min_notice_minutes: Option<Int>,
    #[serde(default)]
    pub horizon_days: Option<Int>,
    #[serde(default)]
    pub suggestions: Option<Int>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStaff {
    pub id: Text,
    pub name: Text,
    pub role: Text,
    #[serde(default)]
    pub aliases: Vec<Text>,
    pub services: TextList,
    #[serde(default)]
    pub hours: Option<Spanned<RawWeek>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub id: Text,
    pub name: Text,
    #[serde(default)]
    pub accusative: Option<Text>,
    pub price: Spanned<RawPrice>,
    #[serde(default)]
    pub price_note: Option<Text>,
    pub duration_minutes: Int,
    #[serde(default)]
    pub synonyms: Vec<Text>,
}

/// `price: 1200` or `price: {from: 1500, to: 3500}`. Hand-written rather than an untagged
/// enum: untagged enums buffer their input and lose every location inside.
#[derive(Debug)]
pub(super) enum RawPrice {
    Fixed(i64),
    Range { from: Int, to: Int },
}

const PRICE_KEYS: &[&str] = &["from", "to"];

impl<'de> Deserialize<'de> for RawPrice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PriceVisitor;

        impl<'de> Visitor<'de> for PriceVisitor {
            type Value = RawPrice;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a price in whole roubles (1200) or a range ({from: 1500, to: 3500})")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawPrice, E> {
                Ok(RawPrice::Fixed(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawPrice, E> {
                Ok(RawPrice::Fixed(i64::try_from(v).unwrap_or(i64::MAX)))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawPrice, A::Error> {
                let mut from: Option<Int> = None;
                let mut to: Option<Int> = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "from" if from.is_some() => return Err(de::Error::duplicate_field("from")),
                        "to" if to.is_some() => return Err(de::Error::duplicate_field("to")),
                        "from" => from = Some(map.next_value()?),
                        "to" => to = Some(map.next_value()?),
                        other => return Err(de::Error::unknown_field(other, PRICE_KEYS)),
                    }
                }
                match (from, to) {
                    (Some(from), Some(to)) => Ok(RawPrice::Range { from, to }),
                    (None, _) => Err(de::Error::missing_field("from")),
                    (_, None) => Err(de::Error::missing_field("to")),
                }
            }
        }

        deserializer.deserialize_any(PriceVisitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPromotion {
    pub id: Text,
    pub title: Text,
    pub text: Text,
    #[serde(default)]
    pub valid_from: Option<Text>,
    #[serde(default)]
    pub valid_until: Option<Text>,
    #[serde(default)]
    pub services: Vec<Text>,
    #[serde(default)]
    pub discount_percent: Option<Int>,
    #[serde(default)]
    pub conditions: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFaq {
    pub id: Text,
    pub keywords: TextList,
    pub answer: Text,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQualification {
    pub required: TextList,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEscalation {
    #[serde(default)]
    pub max_misunderstandings: Option<Int>,
    #[serde(default)]
    pub complaint_keywords: Vec<Text>,
    #[serde(default)]
    pub medical_questions_to_human: Option<Spanned<bool>>,
    #[serde(default)]
    pub medical_keywords: Vec<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReminders {
    #[serde(default)]
    pub before_hours: Option<Spanned<Vec<Int>>>,
    #[serde(default)]
    pub quiet_hours: Option<Text>,
}

/// A mapping whose keys are user data (template names), kept in file order with the location
/// of every key, so an unknown key can be reported where it was written.
#[derive(Debug)]
pub(super) struct Entries<V>(pub Vec<(Text, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(std::marker::PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<V>, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Text>()? {
                    let value = map.next_value::<V>()?;
                    out.push((key, value));
                }
                Ok(Entries(out))
            }

            // `templates:` with nothing after it.
            fn visit_unit<E: de::Error>(self) -> Result<Entries<V>, E> {
                Ok(Entries(Vec::new()))
            }
        }

        deserializer.deserialize_map(EntriesVisitor(std::marker::PhantomData))
    }
}
