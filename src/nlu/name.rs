//! The client's own name. Trigger phrases first ("меня зовут Анна", "зовут Катя", "моё имя
//! Ольга", "это Ольга Петровна", "я Маша"), then a gazetteer name standing on its own — a
//! signature before or after the phone ("Анна 89131234567") wins over one elsewhere ("запишите
//! Ольгу на маникюр"). Names after "к/у/мастеру/для/с" are somebody else (a master, a child),
//! staff names are excluded by the caller, and names that are everyday words ("вера", "роза")
//! count only after a trigger or when capitalised mid-sentence. The result is the nominative,
//! capitalised ("ольгу" → "Ольга", "аня" → "Аня"), with a patronymic or surname that follows;
//! names typed in Latin letters are kept as written ("Anna").

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

fn is_latin(s: &str) -> bool {
    s.chars().any(|c| c.is_ascii_alphabetic())
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
