//! `bot crm sync --pending`: the store's `crm_lead` outbox jobs reach the portal once.

use crate::crm::bot_cli;
use bot::store::JobKind;
use serde_json::{Value, json};
use testkit::bitrix24::{Config, Emulator};
use testkit::db::{TestDb, book, client, engine, nov, olga};

/// Run each `async fn(TestDb)` once on a fresh SQLite file and once on a fresh PostgreSQL
/// schema (skipped when that is down, unless `CI` is set).
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(testkit::db::TestDb::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = testkit::db::TestDb::postgres().await {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
}

on_both!(
    pending_lead_jobs_are_pushed_once_and_completed,
    reconcile_records_a_conversion_made_in_the_portal,
);

/// A booked manicure: a qualified lead with pending `crm_lead` and `crm_booking` jobs.
async fn book_manicure(db: &TestDb) {
    book(
        db,
        &engine(),
        &client(1),
        &olga(nov(23, 15, 0)),
        nov(20, 10, 0),
    )
    .await;
}

async fn pending_lead_jobs_are_pushed_once_and_completed(db: TestDb) {
    book_manicure(&db).await;
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

/// `bot crm reconcile`: what the managers did in the portal, without any event, reaches the
/// store; the next run asks only for what changed since.
async fn reconcile_records_a_conversion_made_in_the_portal(db: TestDb) {
    use bot::domain::{CrmEntity, CrmSemantic};
    book_manicure(&db).await;
    let url = db.url.clone();
    let emu = Emulator::start(Config::default()).await;
    let sync = ["crm", "sync", "--pending", "--db", url.as_str()];
    let (code, _, err) = bot_cli(emu.webhook(), &sync).await;
    assert_eq!(code, 0, "{err}");
    let lead = emu.leads()[0]["ID"]
        .as_str()
        .and_then(|s| s.parse::<u64>().ok())
        .expect("lead id");
    emu.set_lead_status(lead, "CONVERTED");

    let args = ["crm", "reconcile", "--db", url.as_str(), "--format", "json"];
    let (code, out, err) = bot_cli(emu.webhook(), &args).await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["read"]["added"], json!(1), "{v}");
    assert_eq!(v["leads"]["converted"], json!(1), "{v}");
    assert!(v["cursor"].is_string(), "{v}");
    let row = db
        .store
        .crm_status(CrmEntity::Lead, lead as i64)
        .await
        .expect("status")
        .expect("recorded");
    assert_eq!(row.semantic, CrmSemantic::Converted);
    let ours = db.store.leads().await.expect("leads");
    assert_eq!(row.lead_id, Some(ours[0].id));

    let (code, out, err) =
        bot_cli(emu.webhook(), &["crm", "reconcile", "--db", url.as_str()]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 converted"), "{out}");
    let last = emu
        .calls()
        .into_iter()
        .rfind(|c| c.method == "crm.lead.list")
        .expect("listed");
    assert!(
        last.params["filter"][">=DATE_MODIFY"].is_string(),
        "from the cursor: {:?}",
        last.params
    );
}
