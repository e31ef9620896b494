//! A restart loses nothing: reopening the database shows the same state, and migrations are
//! applied once.

use bot::engine::Payload;
use bot::store::Store;
use testkit::db::*;

async fn state_survives_reopening(db: &TestDb) {
    let engine = engine();
    let c = client(1);
    let id = book(db, &engine, &c, &olga(nov(23, 15, 0)), now()).await;
    processed(send(db, &engine, &c, "after", press(&Payload::Prices), now()).await);
    let counts = db.store.counts().await.unwrap();
    let conv = db.store.conversation(&c).await.unwrap();
    let jobs = db.store.pending_jobs().await.unwrap();
    db.store.close().await;

    let reopened = Store::open(&db.url).await.unwrap();
    assert_eq!(reopened.counts().await.unwrap(), counts);
    assert_eq!(reopened.conversation(&c).await.unwrap(), conv);
    assert_eq!(reopened.pending_jobs().await.unwrap(), jobs);
    assert!(reopened.booking(&id).await.unwrap().is_some());
    // The reopened store keeps working, and dedup ids survived.
    let inbound = bot::domain::Inbound {
        client: c.clone(),
        at: now(),
        event: press(&Payload::Prices),
    };
    let again = reopened
        .process_inbound(&engine, "after", &inbound, now())
        .await
        .unwrap();
    assert_eq!(again, bot::store::Handled::Duplicate);
    reopened.close().await;
}

async fn migrations_apply_once_and_report_status(db: &TestDb) {
    let status = db.store.migration_status().await.unwrap();
    assert!(!status.is_empty());
    assert!(status.iter().all(|m| m.applied), "{status:?}");
    assert!(db.store.migrate().await.unwrap().is_empty());
    let other = Store::open(&db.url).await.unwrap();
    assert!(other.migrate().await.unwrap().is_empty());
    other.close().await;
}

both!(
    state_survives_reopening,
    migrations_apply_once_and_report_status
);
