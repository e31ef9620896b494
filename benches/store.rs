//! The schedule and the store under load: slot search on a busy week (10 staff, 500
//! bookings), and inbound processing transactions per second on SQLite and PostgreSQL (one
//! client at a time, and 8 at once), each transaction reading that same busy schedule.
//! PostgreSQL runs at `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
//! in a throw-away schema, and is skipped when it is down.
//!
//! `cargo bench --bench store`; criterion reports time per transaction (TPS = 1 / time).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use bot::calendar::{Availability, ScheduleAvailability, SlotQuery};
use bot::config::{self, Profile, Staff};
use bot::domain::{
    Booking, BookingId, BookingStatus, ChannelKind, ClientRef, Event, Inbound, ServiceId, Slot,
    StaffId,
};
use bot::engine::{Engine, Payload};
use bot::store::Store;
use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const STAFF: usize = 10;
const BOOKINGS: usize = 500;

fn local(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Novosibirsk
        .with_ymd_and_hms(2026, 11, day, hour, minute, 0)
        .single()
        .expect("local time")
        .with_timezone(&Utc)
}

/// Friday 20 Nov 2026, 08:00 local: the busy week is Mon 23 – Sun 29.
fn now() -> DateTime<Utc> {
    local(20, 8, 0)
}

/// The demo salon with 10 manicure masters working every day 09:00–21:00.
fn busy_profile() -> Profile {
    let mut p = config::demo_salon();
    let template = p.staff[0].clone();
    let mut hours = p.hours.clone();
    for d in hours.days.iter_mut() {
        *d = Some(config::DayHours {
            open: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
            close: chrono::NaiveTime::from_hms_opt(21, 0, 0).unwrap_or_default(),
        });
    }
    p.staff = (0..STAFF)
        .map(|i| Staff {
            id: StaffId(format!("m{i}")),
            name: format!("Мастер {i}"),
            hours: hours.clone(),
            aliases: Vec::new(),
            ..template.clone()
        })
        .collect();
    p
}

/// 500 one-hour visits: each master, each day of the week, 7 visits 90 minutes apart (plus
/// a few on the next Monday), the way a full week looks.
fn busy_slots() -> Vec<Slot> {
    let mut slots = Vec::new();
    'fill: for day in 23..=30 {
        for staff in 0..STAFF {
            for k in 0..7 {
                let start = local(day, 9, 0) + Duration::minutes(90 * k);
                slots.push(Slot {
                    start,
                    end: start + Duration::minutes(60),
                    staff: StaffId(format!("m{staff}")),
                });
                if slots.len() == BOOKINGS {
                    break 'fill;
                }
            }
        }
    }
    slots
}

fn client(n: usize) -> ClientRef {
    ClientRef {
        channel: ChannelKind::Telegram,
        id: format!("{}", 10_000 + n),
    }
}

fn slot_search(c: &mut Criterion) {
    let profile = busy_profile();
    let bookings: Vec<Booking> = busy_slots()
        .into_iter()
        .enumerate()
        .map(|(i, slot)| Booking {
            id: BookingId(format!("{i:06}")),
            client: client(i),
            service: ServiceId("manicure".into()),
            slot,
            status: BookingStatus::Booked,
        })
        .collect();
    let avail = ScheduleAvailability::new(&profile, &bookings);
    let query = |staff: Option<&str>| SlotQuery {
        service: ServiceId("manicure".into()),
        staff: staff.map(StaffId::from),
        around: local(25, 15, 0),
        from: local(23, 0, 0),
        to: local(30, 0, 0),
        now: now(),
        ignore: None,
        limit: 3,
    };
    let any = query(None);
    let one = query(Some("m7"));
    let mut group = c.benchmark_group("slot_search_busy_week");
    group.bench_function("nearest_3_any_staff", |b| {
        b.iter(|| avail.search(black_box(&any)))
    });
    group.bench_function("nearest_3_one_staff", |b| {
        b.iter(|| avail.search(black_box(&one)))
    });
    let service = ServiceId("manicure".into());
    group.bench_function("slot_at_taken_time", |b| {
        b.iter(|| avail.slot_at(&service, None, black_box(local(25, 9, 0)), now(), None))
    });
    group.finish();
}

/// A store on the busy week: 500 bookings made through the engine.
async fn seeded(url: &str, engine: &Engine) -> Store {
    let store = Store::open(url).await.expect("open store");
    for (i, slot) in busy_slots().iter().enumerate() {
        let c = client(i);
        let conv = testkit::db::choosing(&c, slot, None);
        store.put_conversation(&conv, now()).await.expect("seed");
        let inbound = Inbound {
            client: c,
            at: now(),
            event: Event::Button {
                payload: Payload::slot(slot).encode(),
            },
        };
        store
            .process_inbound(engine, &format!("seed-{i}"), &inbound, now())
            .await
            .expect("seed booking");
    }
    store
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// One inbound transaction: a client asks for prices (dedup, message, locked conversation,
/// the busy schedule read, the turn, the reply and its outbox job).
async fn one_inbound(store: &Store, engine: &Engine) {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let inbound = Inbound {
        client: client(usize::try_from(n % 1000).unwrap_or(0)),
        at: now(),
        event: Event::Button {
            payload: Payload::Prices.encode(),
        },
    };
    store
        .process_inbound(engine, &format!("bench-{n}"), &inbound, now())
        .await
        .expect("process");
}

fn inbound_tps(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    let engine = Arc::new(Engine::new(busy_profile()));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backends = vec![(
        "sqlite",
        format!("sqlite://{}", dir.path().join("bench.db").display()),
        None,
    )];
    let base = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("store_bench_{}", std::process::id());
    let pg_up = rt.block_on(async {
        let admin = sqlx::PgPool::connect(&base).await.ok()?;
        let sql = format!("CREATE SCHEMA {schema}");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&admin)
            .await
            .ok()?;
        Some(admin)
    });
    match &pg_up {
        Some(_) => {
            let sep = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{sep}options[search_path]={schema}");
            backends.push(("postgres", url, Some(schema.clone())));
        }
        None => eprintln!("PostgreSQL at {base} is down: its benchmarks are skipped"),
    }
    let mut group = c.benchmark_group("inbound_transaction");
    group.sample_size(10);
    group.measurement_time(std::time::Duration::from_secs(8));
    for (name, url, _) in &backends {
        let store = rt.block_on(seeded(url, &engine));
        group.bench_function(format!("{name}_sequential"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        one_inbound(&store, &engine).await;
                    }
                    start.elapsed()
                })
            })
        });
        group.bench_function(format!("{name}_8_concurrent"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = std::time::Instant::now();
                    let tasks: Vec<_> = (0..8)
                        .map(|t| {
                            let (store, engine) = (store.clone(), engine.clone());
                            let mine = iters / 8 + u64::from(t < iters % 8);
                            tokio::spawn(async move {
                                for _ in 0..mine {
                                    one_inbound(&store, &engine).await;
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("task");
                    }
                    start.elapsed()
                })
            })
        });
        rt.block_on(store.close());
    }
    group.finish();
    if let Some(admin) = pg_up {
        rt.block_on(async {
            let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await;
        });
    }
}

criterion_group!(benches, slot_search, inbound_tps);
criterion_main!(benches);
