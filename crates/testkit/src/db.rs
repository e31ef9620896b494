//! Fresh databases per test and the few steps every test takes: an engine on the demo salon,
//! a fixed clock (Friday 20 Nov 2026, 10:00 in Novosibirsk), clients, a seeded conversation
//! that is choosing a slot, and a button press processed by the store.

use crate::pg::PgSchema;
use bot::config;
use bot::domain::{
    Booking, BookingId, ChannelKind, ClientRef, Contact, Effect, Event, Inbound, ServiceId, Slot,
    StaffId,
};
use bot::engine::{Conversation, Draft, Engine, Payload, Stage};
use bot::store::{Handled, Processed, Store};
use chrono::{DateTime, Duration, TimeZone, Utc};

/// A store on a database of its own, removed when the test ends.
pub struct TestDb {
    pub store: Store,
    /// Opens the same database again (restart tests).
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// Dropped with the test.
    _schema: Option<PgSchema>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("bot.db").display());
        let store = Store::open(&url).await.expect("open sqlite store");
        TestDb {
            store,
            url,
            _dir: Some(dir),
            _schema: None,
        }
    }

    /// A fresh schema on the test server; None (skip) when it is down and `CI` is not set.
    pub async fn postgres() -> Option<TestDb> {
        let pg = PgSchema::create().await?;
        let store = Store::open(&pg.url).await.expect("open postgres store");
        Some(TestDb {
            store,
            url: pg.url.clone(),
            _dir: None,
            _schema: Some(pg),
        })
    }
}

pub fn engine() -> Engine {
    Engine::new(config::demo_salon())
}

/// Local time in Novosibirsk on a day of November 2026.
pub fn nov(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Novosibirsk
        .with_ymd_and_hms(2026, 11, day, hour, minute, 0)
        .single()
        .expect("local time")
        .with_timezone(&Utc)
}

/// The test clock: Friday 20 Nov 2026, 10:00 local.
pub fn now() -> DateTime<Utc> {
    nov(20, 10, 0)
}

pub fn client(n: usize) -> ClientRef {
    ClientRef {
        channel: ChannelKind::Telegram,
        id: format!("{}", 1000 + n),
    }
}

/// A one-hour manicure with Ольга (works Mon–Fri 9–18).
pub fn olga(start: DateTime<Utc>) -> Slot {
    Slot {
        start,
        end: start + Duration::minutes(60),
        staff: StaffId("olga".into()),
    }
}

/// A conversation with name and phone known, offered `slot` for a manicure (or for moving
/// `moving` there).
pub fn choosing(client: &ClientRef, slot: &Slot, moving: Option<Booking>) -> Conversation {
    let mut conv = Conversation::new(client.clone());
    conv.contact = Contact {
        name: Some("Анна".into()),
        phone: Some("+79131234567".into()),
        email: None,
    };
    conv.draft = Draft {
        service: Some(ServiceId("manicure".into())),
        ..Draft::default()
    };
    conv.stage = Stage::ChoosingSlot {
        offered: vec![slot.clone()],
        moving,
    };
    conv
}

/// Store `client`'s conversation as [`choosing`] makes it, at `when`.
pub async fn offer(
    db: &TestDb,
    client: &ClientRef,
    slot: &Slot,
    moving: Option<Booking>,
    when: DateTime<Utc>,
) {
    db.store
        .put_conversation(&choosing(client, slot, moving), when)
        .await
        .expect("seed conversation");
}

/// Process `event` from `client` at `when`, under inbound id `id`.
pub async fn send(
    db: &TestDb,
    engine: &Engine,
    client: &ClientRef,
    id: &str,
    event: Event,
    when: DateTime<Utc>,
) -> Handled {
    let inbound = Inbound {
        client: client.clone(),
        at: when - Duration::seconds(1),
        event,
    };
    db.store
        .process_inbound(engine, id, &inbound, when)
        .await
        .expect("process inbound")
}

pub fn processed(outcome: Handled) -> Processed {
    match outcome {
        Handled::Processed(p) => *p,
        Handled::Duplicate => panic!("unexpected duplicate"),
    }
}

pub fn press(payload: &Payload) -> Event {
    Event::Button {
        payload: payload.encode(),
    }
}

/// The template of each reply of a turn.
pub fn templates(p: &Processed) -> Vec<String> {
    p.turn
        .replies
        .iter()
        .map(|r| r.template.clone().unwrap_or_default())
        .collect()
}

pub fn booked(p: &Processed) -> Option<Booking> {
    p.turn.effects.iter().find_map(|e| match e {
        Effect::BookingRequested { booking } => Some(booking.clone()),
        _ => None,
    })
}

/// Book `slot` for `client` at `when` the way a client does it: pick the offered slot.
pub async fn book(
    db: &TestDb,
    engine: &Engine,
    client: &ClientRef,
    slot: &Slot,
    when: DateTime<Utc>,
) -> BookingId {
    offer(db, client, slot, None, when).await;
    let id = format!("book-{client}-{}", slot.start.timestamp());
    let p = processed(send(db, engine, client, &id, press(&Payload::slot(slot)), when).await);
    booked(&p)
        .unwrap_or_else(|| panic!("no booking: {:?}", templates(&p)))
        .id
}
