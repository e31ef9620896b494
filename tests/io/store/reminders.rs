//! Reminders follow the booking: scheduled per profile when it is made, replaced when it
//! moves, removed when it is cancelled, never at night; due ones become turns, and the
//! client's reply flows back into the engine. After a missed visit, the follow-up.

use bot::domain::{BookingStatus, Event, ReminderKind};
use bot::engine::{Payload, Stage};
use bot::store::{Attendance, JobKind, StoreError};
use chrono::Duration;
use testkit::db::*;

async fn reminder_jobs(db: &TestDb) -> Vec<(chrono::DateTime<chrono::Utc>, Event)> {
    db.store
        .pending_jobs()
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.kind == JobKind::Reminder)
        .map(|j| (j.due_at, serde_json::from_str(&j.payload).unwrap()))
        .collect()
}

async fn booking_schedules_day_before_and_soon_reminders(db: &TestDb) {
    let id = book(db, &engine(), &client(1), &olga(nov(23, 15, 0)), now()).await;
    let jobs = reminder_jobs(db).await;
    assert_eq!(
        jobs,
        vec![
            (
                nov(22, 15, 0),
                Event::Reminder {
                    booking: id.clone(),
                    kind: ReminderKind::DayBefore
                }
            ),
            (
                nov(23, 13, 0),
                Event::Reminder {
                    booking: id,
                    kind: ReminderKind::Soon
                }
            ),
        ]
    );
}

async fn reminders_never_fall_in_quiet_hours(db: &TestDb) {
    // Quiet 22:00–09:00. A 10:00 visit: the 2 h reminder (08:00) moves to 09:00.
    book(db, &engine(), &client(1), &olga(nov(23, 10, 0)), now()).await;
    let due: Vec<_> = reminder_jobs(db).await.into_iter().map(|j| j.0).collect();
    assert_eq!(due, vec![nov(22, 10, 0), nov(23, 9, 0)]);
    // A 09:00 visit: 07:00 would move to 09:00, the visit itself: dropped.
    book(db, &engine(), &client(2), &olga(nov(24, 9, 0)), now()).await;
    let due: Vec<_> = reminder_jobs(db).await.into_iter().map(|j| j.0).collect();
    assert_eq!(due, vec![nov(22, 10, 0), nov(23, 9, 0), nov(23, 9, 0)]);
    // Nothing lands in the past: a visit in 3 hours gets the 2 h reminder only.
    book(db, &engine(), &client(3), &olga(nov(20, 13, 0)), now()).await;
    let due: Vec<_> = reminder_jobs(db).await.into_iter().map(|j| j.0).collect();
    assert!(due.contains(&nov(20, 11, 0)), "{due:?}");
    assert!(due.iter().all(|t| *t > now()));
}

async fn moving_a_booking_replaces_its_reminders(db: &TestDb) {
    let engine = engine();
    let c = client(1);
    let id = book(db, &engine, &c, &olga(nov(23, 15, 0)), now()).await;
    let stored = db.store.booking(&id).await.unwrap().unwrap();
    let to = olga(nov(25, 11, 0));
    offer(db, &c, &to, Some(stored.booking), now()).await;
    let p = processed(send(db, &engine, &c, "move", press(&Payload::slot(&to)), now()).await);
    assert_eq!(templates(&p), vec!["rescheduled"]);
    let moved = db.store.booking(&id).await.unwrap().unwrap();
    assert_eq!(moved.booking.slot, to);
    assert_eq!(moved.booking.status, BookingStatus::Booked);
    assert_eq!(moved.sequence, 1, "a calendar sees the change");
    let due: Vec<_> = reminder_jobs(db).await.into_iter().map(|j| j.0).collect();
    assert_eq!(due, vec![nov(24, 11, 0), nov(25, 9, 0)], "old ones removed");
    // The old time is free again for someone else.
    book(db, &engine, &client(2), &olga(nov(23, 15, 0)), now()).await;
}

async fn cancelling_removes_reminders_and_frees_the_slot(db: &TestDb) {
    let engine = engine();
    let c = client(1);
    let slot = olga(nov(23, 15, 0));
    let id = book(db, &engine, &c, &slot, now()).await;
    let later = now() + Duration::minutes(5);
    let p = processed(send(db, &engine, &c, "c-1", press(&Payload::Cancel), later).await);
    assert_eq!(templates(&p), vec!["confirm_cancel"]);
    let p = processed(send(db, &engine, &c, "c-2", press(&Payload::Yes), later).await);
    assert_eq!(templates(&p), vec!["cancelled"]);
    let stored = db.store.booking(&id).await.unwrap().unwrap();
    assert_eq!(stored.booking.status, BookingStatus::Cancelled);
    assert!(reminder_jobs(db).await.is_empty());
    book(db, &engine, &client(2), &slot, later).await;
}

async fn due_reminder_is_a_turn_and_the_reply_confirms(db: &TestDb) {
    let engine = engine();
    let c = client(1);
    let id = book(db, &engine, &c, &olga(nov(23, 15, 0)), now()).await;
    assert!(
        db.store
            .run_due(&engine, nov(22, 14, 59), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let ran = db.store.run_due(&engine, nov(22, 15, 0), 10).await.unwrap();
    assert_eq!(ran.len(), 1);
    assert_eq!(ran[0].client.as_ref(), Some(&c));
    assert_eq!(ran[0].replies.len(), 1);
    let messages = db.store.messages(&c).await.unwrap();
    let last = messages.last().unwrap();
    assert!(last.text.contains("23.11"), "{}", last.text);
    let conv = db.store.conversation(&c).await.unwrap().unwrap();
    assert!(
        matches!(conv.stage, Stage::ReminderSent { .. }),
        "{:?}",
        conv.stage
    );
    // Done once: running again finds nothing; its send job is in the outbox.
    assert!(
        db.store
            .run_due(&engine, nov(22, 15, 1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let p = processed(send(db, &engine, &c, "r-1", press(&Payload::Yes), nov(22, 15, 5)).await);
    assert_eq!(templates(&p), vec!["reminder_confirmed"]);
    let stored = db.store.booking(&id).await.unwrap().unwrap();
    assert_eq!(stored.booking.status, BookingStatus::Confirmed);
}

async fn no_show_mark_schedules_the_follow_up_next_morning(db: &TestDb) {
    let engine = engine();
    let profile = bot::config::demo_salon();
    let c = client(1);
    let id = book(db, &engine, &c, &olga(nov(23, 15, 0)), now()).await;
    let early = db
        .store
        .mark_booking(&profile, &id, Attendance::NoShow, nov(23, 15, 30))
        .await;
    assert!(
        matches!(early, Err(StoreError::CannotMark { .. })),
        "{early:?}"
    );
    let marked = db
        .store
        .mark_booking(&profile, &id, Attendance::NoShow, nov(23, 19, 0))
        .await
        .unwrap();
    assert_eq!(marked.booking.status, BookingStatus::NoShow);
    let jobs = db.store.pending_jobs().await.unwrap();
    let follow: Vec<_> = jobs.iter().filter(|j| j.kind == JobKind::NoShow).collect();
    assert_eq!(follow.len(), 1);
    assert_eq!(
        follow[0].due_at,
        nov(24, 9, 0),
        "next morning, after quiet hours"
    );
    assert!(reminder_jobs(db).await.is_empty());
    let again = db
        .store
        .mark_booking(&profile, &id, Attendance::Completed, nov(23, 19, 0))
        .await;
    assert!(
        matches!(again, Err(StoreError::CannotMark { .. })),
        "{again:?}"
    );
    let ran = db.store.run_due(&engine, nov(24, 9, 0), 10).await.unwrap();
    assert_eq!(ran.len(), 1);
    let last = db.store.messages(&c).await.unwrap();
    let last = last.last().unwrap();
    let reply: bot::domain::Reply = serde_json::from_str(last.payload.as_deref().unwrap()).unwrap();
    assert_eq!(reply.template.as_deref(), Some("noshow_followup"));
}

async fn late_no_show_mark_follows_up_outside_quiet_hours(db: &TestDb) {
    let profile = bot::config::demo_salon();
    let id = book(db, &engine(), &client(1), &olga(nov(23, 15, 0)), now()).await;
    // Marked two days later at 23:30: not at once (night) but at 09:00 next day.
    db.store
        .mark_booking(&profile, &id, Attendance::NoShow, nov(25, 23, 30))
        .await
        .unwrap();
    let jobs = db.store.pending_jobs().await.unwrap();
    let follow = jobs.iter().find(|j| j.kind == JobKind::NoShow).unwrap();
    assert_eq!(follow.due_at, nov(26, 9, 0));
    // Completed schedules nothing.
    let id2 = book(db, &engine(), &client(2), &olga(nov(24, 15, 0)), now()).await;
    db.store
        .mark_booking(&profile, &id2, Attendance::Completed, nov(24, 17, 0))
        .await
        .unwrap();
    let jobs = db.store.pending_jobs().await.unwrap();
    assert_eq!(jobs.iter().filter(|j| j.kind == JobKind::NoShow).count(), 1);
}

both!(
    booking_schedules_day_before_and_soon_reminders,
    reminders_never_fall_in_quiet_hours,
    moving_a_booking_replaces_its_reminders,
    cancelling_removes_reminders_and_frees_the_slot,
    due_reminder_is_a_turn_and_the_reply_confirms,
    no_show_mark_schedules_the_follow_up_next_morning,
    late_no_show_mark_follows_up_outside_quiet_hours,
);
