//! 152-FZ: every column of the live schema is classified for the erase, and an erase leaves
//! no name, phone or message text of the person anywhere in the database (both backends).

use bot::domain::{ChannelKind, ClientRef, Event};
use bot::pilot::Arm;
use bot::store::pilot::PilotPlan;
use bot::store::privacy::{COLUMNS, Person};
use std::collections::BTreeSet;
use testkit::db::*;

/// (table, column) of the live schema, without the migration bookkeeping.
async fn live_columns(url: &str) -> BTreeSet<(String, String)> {
    if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("sqlite");
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
        )
        .fetch_all(&pool)
        .await
        .expect("schema");
        rows.into_iter().collect()
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("postgres");
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
        )
        .fetch_all(&pool)
        .await
        .expect("schema");
        rows.into_iter().collect()
    }
}

/// Every value of every classified column, as text, one line per row.
async fn dump(url: &str) -> String {
    let mut tables: Vec<&str> = COLUMNS.iter().map(|(t, _, _)| *t).collect();
    tables.dedup();
    let mut out = String::new();
    for table in tables {
        let cols: Vec<String> = COLUMNS
            .iter()
            .filter(|(t, _, _)| *t == table)
            .map(|(_, c, _)| format!("COALESCE(CAST({c} AS TEXT), '')"))
            .collect();
        let sql = format!("SELECT {} AS line FROM {table}", cols.join(" || '|' || "));
        let lines: Vec<String> = if url.starts_with("sqlite") {
            let pool = sqlx::SqlitePool::connect(url).await.expect("sqlite");
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
                .fetch_all(&pool)
                .await
                .expect("dump")
        } else {
            let pool = sqlx::PgPool::connect(url).await.expect("postgres");
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
                .fetch_all(&pool)
                .await
                .expect("dump")
        };
        for line in lines {
            out.push_str(table);
            out.push_str(": ");
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

async fn every_column_is_classified_for_the_erase(db: &TestDb) {
    let live = live_columns(&db.url).await;
    let known: BTreeSet<(String, String)> = COLUMNS
        .iter()
        .map(|(t, c, _)| (t.to_string(), c.to_string()))
        .collect();
    let unclassified: Vec<_> = live.difference(&known).collect();
    assert!(
        unclassified.is_empty(),
        "classify these columns in store/privacy.rs COLUMNS: {unclassified:?}"
    );
    let gone: Vec<_> = known.difference(&live).collect();
    assert!(
        gone.is_empty(),
        "classified but not in the schema: {gone:?}"
    );
}

async fn an_erase_leaves_no_name_phone_or_text_of_the_person(db: &TestDb) {
    let engine = engine();
    let (anna, other) = (client(1), client(2));
    // A pilot running: both become assignments keyed by their channel ids.
    let plan = PilotPlan {
        share: 100.0,
        seed: Some("privacy".into()),
        start: now() - chrono::Duration::hours(1),
        ends_at: now() + chrono::Duration::days(14),
        existing: Arm::Bot,
    };
    db.store
        .start_pilot(&plan, now() - chrono::Duration::hours(1))
        .await
        .unwrap();
    book(db, &engine, &anna, &olga(nov(23, 15, 0)), now()).await;
    let text = Event::Text {
        text: "мой телефон +7 913 123-45-67, спросите Анну".into(),
    };
    send(db, &engine, &anna, "t-1", text, now()).await;
    book(db, &engine, &other, &olga(nov(24, 15, 0)), now()).await;
    let before = db.store.counts().await.unwrap();
    let before_dump = dump(&db.url).await;
    assert!(before_dump.contains("9131234567"));
    assert!(
        before_dump.contains(&format!("{}:{}|", anna.channel, anna.id)),
        "the pilot assignment keys the client: {before_dump}"
    );

    // One channel's client only: the other client keeps their data.
    let erased = db
        .store
        .erase_person(&Person::Client(anna.clone()), now())
        .await
        .unwrap()
        .expect("found");
    assert_eq!(erased.clients, 1);
    assert!(db.store.conversation(&anna).await.unwrap().is_none());
    assert!(
        db.store
            .find_person(&Person::Client(anna.clone()))
            .await
            .unwrap()
            .is_empty()
    );
    let after_one = dump(&db.url).await;
    assert!(after_one.contains("Анна"), "the other client is untouched");
    assert!(!after_one.contains("спросите"), "{after_one}");

    // By phone: everyone with it.
    let by_phone = Person::parse("8 913 123-45-67").unwrap();
    assert_eq!(by_phone, Person::Phone("+79131234567".into()));
    let erased = db
        .store
        .erase_person(&by_phone, now())
        .await
        .unwrap()
        .expect("found");
    assert_eq!(erased.clients, 1, "{erased:?}");
    let after = dump(&db.url).await;
    for secret in ["Анна", "Анну", "9131234567", "913 123-45-67"] {
        assert!(
            !after.contains(secret),
            "{secret:?} left after the erase:\n{after}"
        );
    }
    // The channels' ids of the person are gone too (these tests' own dedup ids, made up
    // from them, aside: real webhook ids that spell a person's id are deleted).
    let rows: String = after
        .lines()
        .filter(|l| !l.starts_with("processed_inbound:"))
        .collect();
    for id in [anna.id.as_str(), other.id.as_str()] {
        assert!(!rows.contains(&format!("|{id}|")), "{id} left:\n{after}");
        assert!(!rows.contains(&format!(":{id}|")), "{id} left:\n{after}");
    }
    // The pilot keeps its counts: both assignments stay, anonymous.
    let pilot = db.store.pilot().await.unwrap().expect("the pilot");
    let kept = db.store.pilot_assignments(pilot.id).await.unwrap();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(
        kept.iter()
            .all(|a| a.client_key.starts_with("erased-") && a.client_id.is_none()),
        "{kept:?}"
    );
    let counts = db.store.counts().await.unwrap();
    assert_eq!(
        (counts.bookings, counts.messages, counts.leads),
        (before.bookings, before.messages, before.leads),
        "rows stay as anonymous counts for the KPIs"
    );
    assert!(
        db.store
            .erase_person(&by_phone, now())
            .await
            .unwrap()
            .is_none()
    );
    let unknown = ClientRef {
        channel: ChannelKind::Vk,
        id: "1".into(),
    };
    assert!(
        db.store
            .erase_person(&Person::Client(unknown), now())
            .await
            .unwrap()
            .is_none()
    );
}

both!(
    every_column_is_classified_for_the_erase,
    an_erase_leaves_no_name_phone_or_text_of_the_person,
);
