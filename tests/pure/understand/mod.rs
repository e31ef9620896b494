//! `Nlu::understand` end to end: a table of realistic client messages (salon and clinic) with
//! the expected intent and entities, per-field accuracy against the goals, the
//! `bot understand` command line, and a never-panics property.

mod bounded;
mod cli;
mod corpus;
mod profiles;

use bot::nlu::Nlu;
use chrono::{DateTime, Utc};
use proptest::prelude::*;

/// The fixed reference moment of every table row: Friday 20.11.2026 10:00 in Novosibirsk.
pub const NOW: &str = "2026-11-20T10:00:00+07:00";

pub fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(NOW)
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn understand_never_panics(text in "[а-яА-ЯёЁa-zA-Z0-9 +()\\-.,:;!?@_/<>👍🏻💅\u{200d}]{0,80}") {
        let nlu = Nlu::new(&profiles::salon());
        let u = nlu.understand(&text, now());
        prop_assert!((0.0..=1.0).contains(&u.confidence));
        if !u.intent.takes_slot() {
            prop_assert!(u.when.is_empty());
        }
    }

    #[test]
    fn understand_never_panics_on_any_unicode(text in "\\PC{0,60}") {
        let nlu = Nlu::new(&profiles::clinic());
        let _ = nlu.understand(&text, now());
    }
}
