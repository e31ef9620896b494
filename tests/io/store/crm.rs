//! Where our leads stand in the CRM: statuses recorded only for our leads (and the deals they
//! became), never overwritten by an older reading; the reconciliation cursor never moves
//! back; status fetches queued once per object while one waits untried.

use bot::domain::{CrmEntity, CrmSemantic};
use bot::store::{CrmCursor, CrmReading, JobKind, Recorded};
use chrono::{DateTime, Duration, Utc};
use testkit::db::*;

/// A reading of `crm_id` at `minute` past 10:00 on the test day.
fn reading(entity: CrmEntity, crm_id: i64, status: &str, minute: i64) -> CrmReading {
    let semantic = match status {
        "CONVERTED" | "WON" => CrmSemantic::Converted,
        "JUNK" | "LOSE" => CrmSemantic::Junk,
        _ => CrmSemantic::InWork,
    };
    CrmReading {
        entity,
        crm_id,
        status_id: status.into(),
        semantic,
        modified_at: Some(at(minute)),
        our_lead: None,
        crm_lead_id: None,
    }
}

fn at(minute: i64) -> DateTime<Utc> {
    now() + Duration::minutes(minute)
}

/// A booked client: their lead's id.
async fn booked_lead(db: &TestDb, n: usize) -> i64 {
    book(
        db,
        &engine(),
        &client(n),
        &olga(nov(23, 10 + n as u32, 0)),
        now(),
    )
    .await;
    let leads = db.store.leads().await.unwrap();
    leads
        .iter()
        .filter(|l| l.client == client(n))
        .map(|l| l.id)
        .max()
        .expect("the booking qualified a lead")
}

async fn statuses_are_kept_for_our_leads_and_their_deals_only(db: &TestDb) {
    let lead = booked_lead(db, 1).await;
    let s = &db.store;
    // Named by its ORIGIN_ID: ours.
    let named = CrmReading {
        our_lead: Some(lead),
        ..reading(CrmEntity::Lead, 5, "NEW", 0)
    };
    assert_eq!(
        s.record_crm_status(&named, at(1)).await.unwrap(),
        Recorded::Added
    );
    // Someone else's lead, and a deal of someone else's lead: nothing is stored.
    let foreign = reading(CrmEntity::Lead, 6, "CONVERTED", 0);
    assert_eq!(
        s.record_crm_status(&foreign, at(1)).await.unwrap(),
        Recorded::NotOurs
    );
    let foreign_deal = CrmReading {
        crm_lead_id: Some(6),
        ..reading(CrmEntity::Deal, 60, "WON", 0)
    };
    assert_eq!(
        s.record_crm_status(&foreign_deal, at(1)).await.unwrap(),
        Recorded::NotOurs
    );
    // A deal converted from our lead 5 is ours through it.
    let deal = CrmReading {
        crm_lead_id: Some(5),
        ..reading(CrmEntity::Deal, 50, "NEW", 2)
    };
    assert_eq!(
        s.record_crm_status(&deal, at(3)).await.unwrap(),
        Recorded::Added
    );
    let rows = s.crm_statuses().await.unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let client_id = rows[0].client_id;
    assert!(client_id.is_some());
    assert!(
        rows.iter()
            .all(|r| r.lead_id == Some(lead) && r.client_id == client_id)
    );
    let d = s
        .crm_status(CrmEntity::Deal, 50)
        .await
        .unwrap()
        .expect("deal");
    assert_eq!(d.crm_lead_id, Some(5));
    assert_eq!(d.seen_at, at(3));

    // The lead is converted, but the deal is what says whether the client came.
    let converted = CrmReading {
        our_lead: Some(lead),
        ..reading(CrmEntity::Lead, 5, "CONVERTED", 2)
    };
    assert_eq!(
        s.record_crm_status(&converted, at(3)).await.unwrap(),
        Recorded::Changed
    );
    let per = bot::store::CrmStatus::per_lead(&s.crm_statuses().await.unwrap());
    assert_eq!(per.get(&lead), Some(&CrmSemantic::InWork));
    let won = CrmReading {
        crm_lead_id: Some(5),
        ..reading(CrmEntity::Deal, 50, "WON", 4)
    };
    s.record_crm_status(&won, at(4)).await.unwrap();
    let per = bot::store::CrmStatus::per_lead(&s.crm_statuses().await.unwrap());
    assert_eq!(per.get(&lead), Some(&CrmSemantic::Converted));
}

async fn a_pushed_lead_is_found_by_its_crm_id(db: &TestDb) {
    let lead = booked_lead(db, 2).await;
    let s = &db.store;
    // Found by phone in the portal: the lead there does not carry our ORIGIN_ID.
    let update = reading(CrmEntity::Lead, 77, "IN_PROCESS", 0);
    assert_eq!(
        s.record_crm_status(&update, at(1)).await.unwrap(),
        Recorded::NotOurs
    );
    assert!(s.lead_pushed(lead, 77, at(1)).await.unwrap());
    assert!(!s.lead_pushed(lead + 1000, 78, at(1)).await.unwrap());
    assert_eq!(
        s.record_crm_status(&update, at(2)).await.unwrap(),
        Recorded::Added
    );
    let row = s
        .crm_status(CrmEntity::Lead, 77)
        .await
        .unwrap()
        .expect("row");
    assert_eq!(row.lead_id, Some(lead));
    let stored = s.lead(lead).await.unwrap().expect("lead");
    assert_eq!(stored.crm_state, "synced");
    // A deal made from it (its event came first) is placed through the same link.
    let deal = CrmReading {
        crm_lead_id: Some(77),
        ..reading(CrmEntity::Deal, 91, "NEW", 0)
    };
    assert_eq!(
        s.record_crm_status(&deal, at(2)).await.unwrap(),
        Recorded::Added
    );
}

async fn an_older_reading_never_overwrites_a_newer_one(db: &TestDb) {
    let lead = booked_lead(db, 3).await;
    let s = &db.store;
    let ours = |status: &str, minute: i64| CrmReading {
        our_lead: Some(lead),
        ..reading(CrmEntity::Lead, 8, status, minute)
    };
    assert_eq!(
        s.record_crm_status(&ours("NEW", 0), at(0)).await.unwrap(),
        Recorded::Added
    );
    assert_eq!(
        s.record_crm_status(&ours("CONVERTED", 5), at(6))
            .await
            .unwrap(),
        Recorded::Changed
    );
    // A slow event fetch of the earlier state arrives after the reconciliation.
    assert_eq!(
        s.record_crm_status(&ours("JUNK", 3), at(7)).await.unwrap(),
        Recorded::Stale
    );
    assert_eq!(
        s.record_crm_status(&ours("CONVERTED", 9), at(10))
            .await
            .unwrap(),
        Recorded::Unchanged
    );
    let row = s
        .crm_status(CrmEntity::Lead, 8)
        .await
        .unwrap()
        .expect("row");
    assert_eq!(row.status_id, "CONVERTED");
    assert_eq!(row.semantic, CrmSemantic::Converted);
    assert_eq!(row.changed_at, at(5), "when it became converted");
    assert_eq!(row.modified_at, Some(at(9)));
    assert_eq!(row.seen_at, at(10));
}

async fn the_reconciliation_cursor_never_moves_back(db: &TestDb) {
    let s = &db.store;
    assert_eq!(s.crm_cursor(CrmEntity::Lead).await.unwrap(), None);
    let first = CrmCursor {
        modified_at: Some(at(5)),
        run_at: at(6),
    };
    s.save_crm_cursor(CrmEntity::Lead, &first).await.unwrap();
    assert_eq!(s.crm_cursor(CrmEntity::Lead).await.unwrap(), Some(first));
    // A run that saw nothing, and one that saw only older changes: the position stays.
    for seen in [None, Some(at(1))] {
        let later = CrmCursor {
            modified_at: seen,
            run_at: at(20),
        };
        s.save_crm_cursor(CrmEntity::Lead, &later).await.unwrap();
        assert_eq!(
            s.crm_cursor(CrmEntity::Lead).await.unwrap(),
            Some(CrmCursor {
                modified_at: Some(at(5)),
                run_at: at(20),
            })
        );
    }
    assert_eq!(
        s.crm_cursor(CrmEntity::Deal).await.unwrap(),
        None,
        "per entity"
    );
}

async fn a_status_fetch_is_queued_once_while_one_waits_untried(db: &TestDb) {
    let s = &db.store;
    assert!(s.queue_crm_fetch(CrmEntity::Lead, 42, now()).await.unwrap());
    assert!(!s.queue_crm_fetch(CrmEntity::Lead, 42, now()).await.unwrap());
    assert!(s.queue_crm_fetch(CrmEntity::Deal, 42, now()).await.unwrap());
    let fetches = |jobs: Vec<bot::store::Job>| {
        jobs.into_iter()
            .filter(|j| j.kind == JobKind::CrmFetch)
            .collect::<Vec<_>>()
    };
    assert_eq!(fetches(s.pending_jobs().await.unwrap()).len(), 2);
    // Once a fetch is under way it may have read the old state: a new event queues another.
    let claimed = s
        .claim_outbox(&[JobKind::CrmFetch], now(), Duration::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(s.queue_crm_fetch(CrmEntity::Lead, 42, now()).await.unwrap());
    assert_eq!(fetches(s.pending_jobs().await.unwrap()).len(), 3);
}

both!(
    statuses_are_kept_for_our_leads_and_their_deals_only,
    a_pushed_lead_is_found_by_its_crm_id,
    an_older_reading_never_overwrites_a_newer_one,
    the_reconciliation_cursor_never_moves_back,
    a_status_fetch_is_queued_once_while_one_waits_untried,
);
