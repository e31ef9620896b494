//! What the model may know and say: the business's knowledge as the prompt gives it (FAQ,
//! services with prices and notes, hours, address, promotions, booking rules — nothing about
//! any client), the check that an answer holds no number, link or discount that is not in that
//! knowledge, and the placeholders that replace a client's phone, e-mail and name before a
//! message leaves the machine. Pure functions.

use crate::config::Profile;
use crate::engine::reply::{fmt_price, fmt_week_hours};
use std::fmt::Write;

/// The knowledge an answer may use, as plain Russian text.
pub fn knowledge(profile: &Profile) -> String {
    let b = &profile.business;
    let mut k = String::new();
    let _ = writeln!(k, "Название: {}", b.name);
    let _ = writeln!(k, "Адрес: {}", b.address);
    let _ = writeln!(k, "Телефон: {}", b.phone);
    if let Some(site) = &b.website {
        let _ = writeln!(k, "Сайт: {site}");
    }
    let _ = writeln!(k, "Часы работы: {}", fmt_week_hours(&profile.hours));
    let _ = writeln!(k, "Услуги:");
    for s in &profile.services {
        let _ = write!(
            k,
            "- {} — {}, {} мин",
            s.name,
            fmt_price(s.price),
            s.duration_minutes
        );
        if let Some(note) = &s.price_note {
            let _ = write!(k, " ({note})");
        }
        k.push('\n');
    }
    if !profile.staff.is_empty() {
        let _ = writeln!(k, "Мастера:");
        for m in &profile.staff {
            let _ = writeln!(k, "- {} — {}", m.name, m.role);
        }
    }
    if !profile.promotions.is_empty() {
        let _ = writeln!(k, "Акции:");
        for p in &profile.promotions {
            let _ = writeln!(k, "- {}: {}", p.title, p.text);
        }
    }
    if !profile.faq.is_empty() {
        let _ = writeln!(k, "Частые вопросы:");
        for f in &profile.faq {
            let _ = writeln!(k, "- {}", f.answer);
        }
    }
    let r = &profile.booking;
    let _ = writeln!(
        k,
        "Запись: не позднее чем за {} мин до начала, на {} дней вперёд.",
        r.min_notice_minutes, r.horizon_days
    );
    k
}

/// The numbers of a text: digit runs, with thousands written as «1 800» joined into «1800».
pub fn numbers(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut run = String::new();
        while i < chars.len() {
            if chars[i].is_ascii_digit() {
                run.push(chars[i]);
                i += 1;
            } else if matches!(chars[i], ' ' | '\u{a0}' | '\u{202f}' | '\u{2009}')
                && chars
                    .get(i + 1..i + 4)
                    .is_some_and(|g| g.iter().all(char::is_ascii_digit))
                && !chars.get(i + 4).is_some_and(char::is_ascii_digit)
                && run.len() <= 3
            {
                // A thousands group: «1 800», «12 500».
                i += 1;
            } else {
                break;
            }
        }
        out.push(run);
    }
    out
}

/// Why an answer cannot be sent, or None when every fact in it is grounded.
pub fn ungrounded(answer: &str, knowledge: &str) -> Option<String> {
    let known = numbers(knowledge);
    if let Some(n) = numbers(answer).into_iter().find(|n| !known.contains(n)) {
        return Some(format!("the number {n} is not in the knowledge"));
    }
    let lower = answer.to_lowercase();
    let known_lower = knowledge.to_lowercase();
    let links = lower.split_whitespace().filter(|w| {
        w.contains("http://") || w.contains("https://") || w.contains("www.") || w.contains(".ru")
    });
    for link in links {
        let bare = link.trim_matches(|c: char| !c.is_alphanumeric() && c != '/');
        if !known_lower.contains(bare) {
            return Some(format!("a link ({bare})"));
        }
    }
    // A discount or a gift is promised only by the rules (promotions), never by the model.
    for promise in ["скидк", "бесплатн", "подар", "промокод", "%"] {
        if lower.contains(promise) {
            return Some(format!("a promise ({promise})"));
        }
    }
    if answer.chars().count() > 700 {
        return Some("too long".into());
    }
    None
}

/// `text` with phones, e-mails and the given names replaced by placeholders.
pub fn mask(text: &str, names: &[&str]) -> String {
    let mut out = text.to_string();
    // Phones: every match the bot's own phone reader finds.
    for _ in 0..8 {
        let found = crate::nlu::phone::find(&out, None);
        let Some(span) = found.span else {
            break;
        };
        out.replace_range(span, "[телефон]");
    }
    // E-mails: a word with an @ and a dot after it.
    out = out
        .split_inclusive(char::is_whitespace)
        .map(|w| {
            let t = w.trim_end();
            match t.split_once('@') {
                Some((user, domain)) if !user.is_empty() && domain.contains('.') => {
                    format!("[email]{}", &w[t.len()..])
                }
                _ => w.to_string(),
            }
        })
        .collect();
    for name in names {
        for part in name.split_whitespace().filter(|p| p.chars().count() >= 2) {
            out = replace_word_ci(&out, part, "[имя]");
        }
    }
    out
}

/// Replace whole words equal to `word` (ignoring case, and its inflected forms that start
/// with all but its last letter: «Анна» also takes «Анну», «Анне»).
fn replace_word_ci(text: &str, word: &str, with: &str) -> String {
    let w: Vec<char> = word.to_lowercase().chars().collect();
    let stem: String = if w.len() > 3 {
        w[..w.len() - 1].iter().collect()
    } else {
        w.iter().collect()
    };
    let mut out = String::with_capacity(text.len());
    let mut current = String::new();
    let flush = |current: &mut String, out: &mut String| {
        let lower = current.to_lowercase();
        let n = lower.chars().count();
        if !current.is_empty() && lower.starts_with(&stem) && n <= stem.chars().count() + 3 {
            out.push_str(with);
        } else {
            out.push_str(current);
        }
        current.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            current.push(c);
        } else {
            flush(&mut current, &mut out);
            out.push(c);
        }
    }
    flush(&mut current, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_join_thousands_and_keep_times_and_dates_apart() {
        assert_eq!(numbers("маникюр 1 800 ₽, 60 мин"), ["1800", "60"]);
        assert_eq!(numbers("с 10:00 до 20:00"), ["10", "00", "20", "00"]);
        assert_eq!(numbers("20.11 в 15:30"), ["20", "11", "15", "30"]);
        assert_eq!(numbers("12 500 ₽"), ["12500"]);
        assert_eq!(numbers("2 1234"), ["2", "1234"]);
        assert!(numbers("без чисел").is_empty());
    }

    #[test]
    fn an_answer_with_an_invented_number_a_link_or_a_discount_is_refused() {
        let profile = crate::config::demo_salon();
        let k = knowledge(&profile);
        assert!(k.contains(&profile.business.address), "{k}");
        let price = fmt_price(profile.services[0].price);
        let good = format!("{} стоит {price}.", profile.services[0].name);
        assert_eq!(ungrounded(&good, &k), None, "{k}");
        assert!(ungrounded("Маникюр стоит 999 ₽.", &k).is_some());
        assert!(ungrounded("Подробности на https://evil.example", &k).is_some());
        assert!(ungrounded("Для вас скидка!", &k).is_some());
        assert!(ungrounded("Скидка 100 % на всё", &k).is_some());
    }

    #[test]
    fn phones_emails_and_names_become_placeholders() {
        let masked = mask(
            "Это Анна, мой номер +7 913 123-45-67, почта anna.k@mail.ru. Запишите Анну",
            &["Анна"],
        );
        assert!(!masked.contains("913"), "{masked}");
        assert!(!masked.contains("anna.k"), "{masked}");
        assert!(!masked.contains("Анн"), "{masked}");
        assert!(
            masked.contains("[телефон]") && masked.contains("[email]"),
            "{masked}"
        );
        assert_eq!(
            mask("сколько стоит маникюр?", &[]),
            "сколько стоит маникюр?"
        );
    }
}
