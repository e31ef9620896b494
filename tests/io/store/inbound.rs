//! One inbound event, one transaction: everything it implies is stored together, a
//! redelivery changes nothing, and a crash before commit leaves no trace.

use bot::domain::Event;
use bot::engine::{Payload, Stage};
use bot::store::{Handled, JobKind};
use chrono::Duration;
use testkit::db::*;

async fn booking_press_stores_message_state_replies_booking_lead_and_jobs(db: &TestDb) {
    let engine = engine();
    let c = client(1);
    let slot = olga(nov(23, 15, 0));
    offer(db, &c, &slot, None, now()).await;
    let p = processed(send(db, &engine, &c, "tg-1", press(&Payload::slot(&slot)), now()).await);
    assert_eq!(templates(&p), vec!["booked"], "{:?}", p.turn.replies);
    let booking = booked(&p).expect("a booking");
    assert_eq!(p.attempts, 1);

    let stored = db
        .store
        .booking(&booking.id)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored.booking, booking);
    assert_eq!(stored.sequence, 0);
    assert_eq!(stored.client_name.as_deref(), Some("Анна"));

    let conv = db.store.conversation(&c).await.unwrap().expect("state");
    assert_eq!(conv.stage, Stage::Idle);
    assert_eq!(conv, p.turn.conversation);

    let messages = db.store.messages(&c).await.unwrap();
    assert_eq!(messages.len(), 1 + p.replies.len());
    let inbound = &messages[0];
    assert!(inbound.inbound);
    assert_eq!(inbound.kind, "button");
    assert_eq!(inbound.inbound_id.as_deref(), Some("tg-1"));
    assert_eq!(inbound.received_at, Some(now() - Duration::seconds(1)));
    assert_eq!(inbound.created_at, now());
    let reply = &messages[1];
    assert!(!reply.inbound);
    assert_eq!(reply.reply_to, Some(inbound.id));
    assert_eq!(reply.text, p.turn.replies[0].text);
    assert_eq!(reply.sent_at, None);

    let leads = db.store.leads().await.unwrap();
    assert_eq!(leads.len(), 1, "qualified: service, time, phone");
    assert_eq!(leads[0].contact.phone.as_deref(), Some("+79131234567"));
    assert_eq!(leads[0].crm_state, "pending");

    let jobs = db.store.pending_jobs().await.unwrap();
    let count = |k: JobKind| jobs.iter().filter(|j| j.kind == k).count();
    assert_eq!(count(JobKind::Send), p.replies.len());
    assert_eq!(count(JobKind::Reminder), 2, "24 h and 2 h before");
    assert_eq!(count(JobKind::CrmBooking), 1);
    assert_eq!(count(JobKind::CrmLead), 1);

    let counts = db.store.counts().await.unwrap();
    assert_eq!(counts.processed_inbound, 1);
    assert_eq!(counts.active_bookings, 1);
}

async fn redelivered_inbound_is_a_duplicate_and_changes_nothing(db: &TestDb) {
    let engine = engine();
    let c = client(2);
    let slot = olga(nov(23, 11, 0));
    offer(db, &c, &slot, None, now()).await;
    let event = press(&Payload::slot(&slot));
    processed(send(db, &engine, &c, "wa-77", event.clone(), now()).await);
    let before = db.store.counts().await.unwrap();
    let again = send(
        db,
        &engine,
        &c,
        "wa-77",
        event,
        now() + Duration::seconds(5),
    )
    .await;
    assert_eq!(again, Handled::Duplicate);
    assert_eq!(db.store.counts().await.unwrap(), before);
    // Another id is a new message.
    let other = send(db, &engine, &c, "wa-78", press(&Payload::Prices), now()).await;
    assert!(matches!(other, Handled::Processed(_)));
    assert!(db.store.counts().await.unwrap().messages > before.messages);
}

async fn crash_before_commit_leaves_nothing_and_the_retry_succeeds(db: &TestDb) {
    let engine = engine();
    let c = client(3);
    let slot = olga(nov(24, 12, 0));
    offer(db, &c, &slot, None, now()).await;
    let seeded = db.store.counts().await.unwrap();
    let inbound = bot::domain::Inbound {
        client: c.clone(),
        at: now(),
        event: press(&Payload::slot(&slot)),
    };
    db.store.inject_fault_before_commit(true);
    let err = db
        .store
        .process_inbound(&engine, "tg-crash", &inbound, now())
        .await
        .expect_err("the injected crash");
    assert!(
        matches!(err, bot::store::StoreError::InjectedFault),
        "{err}"
    );
    db.store.inject_fault_before_commit(false);
    assert_eq!(
        db.store.counts().await.unwrap(),
        seeded,
        "nothing half-written"
    );
    let conv = db.store.conversation(&c).await.unwrap().expect("seeded");
    assert!(
        matches!(conv.stage, Stage::ChoosingSlot { .. }),
        "state untouched"
    );
    // The dedup id was rolled back too: the redelivery is processed for real.
    let p = processed(
        db.store
            .process_inbound(&engine, "tg-crash", &inbound, now())
            .await
            .unwrap(),
    );
    assert!(booked(&p).is_some());
    assert_eq!(db.store.counts().await.unwrap().active_bookings, 1);
}

async fn system_events_are_turns_but_not_client_messages(db: &TestDb) {
    let engine = engine();
    let c = client(4);
    let p = processed(send(db, &engine, &c, "mgr-1", Event::Released, now()).await);
    assert_eq!(p.message, None);
    assert!(
        db.store
            .messages(&c)
            .await
            .unwrap()
            .iter()
            .all(|m| !m.inbound)
    );
    assert!(db.store.conversation(&c).await.unwrap().is_some());
}

async fn outbox_send_marks_the_reply_sent(db: &TestDb) {
    let engine = engine();
    let c = client(5);
    let p = processed(send(db, &engine, &c, "tg-5", press(&Payload::Prices), now()).await);
    assert!(!p.replies.is_empty());
    let jobs = db
        .store
        .claim_outbox(&[JobKind::Send], now(), Duration::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(jobs.len(), p.replies.len());
    for job in &jobs {
        let payload: serde_json::Value = serde_json::from_str(&job.payload).unwrap();
        let id = payload["message"].as_i64().expect("message id");
        let sent = now() + Duration::milliseconds(40);
        assert_eq!(db.store.mark_messages_sent(&[id], sent).await.unwrap(), 1);
        assert!(db.store.complete_job(job.id, sent).await.unwrap());
        assert!(!db.store.complete_job(job.id, sent).await.unwrap(), "once");
    }
    let messages = db.store.messages(&c).await.unwrap();
    assert!(
        messages
            .iter()
            .filter(|m| !m.inbound)
            .all(|m| m.sent_at.is_some())
    );
}

async fn a_taken_booking_number_is_replaced_everywhere(db: &TestDb) {
    let engine = engine();
    let c = client(6);
    let slot = olga(nov(23, 15, 0));
    let first = book(db, &engine, &c, &slot, now()).await;
    send(db, &engine, &c, "n-1", press(&Payload::Cancel), now()).await;
    send(db, &engine, &c, "n-2", press(&Payload::Yes), now()).await;
    // The same conversation state and slot again: the engine derives the same number.
    offer(db, &c, &slot, None, now()).await;
    let p = processed(send(db, &engine, &c, "n-3", press(&Payload::slot(&slot)), now()).await);
    let second = booked(&p).expect("booked again");
    assert_ne!(second.id, first, "a fresh number");
    assert!(db.store.booking(&second.id).await.unwrap().is_some());
    let old = db.store.booking(&first).await.unwrap().unwrap();
    assert_eq!(old.booking.status, bot::domain::BookingStatus::Cancelled);
    let jobs = db.store.pending_jobs().await.unwrap();
    let reminders: Vec<_> = jobs
        .iter()
        .filter(|j| j.kind == JobKind::Reminder)
        .collect();
    assert_eq!(reminders.len(), 2);
    assert!(
        reminders
            .iter()
            .all(|j| j.booking.as_ref() == Some(&second.id))
    );
}

/// Retention empties old texts (client messages, and replies already sent) and keeps every
/// row and time for the KPIs; newer texts and replies still waiting to go out stay.
async fn retention_empties_old_texts_and_keeps_the_rows(db: &TestDb) {
    let engine = engine();
    let c = client(7);
    let old = now() - Duration::days(40);
    send(
        db,
        &engine,
        &c,
        "old-1",
        Event::Text {
            text: "сколько стоит маникюр?".into(),
        },
        old,
    )
    .await;
    let mut messages = db.store.messages(&c).await.unwrap();
    let sent: Vec<i64> = messages
        .iter()
        .filter(|m| !m.inbound)
        .map(|m| m.id)
        .collect();
    assert!(!sent.is_empty());
    db.store.mark_messages_sent(&sent[..1], old).await.unwrap();
    send(
        db,
        &engine,
        &c,
        "new-1",
        Event::Text {
            text: "а педикюр?".into(),
        },
        now(),
    )
    .await;
    let before = db.store.messages(&c).await.unwrap();

    let emptied = db
        .store
        .forget_texts(now() - Duration::days(30))
        .await
        .unwrap();
    assert_eq!(emptied, 2, "the old question and its sent reply");
    messages = db.store.messages(&c).await.unwrap();
    assert_eq!(messages.len(), before.len(), "no row is deleted");
    for (m, b) in messages.iter().zip(&before) {
        assert_eq!(
            (m.id, m.created_at, m.sent_at),
            (b.id, b.created_at, b.sent_at)
        );
        let old_and_done =
            m.created_at < now() - Duration::days(30) && (m.inbound || m.sent_at.is_some());
        if old_and_done {
            assert_eq!((m.text.as_str(), m.payload.as_deref()), ("", None), "{m:?}");
        } else {
            assert_eq!(m.text, b.text, "kept: {m:?}");
        }
    }
    assert_eq!(
        db.store
            .forget_texts(now() - Duration::days(30))
            .await
            .unwrap(),
        0
    );
}

both!(
    retention_empties_old_texts_and_keeps_the_rows,
    a_taken_booking_number_is_replaced_everywhere,
    booking_press_stores_message_state_replies_booking_lead_and_jobs,
    redelivered_inbound_is_a_duplicate_and_changes_nothing,
    crash_before_commit_leaves_nothing_and_the_retry_succeeds,
    system_events_are_turns_but_not_client_messages,
    outbox_send_marks_the_reply_sent,
);
