//! The client's own name. Trigger phrases first ("меня зовут Анна", "зовут Катя", "моё имя
//! Ольга", "это Ольга Петровна", "я Маша"), then a gazetteer name standing on its own — a
//! signature before or after the phone ("Анна 89131234567") wins over one elsewhere ("запишите
//! Ольгу на маникюр"). Names after "к/у/мастеру/для/с" are somebody else (a master, a child),
//! staff names are excluded by the caller, and names that are everyday words ("вера", "роза")
//! count only after a trigger or when capitalised mid-sentence. The result is the nominative,
//! capitalised ("ольгу" → "Ольга", "аня" → "Аня"), with a patronymic or surname that follows;
//! names typed in Latin letters are kept as written ("Anna").
//!
//! `answer` reads a short reply to «как к вам обращаться?» on its own terms: any first name,
//! also one the gazetteer does not know ("Айгуль") or an everyday word ("Роза"), and "Фамилия
//! Имя Отчество" in any order, given back as "Имя Отчество Фамилия".

use crate::nlu::names_gazetteer::{
    NameForm, capitalize_words, gazetteer, patronymic_nominative, surname_nominative,
};
use crate::nlu::normalize::Normalized;
use std::ops::Range;

/// Words after which the next one is someone else, not the writer (besides the staff cues
/// "к/у/мастеру/доктору…").
const OTHER_PERSON: &[&str] = &[
    "со",
    "для",
    "дочь",
    "дочку",
    "дочери",
    "сына",
    "сын",
    "мужа",
    "муж",
    "маму",
    "мама",
    "подругу",
    "подруга",
    "от",
];

/// Words that can follow "зовут" and are not a name.
const NOT_NAMES: &[&str] = &[
    "как",
    "меня",
    "вас",
    "нас",
    "его",
    "ее",
    "их",
    "не",
    "так",
    "то",
    "же",
    "вот",
    "а",
    "и",
    "мастера",
    "мастер",
    "администратор",
    "просто",
    "тоже",
];

/// One message word, with where it came from.
pub struct Word<'a> {
    pub text: &'a str,
    /// Index into `Normalized::tokens`.
    pub token: usize,
}

/// Written in Latin letters only ("Olga"); a Cyrillic word with a Latin look-alike in it
/// ("Миланa") is Cyrillic and is spelt as normalised.
fn is_latin(s: &str) -> bool {
    s.chars().any(|c| c.is_ascii_alphabetic())
        && s.chars()
            .filter(|c| c.is_alphabetic())
            .all(|c| c.is_ascii())
}

/// The word as the client wrote it (keeps "ё" and Latin spelling), capitalised; the
/// normalised form when the original differs in more than case and "ё".
fn as_written(original: &str, normalized: &str) -> String {
    let lower = original.to_lowercase();
    let folded: String = lower
        .chars()
        .map(|c| if c == 'ё' { 'е' } else { c })
        .collect();
    if folded == normalized || is_latin(original) {
        capitalize_words(&lower)
    } else {
        capitalize_words(normalized)
    }
}

fn lookup(norm: &Normalized, w: &Word<'_>) -> Option<NameForm> {
    let g = gazetteer();
    let original = norm.original_of(w.token..w.token + 1);
    if is_latin(original) {
        g.lookup_loose(w.text)
    } else {
        g.lookup(w.text)
    }
}

/// Render the name that starts at word `i` (its first name known as `first`), taking a
/// patronymic and/or surname that follows. Returns the text and the words it covers.
fn render(
    norm: &Normalized,
    words: &[Word<'_>],
    i: usize,
    first: Option<NameForm>,
    skip: &[bool],
) -> (String, Range<usize>) {
    let w = &words[i];
    let original = norm.original_of(w.token..w.token + 1);
    let mut out = match first {
        Some(f) if !f.is_nominative && !is_latin(original) => capitalize_words(f.nominative),
        _ => as_written(original, w.text),
    };
    let mut end = i + 1;
    for _ in 0..2 {
        let Some(next) = words.get(end) else { break };
        if skip.get(end).copied().unwrap_or(false) || next.token != words[end - 1].token + 1 {
            break;
        }
        let next_original = norm.original_of(next.token..next.token + 1);
        let tail = if let Some(p) = patronymic_nominative(next.text) {
            p
        } else if let Some(s) = surname_nominative(next.text)
            && gazetteer().lookup(next.text).is_none()
        {
            s
        } else {
            break;
        };
        out.push(' ');
        if tail == next.text {
            out.push_str(&as_written(next_original, next.text));
        } else {
            out.push_str(&capitalize_words(&tail));
        }
        end += 1;
    }
    (out, i..end)
}

/// A name introduced by a trigger phrase: (name, words it covers).
pub fn by_trigger(
    norm: &Normalized,
    words: &[Word<'_>],
    skip: &[bool],
) -> Option<(String, Range<usize>)> {
    let text = |i: usize| words.get(i).map(|w| w.text).unwrap_or("");
    for i in 0..words.len() {
        let (target, strict) = match text(i) {
            "зовут" | "звать" => (i + 1, false),
            "имя" if text(i + 1) != "мастера" => (i + 1, false),
            // "меня Аня зовут"
            "меня" if text(i + 2) == "зовут" => (i + 1, false),
            "это" | "я" => (i + 1, true),
            _ => continue,
        };
        let Some(w) = words.get(target) else { continue };
        if skip.get(target).copied().unwrap_or(false)
            || NOT_NAMES.contains(&w.text)
            || w.text.chars().count() < 2
        {
            continue;
        }
        let found = lookup(norm, w);
        if strict && found.is_none() {
            continue;
        }
        return Some(render(norm, words, target, found, skip));
    }
    None
}

/// A gazetteer name with no trigger. `phone_tokens`: token range of the phone, if any.
pub fn standalone(
    norm: &Normalized,
    words: &[Word<'_>],
    skip: &[bool],
    phone_tokens: Option<Range<usize>>,
) -> Option<(String, Range<usize>)> {
    let (by_phone, first) = candidates(norm, words, skip, phone_tokens);
    let (i, form) = by_phone.or(first)?;
    Some(render(norm, words, i, Some(form), skip))
}

/// A name written as a signature right next to the phone ("Анна, 8 913 …", "89131234567 Оля"):
/// the writer's own name, even when a staff member has the same one.
pub fn signature(
    norm: &Normalized,
    words: &[Word<'_>],
    skip: &[bool],
    phone_tokens: Option<Range<usize>>,
) -> Option<(String, Range<usize>)> {
    let (by_phone, _) = candidates(norm, words, skip, phone_tokens);
    let (i, form) = by_phone?;
    Some(render(norm, words, i, Some(form), skip))
}

type Candidate = Option<(usize, NameForm)>;

/// (the name next to the phone, the first name anywhere).
fn candidates(
    norm: &Normalized,
    words: &[Word<'_>],
    skip: &[bool],
    phone_tokens: Option<Range<usize>>,
) -> (Candidate, Candidate) {
    let mut first: Option<(usize, NameForm)> = None;
    let mut by_phone: Option<(usize, NameForm)> = None;
    for (i, w) in words.iter().enumerate() {
        if skip.get(i).copied().unwrap_or(false) || w.text.chars().count() < 2 {
            continue;
        }
        if i > 0
            && (OTHER_PERSON.contains(&words[i - 1].text)
                || crate::nlu::staff::CUES.contains(&words[i - 1].text))
        {
            continue;
        }
        let Some(form) = lookup(norm, w) else {
            continue;
        };
        let capitalized = norm.tokens.get(w.token).is_some_and(|t| t.capitalized);
        if form.common_noun && !(capitalized && w.token > 0) {
            continue;
        }
        // Next to the phone: only punctuation between them ("Анна, +7 (913) …", "… 45-67 Оля").
        let only_punct = |r: std::ops::Range<usize>| {
            norm.tokens.get(r).is_some_and(|ts| {
                ts.iter()
                    .all(|t| t.kind == crate::nlu::normalize::TokenKind::Punct)
            })
        };
        let near_phone = phone_tokens.as_ref().is_some_and(|p| {
            (w.token < p.start && only_punct(w.token + 1..p.start))
                || (w.token >= p.end && only_punct(p.end..w.token))
        });
        if near_phone && by_phone.is_none() {
            by_phone = Some((i, form));
        }
        if first.is_none() {
            first = Some((i, form));
        }
    }
    (by_phone, first)
}

/// Words that may stand around the name in a reply to «как к вам обращаться?» ("меня зовут
/// Айгуль", "можно просто Настя", "это Оля, спасибо").
const ANSWER_LEAD: &[&str] = &[
    "меня",
    "зовут",
    "звать",
    "я",
    "это",
    "мое",
    "имя",
    "можно",
    "просто",
    "зовите",
    "называйте",
    "обращайтесь",
    "обращаться",
    "ко",
    "мне",
    "пожалуйста",
    "спасибо",
    // labels of the contact written beside the name
    "мой",
    "моя",
    "телефон",
    "тел",
    "т",
    "номер",
    "почта",
    "почты",
    "емейл",
    "имейл",
    "е",
    "майл",
    "ватсап",
    "вотсап",
];

/// Lead-in words that say a name follows.
const INTRODUCES: &[&str] = &[
    "зовут",
    "звать",
    "я",
    "это",
    "имя",
    "просто",
    "зовите",
    "называйте",
    "обращайтесь",
    "обращаться",
];

/// Everyday words of a short reply that are no name: refusals, questions, pronouns, people
/// who are not a name, particles ("не хочу говорить", "а зачем", "неважно", "клиентка").
const NOT_A_NAME: &[&str] = &[
    "не",
    "нет",
    "да",
    "а",
    "и",
    "но",
    "ну",
    "вот",
    "так",
    "же",
    "ли",
    "бы",
    "как",
    "что",
    "кто",
    "где",
    "куда",
    "когда",
    "зачем",
    "почему",
    "какая",
    "какой",
    "какое",
    "чего",
    "вам",
    "вас",
    "вы",
    "ты",
    "мы",
    "он",
    "она",
    "они",
    "его",
    "ее",
    "их",
    "наш",
    "ваш",
    "сам",
    "сама",
    "все",
    "всем",
    "ничего",
    "никак",
    "никто",
    "без",
    "имени",
    "фамилия",
    "фамилии",
    "отчество",
    "клиент",
    "клиентка",
    "аноним",
    "анонимно",
    "девушка",
    "женщина",
    "мужчина",
    "мама",
    "папа",
    "бабушка",
    "дедушка",
    "ребенок",
    "дочь",
    "сын",
    "муж",
    "жена",
    "хочу",
    "скажу",
    "говорить",
    "разница",
    "секрет",
    "тайна",
    "стоп",
    "подождите",
    "минутку",
    "блин",
    "ясно",
    "пока",
    "позже",
    "потом",
    "сейчас",
    "уже",
    "еще",
    "очень",
    "тут",
    "там",
    "здесь",
    "тоже",
    "также",
    "вообще",
    "зачем",
    "надо",
    "нужно",
    "важно",
    "неважно",
    "хватит",
    "норм",
    "угу",
    "ага",
    "ок",
    "окей",
    "ладно",
    "хорошо",
    "понятно",
    "любая",
    "любой",
    "любое",
    "обычно",
    "напишу",
    "подумаю",
    "щас",
    "вдруг",
    "кстати",
    "лучше",
    "доктор",
    "врач",
    "мастер",
    "мастеру",
    "администратор",
    "девушки",
    "девочки",
    "коллеги",
    "дорогая",
    "милая",
    "друзья",
    "люди",
    "хм",
    "ого",
    "вау",
    "ура",
    "упс",
    "ой",
    "ах",
    "эх",
    "ох",
    "тест",
    "сорри",
    "пасиб",
    "спс",
    "против",
    "пас",
    "вечер",
    "утро",
    "обед",
    "день",
    "ночь",
    "дизайн",
    "лак",
    "гель",
    "уход",
    "маска",
    "центр",
    "город",
    "дом",
    "работа",
    "капец",
    "жесть",
    "сбер",
];

/// Endings of words that are no first name (verbs, adverbs, adjectives, plurals): checked only
/// for words the gazetteer does not know.
const NOT_NAME_ENDINGS: &[&str] = &[
    "ть", "ться", "тся", "сь", "ешь", "ишь", "ете", "ите", "ем", "ом", "ут", "ют", "ят", "о", "е",
    "ы", "ой", "ый", "ая", "яя", "ое", "ие", "ые", "ю", "ыл", "ял", "ция", "ск",
];

/// What one word of a name reply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    First,
    Patronymic,
    Surname,
    /// A word the gazetteer does not know that may be a first name ("Айгуль").
    Unknown,
}

/// "Сергеевна", "Петровичем", "Ильич", "Кузьминична".
fn is_patronymic(w: &str) -> bool {
    w.chars().count() >= 5
        && (patronymic_nominative(w).is_some()
            || ["вич", "вна", "ична", "ьич"].iter().any(|e| w.ends_with(e)))
}

fn part_of(norm: &Normalized, w: &Word<'_>) -> Option<Part> {
    let len = w.text.chars().count();
    if !(2..=20).contains(&len) || !w.text.chars().all(char::is_alphabetic) {
        return None;
    }
    if NOT_A_NAME.contains(&w.text) {
        return None;
    }
    if is_patronymic(w.text) {
        return Some(Part::Patronymic);
    }
    if lookup(norm, w).is_some() {
        return Some(Part::First);
    }
    // A Latin word the gazetteer does not know is more often "WhatsApp" or "ok" than a name.
    if is_latin(norm.original_of(w.token..w.token + 1)) {
        return None;
    }
    if surname_nominative(w.text).is_some() {
        return Some(Part::Surname);
    }
    let shaped = (3..=10).contains(&len) && !not_name_shaped(w.text);
    shaped.then_some(Part::Unknown)
}

/// The shape of a word no gazetteer knows says it is no first name: a verb ("поняла", "хочу"),
/// an adverb, an adjective, a case form ("минуточку"), a drawn-out interjection ("ммм").
fn not_name_shaped(w: &str) -> bool {
    let chars: Vec<char> = w.chars().collect();
    let drawn_out = chars.windows(3).any(|c| c[0] == c[1] && c[1] == c[2]);
    // "минуточку", "скажу": a consonant then "у" ("Алсу" keeps its "су")
    let oblique = chars.len() >= 2
        && chars[chars.len() - 1] == 'у'
        && !matches!(
            chars[chars.len() - 2],
            'с' | 'л' | 'а' | 'о' | 'е' | 'и' | 'у' | 'ю' | 'я'
        );
    // "поняла", "забыла", "запомнила": a prefixed past tense ("Джамила" has no prefix)
    let past = ["ала", "яла", "ила", "ела", "ыла", "ула", "ола"]
        .iter()
        .any(|e| w.ends_with(e))
        && VERB_PREFIXES.iter().any(|p| w.starts_with(p));
    drawn_out || oblique || past || NOT_NAME_ENDINGS.iter().any(|e| w.ends_with(e))
}

/// Prefixes of past-tense verbs that a short reply may be ("поняла", "записала").
const VERB_PREFIXES: &[&str] = &[
    "за", "по", "с", "у", "на", "вы", "при", "про", "пере", "от", "об", "раз", "рас", "до", "пре",
    "под",
];

/// The word as a name: Latin spelling kept, Cyrillic capitalised with its "ё", a word with Latin
/// look-alikes spelt as normalised.
fn spelled(norm: &Normalized, w: &Word<'_>) -> String {
    as_written(norm.original_of(w.token..w.token + 1), w.text)
}

/// The name a short reply to «как к вам обращаться?» gives: 1 to 3 name words (a first name the
/// gazetteer may not know, a patronymic, a surname), optionally with "меня зовут"-like words and
/// a phone or e-mail (`contact`), as "Имя [Отчество] [Фамилия]". None when the reply is a
/// question or has any word that is no name (`skip`: dates, services, cue words; refusals,
/// verbs, pronouns).
pub fn answer(
    norm: &Normalized,
    words: &[Word<'_>],
    skip: &[bool],
    contact: &[bool],
) -> Option<String> {
    if norm.original.contains('?') {
        return None;
    }
    let mut content: Vec<(usize, Part)> = Vec::with_capacity(3);
    // "меня зовут айгуль": the reply says it is a name, so an unknown word may be lower case.
    let mut introduced = false;
    for (i, w) in words.iter().enumerate() {
        if contact.get(i).copied().unwrap_or(false) || ANSWER_LEAD.contains(&w.text) {
            introduced |= INTRODUCES.contains(&w.text);
            continue;
        }
        if skip.get(i).copied().unwrap_or(false) || content.len() == 3 {
            return None;
        }
        // The name's words stand together ("Анна Сергеевна", not "Анна, это Сергеевна").
        if content.last().is_some_and(|&(j, _)| j + 1 != i) {
            return None;
        }
        let part = part_of(norm, w)?;
        // A word no gazetteer knows is a name when written as one: "Айгуль", not "френч".
        let capitalized = norm.tokens.get(w.token).is_some_and(|t| t.capitalized);
        if part == Part::Unknown && !capitalized && !introduced {
            return None;
        }
        content.push((i, part));
    }
    let given = |p: Part| matches!(p, Part::First | Part::Unknown);
    let order: Vec<usize> = match content.as_slice() {
        [(a, pa)] if *pa != Part::Patronymic => vec![*a],
        // "Анна Сергеевна", "Анна Петрова", "Петрова Анна", "Хасанова Айгуль"
        [(a, pa), (b, pb)] => match (pa, pb) {
            (_, Part::Patronymic) if given(*pa) => vec![*a, *b],
            (Part::Surname, _) if given(*pb) => vec![*b, *a],
            (Part::Unknown, Part::First) => vec![*b, *a],
            (Part::Patronymic, _) | (_, Part::Patronymic) => return None,
            _ => vec![*a, *b],
        },
        // "Иванова Анна Сергеевна", "Анна Сергеевна Иванова": the name is the word before the
        // patronymic, the remaining word the surname.
        [_, _, _] => {
            let p = content
                .iter()
                .position(|&(_, part)| part == Part::Patronymic)?;
            if p == 0 || !given(content[p - 1].1) {
                return None;
            }
            let surname = content
                .iter()
                .enumerate()
                .find(|&(k, &(_, part))| k != p && k != p - 1 && part != Part::Patronymic)?;
            vec![content[p - 1].0, content[p].0, surname.1.0]
        }
        _ => return None,
    };
    let mut out = String::new();
    for (k, &i) in order.iter().enumerate() {
        if k > 0 {
            // "Анна-Мария" stays one name
            let hyphen = order[k - 1] + 1 == i
                && words[i].token == words[i - 1].token + 2
                && norm
                    .tokens
                    .get(words[i].token - 1)
                    .is_some_and(|t| t.is_punct('-'));
            out.push(if hyphen { '-' } else { ' ' });
        }
        out.push_str(&spelled(norm, &words[i]));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlu::normalize::normalize;

    /// `answer` on a message with nothing blocked (no dates, services or cue words).
    fn answer_of(text: &str) -> Option<String> {
        let norm = normalize(text);
        let words: Vec<Word<'_>> = norm
            .tokens
            .iter()
            .enumerate()
            .filter(|(_, t)| t.is_word())
            .map(|(token, t)| Word {
                text: &t.text,
                token,
            })
            .collect();
        let none = vec![false; words.len()];
        answer(&norm, &words, &none, &none)
    }

    #[test]
    fn a_name_reply_is_given_back_as_first_name_patronymic_surname() {
        for (reply, want) in [
            ("Айгуль", "Айгуль"),
            ("лиза", "Лиза"),
            ("Роза", "Роза"),
            ("Алёна", "Алёна"),
            ("Миланa", "Милана"),
            ("Анна Сергеевна", "Анна Сергеевна"),
            ("Петрова Анна", "Анна Петрова"),
            ("Хасанова Айгуль", "Айгуль Хасанова"),
            ("Иванова Анна Сергеевна", "Анна Сергеевна Иванова"),
            ("Анна Сергеевна Иванова", "Анна Сергеевна Иванова"),
            ("сидоров пётр ильич", "Пётр Ильич Сидоров"),
            ("Ким Евгения", "Евгения Ким"),
            ("Анна-Мария", "Анна-Мария"),
            ("меня зовут айгуль", "Айгуль"),
            ("можно просто Настя", "Настя"),
        ] {
            assert_eq!(answer_of(reply).as_deref(), Some(want), "{reply:?}");
        }
    }

    #[test]
    fn a_reply_that_is_no_name_gives_none() {
        for reply in [
            "не хочу говорить",
            "а зачем вам?",
            "Айгуль?",
            "неважно",
            "Поняла",
            "Минуточку",
            "Коррекция",
            "Новосибирск",
            "Ммм",
            "айгуль", // lower case and unknown: not written as a name
            "Сергеевна",
            "Анна Сергеевна Петровна Иванова",
            "Анна, это Сергеевна",
            "WhatsApp",
            "",
        ] {
            assert_eq!(answer_of(reply), None, "{reply:?}");
        }
    }
}
