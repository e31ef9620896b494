//! From mentions to `When`: splits a reschedule into the old and the new slot, merges the pieces
//! of each slot ("в пятницу" + "в 3" + "по москве"), applies the business-hours rule to bare
//! hours and does the calendar arithmetic relative to `now`, always towards the future.
//!
//! Policies (see also the module docs of `datetime`):
//! - a weekday named on that same weekday ("в среду" on a Wednesday) is ambiguous; it means
//!   today while the wanted time is still ahead (or, with no time, before `SAME_DAY_CUTOFF_HOUR`,
//!   or before the end of the named part of day less an hour), otherwise the same weekday next
//!   week;
//! - "в следующую X" is X of the next calendar week, ambiguous when an X is still ahead this week;
//! - a bare hour below the opening hour is afternoon/evening ("в 3" → 15:00) unless a part of
//!   day or "утра" says otherwise.

use super::DateTimeMatch;
use super::lexicon::{Meridiem, Prep, WeekSel};
use super::scan::{Clock, DateSpec, Mention, Piece, TimeSpec};
use crate::domain::{PartOfDay, When};
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveTime, Timelike};
use chrono_tz::Tz;
use std::ops::Range;

/// With no time given, a weekday said on that weekday means today only before this hour.
pub(super) const SAME_DAY_CUTOFF_HOUR: u32 = 18;

/// Penalty on the confidence of a reading that has a plausible alternative.
const AMBIGUOUS_FACTOR: f32 = 0.7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    New,
    Old,
    /// A booking the message only refers to ("я записана на четверг, можно ещё на субботу?").
    Context,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Date,
    Time,
    Zone,
}

fn kind(m: &Mention) -> Kind {
    match m.piece {
        Piece::Date(_) => Kind::Date,
        Piece::Time(_) => Kind::Time,
        Piece::Zone(_) | Piece::Nothing => Kind::Zone,
    }
}

/// Which date wins when one slot names several ("в пятницу 27.11"): the most explicit.
fn rank(d: &DateSpec) -> u8 {
    match d {
        DateSpec::DayMonth(..) => 5,
        DateSpec::DayOfMonth(_) => 4,
        DateSpec::Offset(_) | DateSpec::Months(_) => 3,
        DateSpec::Weekday(..) => 2,
        DateSpec::Weekend(_) => 1,
        DateSpec::WeekStart(_) | DateSpec::Past => 0,
    }
}

/// The pieces said about one slot (the new one, or the old one of a reschedule).
#[derive(Debug, Default)]
struct Slot {
    date: Option<DateSpec>,
    /// A second date said for the same slot: it must agree, or the reading is ambiguous.
    check: Option<DateSpec>,
    time: Option<TimeSpec>,
    /// "с 10" is a lower bound for the wanted slot, an exact time for the old one.
    time_from: bool,
    part: Option<PartOfDay>,
    ambiguous: bool,
    conf: Option<f32>,
}

impl Slot {
    fn add(&mut self, m: &Mention) {
        match m.piece {
            Piece::Date(DateSpec::Past) | Piece::Zone(_) | Piece::Nothing => return,
            Piece::Date(d) => self.add_date(d),
            Piece::Time(t) => self.add_time(t, m.prep == Some(Prep::S)),
        }
        self.conf = Some(self.conf.map_or(m.conf, |c| c.min(m.conf)));
    }

    fn add_date(&mut self, d: DateSpec) {
        use DateSpec::*;
        let Some(cur) = self.date else {
            self.date = Some(d);
            return;
        };
        self.date = Some(match (cur, d) {
            (WeekStart(WeekSel::Next), Weekday(wd, WeekSel::Nearest))
            | (Weekday(wd, WeekSel::Nearest), WeekStart(WeekSel::Next)) => {
                Weekday(wd, WeekSel::NextWeek)
            }
            (WeekStart(sel), Weekday(wd, WeekSel::Nearest))
            | (Weekday(wd, WeekSel::Nearest), WeekStart(sel)) => Weekday(wd, sel),
            (WeekStart(WeekSel::Next), Weekend(WeekSel::Nearest))
            | (Weekend(WeekSel::Nearest), WeekStart(WeekSel::Next)) => Weekend(WeekSel::NextWeek),
            (WeekStart(sel), Weekend(WeekSel::Nearest))
            | (Weekend(WeekSel::Nearest), WeekStart(sel)) => Weekend(sel),
            _ => {
                let (keep, other) = if rank(&d) > rank(&cur) {
                    (d, cur)
                } else {
                    (cur, d)
                };
                if self.check.is_some() {
                    self.ambiguous = true;
                } else {
                    self.check = Some(other);
                }
                keep
            }
        });
    }

    fn add_time(&mut self, t: TimeSpec, from: bool) {
        use TimeSpec::*;
        if let Part(p) = t {
            if self.part.is_some_and(|q| q != p) {
                self.ambiguous = true;
            }
            self.part.get_or_insert(p);
            return;
        }
        let Some(cur) = self.time else {
            self.time = Some(t);
            self.time_from = from;
            return;
        };
        self.time = Some(match (cur, t) {
            // "после 10 и до 12"; "до 12 или после 16" stays ambiguous
            (After(a), Until(b)) => Range(a, b),
            (Lunch, At(c)) | (At(c), Lunch) => At(c),
            _ => {
                self.ambiguous = true;
                cur
            }
        });
    }

    fn is_empty(&self) -> bool {
        self.date.is_none() && self.time.is_none() && self.part.is_none()
    }

    fn resolve(&self, role: Role, now: DateTime<Tz>, opens: u32, zone: i64) -> (When, bool) {
        let mut w = When::default();
        let mut ambiguous = self.ambiguous;
        let mut part = self.part;
        let mut moment_date = None;
        let mut keep_part = false;
        match self.time {
            Some(TimeSpec::At(c)) => {
                w.time = resolve_clock(c, part, opens);
                w.time_is_bound = self.time_from && role == Role::New && w.time.is_some();
            }
            Some(TimeSpec::After(c)) => {
                w.time = resolve_clock(c, part, opens);
                w.time_is_bound = w.time.is_some();
            }
            Some(TimeSpec::Until(c)) => w.until = resolve_clock(c, part, opens),
            Some(TimeSpec::Range(a, b)) => {
                (w.time, w.until) = resolve_range(a, b, part, opens);
                w.time_is_bound = w.time.is_some();
            }
            Some(TimeSpec::Lunch) => {
                w.time = NaiveTime::from_hms_opt(13, 0, 0);
                part.get_or_insert(PartOfDay::Afternoon);
                keep_part = true;
            }
            Some(TimeSpec::BeforeLunch) => {
                part.get_or_insert(PartOfDay::Morning);
                w.until = NaiveTime::from_hms_opt(12, 0, 0);
            }
            Some(TimeSpec::In(minutes)) => {
                let at = now.naive_local() + Duration::minutes(minutes);
                w.time = at.time().with_second(0).and_then(|t| t.with_nanosecond(0));
                moment_date = Some(at.date());
            }
            Some(TimeSpec::Part(p)) => {
                part.get_or_insert(p);
            }
            None => {}
        }
        let mut wrapped = 0;
        if zone != 0 {
            for t in [&mut w.time, &mut w.until].into_iter().flatten() {
                let (shifted, secs) = t.overflowing_add_signed(Duration::hours(zone));
                *t = shifted;
                wrapped = wrapped.max(secs);
            }
        }
        w.date = match self.date {
            Some(spec) => resolve_date(spec, now, w.time, part).map(|(d, amb)| {
                ambiguous |= amb;
                d
            }),
            None => moment_date,
        };
        if wrapped > 0 {
            w.date = w.date.and_then(|d| d.succ_opt());
        }
        if let (Some(check), Some(date)) = (self.check, w.date)
            && !agrees(check, date, now, w.time, part)
        {
            ambiguous = true;
        }
        if w.time.is_none() || keep_part {
            w.part_of_day = part;
        }
        (w, ambiguous)
    }
}

/// The old/new role of every mention: "вместо X", "с X на Y", "не X, а Y", "перенести с X",
/// "не успею к X, можно на Y", "я записана на X, давайте Y" (also "я записана на X, можно
/// перенести?").
fn roles(mentions: &[Mention], has_move: bool, adds: bool) -> Vec<Role> {
    // wanted_after[k]: a date or time not of a booking comes after mention k
    let mut wanted_after = vec![false; mentions.len()];
    for k in (0..mentions.len().saturating_sub(1)).rev() {
        let next = &mentions[k + 1];
        wanted_after[k] =
            wanted_after[k + 1] || (!next.booked && matches!(kind(next), Kind::Date | Kind::Time));
    }
    let mut roles: Vec<Role> = Vec::with_capacity(mentions.len());
    for (k, m) in mentions.iter().enumerate() {
        let later = &mentions[k + 1..];
        let later_same =
            |pred: &dyn Fn(&Mention) -> bool| later.iter().any(|l| kind(l) == kind(m) && pred(l));
        let is_range = matches!(m.piece, Piece::Time(TimeSpec::Range(..)));
        let from = m.prep == Some(Prep::S) && !is_range && kind(m) != Kind::Zone;
        let old = m.prep == Some(Prep::Vmesto)
            || (m.neg && later_same(&|l| !l.neg))
            || (from && later_same(&|l| l.prep == Some(Prep::Na)))
            || (from && has_move && kind(m) == Kind::Date)
            || (m.booked && (has_move || (wanted_after[k] && !adds)))
            || (m.gave_up && has_move);
        let role = if old {
            Role::Old
        } else if m.booked && adds && wanted_after[k] {
            Role::Context
        } else {
            match (k.checked_sub(1), roles.last()) {
                // "с пятницы 15:00 на ...": a time right after the old date belongs to it
                (Some(p), Some(&r))
                    if mentions[p].range.end + 1 >= m.range.start
                        && kind(&mentions[p]) != kind(m)
                        && m.prep != Some(Prep::Na) =>
                {
                    r
                }
                _ => Role::New,
            }
        };
        roles.push(role);
    }
    roles
}

/// Puts the mentions together into the match.
pub(super) fn assemble(
    mentions: &[Mention],
    has_move: bool,
    adds: bool,
    now: DateTime<Tz>,
    opens: u32,
) -> DateTimeMatch {
    let roles = roles(mentions, has_move, adds);
    let (mut new, mut old) = (Slot::default(), Slot::default());
    // Every piece of the wanted slot was given up ("всё, сегодня не смогу"): no new slot at all.
    let (mut new_pieces, mut new_given_up) = (0usize, 0usize);
    let mut zone = 0;
    let mut tokens: Vec<Range<usize>> = Vec::new();
    for (m, role) in mentions.iter().zip(&roles) {
        match m.piece {
            Piece::Date(DateSpec::Past) | Piece::Nothing => continue,
            Piece::Zone(z) => zone = z,
            _ => match role {
                Role::New => {
                    new.add(m);
                    new_pieces += 1;
                    new_given_up += usize::from(m.gave_up);
                }
                Role::Old => old.add(m),
                Role::Context => {}
            },
        }
        match tokens.last_mut() {
            Some(last) if last.end >= m.range.start => last.end = last.end.max(m.range.end),
            _ => tokens.push(m.range.clone()),
        }
    }
    if new.is_empty() && old.is_empty() {
        return DateTimeMatch::default();
    }
    let (mut when, amb_new) = new.resolve(Role::New, now, opens, zone);
    let (mut was, amb_old) = old.resolve(Role::Old, now, opens, zone);
    // "с пятницы 15:00 на 17:00": same day; "завтра вместо 12 на 16:30": both tomorrow
    if when.date.is_none() && when.time.is_some() && was.date.is_some() {
        when.date = was.date;
    }
    if was.date.is_none() && was.time.is_some() && when.time.is_some() {
        was.date = when.date;
    }
    let ambiguous = amb_new || (amb_old && when.is_empty());
    let conf = new.conf.into_iter().chain(old.conf).fold(1.0f32, f32::min);
    let confidence = if ambiguous {
        conf * AMBIGUOUS_FACTOR
    } else {
        conf
    };
    if when.is_empty() && was.is_empty() {
        return DateTimeMatch::default();
    }
    DateTimeMatch {
        // a day given up is a booking to cancel; "с утра не смогу" alone only narrows a slot
        gave_up: new_pieces > 0
            && new_given_up == new_pieces
            && was.is_empty()
            && when.date.is_some(),
        when,
        moved_from: (!was.is_empty()).then_some(was),
        tokens,
        confidence,
        ambiguous,
        same_time: false,
    }
}

/// A clock as said → a local time, by the marker, the part of day or the business-hours rule.
pub(super) fn resolve_clock(c: Clock, part: Option<PartOfDay>, opens: u32) -> Option<NaiveTime> {
    if c.h > 23 || c.m > 59 {
        return None;
    }
    let pm = |h: u32| if h < 12 { h + 12 } else { h };
    let h = if c.exact || c.h > 12 {
        c.h
    } else {
        match (c.mer, part) {
            (Some(Meridiem::Am), _) => c.h,
            (Some(Meridiem::Pm), _) => pm(c.h),
            (Some(Meridiem::Day), _) if c.h <= 7 => pm(c.h),
            (Some(Meridiem::Day), _) => c.h,
            (Some(Meridiem::Night), _) if c.h == 12 => 0,
            (Some(Meridiem::Night), _) if c.h >= 9 => pm(c.h),
            (Some(Meridiem::Night), _) => c.h,
            (None, Some(PartOfDay::Morning)) => c.h,
            (None, Some(PartOfDay::Afternoon)) if c.h <= 7 => pm(c.h),
            (None, Some(PartOfDay::Afternoon)) => c.h,
            (None, Some(PartOfDay::Evening)) => pm(c.h),
            // "в 8" before a 9 o'clock opening is 20:00, but "в 8:30" is a morning arrival
            (None, None) if c.precise && c.h + 1 < opens => pm(c.h),
            (None, None) if !c.precise && c.h < opens => pm(c.h),
            (None, None) => c.h,
        }
    };
    NaiveTime::from_hms_opt(h, c.m, 0)
}

/// "с 10 до 12", "с 2 до 4" (14–16), "с 8 до 10" (as written: it reaches business hours),
/// "с 5 до 7 вечера" (the marker covers both ends).
fn resolve_range(
    mut a: Clock,
    b: Clock,
    part: Option<PartOfDay>,
    opens: u32,
) -> (Option<NaiveTime>, Option<NaiveTime>) {
    if a.mer.is_none() && !a.exact && b.mer.is_some_and(|m| m != Meridiem::Day) {
        a.mer = b.mer;
    }
    let unknown = |c: &Clock| c.mer.is_none() && !c.exact && c.h <= 12;
    if unknown(&a) && unknown(&b) && part.is_none() && a.h < opens && b.h >= opens && a.h < b.h {
        return (
            NaiveTime::from_hms_opt(a.h, a.m, 0),
            NaiveTime::from_hms_opt(b.h, b.m, 0),
        );
    }
    let ta = resolve_clock(a, part, opens);
    let mut tb = resolve_clock(b, part, opens);
    if let (Some(x), Some(y)) = (ta, tb)
        && y <= x
        && unknown(&b)
        && b.h < 12
    {
        tb = NaiveTime::from_hms_opt(b.h + 12, b.m, 0);
    }
    (ta, tb)
}

/// A second date said for the same slot agrees with the chosen one ("в пятницу 27.11").
fn agrees(
    check: DateSpec,
    date: NaiveDate,
    now: DateTime<Tz>,
    time: Option<NaiveTime>,
    part: Option<PartOfDay>,
) -> bool {
    match check {
        DateSpec::Weekday(wd, _) => date.weekday().num_days_from_monday() == u32::from(wd),
        DateSpec::Weekend(_) => date.weekday().num_days_from_monday() >= 5,
        _ => resolve_date(check, now, time, part).is_some_and(|(d, _)| d == date),
    }
}

/// Whether a weekday said on that same weekday can still mean today.
fn today_still_open(now: DateTime<Tz>, time: Option<NaiveTime>, part: Option<PartOfDay>) -> bool {
    let now_t = now.time();
    if let Some(t) = time {
        return t > now_t;
    }
    if let Some(p) = part {
        let end = p.range().1.hour().min(21).saturating_sub(1);
        return now_t.hour() < end;
    }
    now_t.hour() < SAME_DAY_CUTOFF_HOUR
}

fn add_days(d: NaiveDate, days: i64) -> Option<NaiveDate> {
    d.checked_add_signed(Duration::days(days))
}

/// A date spec → the date it means from `now`, never in the past; the flag marks an ambiguous
/// reading.
fn resolve_date(
    spec: DateSpec,
    now: DateTime<Tz>,
    time: Option<NaiveTime>,
    part: Option<PartOfDay>,
) -> Option<(NaiveDate, bool)> {
    let today = now.date_naive();
    let t = i64::from(today.weekday().num_days_from_monday());
    let open = || today_still_open(now, time, part);
    let at = |days: i64, amb: bool| add_days(today, days).map(|d| (d, amb));
    match spec {
        DateSpec::Offset(d) if d >= 0 => at(d, false),
        DateSpec::Offset(_) | DateSpec::Past | DateSpec::WeekStart(WeekSel::Prev) => None,
        DateSpec::Months(n) => today.checked_add_months(Months::new(n)).map(|d| (d, false)),
        DateSpec::Weekday(wd, sel) => {
            let wd = i64::from(wd);
            let ahead = (wd - t).rem_euclid(7);
            match sel {
                WeekSel::Nearest | WeekSel::This if ahead == 0 => {
                    at(if open() { 0 } else { 7 }, sel == WeekSel::Nearest)
                }
                WeekSel::Nearest => at(ahead, false),
                // "в этот понедельник" said on a Friday: the coming one, but say so
                WeekSel::This => at(ahead, wd < t),
                WeekSel::Next => {
                    let days = 7 - t + wd;
                    at(days, days != if ahead == 0 { 7 } else { ahead })
                }
                WeekSel::NextWeek => at(7 - t + wd, false),
                WeekSel::Prev => None,
            }
        }
        DateSpec::Weekend(WeekSel::Next) => at(7 - t + 5, t < 5),
        DateSpec::Weekend(WeekSel::NextWeek) => at(7 - t + 5, false),
        DateSpec::Weekend(_) => match t {
            5 => at(if open() { 0 } else { 1 }, false),
            6 => at(if open() { 0 } else { 6 }, false),
            _ => at(5 - t, false),
        },
        DateSpec::WeekStart(WeekSel::Next | WeekSel::NextWeek) => at(7 - t, false),
        DateSpec::WeekStart(_) => None,
        DateSpec::DayOfMonth(d) => day_of_month(today, d).map(|x| (x, false)),
        DateSpec::DayMonth(d, m, None) => (0..=8)
            .filter_map(|k| NaiveDate::from_ymd_opt(today.year() + k, m, d))
            .find(|x| *x >= today)
            .map(|x| (x, false)),
        DateSpec::DayMonth(d, m, Some(y)) => NaiveDate::from_ymd_opt(y, m, d)
            .filter(|x| *x >= today && y <= today.year() + 2)
            .map(|x| (x, false)),
    }
}

/// "на 20е": this month while the day is still ahead, else the next month that has that day.
fn day_of_month(today: NaiveDate, d: u32) -> Option<NaiveDate> {
    (0..13u32).find_map(|k| {
        let first = NaiveDate::from_ymd_opt(today.year(), today.month(), 1)?
            .checked_add_months(Months::new(k))?;
        NaiveDate::from_ymd_opt(first.year(), first.month(), d).filter(|x| *x >= today)
    })
}
