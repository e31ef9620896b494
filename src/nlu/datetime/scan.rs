//! The grammar: one left-to-right pass over the normalised tokens that turns every date or time
//! expression into a `Mention` (an unresolved date or time piece, the preposition in front of
//! it and the tokens it covers). Nothing here knows the calendar; `resolve` does the arithmetic.
//! Numbers are read only in a date/time shape or after a word that makes them one, so phones,
//! prices, counts and durations stay untouched.

use super::lexicon::{Lex, Lexicon, Meridiem, Prep, WeekSel, blocks_number, blocks_number_symbol};
use crate::domain::PartOfDay;
use crate::nlu::normalize::{Token, TokenKind};
use std::ops::Range;

mod numbers;

/// A clock reading as written: "в 3" is 3:00 with no meridiem until `resolve` applies the
/// business-hours rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Clock {
    pub h: u32,
    pub m: u32,
    pub mer: Option<Meridiem>,
    /// Written in 24-hour form ("09:00", "15:00"): no business-hours guess.
    pub exact: bool,
    /// Written with minutes ("8:30", "8.00"): an hour before opening still reads as morning.
    pub precise: bool,
}

impl Clock {
    fn new(h: u32, m: u32) -> Clock {
        Clock {
            h,
            m,
            mer: None,
            exact: h >= 13 || h == 0,
            precise: false,
        }
    }

    /// A clock written with minutes; a leading zero ("09:30") makes it 24-hour.
    fn precise(h: u32, m: u32, leading_zero: bool) -> Clock {
        let c = Clock::new(h, m);
        Clock {
            exact: c.exact || leading_zero,
            precise: true,
            ..c
        }
    }

    /// "пол шестого" → 5:30, "без пятнадцати три" → 2:45: `minutes` before the hour `hour`.
    fn before(hour: u32, minutes: u32) -> Option<Clock> {
        if !(1..=12).contains(&hour) || !(1..60).contains(&minutes) {
            return None;
        }
        let h = if hour == 1 { 12 } else { hour - 1 };
        Some(Clock::new(h, 60 - minutes))
    }
}

/// A date as said, before calendar arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DateSpec {
    /// Days from today ("завтра", "через 2 дня").
    Offset(i64),
    /// Calendar months from today ("через месяц").
    Months(u32),
    Weekday(u8, WeekSel),
    Weekend(WeekSel),
    /// "на следующей неделе": the Monday of that week.
    WeekStart(WeekSel),
    DayOfMonth(u32),
    DayMonth(u32, u32, Option<i32>),
    /// "вчера", "в прошлую пятницу": not a wanted slot.
    Past,
}

/// A time as said, before the business-hours rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimeSpec {
    At(Clock),
    After(Clock),
    Until(Clock),
    Range(Clock, Clock),
    Part(PartOfDay),
    /// "до обеда": morning, until noon.
    BeforeLunch,
    /// "в обед".
    Lunch,
    /// "через 2 часа": minutes from now.
    In(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Piece {
    Date(DateSpec),
    Time(TimeSpec),
    /// Hours to add to convert the stated zone to the business zone ("по москве" → +4).
    Zone(i64),
    /// Words read and set aside: they look like a time but are not a slot ("от 2 до 3 часов").
    Nothing,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Mention {
    pub piece: Piece,
    pub range: Range<usize>,
    pub prep: Option<Prep>,
    /// Preceded by "не" ("не в пятницу, а в субботу"), or a slot the client cannot make.
    pub neg: bool,
    /// Said with "не смогу"/"не успею"/"не получится" ("сегодня не смогу", "не успею к 12").
    pub gave_up: bool,
    /// Said of a booking the client already has ("я записана на четверг", "у меня запись на
    /// среду").
    pub booked: bool,
    pub conf: f32,
}

/// What a word-level rule found: the piece, the first token after it, and how sure it is.
struct Found {
    piece: Piece,
    end: usize,
    conf: f32,
}

fn found(piece: Piece, end: usize, conf: f32) -> Option<Found> {
    Some(Found { piece, end, conf })
}

/// Modifiers seen right before the expression that is being read.
#[derive(Debug, Default, Clone, Copy)]
struct Ctx {
    start: Option<usize>,
    prep: Option<Prep>,
    neg: bool,
    approx: bool,
    closer: bool,
    later: bool,
    earlier: bool,
    sel: Option<WeekSel>,
    stop: bool,
    /// After "минут на": the number is an amount.
    amount: bool,
}

impl Ctx {
    /// A bare number after this context is an hour ("в 3", "к 5", "часика в 4", "после 6").
    fn hour_context(&self) -> bool {
        self.approx
            || self.closer
            || self.later
            || self.earlier
            || matches!(
                self.prep,
                Some(
                    Prep::V
                        | Prep::K
                        | Prep::Okolo
                        | Prep::Posle
                        | Prep::Do
                        | Prep::S
                        | Prep::Vmesto
                        | Prep::Ot
                        | Prep::Mezhdu
                )
            )
    }

    fn week(&self) -> WeekSel {
        self.sel.unwrap_or(WeekSel::Nearest)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Info {
    lex: Lex,
    typo: bool,
    phone: bool,
}

pub(super) struct Scanner<'a> {
    toks: &'a [Token],
    info: Vec<Info>,
    pub mentions: Vec<Mention>,
    /// The message asks to move a booking ("перенести", "поменять").
    pub has_move: bool,
    /// The message has a clock written with a colon ("15:00"): a day-first "10.12" beside it is
    /// a date, never a second clock.
    colon_clock: bool,
    /// The message adds a visit ("ещё", "дополнительно", "тоже"): a booking it names stays
    /// booked ("я записана на четверг, можно ещё на субботу?").
    pub adds: bool,
}

/// What the clause being read says about the slots named in it, until the clause ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// "не смогу", "не успею к 12": the client gives the slot up.
    GaveUp,
    /// "я записана на четверг в 11": the booking the client already has.
    Booked,
}

/// Verbs after "не" that give up the slot just named.
const CANNOT: &[&str] = &[
    "смогу",
    "сможем",
    "могу",
    "можем",
    "получится",
    "получиться",
    "выйдет",
    "успеваю",
    "успею",
    "успеем",
    "приду",
    "придем",
    "подойду",
    "удобно",
    "подходит",
    "подойдет",
    "устраивает",
];

/// Verbs of coming that may follow a `CANNOT` verb ("не смогу прийти в четверг").
const COME: &[&str] = &[
    "прийти",
    "приехать",
    "подойти",
    "зайти",
    "быть",
    "успеть",
    "попасть",
];

/// Words that say the slots after them are a booking the client has ("я записана на четверг").
const BOOKED: &[&str] = &[
    "записана",
    "записан",
    "записаны",
    "записалась",
    "записался",
    "записались",
    "записывалась",
    "записывался",
    "записывались",
];

/// Words that start a new clause: a slot after them is no longer the one given up or booked
/// ("не смогу в среду, давайте в четверг", "записана на 11, а можно на 14").
const CLAUSE_START: &[&str] = &[
    "а",
    "но",
    "давайте",
    "давай",
    "можно",
    "лучше",
    "хочу",
    "или",
];

const DAY_SUFFIXES: &[&str] = &["е", "го", "ого", "ое", "й", "ье", "его", "му", "ому"];
const HOUR_SUFFIXES: &[&str] = &["м", "ми", "ти", "ть", "ем"];

impl<'a> Scanner<'a> {
    pub(super) fn new(lexicon: &Lexicon, toks: &'a [Token]) -> Scanner<'a> {
        let mut info: Vec<Info> = toks
            .iter()
            .map(|t| {
                if t.is_word() {
                    let (lex, typo) = lexicon.classify(&t.text);
                    Info {
                        lex,
                        typo,
                        phone: false,
                    }
                } else {
                    Info::default()
                }
            })
            .collect();
        numbers::mark_phones(toks, &mut info);
        let has_move = info.iter().any(|x| x.lex == Lex::Move);
        let colon_clock = toks.windows(3).any(|w| {
            w[0].is_number() && w[1].is_punct(':') && w[2].is_number() && w[2].text.len() == 2
        });
        let adds = toks.iter().enumerate().any(|(i, t)| match t.text.as_str() {
            "еще" | "дополнительно" => true,
            "тоже" => !toks
                .get(i + 1)
                .is_some_and(|n| matches!(n.text.as_str(), "время" | "самое" | "час")),
            _ => false,
        });
        Scanner {
            toks,
            info,
            mentions: Vec::new(),
            has_move,
            colon_clock,
            adds,
        }
    }

    /// Where the clause of the claim in force ends: at clause punctuation, a word that starts a
    /// new clause, or a move verb.
    fn ends_claim(&self, i: usize) -> bool {
        let Some(t) = self.toks.get(i) else {
            return true;
        };
        match t.kind {
            TokenKind::Punct => matches!(t.text.as_str(), "," | "." | "!" | "?" | ";"),
            TokenKind::Word => CLAUSE_START.contains(&t.text.as_str()) || self.lex(i) == Lex::Move,
            TokenKind::Number => false,
        }
    }

    /// The claim a word at `i` starts, and how many words it takes: "не смогу [прийти]",
    /// "записана", "у меня [есть] запись".
    fn claim_at(&self, i: usize) -> Option<(Claim, usize)> {
        let text = self.text(i);
        if self.lex(i) == Lex::Not && CANNOT.contains(&self.text(i + 1)) {
            let come = usize::from(COME.contains(&self.text(i + 2)));
            return Some((Claim::GaveUp, 2 + come));
        }
        if BOOKED.contains(&text) {
            return Some((Claim::Booked, 1));
        }
        let after_me = |j: usize| {
            self.text(j) == "меня"
                || (self.text(j) == "есть" && self.text(j.wrapping_sub(1)) == "меня")
        };
        if text == "запись" && i > 0 && after_me(i - 1) {
            return Some((Claim::Booked, 1));
        }
        None
    }

    pub(super) fn run(&mut self) {
        let n = self.toks.len();
        let mut ctx = Ctx::default();
        let mut claim: Option<Claim> = None;
        let mut i = 0;
        while i < n {
            if self.ends_claim(i) {
                claim = None;
            }
            if let Some((c, len)) = self.claim_at(i) {
                claim = Some(c);
                // "не смогу раньше 6" is "после 6", as "не раньше 6" is
                ctx = Ctx {
                    neg: c == Claim::GaveUp,
                    ..Ctx::default()
                };
                i += len;
                continue;
            }
            if let Some(f) = self.mention_at(i, &ctx) {
                let start = ctx.start.unwrap_or(i);
                let end = f.end.clamp(i + 1, n);
                let typo = self.info[start..end].iter().any(|x| x.typo);
                // "акция до 30 ноября", "по пятницу": a deadline or a range end, not a slot
                let deadline = matches!(f.piece, Piece::Date(_))
                    && matches!(ctx.prep, Some(Prep::Do | Prep::Po));
                if deadline || f.piece == Piece::Nothing {
                    ctx = Ctx::default();
                    i = end;
                    continue;
                }
                // "не смогу раньше 6", "не успею до обеда" set a bound; they give nothing up
                let bound = ctx.later
                    || ctx.earlier
                    || matches!(
                        f.piece,
                        Piece::Time(
                            TimeSpec::After(_) | TimeSpec::Until(_) | TimeSpec::BeforeLunch
                        )
                    );
                let gave_up = claim == Some(Claim::GaveUp) && !bound;
                self.mentions.push(Mention {
                    piece: f.piece,
                    range: start..end,
                    prep: ctx.prep,
                    neg: (ctx.neg && !ctx.later && !ctx.earlier) || gave_up,
                    gave_up,
                    booked: claim == Some(Claim::Booked),
                    conf: if typo { f.conf * 0.85 } else { f.conf },
                });
                // "завтра не смогу, давайте в пятницу": the first slot is the one given up
                if self.lex(end) == Lex::Not
                    && CANNOT.contains(&self.text(end + 1))
                    && let Some(m) = self.mentions.last_mut()
                {
                    m.neg = true;
                    m.gave_up = !bound;
                }
                ctx = Ctx::default();
                i = end;
                continue;
            }
            let mut step = 1;
            let keep = match self.lex(i) {
                Lex::Prep(p) => {
                    ctx.prep = Some(p);
                    true
                }
                Lex::Not => {
                    ctx.neg = true;
                    true
                }
                Lex::Approx => {
                    // "где-то"
                    if self.punct(i + 1, "-") && self.text(i + 2) == "то" {
                        step = 3;
                    }
                    ctx.approx = true;
                    true
                }
                Lex::HourUnit if matches!(self.lex(i + 1), Lex::Prep(_) | Lex::Approx) => {
                    ctx.approx = true;
                    true
                }
                Lex::Closer => {
                    ctx.closer = true;
                    true
                }
                Lex::Later => {
                    ctx.later = true;
                    true
                }
                Lex::Earlier => {
                    ctx.earlier = true;
                    true
                }
                Lex::Sel(s) => {
                    ctx.sel = Some(s);
                    true
                }
                Lex::Stop => {
                    ctx.stop = true;
                    true
                }
                // "минут на 10 опоздаю": an amount, not a clock
                Lex::MinuteUnit if matches!(self.lex(i + 1), Lex::Prep(_)) => {
                    ctx.amount = true;
                    true
                }
                _ => false,
            };
            if keep {
                ctx.start.get_or_insert(i);
            } else {
                ctx = Ctx::default();
            }
            i += step;
        }
    }

    // ---- token access (out of range reads as nothing) ----

    fn lex(&self, i: usize) -> Lex {
        self.info.get(i).map_or(Lex::Other, |x| x.lex)
    }

    fn text(&self, i: usize) -> &str {
        self.toks.get(i).map_or("", |t| t.text.as_str())
    }

    fn punct(&self, i: usize, p: &str) -> bool {
        self.toks
            .get(i)
            .is_some_and(|t| t.kind == TokenKind::Punct && t.text == p)
    }

    fn glued(&self, i: usize) -> bool {
        self.toks.get(i).is_some_and(|t| t.glued)
    }

    /// Value and digit count of a number token that is not part of a phone.
    fn num(&self, i: usize) -> Option<(u32, usize)> {
        let t = self.toks.get(i)?;
        if self.info[i].phone || t.text.len() > 4 {
            return None;
        }
        Some((t.number()?, t.text.len()))
    }

    fn is_number(&self, i: usize) -> bool {
        self.toks.get(i).is_some_and(|t| t.is_number())
    }

    fn is_word(&self, i: usize) -> bool {
        self.toks.get(i).is_some_and(|t| t.is_word())
    }

    /// The token at `i` turns the number before it into a price, count, percentage, year or
    /// duration, or continues a longer number ("2 000").
    fn blocks_after(&self, i: usize) -> bool {
        let Some(t) = self.toks.get(i) else {
            return false;
        };
        match t.kind {
            TokenKind::Number => true,
            TokenKind::Punct => blocks_number_symbol(&t.text),
            // A one-letter word before another number is a preposition ("25.11 к 11"), not a
            // unit ("2к").
            TokenKind::Word if t.text.chars().count() == 1 && !t.glued && self.is_number(i + 1) => {
                false
            }
            TokenKind::Word => {
                matches!(
                    self.lex(i),
                    Lex::Year | Lex::Week | Lex::DayUnit | Lex::MonthUnit | Lex::MinuteUnit
                ) || blocks_number(&t.text)
            }
        }
    }

    /// A mention ends right before `i` (so "завтра 15" reads 15 as the hour).
    fn follows_mention(&self, i: usize) -> bool {
        self.mentions.last().is_some_and(|m| m.range.end == i)
    }

    // ---- the grammar ----

    fn mention_at(&self, i: usize, ctx: &Ctx) -> Option<Found> {
        if ctx.prep == Some(Prep::Cherez) {
            return self.relative(i);
        }
        if self.is_number(i) {
            return self.number(i, ctx);
        }
        let lex = self.lex(i);
        let prep = ctx.prep;
        match lex {
            Lex::RelDay(d) => match prep {
                Some(Prep::Do) => None,
                // "после завтра" written in two words is послезавтра
                Some(Prep::Posle) if d == 1 => found(Piece::Date(DateSpec::Offset(2)), i + 1, 0.9),
                _ if d < 0 => found(Piece::Date(DateSpec::Past), i + 1, 1.0),
                _ => found(Piece::Date(DateSpec::Offset(i64::from(d))), i + 1, 1.0),
            },
            Lex::Now if prep.is_none() || prep == Some(Prep::Na) => {
                found(Piece::Date(DateSpec::Offset(0)), i + 1, 0.8)
            }
            Lex::Weekday(wd) => {
                if ctx.stop || matches!(prep, Some(Prep::Do | Prep::K | Prep::Posle | Prep::Po)) {
                    return None;
                }
                let spec = match ctx.week() {
                    WeekSel::Prev => DateSpec::Past,
                    sel => DateSpec::Weekday(wd, sel),
                };
                found(Piece::Date(spec), i + 1, 0.95)
            }
            Lex::Weekend
                if !ctx.stop && !matches!(prep, Some(Prep::Do | Prep::Posle | Prep::K)) =>
            {
                let spec = match ctx.week() {
                    WeekSel::Prev => DateSpec::Past,
                    sel => DateSpec::Weekend(sel),
                };
                found(Piece::Date(spec), i + 1, 0.9)
            }
            Lex::Week if ctx.stop => None,
            Lex::Week => match ctx.sel {
                Some(WeekSel::Prev) => found(Piece::Date(DateSpec::Past), i + 1, 1.0),
                Some(sel) if matches!(prep, None | Some(Prep::Na | Prep::V)) => {
                    found(Piece::Date(DateSpec::WeekStart(sel)), i + 1, 0.85)
                }
                _ => None,
            },
            Lex::Part(p) if prep != Some(Prep::Do) => {
                found(Piece::Time(TimeSpec::Part(p)), i + 1, 0.9)
            }
            // "на вечер", "сегодняшний вечер"
            Lex::PartNoun(p) if prep == Some(Prep::Na) || self.follows_mention(i) => {
                found(Piece::Time(TimeSpec::Part(p)), i + 1, 0.85)
            }
            Lex::Marker(m) if matches!(prep, Some(Prep::S | Prep::K)) => {
                let part = match m {
                    Meridiem::Am => PartOfDay::Morning,
                    Meridiem::Pm => PartOfDay::Evening,
                    _ => return None,
                };
                found(Piece::Time(TimeSpec::Part(part)), i + 1, 0.9)
            }
            Lex::Lunch => {
                let spec = match prep? {
                    Prep::Posle | Prep::S => TimeSpec::Part(PartOfDay::Afternoon),
                    Prep::Do => TimeSpec::BeforeLunch,
                    Prep::V | Prep::Na | Prep::K | Prep::Okolo => TimeSpec::Lunch,
                    _ => return None,
                };
                found(Piece::Time(spec), i + 1, 0.85)
            }
            Lex::Work if prep == Some(Prep::Posle) => {
                found(Piece::Time(TimeSpec::Part(PartOfDay::Evening)), i + 1, 0.8)
            }
            Lex::Noon if prep.is_some() => {
                let noon = Clock {
                    exact: true,
                    ..Clock::new(12, 0)
                };
                self.clock_piece(ctx, noon, i + 1, 0.95)
            }
            Lex::Half => {
                let (hour, end) = self.ordinal_hour(i + 1)?;
                self.clock_piece(ctx, Clock::before(hour, 30)?, end, 0.9)
            }
            Lex::HalfOrd(n) => self.clock_piece(ctx, Clock::before(u32::from(n), 30)?, i + 1, 0.9),
            Lex::Quarter => {
                let (hour, end) = self.ordinal_hour(i + 1)?;
                self.clock_piece(ctx, Clock::before(hour, 45)?, end, 0.9)
            }
            Lex::Without => self.without(i + 1, ctx),
            Lex::Card(20 | 30) | Lex::Ord(_) => self
                .ordinal_date(i, ctx)
                .or_else(|| self.half_of_day(i))
                .or_else(|| self.word_hour(i, ctx)),
            Lex::Card(_) => self.word_hour(i, ctx),
            Lex::HourUnit if matches!(self.text(i), "час" | "часу") && ctx.hour_context() => {
                let (c, end) = self.marker(Clock::new(1, 0), i + 1);
                self.clock_piece(ctx, c, end, 0.85)
            }
            Lex::Msk if prep == Some(Prep::Po) || self.text(i) == "мск" => {
                let end = if self.text(i + 1) == "времени" {
                    i + 2
                } else {
                    i + 1
                };
                found(Piece::Zone(4), end, 1.0)
            }
            Lex::Local if prep == Some(Prep::Po) => {
                let end = if self.text(i + 1) == "времени" {
                    i + 2
                } else {
                    i + 1
                };
                found(Piece::Zone(0), end, 1.0)
            }
            _ => None,
        }
    }

    /// "через 2 дня", "через неделю", "через пару дней", "через 2 часа", "через полчаса".
    fn relative(&self, i: usize) -> Option<Found> {
        let (count, unit_at) = match self.lex(i) {
            Lex::Card(n) => (i64::from(n), i + 1),
            Lex::Couple => (2, i + 1),
            _ if self.is_number(i) => (i64::from(self.num(i)?.0), i + 1),
            _ => (1, i),
        };
        if !(1..=400).contains(&count) {
            return None;
        }
        let unit = self.lex(unit_at);
        let end = unit_at + 1;
        let (piece, conf) = match unit {
            // "через день" is the day after tomorrow in speech
            Lex::DayUnit | Lex::Marker(Meridiem::Day) if unit_at == i => {
                (Piece::Date(DateSpec::Offset(2)), 0.8)
            }
            Lex::DayUnit | Lex::Marker(Meridiem::Day) => {
                (Piece::Date(DateSpec::Offset(count)), 0.95)
            }
            Lex::Week => (Piece::Date(DateSpec::Offset(count * 7)), 0.95),
            Lex::MonthUnit => (Piece::Date(DateSpec::Months(count as u32)), 0.9),
            Lex::HourUnit => (Piece::Time(TimeSpec::In(count * 60)), 0.9),
            Lex::MinuteUnit => (Piece::Time(TimeSpec::In(count)), 0.9),
            Lex::HalfHour if unit_at == i => (Piece::Time(TimeSpec::In(30)), 0.9),
            _ => return None,
        };
        found(piece, end, conf)
    }

    /// An hour written as an ordinal after "пол"/"половина"/"четверть": "шестого", "6", "6-го".
    fn ordinal_hour(&self, mut i: usize) -> Option<(u32, usize)> {
        if self.punct(i, "-") {
            i += 1;
        }
        if let Lex::Ord(n) = self.lex(i) {
            return (1..=12).contains(&n).then_some((u32::from(n), i + 1));
        }
        let (n, _) = self.num(i)?;
        if !(1..=12).contains(&n) {
            return None;
        }
        Some((n, self.skip_suffix(i + 1, DAY_SUFFIXES)))
    }

    /// After a number: skip a glued ordinal suffix ("6го", "6-го") if there is one.
    fn skip_suffix(&self, i: usize, suffixes: &[&str]) -> usize {
        if self.glued(i) && self.is_word(i) && suffixes.contains(&self.text(i)) {
            return i + 1;
        }
        if self.punct(i, "-")
            && self.glued(i + 1)
            && self.is_word(i + 1)
            && suffixes.contains(&self.text(i + 1))
        {
            return i + 2;
        }
        i
    }

    /// "без пятнадцати три", "без четверти пять", "без 10 6", "без пяти час".
    fn without(&self, i: usize, ctx: &Ctx) -> Option<Found> {
        let (minutes, mut j) = match self.lex(i) {
            Lex::Quarter => (15, i + 1),
            Lex::Card(20) if self.lex(i + 1) == Lex::Card(5) => (25, i + 2),
            Lex::Card(n) if matches!(n, 5 | 10 | 15 | 20) => (u32::from(n), i + 1),
            _ => {
                let (n, _) = self.num(i)?;
                (n, i + 1)
            }
        };
        if self.lex(j) == Lex::MinuteUnit {
            j += 1;
        }
        let (hour, end) = match self.lex(j) {
            Lex::Card(n) if n <= 12 => (u32::from(n), j + 1),
            Lex::HourUnit if self.text(j) == "час" => (1, j + 1),
            _ => {
                let (n, _) = self.num(j)?;
                (n, j + 1)
            }
        };
        if minutes > 30 {
            return None;
        }
        self.clock_piece(ctx, Clock::before(hour, minutes)?, end, 0.9)
    }

    /// "первого декабря", "двадцать пятого числа", "на первое".
    fn ordinal_date(&self, i: usize, ctx: &Ctx) -> Option<Found> {
        let (day, j) = match (self.lex(i), self.lex(i + 1)) {
            (Lex::Card(tens), Lex::Ord(k)) if k <= 9 => (u32::from(tens) + u32::from(k), i + 2),
            (Lex::Ord(n), _) => (u32::from(n), i + 1),
            _ => return None,
        };
        match self.lex(j) {
            Lex::Month(m) => self.day_month(day, u32::from(m), j + 1, 0.95),
            Lex::Chislo => found(Piece::Date(DateSpec::DayOfMonth(day)), j + 1, 0.9),
            _ if ctx.prep == Some(Prep::Na) && self.text(j - 1).ends_with('е') => {
                found(Piece::Date(DateSpec::DayOfMonth(day)), j, 0.7)
            }
            _ => None,
        }
    }

    /// "в первой половине дня", "во второй половине дня".
    fn half_of_day(&self, i: usize) -> Option<Found> {
        let part = match self.lex(i) {
            Lex::Ord(1) => PartOfDay::Morning,
            Lex::Ord(2) => PartOfDay::Afternoon,
            _ => return None,
        };
        if self.lex(i + 1) != Lex::Half {
            return None;
        }
        match self.lex(i + 2) {
            Lex::Marker(Meridiem::Day) => found(Piece::Time(TimeSpec::Part(part)), i + 3, 0.9),
            // "в первой половине декабря" is not a part of day
            Lex::Month(_) | Lex::Week | Lex::MonthUnit => None,
            _ => found(Piece::Time(TimeSpec::Part(part)), i + 2, 0.8),
        }
    }

    /// "в три", "к пяти часам", "в пять тридцать".
    fn word_hour(&self, i: usize, ctx: &Ctx) -> Option<Found> {
        let Lex::Card(h) = self.lex(i) else {
            return None;
        };
        if !(1..=12).contains(&h)
            || !ctx.hour_context()
            || self.blocks_after(i + 1)
            || self.counted_noun_after(u32::from(h), i + 1)
        {
            return None;
        }
        let mut c = Clock::new(u32::from(h), 0);
        let mut j = i + 1;
        if self.lex(j) == Lex::HourUnit {
            j += 1;
        }
        if let Lex::Card(m @ (15 | 30)) = self.lex(j) {
            c.m = u32::from(m);
            j += 1;
        }
        let (c, end) = self.marker(c, j);
        self.clock_piece(ctx, c, end, 0.85)
    }

    /// An optional "утра"/"дня"/"вечера"/"ночи" after an hour of 12 or less.
    fn marker(&self, mut c: Clock, i: usize) -> (Clock, usize) {
        if let Lex::Marker(m) = self.lex(i)
            && c.h <= 12
        {
            c.mer = Some(m);
            return (c, i + 1);
        }
        (c, i)
    }

    /// A clock read, then: a range ("с 10 до 12", "15:00-16:00") or the bound its preposition
    /// makes ("после 6", "до 12").
    fn clock_piece(&self, ctx: &Ctx, c: Clock, end: usize, conf: f32) -> Option<Found> {
        if c.h > 23 || c.m > 59 {
            return None;
        }
        let ranged = self.punct(end, "-")
            || self.punct(end, "–")
            || (self.lex(end) == Lex::Prep(Prep::Do) && ctx.prep != Some(Prep::Do))
            || (self.lex(end) == Lex::And && ctx.prep == Some(Prep::Mezhdu));
        if ranged
            && !matches!(ctx.prep, Some(Prep::Do | Prep::Posle))
            && let Some((c2, end2)) = self.simple_clock(end + 1)
        {
            if ctx.prep == Some(Prep::Ot) && self.lex(end2 - 1) == Lex::HourUnit {
                return found(Piece::Nothing, end2, 0.0); // "от 2 до 3 часов": a duration
            }
            return found(Piece::Time(TimeSpec::Range(c, c2)), end2, conf);
        }
        if matches!(ctx.prep, Some(Prep::Ot | Prep::Mezhdu)) {
            return None;
        }
        // "не раньше 10" is a lower bound, "не позже 12" an upper one
        let (later, earlier) = if ctx.neg {
            (ctx.earlier, ctx.later)
        } else {
            (ctx.later, ctx.earlier)
        };
        let spec = if ctx.prep == Some(Prep::Posle) || later {
            TimeSpec::After(c)
        } else if ctx.prep == Some(Prep::Do) || earlier {
            TimeSpec::Until(c)
        } else {
            TimeSpec::At(c)
        };
        found(Piece::Time(spec), end, conf)
    }

    /// The second clock of a range: "12", "12:00", "двух", "12 часов", "7 вечера".
    fn simple_clock(&self, i: usize) -> Option<(Clock, usize)> {
        let (c, j) = match self.lex(i) {
            Lex::Card(h) if (1..=12).contains(&h) => (Clock::new(u32::from(h), 0), i + 1),
            Lex::HourUnit if self.text(i) == "часу" => (Clock::new(1, 0), i + 1),
            Lex::Noon => (
                Clock {
                    exact: true,
                    ..Clock::new(12, 0)
                },
                i + 1,
            ),
            _ => {
                let (h, len) = self.num(i)?;
                if len > 2 || h > 24 {
                    return None;
                }
                if (self.punct(i + 1, ":") || self.punct(i + 1, "."))
                    && let Some((m, 2)) = self.num(i + 2)
                {
                    let c = Clock::precise(h % 24, m, self.text(i).starts_with('0'));
                    (c, i + 3)
                } else {
                    (Clock::new(h % 24, 0), i + 1)
                }
            }
        };
        if c.m > 59 || self.blocks_after(j) && self.lex(j) != Lex::MinuteUnit {
            return None;
        }
        let j = if self.lex(j) == Lex::HourUnit {
            j + 1
        } else {
            j
        };
        Some(self.marker(c, j))
    }
}
