//! The iCalendar export of stored bookings: valid RFC 5545 that calendar apps import, with
//! stable UIDs and cancelled bookings marked as such.

use bot::calendar::ical::{IcsEntry, to_ics, unfold};
use bot::engine::Payload;
use testkit::db::*;

async fn export(db: &TestDb) -> String {
    let stored = db
        .store
        .bookings_between(nov(20, 0, 0), nov(30, 0, 0))
        .await
        .unwrap();
    let entries: Vec<IcsEntry<'_>> = stored.iter().map(|s| s.ics_entry()).collect();
    to_ics(&bot::config::demo_salon(), &entries)
}

/// Structural RFC 5545 checks a calendar app relies on.
pub fn assert_valid_ics(ics: &str) {
    assert!(ics.ends_with("\r\n"));
    for line in ics.split("\r\n") {
        assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
        assert!(!line.contains('\n'), "bare LF in {line:?}");
    }
    let text = unfold(ics);
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.first(), Some(&"BEGIN:VCALENDAR"));
    assert_eq!(lines.last(), Some(&"END:VCALENDAR"));
    assert!(lines.contains(&"VERSION:2.0"));
    assert!(lines.iter().any(|l| l.starts_with("PRODID:")));
    let mut depth = 0;
    let mut uids = std::collections::HashSet::new();
    for l in &lines {
        if l.starts_with("BEGIN:") {
            depth += 1;
        } else if l.starts_with("END:") {
            depth -= 1;
        } else if let Some(uid) = l.strip_prefix("UID:") {
            assert!(uids.insert(uid.to_string()), "duplicate UID {uid}");
        }
        assert!(l.contains(':'), "not a content line: {l:?}");
    }
    assert_eq!(depth, 0);
    let events = lines.iter().filter(|l| **l == "BEGIN:VEVENT").count();
    assert_eq!(uids.len(), events, "one UID per event");
}

async fn export_has_one_event_per_booking_with_stable_uids(db: &TestDb) {
    let engine = engine();
    let kept = book(db, &engine, &client(1), &olga(nov(23, 15, 0)), now()).await;
    let gone = book(db, &engine, &client(2), &olga(nov(24, 11, 0)), now()).await;
    let first = export(db).await;
    assert_valid_ics(&first);
    send(
        db,
        &engine,
        &client(2),
        "x-1",
        press(&Payload::Cancel),
        now(),
    )
    .await;
    send(db, &engine, &client(2), "x-2", press(&Payload::Yes), now()).await;
    let ics = export(db).await;
    assert_valid_ics(&ics);
    let text = unfold(&ics);
    assert_eq!(text.matches("BEGIN:VEVENT").count(), 2);
    for id in [&kept, &gone] {
        let uid = format!("UID:booking-{id}@bot\r\n");
        assert!(first.contains(&uid) && text.contains(&uid), "{uid}");
    }
    assert!(
        text.contains("DTSTART:20261123T080000Z\r\n"),
        "15:00 NSK = 08:00 UTC"
    );
    assert!(text.contains("STATUS:CANCELLED\r\nSUMMARY:маникюр — Анна"));
    assert!(
        text.contains("SEQUENCE:1\r\n"),
        "the cancel bumped the sequence"
    );
    assert!(text.contains("LOCATION:Новосибирск\\, ул. Гоголя\\, 23"));
}

both!(export_has_one_event_per_booking_with_stable_uids);
