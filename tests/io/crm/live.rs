//! The CRM worker of `bot serve` on a database with many pending leads, against the emulated
//! portal: every lead lands once with its booking, the leaky bucket is never overfilled, and
//! the rate is printed (`cargo test --test io crm::live -- --nocapture`).

use bot::crm::bitrix24::{Bitrix24, Settings};
use bot::crm::lead::Mapping;
use bot::engine::Payload;
use bot::server::{self, Bitrix24Config, Clock, ServeConfig};
use bot::store::JobKind;
use chrono::{Datelike, Duration as Days, NaiveDate, TimeZone, Weekday};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::bitrix24::{Config, Emulator};
use testkit::db::{TestDb, booked, choosing, client, engine, now, press, processed, send};

/// Manicure slots with Ольга (Mon–Fri 9–18) from Monday 23 Nov on, `n` of them.
fn slots(n: usize) -> Vec<bot::domain::Slot> {
    let tz = chrono_tz::Asia::Novosibirsk;
    let mut out = Vec::new();
    let mut day = NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");
    while out.len() < n {
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            for (h, m) in [(9, 0), (10, 30), (12, 0), (13, 30), (15, 0), (16, 30)] {
                let start = tz
                    .from_local_datetime(&day.and_hms_opt(h, m, 0).expect("time"))
                    .single()
                    .expect("local time")
                    .with_timezone(&chrono::Utc);
                out.push(testkit::db::olga(start));
            }
        }
        day += Days::days(1);
    }
    out.truncate(n);
    out
}

/// `n` clients, each booked into a slot of their own with a phone of their own: a lead job
/// and a booking job each.
async fn seed(db: &TestDb, n: usize) -> Vec<String> {
    let engine = engine();
    let mut phones = Vec::new();
    for (i, slot) in slots(n).iter().enumerate() {
        let c = client(i);
        let mut conv = choosing(&c, slot, None);
        let phone = format!("+7913700{i:04}");
        conv.contact.phone = Some(phone.clone());
        db.store.put_conversation(&conv, now()).await.expect("seed");
        let p = processed(
            send(
                db,
                &engine,
                &c,
                &format!("seed-{i}"),
                press(&Payload::slot(slot)),
                now(),
            )
            .await,
        );
        assert!(booked(&p).is_some(), "client {i} booked");
        phones.push(phone);
    }
    phones
}

async fn serve_worker_pushes_every_pending_lead_once(db: TestDb, n: usize, burst: f64) {
    let phones = seed(&db, n).await;
    let emu = Emulator::start(Config {
        burst,
        ..Config::default()
    })
    .await;
    let mut settings = Settings::new(&emu.webhook()).expect("webhook");
    settings.burst = burst;
    let config = ServeConfig {
        profile: bot::config::demo_salon(),
        db_url: db.url.clone(),
        listen: "127.0.0.1:0".parse().expect("address"),
        telegram: None,
        max: None,
        vk: None,
        clock: Clock::starting_at(now()),
        worker_interval: Duration::from_millis(100),
        telegram_polling: false,
        managers_chat: None,
        bitrix24: Bitrix24Config {
            client: Some(Arc::new(Bitrix24::new(settings).expect("client"))),
            mapping: Mapping::default(),
            app_token: None,
            reconcile_every: None,
        },
        http: Default::default(),
        access: Default::default(),
        retention: None,
        llm: None,
    };
    let started = Instant::now();
    let bound = server::bind(config).await.expect("server binds");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(bound.run(async {
        let _ = stopped.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let pending = db.store.pending_jobs().await.expect("jobs");
        if !pending
            .iter()
            .any(|j| matches!(j.kind, JobKind::CrmLead | JobKind::CrmBooking))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "CRM jobs still pending after 90 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    let _ = stop.send(());
    served.await.expect("server task").expect("server ran");

    let leads = emu.leads();
    let landed: HashSet<String> = leads
        .iter()
        .filter_map(|l| l["PHONE"][0]["VALUE"].as_str().map(String::from))
        .collect();
    assert_eq!(leads.len(), n, "one lead per client");
    assert_eq!(landed, phones.into_iter().collect::<HashSet<_>>());
    assert!(
        leads.iter().all(|l| l["STATUS_DESCRIPTION"]
            .as_str()
            .is_some_and(|d| d.contains("записан"))),
        "every lead carries its booking"
    );
    assert!(db.store.dead_jobs().await.expect("dead").is_empty());
    assert_eq!(emu.violations(), 0, "the bucket was never overfilled");
    let requests = emu.calls().len();
    eprintln!(
        "serve worker, bucket 2/s burst {burst}: {n} leads + {n} bookings in {took:.2?} over {requests} requests = {:.0} leads/s",
        n as f64 / took.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_worker_pushes_pending_leads_at_the_default_limits_sqlite() {
    serve_worker_pushes_every_pending_lead_once(TestDb::sqlite().await, 150, 50.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_worker_pushes_pending_leads_at_the_default_limits_postgres() {
    if let Some(db) = TestDb::postgres().await {
        serve_worker_pushes_every_pending_lead_once(db, 150, 50.0).await;
    }
}

/// A small burst: the steady 2 requests per second decide the rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_worker_keeps_to_a_steady_two_requests_per_second_sqlite() {
    serve_worker_pushes_every_pending_lead_once(TestDb::sqlite().await, 150, 4.0).await;
}
