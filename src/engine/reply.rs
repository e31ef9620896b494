//! Turning a template key and the facts of the moment into a reply: the variation is chosen by
//! a stable hash of the conversation and turn (deterministic replays), values are formatted the
//! way a Russian administrator writes them (20.11, 15:00, 1 500 ₽), and the first letter of a
//! reply is capitalised.

use crate::config::templates::{TemplateKey, render};
use crate::config::{Price, Profile, Service, WeekHours};
use crate::domain::Reply;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc, Weekday};

/// FNV-1a: a tiny stable hash, so variation choice never changes between runs or Rust versions.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

pub fn fmt_date(d: NaiveDate) -> String {
    d.format("%d.%m").to_string()
}

pub fn fmt_time(t: NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

/// 1500 → "1 500".
pub fn fmt_amount(n: u32) -> String {
    fmt_count(u64::from(n))
}

/// 5910 → "5 910": a space between groups of three digits.
pub fn fmt_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

pub fn fmt_price(p: Price) -> String {
    match p {
        Price::Fixed(n) => format!("{} ₽", fmt_amount(n)),
        Price::Range { from, to } => format!("от {} до {} ₽", fmt_amount(from), fmt_amount(to)),
    }
}

pub fn weekday_short(d: Weekday) -> &'static str {
    ["пн", "вт", "ср", "чт", "пт", "сб", "вс"][d.num_days_from_monday() as usize]
}

pub fn weekday_name(d: Weekday) -> &'static str {
    [
        "понедельник",
        "вторник",
        "среда",
        "четверг",
        "пятница",
        "суббота",
        "воскресенье",
    ][d.num_days_from_monday() as usize]
}

/// «в понедельник», «во вторник», … — «on» a weekday.
pub fn weekday_on(d: Weekday) -> &'static str {
    [
        "в понедельник",
        "во вторник",
        "в среду",
        "в четверг",
        "в пятницу",
        "в субботу",
        "в воскресенье",
    ][d.num_days_from_monday() as usize]
}

/// "пн–пт 09:00–21:00, сб 10:00–18:00, вс выходной".
pub fn fmt_week_hours(hours: &WeekHours) -> String {
    let days = Weekday::Mon.num_days_from_monday()..7;
    let mut groups: Vec<(u32, u32, Option<crate::config::DayHours>)> = Vec::new();
    for i in days {
        let h = hours.days[i as usize];
        match groups.last_mut() {
            Some((_, end, last)) if *last == h => *end = i,
            _ => groups.push((i, i, h)),
        }
    }
    let name = |i: u32| ["пн", "вт", "ср", "чт", "пт", "сб", "вс"][i as usize];
    groups
        .iter()
        .map(|(a, b, h)| {
            let span = if a == b {
                name(*a).to_string()
            } else {
                format!("{}–{}", name(*a), name(*b))
            };
            match h {
                Some(h) => format!("{span} {}–{}", fmt_time(h.open), fmt_time(h.close)),
                None => format!("{span} выходной"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Templates that name a service after "на" / "записать на" take the accusative.
fn service_in_accusative(key: TemplateKey) -> bool {
    !matches!(key, TemplateKey::PriceFixed | TemplateKey::PriceRange)
}

fn capitalize_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Values for one reply; `service` is resolved to the right case per template.
#[derive(Default)]
pub struct Values<'a> {
    pub service: Option<&'a Service>,
    pub pairs: Vec<(&'static str, String)>,
}

impl<'a> Values<'a> {
    pub fn new() -> Self {
        Values::default()
    }

    pub fn service(mut self, s: Option<&'a Service>) -> Self {
        self.service = s;
        self
    }

    pub fn set(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.pairs.push((key, value.into()));
        self
    }

    /// `{date}`, `{time}` and `{weekday}` of a UTC moment, in the business zone.
    pub fn at(self, profile: &Profile, at: DateTime<Utc>) -> Self {
        let local = at.with_timezone(&profile.business.timezone);
        self.set("date", fmt_date(local.date_naive()))
            .set("time", fmt_time(local.time()))
            .set("weekday", weekday_name(chrono::Datelike::weekday(&local)))
    }
}

/// Render `key` for this conversation turn.
pub fn say(profile: &Profile, key: TemplateKey, seed: u64, values: &Values<'_>) -> Reply {
    say_nth(profile, key, seed, values, 0)
}

/// How many variations `key` has in `profile`.
pub fn variations(profile: &Profile, key: TemplateKey) -> usize {
    let from_profile = profile.templates.get(&key).filter(|v| !v.is_empty());
    from_profile.map_or(key.defaults().len(), Vec::len).max(1)
}

/// Render `key` with the variation `offset` places after the one `seed` picks.
pub fn say_nth(
    profile: &Profile,
    key: TemplateKey,
    seed: u64,
    values: &Values<'_>,
    offset: usize,
) -> Reply {
    // The profile's variations, or the built-in ones when it has none for this key.
    let from_profile = profile.templates.get(&key).filter(|v| !v.is_empty());
    let count = variations(profile, key);
    let pick =
        (stable_hash(&[&seed.to_le_bytes(), key.as_str().as_bytes()]) as usize + offset) % count;
    let variation = match from_profile {
        Some(v) => v.get(pick).map(String::as_str),
        None => key.defaults().get(pick).copied(),
    }
    .unwrap_or("");
    let service_text = values.service.map(|s| {
        if service_in_accusative(key) {
            s.accusative.as_str()
        } else {
            s.name.as_str()
        }
    });
    let mut pairs: Vec<(&str, &str)> = vec![
        ("business", profile.business.name.as_str()),
        ("phone", profile.business.phone.as_str()),
        ("address", profile.business.address.as_str()),
    ];
    if let Some(s) = service_text {
        pairs.push(("service", s));
    }
    for (k, v) in &values.pairs {
        pairs.push((k, v.as_str()));
    }
    Reply {
        text: capitalize_first(&render(variation, &pairs)),
        buttons: Vec::new(),
        template: Some(key.as_str().to_string()),
        request_contact: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_amounts_and_prices() {
        assert_eq!(fmt_amount(900), "900");
        assert_eq!(fmt_amount(1500), "1 500");
        assert_eq!(fmt_amount(12500), "12 500");
        assert_eq!(fmt_amount(1_000_000), "1 000 000");
        assert_eq!(
            fmt_price(Price::Range {
                from: 1500,
                to: 3500
            }),
            "от 1 500 до 3 500 ₽"
        );
    }

    #[test]
    fn stable_hash_is_stable() {
        assert_eq!(stable_hash(&[b"a"]), stable_hash(&[b"a"]));
        assert_ne!(stable_hash(&[b"a"]), stable_hash(&[b"b"]));
    }
}
