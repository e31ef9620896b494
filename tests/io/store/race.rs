//! No double booking: many clients pressing the same slot at the same moment get exactly one
//! booking; every other one is offered the next free slots.

use bot::engine::Payload;
use std::sync::Arc;
use testkit::db::*;

const CLIENTS: usize = 50;

async fn fifty_clients_racing_for_one_slot_get_exactly_one_booking(db: &TestDb) {
    let engine = Arc::new(engine());
    // Monday: Ольга is the only manicure master, so a loser cannot get the same time.
    let slot = olga(nov(23, 15, 0));
    for n in 0..CLIENTS {
        offer(db, &client(100 + n), &slot, None, now()).await;
    }
    let start = Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let mut tasks = Vec::new();
    for n in 0..CLIENTS {
        let (store, engine, start, slot) = (
            db.store.clone(),
            engine.clone(),
            start.clone(),
            slot.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let inbound = bot::domain::Inbound {
                client: client(100 + n),
                at: now(),
                event: press(&Payload::slot(&slot)),
            };
            start.wait().await;
            store
                .process_inbound(&engine, &format!("race-{n}"), &inbound, now())
                .await
        }));
    }
    let mut winners = 0;
    let mut offered_others = 0;
    for t in tasks {
        let p = processed(t.await.expect("task").expect("processed"));
        match booked(&p) {
            Some(b) => {
                winners += 1;
                assert_eq!(b.slot, slot);
            }
            None => {
                let buttons = &p.turn.replies[0].buttons;
                assert!(!buttons.is_empty(), "{:?}", templates(&p));
                let taken = Payload::slot(&slot).encode();
                assert!(buttons.iter().all(|b| b.payload != taken), "{buttons:?}");
                offered_others += 1;
            }
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(offered_others, CLIENTS - 1);
    let stored = db
        .store
        .bookings_between(slot.start, slot.end)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(db.store.counts().await.unwrap().processed_inbound, 50);
}

async fn buffer_between_visits_is_respected(db: &TestDb) {
    let engine = engine();
    book(db, &engine, &client(1), &olga(nov(23, 12, 0)), now()).await;
    // 13:00 starts right at the end of 12:00–13:00, inside the 10-minute buffer.
    let next = olga(nov(23, 13, 0));
    offer(db, &client(2), &next, None, now()).await;
    let p = processed(
        send(
            db,
            &engine,
            &client(2),
            "b-2",
            press(&Payload::slot(&next)),
            now(),
        )
        .await,
    );
    assert!(booked(&p).is_none(), "{:?}", templates(&p));
    assert_eq!(db.store.counts().await.unwrap().active_bookings, 1);
}

both!(
    fifty_clients_racing_for_one_slot_get_exactly_one_booking,
    buffer_between_visits_is_respected,
);
