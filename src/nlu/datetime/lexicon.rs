//! The closed vocabulary of Russian date and time words: every form the grammar knows, mapped to
//! what it means (`Lex`), plus typo correction of unknown words against that vocabulary through
//! `typo::Vocabulary`. Built once in `DateTimeParser::new`; a lookup is one hash probe, and a
//! typo lookup runs only for long unknown words that pass a cheap letter-count filter.

use crate::domain::PartOfDay;
use crate::nlu::typo::Vocabulary;
use std::collections::HashMap;

/// Prepositions that decide what a number or a day word means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prep {
    V,
    Na,
    K,
    S,
    Do,
    Posle,
    Okolo,
    Cherez,
    Vmesto,
    Po,
    Ot,
    Mezhdu,
}

/// "утра", "дня", "вечера", "ночи" after an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Meridiem {
    Am,
    Day,
    Pm,
    Night,
}

/// Which week a weekday or weekend refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WeekSel {
    Nearest,
    This,
    Next,
    Prev,
    /// "на следующей неделе в пятницу": the week is named outright (set by the resolver).
    NextWeek,
}

/// What a word means to the date/time grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Lex {
    #[default]
    Other,
    Prep(Prep),
    /// Days from today: сегодня 0, завтра 1, послезавтра 2, вчера −1.
    RelDay(i8),
    Now,
    /// 0 = Monday.
    Weekday(u8),
    /// 1 = January.
    Month(u8),
    Week,
    DayUnit,
    MonthUnit,
    HourUnit,
    MinuteUnit,
    HalfHour,
    Couple,
    Sel(WeekSel),
    Weekend,
    Chislo,
    /// "утром", "вечерком": a part of day on its own.
    Part(PartOfDay),
    /// "утро", "вечер": a part of day only after "на" ("доброе утро" is a greeting).
    PartNoun(PartOfDay),
    Marker(Meridiem),
    Lunch,
    Noon,
    Half,
    Quarter,
    Without,
    /// A cardinal number word (any case): "три", "пяти", "двум".
    Card(u8),
    /// An ordinal (any case): "первого", "пятое", "первой".
    Ord(u8),
    /// "полшестого": half past the hour before the ordinal (5:30).
    HalfOrd(u8),
    Msk,
    Local,
    Approx,
    Closer,
    Later,
    Earlier,
    Not,
    Move,
    /// Look-alikes of date words that are something else ("завтрак", "среди", "черная").
    Stop,
    Work,
    And,
    Year,
}

use Lex::*;
use PartOfDay::{Afternoon, Evening, Morning};

/// Every form the grammar knows. Words of 5+ letters are also typo targets.
const WORDS: &[(&str, Lex)] = &[
    ("в", Prep(self::Prep::V)),
    ("во", Prep(self::Prep::V)),
    ("на", Prep(self::Prep::Na)),
    ("к", Prep(self::Prep::K)),
    ("ко", Prep(self::Prep::K)),
    ("с", Prep(self::Prep::S)),
    ("со", Prep(self::Prep::S)),
    ("до", Prep(self::Prep::Do)),
    ("после", Prep(self::Prep::Posle)),
    ("около", Prep(self::Prep::Okolo)),
    ("через", Prep(self::Prep::Cherez)),
    ("вместо", Prep(self::Prep::Vmesto)),
    ("по", Prep(self::Prep::Po)),
    ("от", Prep(self::Prep::Ot)),
    ("между", Prep(self::Prep::Mezhdu)),
    ("и", And),
    // relative days
    ("сегодня", RelDay(0)),
    ("седня", RelDay(0)),
    ("сення", RelDay(0)),
    ("сегодн", RelDay(0)),
    ("сегодняшний", RelDay(0)),
    ("сегодняшнее", RelDay(0)),
    ("сегодняшнюю", RelDay(0)),
    ("сегодняшний", RelDay(0)),
    ("завтра", RelDay(1)),
    ("завтрашний", RelDay(1)),
    ("завтрашнее", RelDay(1)),
    ("завтрашнюю", RelDay(1)),
    ("завтрашнего", RelDay(1)),
    ("завтрашнем", RelDay(1)),
    ("послезавтра", RelDay(2)),
    ("вчера", RelDay(-1)),
    ("вчерашний", RelDay(-1)),
    ("вчерашнюю", RelDay(-1)),
    ("позавчера", RelDay(-2)),
    ("сейчас", Now),
    ("щас", Now),
    ("счас", Now),
    ("ща", Now),
    ("сичас", Now),
    // weekdays
    ("понедельник", Weekday(0)),
    ("понедельника", Weekday(0)),
    ("понедельнику", Weekday(0)),
    ("понедельнике", Weekday(0)),
    ("понед", Weekday(0)),
    ("пн", Weekday(0)),
    ("вторник", Weekday(1)),
    ("вторника", Weekday(1)),
    ("вторнику", Weekday(1)),
    ("вторнике", Weekday(1)),
    ("вт", Weekday(1)),
    ("среда", Weekday(2)),
    ("среду", Weekday(2)),
    ("среды", Weekday(2)),
    ("среде", Weekday(2)),
    ("ср", Weekday(2)),
    ("четверг", Weekday(3)),
    ("четверга", Weekday(3)),
    ("четвергу", Weekday(3)),
    ("четверге", Weekday(3)),
    ("чт", Weekday(3)),
    ("пятница", Weekday(4)),
    ("пятницу", Weekday(4)),
    ("пятницы", Weekday(4)),
    ("пятнице", Weekday(4)),
    ("пт", Weekday(4)),
    ("суббота", Weekday(5)),
    ("субботу", Weekday(5)),
    ("субботы", Weekday(5)),
    ("субботе", Weekday(5)),
    ("сб", Weekday(5)),
    ("суб", Weekday(5)),
    ("воскресенье", Weekday(6)),
    ("воскресенья", Weekday(6)),
    ("воскресенью", Weekday(6)),
    ("воскр", Weekday(6)),
    ("вс", Weekday(6)),
    // months
    ("январь", Month(1)),
    ("января", Month(1)),
    ("янв", Month(1)),
    ("февраль", Month(2)),
    ("февраля", Month(2)),
    ("фев", Month(2)),
    ("март", Month(3)),
    ("марта", Month(3)),
    ("апрель", Month(4)),
    ("апреля", Month(4)),
    ("апр", Month(4)),
    ("май", Month(5)),
    ("мая", Month(5)),
    ("июнь", Month(6)),
    ("июня", Month(6)),
    ("июль", Month(7)),
    ("июля", Month(7)),
    ("август", Month(8)),
    ("августа", Month(8)),
    ("авг", Month(8)),
    ("сентябрь", Month(9)),
    ("сентября", Month(9)),
    ("сент", Month(9)),
    ("сен", Month(9)),
    ("октябрь", Month(10)),
    ("октября", Month(10)),
    ("окт", Month(10)),
    ("ноябрь", Month(11)),
    ("ноября", Month(11)),
    ("нояб", Month(11)),
    ("ноя", Month(11)),
    ("декабрь", Month(12)),
    ("декабря", Month(12)),
    ("дек", Month(12)),
    // units
    ("неделя", Week),
    ("неделю", Week),
    ("недели", Week),
    ("неделе", Week),
    ("недель", Week),
    ("недельку", Week),
    ("нед", Week),
    ("день", DayUnit),
    ("дней", DayUnit),
    ("денек", DayUnit),
    ("денька", DayUnit),
    ("деньков", DayUnit),
    ("денечка", DayUnit),
    ("месяц", MonthUnit),
    ("месяца", MonthUnit),
    ("месяцев", MonthUnit),
    ("мес", MonthUnit),
    ("час", HourUnit),
    ("часа", HourUnit),
    ("часов", HourUnit),
    ("часам", HourUnit),
    ("часу", HourUnit),
    ("часик", HourUnit),
    ("часика", HourUnit),
    ("часиков", HourUnit),
    ("часикам", HourUnit),
    ("ч", HourUnit),
    ("минут", MinuteUnit),
    ("минуты", MinuteUnit),
    ("минуту", MinuteUnit),
    ("минутки", MinuteUnit),
    ("минуток", MinuteUnit),
    ("минутку", MinuteUnit),
    ("мин", MinuteUnit),
    ("полчаса", HalfHour),
    ("полчасика", HalfHour),
    ("пару", Couple),
    ("пара", Couple),
    ("пары", Couple),
    ("парочку", Couple),
    // week selectors
    ("следующую", Sel(WeekSel::Next)),
    ("следующий", Sel(WeekSel::Next)),
    ("следующей", Sel(WeekSel::Next)),
    ("следующее", Sel(WeekSel::Next)),
    ("следующие", Sel(WeekSel::Next)),
    ("следующих", Sel(WeekSel::Next)),
    ("следующем", Sel(WeekSel::Next)),
    ("след", Sel(WeekSel::Next)),
    ("будущей", Sel(WeekSel::Next)),
    ("будущую", Sel(WeekSel::Next)),
    ("будущий", Sel(WeekSel::Next)),
    ("будущие", Sel(WeekSel::Next)),
    ("будущих", Sel(WeekSel::Next)),
    ("эту", Sel(WeekSel::This)),
    ("этот", Sel(WeekSel::This)),
    ("эта", Sel(WeekSel::This)),
    ("этой", Sel(WeekSel::This)),
    ("эти", Sel(WeekSel::This)),
    ("этих", Sel(WeekSel::This)),
    ("ближайшую", Sel(WeekSel::Nearest)),
    ("ближайший", Sel(WeekSel::Nearest)),
    ("ближайшей", Sel(WeekSel::Nearest)),
    ("ближайшие", Sel(WeekSel::Nearest)),
    ("ближайших", Sel(WeekSel::Nearest)),
    ("ближайшая", Sel(WeekSel::Nearest)),
    ("ближайшее", Sel(WeekSel::Nearest)),
    ("прошлую", Sel(WeekSel::Prev)),
    ("прошлый", Sel(WeekSel::Prev)),
    ("прошлой", Sel(WeekSel::Prev)),
    ("прошлые", Sel(WeekSel::Prev)),
    ("прошлых", Sel(WeekSel::Prev)),
    ("прошлом", Sel(WeekSel::Prev)),
    ("прошедшую", Sel(WeekSel::Prev)),
    ("прошедшей", Sel(WeekSel::Prev)),
    ("выходные", Weekend),
    ("выходных", Weekend),
    ("выхи", Weekend),
    ("выходным", Weekend),
    ("число", Chislo),
    ("числа", Chislo),
    ("числу", Chislo),
    // parts of day
    ("утром", Part(Morning)),
    ("утречком", Part(Morning)),
    ("утреца", Part(Morning)),
    ("утречка", Part(Morning)),
    ("поутру", Part(Morning)),
    ("утрам", Part(Morning)),
    ("утрами", Part(Morning)),
    ("днем", Part(Afternoon)),
    ("днями", Other),
    ("вечером", Part(Evening)),
    ("вечерком", Part(Evening)),
    ("вечерочком", Part(Evening)),
    ("вечерам", Part(Evening)),
    ("вечерами", Part(Evening)),
    ("вечеру", Part(Evening)),
    ("утру", Part(Morning)),
    ("утро", PartNoun(Morning)),
    ("вечер", PartNoun(Evening)),
    ("утра", Marker(Meridiem::Am)),
    ("дня", Marker(Meridiem::Day)),
    ("вечера", Marker(Meridiem::Pm)),
    ("ночи", Marker(Meridiem::Night)),
    ("обед", Lunch),
    ("обеда", Lunch),
    ("обеду", Lunch),
    ("обедом", Lunch),
    ("обеде", Lunch),
    ("обеденное", Lunch),
    ("обеденный", Lunch),
    ("обеденного", Lunch),
    ("обеденным", Lunch),
    ("полдень", Noon),
    ("полудня", Noon),
    ("полудню", Noon),
    ("половина", Half),
    ("половине", Half),
    ("половину", Half),
    ("половины", Half),
    ("пол", Half),
    ("четверть", Quarter),
    ("четверти", Quarter),
    ("без", Without),
    // cardinals (hours, minutes, counts)
    ("один", Card(1)),
    ("одна", Card(1)),
    ("одного", Card(1)),
    ("два", Card(2)),
    ("две", Card(2)),
    ("двух", Card(2)),
    ("двум", Card(2)),
    ("три", Card(3)),
    ("трех", Card(3)),
    ("трем", Card(3)),
    ("четыре", Card(4)),
    ("четырех", Card(4)),
    ("четырем", Card(4)),
    ("пять", Card(5)),
    ("пяти", Card(5)),
    ("шесть", Card(6)),
    ("шести", Card(6)),
    ("семь", Card(7)),
    ("семи", Card(7)),
    ("восемь", Card(8)),
    ("восьми", Card(8)),
    ("девять", Card(9)),
    ("девяти", Card(9)),
    ("десять", Card(10)),
    ("десяти", Card(10)),
    ("одиннадцать", Card(11)),
    ("одиннадцати", Card(11)),
    ("двенадцать", Card(12)),
    ("двенадцати", Card(12)),
    ("пятнадцать", Card(15)),
    ("пятнадцати", Card(15)),
    ("двадцать", Card(20)),
    ("двадцати", Card(20)),
    ("тридцать", Card(30)),
    ("тридцати", Card(30)),
    ("сорок", Card(40)),
    ("сорока", Card(40)),
    // ordinals (dates "первого декабря", hours "пол первого", "в первой половине дня")
    ("первого", Ord(1)),
    ("первое", Ord(1)),
    ("первой", Ord(1)),
    ("первому", Ord(1)),
    ("второго", Ord(2)),
    ("второе", Ord(2)),
    ("второй", Ord(2)),
    ("третьего", Ord(3)),
    ("третье", Ord(3)),
    ("четвертого", Ord(4)),
    ("четвертое", Ord(4)),
    ("пятого", Ord(5)),
    ("пятое", Ord(5)),
    ("шестого", Ord(6)),
    ("шестое", Ord(6)),
    ("седьмого", Ord(7)),
    ("седьмое", Ord(7)),
    ("восьмого", Ord(8)),
    ("восьмое", Ord(8)),
    ("девятого", Ord(9)),
    ("девятое", Ord(9)),
    ("десятого", Ord(10)),
    ("десятое", Ord(10)),
    ("одиннадцатого", Ord(11)),
    ("одиннадцатое", Ord(11)),
    ("двенадцатого", Ord(12)),
    ("двенадцатое", Ord(12)),
    ("тринадцатого", Ord(13)),
    ("тринадцатое", Ord(13)),
    ("четырнадцатого", Ord(14)),
    ("четырнадцатое", Ord(14)),
    ("пятнадцатого", Ord(15)),
    ("пятнадцатое", Ord(15)),
    ("шестнадцатого", Ord(16)),
    ("шестнадцатое", Ord(16)),
    ("семнадцатого", Ord(17)),
    ("семнадцатое", Ord(17)),
    ("восемнадцатого", Ord(18)),
    ("восемнадцатое", Ord(18)),
    ("девятнадцатого", Ord(19)),
    ("девятнадцатое", Ord(19)),
    ("двадцатого", Ord(20)),
    ("двадцатое", Ord(20)),
    ("тридцатого", Ord(30)),
    ("тридцатое", Ord(30)),
    // time zone
    ("москве", Msk),
    ("москвы", Msk),
    ("москва", Msk),
    ("мск", Msk),
    ("московскому", Msk),
    ("московского", Msk),
    ("местному", Local),
    ("нашему", Local),
    ("новосибирску", Local),
    ("новосибирскому", Local),
    ("нск", Local),
    // modifiers
    ("примерно", Approx),
    ("приблизительно", Approx),
    ("ориентировочно", Approx),
    ("где", Approx),
    ("районе", Approx),
    ("ближе", Closer),
    ("поближе", Closer),
    ("позже", Later),
    ("позднее", Later),
    ("попозже", Later),
    ("раньше", Earlier),
    ("ранее", Earlier),
    ("пораньше", Earlier),
    ("не", Not),
    ("перенести", Move),
    ("перенесите", Move),
    ("перенесем", Move),
    ("перенос", Move),
    ("переносим", Move),
    ("перенесу", Move),
    ("перенесла", Move),
    ("перенес", Move),
    ("переношу", Move),
    ("перезаписаться", Move),
    ("перезапишите", Move),
    ("передвинуть", Move),
    ("передвиньте", Move),
    ("сдвинуть", Move),
    ("сдвиньте", Move),
    ("поменять", Move),
    ("поменяйте", Move),
    ("работы", Work),
    ("год", Year),
    ("году", Year),
    ("года", Year),
    ("г", Year),
    ("гг", Year),
    // look-alikes that must not be corrected into date words
    ("черная", Stop),
    ("черную", Stop),
    ("черной", Stop),
    ("завтрак", Stop),
    ("завтрака", Stop),
    ("завтраком", Stop),
    ("завтраку", Stop),
    ("среди", Stop),
    ("карта", Stop),
    ("карте", Stop),
    ("карту", Stop),
    ("картой", Stop),
    ("карты", Stop),
    ("минус", Stop),
    ("обида", Stop),
    ("обиду", Stop),
    ("обиды", Stop),
    ("марка", Stop),
    ("марку", Stop),
    ("часы", Stop),
    ("вечеринку", Stop),
    ("вечеринка", Stop),
    ("неделимо", Stop),
    ("выходной", Stop),
    ("четверо", Stop),
    ("четверых", Stop),
    ("четвером", Stop),
    ("четверка", Stop),
    ("четверку", Stop),
    ("четверки", Stop),
    ("вместе", Stop),
    ("победа", Stop),
    ("победы", Stop),
    ("победе", Stop),
    ("начале", Stop),
    ("конце", Stop),
    ("середине", Stop),
    ("выходного", Stop),
    ("выходному", Stop),
];

/// Letters counted by the typo pre-filter: а..я (ё is folded by normalisation).
const ALPHABET: usize = 32;

fn letter_counts(word: &str) -> [u8; ALPHABET + 1] {
    let mut counts = [0u8; ALPHABET + 1];
    for c in word.chars() {
        let idx = ((c as u32).wrapping_sub('а' as u32) as usize).min(ALPHABET);
        counts[idx] = counts[idx].saturating_add(1);
    }
    counts
}

/// A typo target, for the pre-filter that spares most unknown words the symmetric-delete lookup.
#[derive(Debug)]
struct Target {
    len: usize,
    counts: [u8; ALPHABET + 1],
}

/// The date/time vocabulary, compiled once.
#[derive(Debug)]
pub(super) struct Lexicon {
    exact: HashMap<&'static str, Lex>,
    typos: Vocabulary,
    /// Typo targets grouped by their first letter.
    by_first: HashMap<char, Vec<Target>>,
}

/// Largest typo distance `typo::Vocabulary` accepts for a word of `len` letters.
fn max_typos(len: usize) -> usize {
    match len {
        0..=4 => 0,
        5..=7 => 1,
        _ => 2,
    }
}

impl Lexicon {
    pub(super) fn new() -> Lexicon {
        let mut exact = HashMap::with_capacity(WORDS.len());
        let mut by_first: HashMap<char, Vec<Target>> = HashMap::new();
        let mut typo_words = Vec::new();
        for &(word, lex) in WORDS {
            exact.insert(word, lex);
            let len = word.chars().count();
            if max_typos(len) > 0 {
                typo_words.push(word);
                if let Some(first) = word.chars().next() {
                    by_first.entry(first).or_default().push(Target {
                        len,
                        counts: letter_counts(word),
                    });
                }
            }
        }
        Lexicon {
            exact,
            typos: Vocabulary::new(typo_words),
            by_first,
        }
    }

    /// What `word` means; the flag says it was read through a typo correction.
    pub(super) fn classify(&self, word: &str) -> (Lex, bool) {
        if let Some(&lex) = self.exact.get(word) {
            return (lex, false);
        }
        // "полшестого", "пол-шестого" written as one word.
        if let Some(rest) = word.strip_prefix("пол")
            && let Some(&Ord(n)) = self.exact.get(rest)
            && (1..=12).contains(&n)
        {
            return (HalfOrd(n), false);
        }
        if self.may_be_typo(word)
            && let Some(fixed) = self.typos.correct(word)
            && let Some(&lex) = self.exact.get(fixed)
        {
            return (lex, true);
        }
        (Other, false)
    }

    /// Cheap necessary condition for a typo match: some target with the same first letter, a
    /// close length and letter counts that differ by at most two per allowed edit.
    fn may_be_typo(&self, word: &str) -> bool {
        let len = word.chars().count();
        let max = max_typos(len);
        if max == 0 || len > 16 {
            return false;
        }
        let Some(targets) = word.chars().next().and_then(|c| self.by_first.get(&c)) else {
            return false;
        };
        let counts = letter_counts(word);
        targets.iter().any(|t| {
            t.len.abs_diff(len) <= max
                && counts
                    .iter()
                    .zip(t.counts.iter())
                    .map(|(a, b)| usize::from(a.abs_diff(*b)))
                    .sum::<usize>()
                    <= 2 * max
        })
    }
}

/// Words right after a number that make it a price, count, duration, address or percentage,
/// never a date or a time ("1500 р", "2 человека", "40 минут", "3 кабинет").
pub(super) fn blocks_number(word: &str) -> bool {
    const EXACT: &[&str] = &[
        "р", "руб", "т", "тр", "к", "л", "x", "х", "мл", "кг", "гр", "см", "мм", "км", "шт", "ед",
        "кв", "д", "м", "сот",
    ];
    const PREFIXES: &[&str] = &[
        "рубл",
        "тыс",
        "процент",
        "человек",
        "чел",
        "люд",
        "персон",
        "гост",
        "штук",
        "раз",
        "сек",
        "лет",
        "кабинет",
        "корп",
        "этаж",
        "подъезд",
        "зал",
        "квартир",
        "дом",
        "дет",
        "ребен",
        "ребят",
        "сеанс",
        "процедур",
        "сесси",
        "услуг",
        "ногот",
        "ногт",
        "пальц",
        "зуб",
        "балл",
        "звезд",
        "метр",
        "остановк",
        "маршрут",
        "автобус",
        "трамва",
        "номер",
        "мест",
        "ряд",
        "класс",
        "курс",
        "шаг",
        "этап",
        "сери",
        "пункт",
        "вопрос",
        "фото",
        "пряд",
        "волос",
        "зон",
        "сантим",
        "килог",
        "бонус",
        "уров",
        "тонн",
        "мастер",
        "девоч",
        "подруг",
        "укол",
        "ампул",
        "флакон",
        "бутыл",
        "пачк",
        "минут",
        "литр",
        "сотк",
        "кусоч",
        "слот",
        "окош",
        "окн",
        "женщ",
        "мужч",
        "клиент",
        "порц",
        "доз",
        "мг",
        "единиц",
    ];
    EXACT.contains(&word) || PREFIXES.iter().any(|p| word.starts_with(p))
}

/// Symbols right after a number that make it a price or a percentage.
pub(super) fn blocks_number_symbol(c: &str) -> bool {
    matches!(c, "%" | "₽" | "$" | "€" | "*" | "№" | "#" | "x" | "×")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_exact_forms_typos_and_glued_half_hours() {
        let lx = Lexicon::new();
        assert_eq!(lx.classify("пятницу"), (Weekday(4), false));
        assert_eq!(lx.classify("пятнцу"), (Weekday(4), true));
        assert_eq!(lx.classify("зафтра"), (RelDay(1), true));
        assert_eq!(lx.classify("суботу"), (Weekday(5), true));
        assert_eq!(lx.classify("полшестого"), (HalfOrd(6), false));
        assert_eq!(lx.classify("завтрак"), (Stop, false));
        assert_eq!(lx.classify("записаться"), (Other, false));
        assert_eq!(
            lx.classify("сред"),
            (Other, false),
            "short words are not corrected"
        );
    }
}
