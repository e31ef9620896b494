//! WhatsApp «Export chat» text, Android (`02.12.2026, 14:05 - Name: text`) and iOS
//! (`[02.12.2026, 14:05:33] Name: text`) line shapes, Russian and English, 24- and 12-hour
//! clocks (any Unicode space before AM/PM), multi-line messages (a line without a header
//! continues the previous message), invisible marks (U+200E, U+202A–U+202E) removed. System
//! lines — the encryption notice, security-code changes, group events, also when iOS writes them
//! as if someone sent them — are not messages; media placeholders and «deleted» ones are
//! messages of their sender. Times are the phone's wall time, read in `--tz`; the day/month
//! order is decided once per file (a field over 12 settles it; else `.` means day first).
//! One export is one chat, titled from the file name.

use super::{ImportError, Parsed, RawMessage, Sender, Skipped};
use crate::store::imports::ImportChat;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use regex::Regex;
use std::path::Path;
use std::sync::LazyLock;

/// `02.12.2026, 14:05 - ` / `12/2/26, 2:05 PM - ` (Android).
static ANDROID: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^(\d{1,2})([./])(\d{1,2})[./](\d{2,4}),?\s(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s?([AaPp])\.?\s?[Mm]\.?)?\s[-–]\s(.*)$")
        .ok()
});

/// `[02.12.2026, 14:05:33] ` / `[12/2/26, 2:05:33 PM] ` (iOS).
static IOS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^\[(\d{1,2})([./])(\d{1,2})[./](\d{2,4}),?\s(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s?([AaPp])\.?\s?[Mm]\.?)?\]\s(.*)$")
        .ok()
});

/// Whether `text` starts like a WhatsApp export.
pub fn looks_like(text: &str) -> bool {
    text.lines().take(5).any(|l| header(&clean(l)).is_some())
}

/// A line without the invisible marks WhatsApp sprinkles (the LRM before media lines, the
/// isolates around phone numbers) and without a trailing CR.
fn clean(line: &str) -> String {
    line.trim_end_matches('\r')
        .chars()
        .filter(|c| {
            !matches!(
                c,
                '\u{200e}' | '\u{200f}' | '\u{feff}' | '\u{202a}'..='\u{202e}'
            )
        })
        .collect()
}

/// The parts of a record's first line.
struct Header {
    a: u32,
    b: u32,
    dot: bool,
    year: i32,
    hour: u32,
    minute: u32,
    second: u32,
    pm: Option<bool>,
    /// The year has four digits (with `/`, that means day first: en-GB).
    long_year: bool,
    rest: String,
}

fn header(line: &str) -> Option<Header> {
    let c = IOS
        .as_ref()?
        .captures(line)
        .or_else(|| ANDROID.as_ref()?.captures(line))?;
    let n = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u32>().ok());
    let year = n(4)? as i32;
    Some(Header {
        a: n(1)?,
        b: n(3)?,
        dot: &c[2] == ".",
        year: if year < 100 { 2000 + year } else { year },
        hour: n(5)?,
        minute: n(6)?,
        second: n(7).unwrap_or(0),
        pm: c.get(8).map(|m| m.as_str().eq_ignore_ascii_case("p")),
        long_year: c[4].len() == 4,
        rest: c[9].to_string(),
    })
}

/// Texts that make a line a system notice, not a message (matched in lower case, with
/// invisible marks removed and any space as a plain one).
const SYSTEM: &[&str] = &[
    "защищены сквозным шифрованием",
    "end-to-end encrypted",
    "код безопасности",
    "security code",
    "создал(-а) группу",
    "создал группу",
    "создала группу",
    "created group",
    "created this group",
    "добавил(-а)",
    "added",
    "вышел(-ла)",
    "left",
    "изменил(-а) тему",
    "changed the subject",
    "changed this group",
    "изменил(-а) описание",
    "теперь администратор",
    "now an admin",
    "joined using this group",
    "присоединился(-ась)",
    "пропущенный аудиозвонок",
    "пропущенный видеозвонок",
    "missed voice call",
    "missed video call",
    "сообщения с исчезновением",
    "disappearing messages",
];

fn is_system(body: &str) -> bool {
    let lower: String = body
        .to_lowercase()
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    SYSTEM.iter().any(|s| lower.contains(s))
}

/// The chat's title from the export's file name (`WhatsApp Chat with X.txt`,
/// `Чат WhatsApp с контактом X.txt`, `WhatsApp Chat - X.zip`); the file stem otherwise.
pub fn title(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .replace('\u{a0}', " ");
    for prefix in [
        "WhatsApp Chat with ",
        "Чат WhatsApp с контактом ",
        "Чат WhatsApp с ",
        "WhatsApp Chat - ",
    ] {
        if let Some(t) = stem.strip_prefix(prefix) {
            return t.trim().to_string();
        }
    }
    stem
}

/// Read a WhatsApp text export.
pub fn read(path: &Path, tz: chrono_tz::Tz) -> Result<Parsed, ImportError> {
    let bytes = std::fs::read(path).map_err(|e| ImportError::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| ImportError::Malformed {
        file: path.to_path_buf(),
        line: 0,
        column: e.utf8_error().valid_up_to(),
        message: "not UTF-8 text (a WhatsApp export is UTF-8)".into(),
    })?;
    parse(&text, path, &title(path), tz)
}

/// Parse export `text` of chat `title` (named `path` in messages).
pub fn parse(
    text: &str,
    path: &Path,
    title: &str,
    tz: chrono_tz::Tz,
) -> Result<Parsed, ImportError> {
    // Two passes over the text, so no copy of it is held: the first decides the day/month
    // order (a field over 12 anywhere settles it), the second reads the messages.
    // Each line: its number, itself without invisible marks, and whether its body began with
    // U+200E (how iOS marks a notice it writes under someone's name).
    let lines = || {
        text.split('\n')
            .enumerate()
            .map(|(i, l)| (i + 1, clean(l), l.contains(": \u{200e}")))
    };
    let mut order = DayOrder::default();
    for (_, line, _) in lines() {
        if let Some(h) = header(&line) {
            order.see(&h);
        }
    }
    if !order.any {
        return Err(ImportError::Malformed {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            message: "no line starts like a WhatsApp message (`02.12.2026, 14:05 - Name: text` \
                      or `[02.12.2026, 14:05:33] Name: text`)"
                .into(),
        });
    }
    let day_first = order.day_first();
    let mut parsed = Parsed::default();
    parsed.chats.push(ImportChat {
        format: "whatsapp",
        channel: "whatsapp".into(),
        chat_key: title.to_string(),
        name: Some(title.to_string()),
        phone: crate::nlu::phone::find(title, None).e164,
    });
    // The record being read: its first line's number, sender, time, text so far, and whether
    // its body began with U+200E.
    type Record = (usize, Option<String>, chrono::DateTime<Utc>, String, bool);
    let mut current: Option<Record> = None;
    let flush = |parsed: &mut Parsed, current: Option<Record>| {
        let Some((line, sender, at, body, marked)) = current else {
            return;
        };
        let Some(sender) = sender else {
            return; // a system line
        };
        if marked && is_system(&body) {
            parsed.skipped.push(Skipped {
                file: path.to_path_buf(),
                line,
                why: "a system notice written as a message".into(),
            });
            return;
        }
        let sender = parsed.sender(Sender::Name(sender));
        parsed.messages.push(RawMessage {
            chat: 0,
            sender,
            at,
            text: body.trim_end().to_string(),
            phone: None,
            id: None,
        });
    };
    for (number, line, marked) in lines() {
        let Some(h) = header(&line) else {
            match &mut current {
                Some((_, _, _, body, _)) => {
                    body.push('\n');
                    body.push_str(&line);
                }
                None if line.trim().is_empty() => {}
                None => parsed.skipped.push(Skipped {
                    file: path.to_path_buf(),
                    line: number,
                    why: "text before the first message".into(),
                }),
            }
            continue;
        };
        flush(&mut parsed, current.take());
        let Some(at) = instant(&h, day_first, tz) else {
            parsed.skipped.push(Skipped {
                file: path.to_path_buf(),
                line: number,
                why: "an impossible date or time".into(),
            });
            continue;
        };
        match h.rest.split_once(": ") {
            Some((name, body)) if !name.is_empty() && name.chars().count() <= 60 => {
                current = Some((
                    number,
                    Some(name.trim().to_string()),
                    at,
                    body.to_string(),
                    marked,
                ));
            }
            _ => {
                current = Some((number, None, at, h.rest.clone(), false));
            }
        }
    }
    flush(&mut parsed, current.take());
    Ok(parsed)
}

/// What the headers say about the day/month order, seen one by one.
#[derive(Default)]
struct DayOrder {
    any: bool,
    /// A first field over 12 (day first) or a second one (month first), whichever came first.
    settled: Option<bool>,
    dot: bool,
    long_year: bool,
}

impl DayOrder {
    fn see(&mut self, h: &Header) {
        self.any = true;
        if self.settled.is_none() {
            if h.a > 12 {
                self.settled = Some(true);
            } else if h.b > 12 {
                self.settled = Some(false);
            }
        }
        self.dot |= h.dot;
        self.long_year |= h.long_year;
    }

    /// Day before month: settled by a field over 12, else `.` or a four-digit year (en-GB).
    fn day_first(&self) -> bool {
        self.settled.unwrap_or(self.dot || self.long_year)
    }
}

fn instant(h: &Header, day_first: bool, tz: chrono_tz::Tz) -> Option<chrono::DateTime<Utc>> {
    let (day, month) = if day_first { (h.a, h.b) } else { (h.b, h.a) };
    let date = NaiveDate::from_ymd_opt(h.year, month, day)?;
    let hour = match h.pm {
        None => h.hour,
        Some(pm) => {
            if h.hour == 0 || h.hour > 12 {
                return None;
            }
            (h.hour % 12) + if pm { 12 } else { 0 }
        }
    };
    let time = NaiveTime::from_hms_opt(hour, h.minute, h.second)?;
    tz.from_local_datetime(&NaiveDateTime::new(date, time))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_line_patterns_compile() {
        assert!(super::ANDROID.is_some() && super::IOS.is_some());
    }
}
