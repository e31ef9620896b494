//! Number-led forms: clocks ("15:00", "15.30", "15-00", "16 30", "1930", "10ч"), dates
//! ("25.12", "25/12", "25 декабря", "21го", "30 число") and lone numbers that a preposition or a
//! neighbouring date makes an hour ("в 3", "завтра 15"). Phones are marked first and skipped;
//! numbers glued inside words, prices, counts and durations are refused.

use super::{
    Clock, Ctx, DAY_SUFFIXES, DateSpec, Found, HOUR_SUFFIXES, Info, Piece, Scanner, TimeSpec, found,
};
use crate::nlu::datetime::lexicon::{Lex, Meridiem, Prep};
use crate::nlu::normalize::{Token, TokenKind};

impl Scanner<'_> {
    /// Everything that starts with a number token.
    pub(super) fn number(&self, i: usize, ctx: &Ctx) -> Option<Found> {
        let (n, len) = self.num(i)?;
        if self.glued(i) && i > 0 {
            let prev = &self.toks[i - 1];
            let inside_word = prev.is_word() && !matches!(self.lex(i - 1), Lex::Prep(_));
            let inside_number = prev.kind == TokenKind::Punct
                && (matches!(
                    prev.text.as_str(),
                    "." | ":" | "/" | "+" | "#" | "№" | "$" | ","
                ) || (prev.text == "-" && self.is_number(i.wrapping_sub(2))));
            if inside_word || inside_number {
                return None;
            }
        }
        let leading_zero = self.text(i).starts_with('0') && len == 2;
        let j = i + 1;
        // 15:00
        if self.punct(j, ":")
            && let Some((m, 2)) = self.num(j + 1)
            && len <= 2
        {
            let c = Clock::precise(n, m, leading_zero);
            let (c, end) = self.marker(c, self.skip_hours_word(j + 2));
            if self.blocks_after(end) {
                return None;
            }
            return self.clock_piece(ctx, c, end, 1.0);
        }
        // 25.12, 25.12.2026, 15.30
        if self.punct(j, ".") && self.glued(j) && self.glued(j + 1) && len <= 2 {
            return self.dotted(i, n, ctx);
        }
        // "в 10,30": minutes after a comma, only where an hour is expected
        if self.punct(j, ",")
            && self.glued(j)
            && self.glued(j + 1)
            && len <= 2
            && ctx.hour_context()
            && let Some((m, 2)) = self.num(j + 1)
            && !self.blocks_after(j + 2)
        {
            let (c, end) = self.marker(Clock::precise(n, m, false), j + 2);
            return self.clock_piece(ctx, c, end, 0.85);
        }
        // 25/12
        if self.punct(j, "/") && self.glued(j + 1) && len <= 2 {
            let (m, _) = self.num(j + 1)?;
            return self.numeric_date(n, m, j + 2);
        }
        // 15-00, 10-12, 1-го
        if self.punct(j, "-") && len <= 2 {
            if let Some((b, blen)) = self.num(j + 1) {
                return self.dashed(n, b, blen, j + 2, ctx);
            }
            if self.skip_suffix(j, DAY_SUFFIXES) > j {
                return self.day_number(n, j + 2, ctx);
            }
            if self.skip_suffix(j, HOUR_SUFFIXES) > j && ctx.hour_context() {
                let (c, end) = self.marker(Clock::new(n, 0), self.skip_hours_word(j + 2));
                return self.clock_piece(ctx, c, end, 0.85);
            }
            return None;
        }
        // glued suffixes: 20е, 21го, 10ч, 10ч30, к 4м
        if self.glued(j) && self.is_word(j) {
            let suffix = self.text(j);
            if len > 2 {
                return None;
            }
            if DAY_SUFFIXES.contains(&suffix) {
                return self.day_number(n, j + 1, ctx);
            }
            if self.lex(j) == Lex::HourUnit {
                return self.hours_then_minutes(n, j + 1, ctx);
            }
            if HOUR_SUFFIXES.contains(&suffix) && ctx.hour_context() {
                let (c, end) = self.marker(Clock::new(n, 0), self.skip_hours_word(j + 1));
                return self.clock_piece(ctx, c, end, 0.85);
            }
            return None;
        }
        if len == 4 {
            return self.four_digits(i, n, ctx);
        }
        if len > 2 {
            return None;
        }
        match self.lex(j) {
            Lex::Month(m) if !self.glued(j) => return self.day_month(n, u32::from(m), j + 1, 1.0),
            Lex::Chislo => return found(Piece::Date(DateSpec::DayOfMonth(n)), j + 1, 0.95),
            Lex::HourUnit => {
                if !ctx.hour_context() && !matches!(self.lex(j + 1), Lex::Marker(_)) {
                    return None; // "2 часа", "на 2 часа": a duration
                }
                return self.hours_then_minutes(n, j + 1, ctx);
            }
            Lex::Marker(m) => {
                // "в 2 дня" is 14:00, "2 дня" and "на 2 дня" are durations
                let bare_ok = m != Meridiem::Day || ctx.hour_context();
                if !bare_ok || n == 0 || n > 12 {
                    return None;
                }
                let (c, end) = self.marker(Clock::new(n, 0), j);
                return self.clock_piece(ctx, c, end, 0.95);
            }
            _ => {}
        }
        // 16 30
        if self.is_number(j)
            && !self.glued(j)
            && let Some((m, 2)) = self.num(j)
            && n <= 23
            && m <= 55
            && m % 5 == 0
            && !self.blocks_after(j + 1)
            && !self.punct(j + 1, "-")
            && (ctx.hour_context() || n >= 10 || self.follows_mention(ctx.start.unwrap_or(i)))
        {
            let (c, end) = self.marker(Clock::new(n, m), j + 1);
            return self.clock_piece(ctx, c, end, 0.85);
        }
        self.bare(i, n, ctx)
    }

    /// A lone number: an hour after a time preposition ("в 3", "после 6", "с 10 до 12"), or
    /// after a date ("завтра 15"); a day of the month after "на" when it cannot be an hour.
    fn bare(&self, i: usize, n: u32, ctx: &Ctx) -> Option<Found> {
        let j = i + 1;
        if ctx.amount || self.blocks_after(j) || self.counted_noun_after(n, j) {
            return None;
        }
        // "с 25 на 26 ноября", "с 21 на 28-е": the first day takes the month of the second
        if ctx.prep == Some(Prep::S)
            && (1..=31).contains(&n)
            && self.lex(j) == Lex::Prep(Prep::Na)
            && self.num(j + 1).is_some()
        {
            let k = self.skip_suffix(j + 2, DAY_SUFFIXES);
            match self.lex(k) {
                Lex::Month(m) => {
                    return found(
                        Piece::Date(DateSpec::DayMonth(n, u32::from(m), None)),
                        j,
                        0.9,
                    );
                }
                _ if k > j + 2 || self.lex(k) == Lex::Chislo => {
                    return found(Piece::Date(DateSpec::DayOfMonth(n)), j, 0.9);
                }
                _ => {}
            }
        }
        let start = ctx.start.unwrap_or(i);
        let conf = if ctx.hour_context() {
            0.85
        } else if ctx.prep == Some(Prep::Na) {
            0.65
        } else if ctx.prep.is_none() && self.follows_mention(start) {
            0.7
        } else {
            return None;
        };
        if n <= 23 {
            if n == 0 {
                return None;
            }
            let (c, end) = self.marker(Clock::new(n, 0), j);
            return self.clock_piece(ctx, c, end, conf);
        }
        let after_weekday = self.follows_mention(start)
            && self
                .mentions
                .last()
                .is_some_and(|m| matches!(m.piece, Piece::Date(DateSpec::Weekday(..))));
        if (ctx.prep == Some(Prep::Na) || after_weekday) && n <= 31 {
            return found(Piece::Date(DateSpec::DayOfMonth(n)), j, 0.6);
        }
        None
    }

    /// "в 2 слоя", "на 4 руки", "в 2 словах": a noun counted by the number, by its ending (the
    /// blocklist cannot name every noun). Verbs, particles and short adjectives pass.
    pub(super) fn counted_noun_after(&self, n: u32, j: usize) -> bool {
        const PASS: &[&str] = &[
            "пожалуйста",
            "тогда",
            "когда",
            "нельзя",
            "или",
            "хотя",
            "ага",
            "да",
            "сегодня",
        ];
        let w = self.text(j);
        if !self.is_word(j) || self.lex(j) != Lex::Other || PASS.contains(&w) {
            return false;
        }
        let verbish = ["ся", "сь", "ла", "ли", "на", "ны", "та", "ты"]
            .iter()
            .any(|e| w.ends_with(e));
        let oblique_plural = ["ах", "ях", "ами", "ями"].iter().any(|e| w.ends_with(e));
        let few = (2..=4).contains(&n)
            && w.chars().count() >= 4
            && !verbish
            && ['а', 'я', 'и', 'ы'].iter().any(|&e| w.ends_with(e));
        let many = n >= 5 && (w.ends_with("ов") || w.ends_with("ев"));
        oblique_plural || few || many
    }

    /// "1930", "0930": an hour and minutes in four digits, only after "в"/"к" or a date.
    fn four_digits(&self, i: usize, n: u32, ctx: &Ctx) -> Option<Found> {
        let (h, m) = (n / 100, n % 100);
        let start = ctx.start.unwrap_or(i);
        let context = matches!(ctx.prep, Some(Prep::V | Prep::K))
            || (ctx.prep.is_none() && self.follows_mention(start));
        if !context || h > 23 || m > 55 || m % 5 != 0 || self.blocks_after(i + 1) {
            return None;
        }
        let c = Clock {
            exact: true,
            ..Clock::new(h, m)
        };
        let (c, end) = self.marker(c, i + 1);
        self.clock_piece(ctx, c, end, 0.85)
    }

    /// After "10ч": optional "30", "30м", "30 минут", then an optional meridiem.
    fn hours_then_minutes(&self, h: u32, mut j: usize, ctx: &Ctx) -> Option<Found> {
        let mut c = Clock::new(h, 0);
        if let Some((m, _)) = self.num(j)
            && m <= 59
            && (self.lex(j + 1) == Lex::MinuteUnit || self.glued(j))
        {
            c.m = m;
            j += 1;
            if self.lex(j) == Lex::MinuteUnit {
                j += 1;
            }
        }
        let (c, end) = self.marker(c, j);
        self.clock_piece(ctx, c, end, 0.95)
    }

    /// Skips a stray "ч"/"часов" after a written clock ("в 15.00 ч").
    fn skip_hours_word(&self, i: usize) -> usize {
        if self.lex(i) == Lex::HourUnit {
            i + 1
        } else {
            i
        }
    }

    /// "25.12", "25.12.26", "25.12.2026", "15.30", "10.12" (date or time by context).
    fn dotted(&self, i: usize, a: u32, ctx: &Ctx) -> Option<Found> {
        let (b, blen) = self.num(i + 2)?;
        if self.punct(i + 3, ".") && self.glued(i + 3) && self.glued(i + 4) {
            let (y, ylen) = self.num(i + 4)?;
            let year = match ylen {
                2 => 2000 + y as i32,
                4 => y as i32,
                _ => return None,
            };
            if blen > 2 || !(1..=12).contains(&b) {
                return None;
            }
            return self.with_year(a, b, year, i + 5);
        }
        if blen != 2 {
            return None;
        }
        let date_ok = (1..=31).contains(&a) && (1..=12).contains(&b);
        let time_ok = a <= 23 && b <= 59;
        let as_time = match (date_ok, time_ok) {
            (false, false) => return None,
            (true, false) => false,
            (false, true) => true,
            // Day first is how dates are written: "05.12" is the 5th of December. It is a clock
            // only where an hour is expected ("в 9.10", "завтра 9.10", "9.10 утра"), with
            // minutes a clock is set to and an hour written without a leading zero, and never
            // beside a written clock ("в 10.12 в 15:00", "на 10.12, в 15:00").
            (true, true) => {
                let timeish = ctx.hour_context()
                    || matches!(self.lex(i + 3), Lex::Marker(_) | Lex::HourUnit)
                    || self.follows_mention(ctx.start.unwrap_or(i));
                timeish
                    && b % 5 == 0
                    && !self.text(i).starts_with('0')
                    && !self.colon_clock
                    && !self.clock_follows(i + 3)
            }
        };
        if as_time {
            let c = Clock::precise(a, b, self.text(i).starts_with('0'));
            let (c, end) = self.marker(c, self.skip_hours_word(i + 3));
            if self.blocks_after(end) {
                return None;
            }
            self.clock_piece(ctx, c, end, 0.95)
        } else {
            self.numeric_date(a, b, i + 3)
        }
    }

    /// A clock comes next ("10.12 в 15:00"), so the number before it was a date.
    fn clock_follows(&self, mut i: usize) -> bool {
        if matches!(self.lex(i), Lex::Prep(Prep::V | Prep::Na | Prep::K)) {
            i += 1;
        }
        self.is_number(i)
            && (self.punct(i + 1, ":") || self.punct(i + 1, ".") || self.punct(i + 1, "-"))
    }

    fn numeric_date(&self, d: u32, m: u32, end: usize) -> Option<Found> {
        let blocked = !self.is_number(end) && self.blocks_after(end);
        if !(1..=31).contains(&d) || !(1..=12).contains(&m) || blocked {
            return None;
        }
        found(Piece::Date(DateSpec::DayMonth(d, m, None)), end, 1.0)
    }

    fn with_year(&self, d: u32, m: u32, year: i32, end: usize) -> Option<Found> {
        if !(1..=31).contains(&d) {
            return None;
        }
        let end = if self.lex(end) == Lex::Year {
            end + 1
        } else {
            end
        };
        found(Piece::Date(DateSpec::DayMonth(d, m, Some(year))), end, 1.0)
    }

    /// "25 декабря", "25 декабря 2026".
    pub(super) fn day_month(&self, d: u32, m: u32, end: usize, conf: f32) -> Option<Found> {
        if !(1..=31).contains(&d) {
            return None;
        }
        if let Some((y, 4)) = self.num(end)
            && (2000..=2100).contains(&y)
        {
            return self.with_year(d, m, y as i32, end + 1);
        }
        found(Piece::Date(DateSpec::DayMonth(d, m, None)), end, conf)
    }

    /// "21го", "1-го", "20е": a day of the month, or with a month after it.
    fn day_number(&self, d: u32, end: usize, ctx: &Ctx) -> Option<Found> {
        match self.lex(end) {
            Lex::Month(m) => return self.day_month(d, u32::from(m), end + 1, 1.0),
            Lex::Chislo => return found(Piece::Date(DateSpec::DayOfMonth(d)), end + 1, 0.95),
            // "к 5-ому часу", "в 10-м часу": leave alone
            Lex::HourUnit => return None,
            _ => {}
        }
        if !(1..=31).contains(&d) || self.blocks_after(end) {
            return None;
        }
        let _ = ctx;
        found(Piece::Date(DateSpec::DayOfMonth(d)), end, 0.9)
    }

    /// "15-00", "15-30" (a clock), "10-12", "4-5" (a range after a time preposition).
    fn dashed(&self, a: u32, b: u32, blen: usize, end: usize, ctx: &Ctx) -> Option<Found> {
        if a > 23 || self.blocks_after(end) {
            return None;
        }
        let minutes = blen == 2
            && b <= 59
            && (self.text(end - 1).starts_with('0')
                || matches!(b, 15 | 30 | 45)
                || b <= a
                || b > 23);
        if minutes {
            let c = Clock::precise(a, b, self.text(end - 3).starts_with('0'));
            let (c, e) = self.marker(c, self.skip_hours_word(end));
            return self.clock_piece(ctx, c, e, 0.9);
        }
        if b <= 23 && ctx.hour_context() {
            let first = Clock::new(a, 0);
            let (second, e) = self.marker(Clock::new(b, 0), self.skip_hours_word(end));
            let first = Clock {
                mer: second.mer,
                ..first
            };
            return found(Piece::Time(TimeSpec::Range(first, second)), e, 0.8);
        }
        None
    }
}

/// Marks numbers that belong to a phone number (10+ digits in a run of numbers, spaces, dashes
/// and brackets, or 7+ with a bracket, a plus or a 3-digit group): they are never dates or times.
pub(super) fn mark_phones(toks: &[Token], info: &mut [Info]) {
    let phoneish = |t: &Token| {
        t.is_number()
            || (t.kind == TokenKind::Punct && matches!(t.text.as_str(), "+" | "-" | "(" | ")"))
    };
    let mut i = 0;
    while i < toks.len() {
        if !phoneish(&toks[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let (mut digits, mut marked, mut long_group) = (0usize, false, false);
        while i < toks.len() && phoneish(&toks[i]) {
            let t = &toks[i];
            if t.is_number() {
                digits += t.text.len();
                long_group |= t.text.len() >= 3 && i > start;
            } else {
                marked |= t.text == "+" || t.text == "(";
            }
            i += 1;
        }
        if digits >= 10 || (digits >= 7 && (marked || long_group)) {
            for x in &mut info[start..i] {
                x.phone = true;
            }
        }
    }
}
