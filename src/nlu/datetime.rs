//! Russian dates and times in messenger text → `When`, resolved against a reference moment in
//! the business time zone. Prefers the future, reads bare hours by business hours ("в 3" →
//! 15:00), keeps parts of day and bounds, and returns the old and new slot of a reschedule.
//!
//! Three steps, each in its own file: `lexicon` maps words (typos included) to what they mean,
//! `scan` reads the token stream into unresolved mentions (`scan/numbers` for everything that
//! starts with a digit), `resolve` does the calendar arithmetic. Pure: `now` and the opening hour come in as arguments, nothing reads the clock.
//! Precision over recall: a number is read only in a date/time shape or after a word that makes
//! it one, so phones, prices, counts and durations give nothing.
//!
//! Policies:
//! - **Future only.** A date already passed this year is next year's; a bare day of the month
//!   already passed is next month's; "вчера" and "в прошлую пятницу" give no date.
//! - **Same weekday** ("в среду" on a Wednesday): `ambiguous`; today while the named time is
//!   still ahead (with no time: before 18:00, or before the end of the named part of day less
//!   an hour), else next week.
//! - **"в следующую пятницу"**: Friday of the next calendar week; `ambiguous` when a Friday is
//!   still ahead this week. "в эту пятницу": the one of this week.
//! - **Bare hours**: 1–12 below `opens_at_hour` are afternoon/evening ("в 3" → 15:00, "в 8"
//!   with opening at 9 → 20:00) unless "утра"/"утром" says otherwise; "в 12" is noon. A clock
//!   written with minutes gets an hour of leeway ("к 8:30" before a 9:00 opening is morning);
//!   a leading zero ("09:30") or an hour above 12 is taken as written.
//! - **Parts of day** are `part_of_day` without a clock time (утром, после обеда, вечером, в
//!   первой половине дня); "до обеда" is morning until 12:00; "в обед" is 13:00 *and*
//!   afternoon (an approximate moment the dialog can offer). With a clock time the part only
//!   decides AM/PM ("вечером в 7" → 19:00) and is not repeated in `part_of_day`.
//! - **Bounds**: "после 6" → 18:00 with `time_is_bound`; "до 12" → `until`; "с 10 до 12" →
//!   10:00, until 12:00, bound.
//! - **Time zone**: "по москве"/"мск" adds 4 hours (Moscow UTC+3 → Novosibirsk UTC+7).
//! - **Reschedule**: "с X на Y", "вместо X", "не X, а Y", "перенести с X", "не успею к X, можно
//!   на Y", "я записана на X, давайте Y" make X the old slot (`moved_from`), the rest is the new
//!   one (`when`). A slot given up with nothing in its place ("сегодня не смогу") stays in
//!   `when` and sets `gave_up`; «в то же время» / «так же» sets `same_time`.
//! - **Day first**: "05.12" is a date; it is read as a clock only where an hour is expected
//!   ("в 9.10", "завтра 9.10"), with minutes a clock is set to, no leading zero and no other
//!   clock in the message.

mod lexicon;
mod resolve;
mod same_time;
mod scan;
#[cfg(test)]
mod tests;

use crate::domain::When;
use crate::nlu::normalize::Normalized;
use chrono::DateTime;
use chrono_tz::Tz;
use lexicon::Lexicon;
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
    /// The slot in `when` is one the client cannot make and no other is named ("всё, сегодня
    /// не смогу", "в субботу не смогу прийти"): the booking given up, not a wanted slot.
    pub gave_up: bool,
    /// «в то же время», «время такое же», «давайте в субботу так же»: the time stays that of the
    /// booking being moved.
    pub same_time: bool,
}

/// The compiled grammar (regexes, vocabularies); build once, use for every message.
#[derive(Debug)]
pub struct DateTimeParser {
    lexicon: Lexicon,
}

impl Default for DateTimeParser {
    fn default() -> Self {
        Self::new()
    }
}

impl DateTimeParser {
    pub fn new() -> Self {
        DateTimeParser {
            lexicon: Lexicon::new(),
        }
    }

    /// Find the date/time in `text`, relative to `now` (already in the business time zone).
    /// `opens_at_hour` is the earliest opening hour of the business: a bare hour below it is
    /// read as afternoon/evening ("в 3" → 15:00 when the business opens at 9).
    pub fn parse(&self, text: &Normalized, now: DateTime<Tz>, opens_at_hour: u32) -> DateTimeMatch {
        let mut scanner = scan::Scanner::new(&self.lexicon, &text.tokens);
        scanner.run();
        let same_time = same_time::said(&text.tokens, &scanner.mentions);
        if scanner.mentions.is_empty() {
            return DateTimeMatch {
                same_time,
                ..DateTimeMatch::default()
            };
        }
        DateTimeMatch {
            same_time,
            ..resolve::assemble(
                &scanner.mentions,
                scanner.has_move,
                scanner.adds,
                now,
                opens_at_hour,
            )
        }
    }
}
