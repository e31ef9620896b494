//! iCalendar (RFC 5545) export of bookings, for `bot calendar export` and the `.ics` feed of
//! `bot serve`. Hand-written because the output is small and every rule that matters is
//! tested here: CRLF line ends, lines folded at 75 octets without splitting a UTF-8 character,
//! TEXT values escaped, one stable `UID` per booking (`booking-<id>@bot`) with a `SEQUENCE`
//! that grows on every change, and times in UTC (`…Z`), which every calendar app converts to
//! its own zone (`X-WR-TIMEZONE` names the business zone as a display hint). Cancelled
//! bookings stay in the feed with `STATUS:CANCELLED`, so subscribed calendars drop them.
//! Inputs come from the store; this module does no I/O.

use crate::config::Profile;
use crate::domain::{Booking, BookingStatus};
use chrono::{DateTime, Utc};
use std::fmt::Write;

/// One booking to export, with the bookkeeping a calendar needs.
#[derive(Debug, Clone, Copy)]
pub struct IcsEntry<'a> {
    pub booking: &'a Booking,
    /// Changes since creation (iCalendar `SEQUENCE`).
    pub sequence: i64,
    /// Last change (`DTSTAMP`, `LAST-MODIFIED`).
    pub updated_at: DateTime<Utc>,
    pub client_name: Option<&'a str>,
}

/// The stable iCalendar UID of a booking.
pub fn booking_uid(booking: &Booking) -> String {
    format!("booking-{}@bot", booking.id)
}

/// A VCALENDAR with one VEVENT per entry.
pub fn to_ics(profile: &Profile, entries: &[IcsEntry<'_>]) -> String {
    let mut out = String::new();
    let mut line = |name: &str, value: &str| fold_into(&mut out, &format!("{name}:{value}"));
    line("BEGIN", "VCALENDAR");
    line("VERSION", "2.0");
    line("PRODID", "-//bot//bookings//RU");
    line("CALSCALE", "GREGORIAN");
    line("X-WR-CALNAME", &escape_text(&profile.business.name));
    line("X-WR-TIMEZONE", profile.business.timezone.name());
    for e in entries {
        let b = e.booking;
        let service = profile
            .service(&b.service)
            .map_or(b.service.as_str(), |s| s.name.as_str());
        let staff = profile
            .staff_member(&b.slot.staff)
            .map_or(b.slot.staff.as_str(), |s| s.name.as_str());
        let summary = match e.client_name {
            Some(name) => format!("{service} — {name}"),
            None => service.to_string(),
        };
        let description = format!(
            "Запись №{}\nМастер: {staff}\nКлиент: {} ({})\nСтатус: {}",
            b.id,
            e.client_name.unwrap_or("—"),
            b.client.channel,
            status_ru(b.status)
        );
        line("BEGIN", "VEVENT");
        line("UID", &booking_uid(b));
        line("DTSTAMP", &utc(e.updated_at));
        line("LAST-MODIFIED", &utc(e.updated_at));
        line("DTSTART", &utc(b.slot.start));
        line("DTEND", &utc(b.slot.end));
        line("SEQUENCE", &e.sequence.max(0).to_string());
        line("STATUS", ical_status(b.status));
        line("SUMMARY", &escape_text(&summary));
        line("DESCRIPTION", &escape_text(&description));
        line("LOCATION", &escape_text(&profile.business.address));
        line("END", "VEVENT");
    }
    line("END", "VCALENDAR");
    out
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

fn ical_status(s: BookingStatus) -> &'static str {
    match s {
        BookingStatus::Cancelled | BookingStatus::Rescheduled => "CANCELLED",
        BookingStatus::Booked
        | BookingStatus::Confirmed
        | BookingStatus::Completed
        | BookingStatus::NoShow => "CONFIRMED",
    }
}

fn status_ru(s: BookingStatus) -> &'static str {
    match s {
        BookingStatus::Booked => "записан",
        BookingStatus::Confirmed => "подтвердил визит",
        BookingStatus::Cancelled => "отменена",
        BookingStatus::Rescheduled => "перенесена",
        BookingStatus::Completed => "визит состоялся",
        BookingStatus::NoShow => "не пришёл",
    }
}

/// Escape a TEXT value (RFC 5545 §3.3.11): backslash, semicolon, comma, newline.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Append a content line, folded so no physical line exceeds 75 octets (RFC 5545 §3.1):
/// continuation lines start with one space; a UTF-8 character is never split.
fn fold_into(out: &mut String, line: &str) {
    const LIMIT: usize = 75;
    let mut used = 0;
    for c in line.chars() {
        if used + c.len_utf8() > LIMIT {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += c.len_utf8();
    }
    let _ = out.write_str("\r\n");
}

/// Undo folding (for tests and readers): CRLF followed by a space or tab is removed.
pub fn unfold(ics: &str) -> String {
    ics.replace("\r\n ", "").replace("\r\n\t", "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::demo_salon;
    use crate::domain::{BookingId, ChannelKind, ClientRef, ServiceId, Slot, StaffId};

    fn booking(id: &str, status: BookingStatus) -> Booking {
        let start = DateTime::parse_from_rfc3339("2026-11-20T15:00:00+07:00")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        Booking {
            id: BookingId(id.into()),
            client: ClientRef {
                channel: ChannelKind::Telegram,
                id: "1001".into(),
            },
            service: ServiceId("manicure".into()),
            slot: Slot {
                start,
                end: start + chrono::Duration::minutes(60),
                staff: StaffId("olga".into()),
            },
            status,
        }
    }

    fn export(b: &Booking, name: Option<&str>) -> String {
        let entry = IcsEntry {
            booking: b,
            sequence: 2,
            updated_at: b.slot.start - chrono::Duration::days(1),
            client_name: name,
        };
        to_ics(&demo_salon(), &[entry])
    }

    #[test]
    fn every_line_ends_in_crlf_and_fits_75_octets() {
        let b = booking("123456", BookingStatus::Booked);
        let ics = export(
            &b,
            Some("Анна Сергеевна Длиннофамильная-Двойная, VIP; клиент"),
        );
        assert!(ics.ends_with("\r\n"));
        for line in ics.split("\r\n") {
            assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
            assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
        }
        // Long Cyrillic values were folded and come back whole.
        let unfolded = unfold(&ics);
        assert!(unfolded.contains(
            "SUMMARY:маникюр — Анна Сергеевна Длиннофамильная-Двойная\\, VIP\\; клиент\r\n"
        ));
    }

    #[test]
    fn folding_never_splits_a_character() {
        let mut out = String::new();
        let value = "ж".repeat(100);
        fold_into(&mut out, &format!("DESCRIPTION:{value}"));
        let lines: Vec<&str> = out.trim_end_matches("\r\n").split("\r\n").collect();
        assert!(lines.len() > 2);
        assert!(lines.iter().all(|l| l.len() <= 75));
        assert!(lines[1..].iter().all(|l| l.starts_with(' ')));
        assert_eq!(unfold(&out), format!("DESCRIPTION:{value}\r\n"));
    }

    #[test]
    fn event_has_stable_uid_utc_times_and_status() {
        let b = booking("042042", BookingStatus::Booked);
        let ics = unfold(&export(&b, None));
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:"));
        assert!(ics.contains("UID:booking-042042@bot\r\n"));
        assert!(
            ics.contains("DTSTART:20261120T080000Z\r\n"),
            "15:00 NSK is 08:00 UTC"
        );
        assert!(ics.contains("DTEND:20261120T090000Z\r\n"));
        assert!(ics.contains("DTSTAMP:20261119T080000Z\r\n"));
        assert!(ics.contains("SEQUENCE:2\r\n"));
        assert!(ics.contains("STATUS:CONFIRMED\r\n"));
        assert!(ics.contains("X-WR-TIMEZONE:Asia/Novosibirsk\r\n"));
        assert!(ics.ends_with("END:VEVENT\r\nEND:VCALENDAR\r\n"));
        let cancelled = unfold(&export(&booking("042042", BookingStatus::Cancelled), None));
        assert!(cancelled.contains("UID:booking-042042@bot\r\n"));
        assert!(cancelled.contains("STATUS:CANCELLED\r\n"));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape_text("a,b;c\\d\r\ne"), "a\\,b\\;c\\\\d\\ne");
        assert_ne!(escape_text("a,b"), "a,b", "a comma must not pass unescaped");
    }
}
