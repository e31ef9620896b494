//! When reminders for a booking are due: per the profile's offsets before the visit (default
//! 24 h and 2 h), never in the past, and never in quiet hours (a reminder that would fall at
//! night is moved to the end of the quiet interval, if that is still before the visit); and
//! when the follow-up after a missed visit is due.

use crate::config::Profile;
use crate::domain::{Booking, ReminderKind};
use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};

/// One reminder to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueReminder {
    pub kind: ReminderKind,
    pub at: DateTime<Utc>,
}

fn in_quiet(t: NaiveTime, from: NaiveTime, until: NaiveTime) -> bool {
    if from <= until {
        from <= t && t < until
    } else {
        t >= from || t < until
    }
}

/// `at`, or the end of the quiet interval it falls in (the right local morning). None only when
/// that local time does not exist in the zone.
fn leave_quiet(profile: &Profile, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let tz = profile.business.timezone;
    let r = &profile.reminders;
    let local = at.with_timezone(&tz);
    if !in_quiet(local.time(), r.quiet_from, r.quiet_until) {
        return Some(at);
    }
    let mut day = local.date_naive();
    if r.quiet_from > r.quiet_until && local.time() >= r.quiet_from {
        day = day.succ_opt().unwrap_or(day);
    }
    tz.from_local_datetime(&day.and_time(r.quiet_until))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// When to send the follow-up after a missed visit (marked at `now`): the morning after the
/// visit day, when quiet hours end; if that has passed, at once — but never in quiet hours.
pub fn no_show_followup_at(
    profile: &Profile,
    booking: &Booking,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let tz = profile.business.timezone;
    let visit_day = booking.slot.start.with_timezone(&tz).date_naive();
    let next_morning = visit_day
        .succ_opt()
        .and_then(|d| {
            tz.from_local_datetime(&d.and_time(profile.reminders.quiet_until))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    let at = next_morning.max(now);
    leave_quiet(profile, at).unwrap_or(at)
}

/// The reminders of `booking` made or moved at `now`, earliest first. The largest offset is the
/// day-before reminder (asks to confirm); the others are short "see you soon" ones.
pub fn reminders_for(profile: &Profile, booking: &Booking, now: DateTime<Utc>) -> Vec<DueReminder> {
    let r = &profile.reminders;
    let mut offsets = r.before_hours.clone();
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    offsets.dedup();
    let mut out = Vec::new();
    for (i, hours) in offsets.iter().enumerate() {
        let Some(at) = leave_quiet(
            profile,
            booking.slot.start - Duration::hours(i64::from(*hours)),
        ) else {
            continue;
        };
        if at <= now || at >= booking.slot.start {
            continue;
        }
        let kind = if i == 0 && offsets.len() > 1 || *hours >= 12 {
            ReminderKind::DayBefore
        } else {
            ReminderKind::Soon
        };
        if out.iter().any(|d: &DueReminder| d.at == at) {
            continue;
        }
        out.push(DueReminder { kind, at });
    }
    out.sort_by_key(|d| d.at);
    out
}
