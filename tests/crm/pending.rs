//! `bot crm sync --pending`: the store's `crm_lead` outbox jobs reach the portal once.

use crate::bitrix24::{Config, Emulator};
use crate::bot_cli;
use bot::domain::{ChannelKind, ClientRef, Contact, Event, Inbound, ServiceId, Slot, StaffId};
use bot::engine::{Conversation, Draft, Engine, Payload, Stage};
use bot::store::{JobKind, Store};
use chrono::{Duration, TimeZone, Utc};
use serde_json::{Value, json};

/// A store with one qualified lead (a booked manicure) and its pending `crm_lead` job.
async fn store_with_a_lead(url: &str) -> Store {
    let store = Store::open(url).await.expect("open store");
    let engine = Engine::new(bot::config::demo_salon());
    let when = chrono_tz::Asia::Novosibirsk
        .with_ymd_and_hms(2026, 11, 20, 10, 0, 0)
        .single()
        .expect("local time")
        .with_timezone(&Utc);
    let start = when + Duration::days(3) + Duration::hours(5);
    let slot = Slot {
        start,
        end: start + Duration::minutes(60),
        staff: StaffId("olga".into()),
    };
    let client = ClientRef {
        channel: ChannelKind::Telegram,
        id: "5001".into(),
    };
    let mut conv = Conversation::new(client.clone());
    conv.contact = Contact {
        name: Some("Анна Смирнова".into()),
        phone: Some("+79137770011".into()),
        email: None,
    };
    conv.draft = Draft {
        service: Some(ServiceId("manicure".into())),
        ..Draft::default()
    };
    conv.stage = Stage::ChoosingSlot {
        offered: vec![slot.clone()],
        moving: None,
    };
    store
        .put_conversation(&conv, when)
        .await
        .expect("seed conversation");
    let inbound = Inbound {
        client,
        at: when,
        event: Event::Button {
            payload: Payload::slot(&slot).encode(),
        },
    };
    store
        .process_inbound(&engine, "tg-pending-1", &inbound, when)
        .await
        .expect("process");
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_lead_jobs_are_pushed_once_and_completed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bot.db").display());
    let store = store_with_a_lead(&url).await;
    let pending = |jobs: Vec<bot::store::Job>| {
        jobs.into_iter()
            .filter(|j| j.kind == JobKind::CrmLead && j.done_at.is_none())
            .count()
    };
    assert_eq!(pending(store.pending_jobs().await.expect("jobs")), 1);
    store.close().await;

    let emu = Emulator::start(Config::default()).await;
    let args = [
        "crm",
        "sync",
        "--pending",
        "--db",
        url.as_str(),
        "--format",
        "json",
    ];
    let (code, out, err) = bot_cli(emu.webhook(), &args).await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["summary"]["created"], json!(1), "{v}");
    let leads = emu.leads();
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0]["PHONE"][0]["VALUE"], "+79137770011");
    assert!(
        leads[0]["TITLE"]
            .as_str()
            .is_some_and(|t| t.starts_with("маникюр на 23.11 15:00")),
        "{}",
        leads[0]["TITLE"]
    );
    assert!(
        leads[0]["ORIGIN_ID"]
            .as_str()
            .is_some_and(|o| o.starts_with("lead-"))
    );
    assert!(
        leads[0]["SOURCE_DESCRIPTION"]
            .as_str()
            .is_some_and(|s| s.contains("Telegram"))
    );

    let store = Store::open(&url).await.expect("reopen");
    assert_eq!(
        pending(store.pending_jobs().await.expect("jobs")),
        0,
        "the job is done"
    );
    store.close().await;
    let (code, out, _) = bot_cli(emu.webhook(), &args).await;
    assert_eq!(code, 0);
    let again: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(again["rows"], json!([]), "nothing left to push");
    assert_eq!(emu.leads().len(), 1);
}
