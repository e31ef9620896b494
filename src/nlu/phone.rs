//! Phone numbers in the original message text → E.164. Our own candidate finder (digits with
//! `+`, spaces, dashes and brackets between them, spaced single digits, text glued in front
//! like "тел.89131234567") feeds the `phonenumber` crate, which validates and formats with
//! region RU. Toll-free 8-800 numbers are not a client's phone; a 10–12 digit candidate that
//! does not validate sets `invalid` so the bot can ask again. Dates, times and prices never
//! reach 10 digits in one run (`.` and `:` end a run), so they are never read as phones.

use std::ops::Range;

/// What the finder saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneFound {
    /// The first valid number, E.164.
    pub e164: Option<String>,
    /// Byte range of that number in the original text.
    pub span: Option<Range<usize>>,
    /// A phone-like candidate did not validate.
    pub invalid: bool,
}

/// One run of digits (a group) inside a candidate.
#[derive(Debug, Clone)]
struct Group {
    start: usize,
    end: usize,
    digits: u8,
}

fn is_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '-' | '(' | ')' | '\u{a0}' | '\u{2011}' | '\u{2013}' | '\u{2014}'
    )
}

enum Verdict {
    Valid(String),
    /// Valid but not a client's number (8-800).
    Reject,
    Invalid,
}

fn check(digits: &str, plus: bool) -> Verdict {
    let candidate = if plus {
        format!("+{digits}")
    } else {
        match (digits.len(), digits.as_bytes().first()) {
            (11, Some(b'8')) | (11, Some(b'7')) => format!("+7{}", &digits[1..]),
            (10, _) => format!("+7{digits}"),
            _ => return Verdict::Invalid,
        }
    };
    // Toll-free lines are a business's, never a client's (checked on the digits: the crate
    // reads "+7800…" as a national number without the 800).
    if candidate.starts_with("+7800") {
        return Verdict::Reject;
    }
    let Ok(number) = phonenumber::parse(Some(phonenumber::country::Id::RU), &candidate) else {
        return Verdict::Invalid;
    };
    if !number.is_valid() {
        return Verdict::Invalid;
    }
    Verdict::Valid(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// Digit groups of one candidate starting at byte `from` (a digit or `+`).
fn collect_groups(text: &str, from: usize) -> (Vec<Group>, usize) {
    let mut groups: Vec<Group> = Vec::new();
    let mut pos = from;
    let bytes = text.as_bytes();
    if bytes.get(pos) == Some(&b'+') {
        pos += 1;
    }
    loop {
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos > start {
            groups.push(Group {
                start,
                end: pos,
                digits: (pos - start).min(255) as u8,
            });
        }
        // Up to three separator characters may join two groups: "8 (913) 123 - 45 - 67".
        let mut look = pos;
        let mut seps = 0;
        for c in text[pos..].chars() {
            if seps < 3 && is_separator(c) {
                look += c.len_utf8();
                seps += 1;
            } else {
                break;
            }
        }
        if look > pos && bytes.get(look).is_some_and(u8::is_ascii_digit) {
            pos = look;
        } else {
            return (groups, pos);
        }
    }
}

/// Find the client's phone in `text`, skipping bytes inside `exclude` (an e-mail address).
pub fn find(text: &str, exclude: Option<&Range<usize>>) -> PhoneFound {
    let mut found = PhoneFound::default();
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut digits = String::with_capacity(16);
    while i < bytes.len() {
        let b = bytes[i];
        let starts = b.is_ascii_digit()
            || (b == b'+' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
            || (b == b'(' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit));
        if !starts || exclude.is_some_and(|r| r.contains(&i)) {
            i += 1;
            continue;
        }
        let plus = b == b'+';
        let (groups, end) = collect_groups(text, if b == b'(' { i + 1 } else { i });
        i = end.max(i + 1);
        // Longest run of whole groups (10–12 digits) that validates; the first one wins.
        let mut best: Option<(usize, Range<usize>, String)> = None;
        let mut phone_like = false;
        for a in 0..groups.len() {
            let mut count = 0usize;
            for z in a..groups.len() {
                count += usize::from(groups[z].digits);
                if count > 12 {
                    break;
                }
                if count < 10 {
                    continue;
                }
                digits.clear();
                for g in &groups[a..=z] {
                    digits.push_str(&text[g.start..g.end]);
                }
                let with_plus = plus && a == 0;
                let first = digits.as_bytes().first().copied();
                let shaped = with_plus
                    || (count == 10 && matches!(first, Some(b'3'..=b'9')))
                    || (count >= 11 && matches!(first, Some(b'7' | b'8')));
                if !shaped {
                    continue;
                }
                match check(&digits, with_plus) {
                    Verdict::Valid(e164) => {
                        if best.as_ref().is_none_or(|(n, _, _)| count > *n) {
                            let span = if with_plus {
                                i.min(groups[a].start.saturating_sub(1))..groups[z].end
                            } else {
                                groups[a].start..groups[z].end
                            };
                            best = Some((count, span, e164));
                        }
                    }
                    Verdict::Reject => {}
                    Verdict::Invalid => phone_like = true,
                }
            }
        }
        match best {
            Some((_, span, e164)) if found.e164.is_none() => {
                found.e164 = Some(e164);
                found.span = Some(span);
            }
            Some(_) => {}
            None => found.invalid |= phone_like,
        }
    }
    if found.e164.is_some() {
        found.invalid = false;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e164(s: &str) -> Option<String> {
        find(s, None).e164
    }

    #[test]
    fn reads_every_russian_format() {
        for s in [
            "89131234567",
            "+79131234567",
            "8 913 123 45 67",
            "8 (913) 123-45-67",
            "+7 (913) 123-45-67",
            "тел.89131234567",
            "т. 8-913-123-45-67",
            "9131234567",
            "7 913 1234567",
            "8 9 1 3 1 2 3 4 5 6 7",
            "мой номер 8913 123 4567 спасибо",
            "завтра в 15 89131234567",
        ] {
            assert_eq!(e164(s).as_deref(), Some("+79131234567"), "{s}");
        }
        assert_eq!(e164("8 (383) 209-12-34").as_deref(), Some("+73832091234"));
    }

    #[test]
    fn rejects_toll_free_dates_prices_and_short_numbers() {
        for s in [
            "8-800-555-35-35",
            "20.11 в 15:00",
            "стоит 1500 или 2000 руб",
            "2026-11-20 15:00",
            "с 10 до 12",
            "123-45-67",
        ] {
            let f = find(s, None);
            assert_eq!(f.e164, None, "{s}");
            assert!(!f.invalid, "{s}");
        }
    }

    #[test]
    fn flags_phone_like_numbers_that_do_not_validate() {
        let f = find("мой номер 8913123456", None);
        assert_eq!(f.e164, None);
        assert!(f.invalid);
        let f = find("89131234567", Some(&(0..11)));
        assert_eq!(f.e164, None);
    }
}
