//! `bot crm sync --pending`: the store's `crm_lead` outbox jobs reach the portal once.

use crate::bitrix24::{Config, Emulator};
use crate::bot_cli;
use crate::store_support::{TestDb, book, client, engine, nov, olga};
use bot::store::JobKind;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_lead_jobs_are_pushed_once_and_completed_sqlite() {
    pending_lead_jobs_are_pushed_once_and_completed(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_lead_jobs_are_pushed_once_and_completed_postgres() {
    if let Some(db) = TestDb::postgres().await {
        pending_lead_jobs_are_pushed_once_and_completed(db).await;
    }
}

async fn pending_lead_jobs_are_pushed_once_and_completed(db: TestDb) {
    // A booked manicure: a qualified lead with a pending `crm_lead` job.
    book(
        &db,
        &engine(),
        &client(1),
        &olga(nov(23, 15, 0)),
        nov(20, 10, 0),
    )
    .await;
    let url = db.url.clone();
    let store = &db.store;
    let pending = |jobs: Vec<bot::store::Job>| {
        jobs.into_iter()
            .filter(|j| {
                matches!(j.kind, JobKind::CrmLead | JobKind::CrmBooking) && j.done_at.is_none()
            })
            .count()
    };
    assert_eq!(
        pending(store.pending_jobs().await.expect("jobs")),
        2,
        "the lead and the booking"
    );

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
    // A dry run reports and leaves every job pending.
    let dry: Vec<&str> = args.iter().copied().chain(["--dry-run"]).collect();
    let (code, out, err) = bot_cli(emu.webhook(), &dry).await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["summary"]["created"], json!(1), "would be created: {v}");
    assert!(emu.leads().is_empty());
    assert_eq!(pending(store.pending_jobs().await.expect("jobs")), 2);

    let (code, out, err) = bot_cli(emu.webhook(), &args).await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["summary"]["created"], json!(1), "{v}");
    assert_eq!(
        v["summary"]["updated"],
        json!(1),
        "the booking updates the lead: {v}"
    );
    let leads = emu.leads();
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0]["PHONE"][0]["VALUE"], "+79131234567");
    assert!(
        leads[0]["TITLE"]
            .as_str()
            .is_some_and(|t| t.starts_with("маникюр на 23.11 15:00")),
        "{}",
        leads[0]["TITLE"]
    );
    assert!(
        leads[0]["STATUS_DESCRIPTION"]
            .as_str()
            .is_some_and(|d| d.contains("записан")
                && d.contains("23.11 15:00")
                && d.contains("Ольга")),
        "{}",
        leads[0]["STATUS_DESCRIPTION"]
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

    assert_eq!(
        pending(store.pending_jobs().await.expect("jobs")),
        0,
        "the job is done"
    );
    let (code, out, _) = bot_cli(emu.webhook(), &args).await;
    assert_eq!(code, 0);
    let again: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(again["rows"], json!([]), "nothing left to push");
    assert_eq!(emu.leads().len(), 1);
}
