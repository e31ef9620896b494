//! Several schedulers and workers at once (replicas): each due job is taken by exactly one,
//! and an outbox lease keeps a job from a second worker until it expires.

use bot::domain::Event;
use bot::store::JobKind;
use chrono::Duration;
use std::collections::HashSet;
use std::sync::Arc;
use testkit::db::*;

/// 20 bookings with Ольга over Mon–Fri, so there are ~35 reminder jobs.
async fn busy_week(db: &TestDb) -> usize {
    let engine = engine();
    let mut n = 0;
    for day in 23..=27 {
        for hour in [9, 11, 13, 15] {
            book(db, &engine, &client(n), &olga(nov(day, hour, 0)), now()).await;
            n += 1;
        }
    }
    let jobs = db.store.pending_jobs().await.unwrap();
    jobs.iter().filter(|j| j.kind == JobKind::Reminder).count()
}

async fn two_schedulers_never_take_the_same_job(db: &TestDb) {
    let reminders = busy_week(db).await;
    assert!(reminders >= 30, "{reminders}");
    let engine = Arc::new(engine());
    let late = nov(30, 12, 0);
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let (store, engine) = (db.store.clone(), engine.clone());
            tokio::spawn(async move { store.run_due(&engine, late, usize::MAX).await })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut total = 0;
    for r in runs {
        for job in r.await.unwrap().unwrap() {
            assert!(seen.insert(job.job.id), "job {} ran twice", job.job.id);
            assert_eq!(job.replies.len(), 1, "one reminder message per job");
            total += 1;
        }
    }
    assert_eq!(total, reminders);
    let pending = db.store.pending_jobs().await.unwrap();
    assert!(pending.iter().all(|j| j.kind != JobKind::Reminder));
}

async fn outbox_leases_are_exclusive_until_they_expire(db: &TestDb) {
    busy_week(db).await;
    let sends = db
        .store
        .pending_jobs()
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.kind == JobKind::Send)
        .count();
    let lease = Duration::minutes(5);
    let claims: Vec<_> = (0..2)
        .map(|_| {
            let store = db.store.clone();
            tokio::spawn(
                async move { store.claim_outbox(&[JobKind::Send], now(), lease, 15).await },
            )
        })
        .collect();
    let mut seen = HashSet::new();
    for c in claims {
        for job in c.await.unwrap().unwrap() {
            assert!(seen.insert(job.id), "job {} leased twice", job.id);
            assert_eq!(job.attempts, 1);
        }
    }
    assert_eq!(seen.len(), sends.min(30));
    // While leased, nobody gets them; a failed one comes back at its retry time.
    let more = db
        .store
        .claim_outbox(&[JobKind::Send], now(), lease, 100)
        .await
        .unwrap();
    assert!(more.iter().all(|j| !seen.contains(&j.id)));
    let failed = *seen.iter().next().unwrap();
    let retry_at = now() + Duration::minutes(1);
    assert!(
        db.store
            .retry_job(failed, "telegram 429", retry_at)
            .await
            .unwrap()
    );
    let again = db
        .store
        .claim_outbox(&[JobKind::Send], retry_at, lease, 100)
        .await
        .unwrap();
    let job = again.iter().find(|j| j.id == failed).expect("retried job");
    assert_eq!(job.attempts, 2);
    assert_eq!(job.last_error.as_deref(), Some("telegram 429"));
    // After the lease, an abandoned job is taken again.
    let expired = now() + lease + Duration::seconds(1);
    let reclaimed = db
        .store
        .claim_outbox(&[JobKind::Send], expired, lease, 100)
        .await
        .unwrap();
    assert!(
        reclaimed
            .iter()
            .any(|j| seen.contains(&j.id) && j.id != failed)
    );
}

/// A job given up for good is a dead letter with its reason; `reopen_job` puts it back in the
/// queue. A job that succeeds after a failed attempt is not a dead letter.
async fn dead_letters_are_listed_and_can_be_retried(db: &TestDb) {
    busy_week(db).await;
    let lease = Duration::minutes(5);
    let jobs = db
        .store
        .claim_outbox(&[JobKind::Send], now(), lease, 2)
        .await
        .unwrap();
    let [dead, recovered] = [jobs[0].id, jobs[1].id];
    assert!(
        db.store
            .fail_job(dead, "chat not found", now())
            .await
            .unwrap()
    );
    assert!(
        db.store
            .retry_job(recovered, "timeout", now())
            .await
            .unwrap()
    );
    let again = db
        .store
        .claim_outbox(&[JobKind::Send], now(), lease, 100)
        .await
        .unwrap();
    assert!(again.iter().any(|j| j.id == recovered));
    assert!(db.store.complete_job(recovered, now()).await.unwrap());

    let letters = db.store.dead_jobs().await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].id, dead);
    assert_eq!(letters[0].last_error.as_deref(), Some("chat not found"));
    // Only a dead letter can be reopened.
    assert!(!db.store.reopen_job(recovered, now()).await.unwrap());
    assert!(db.store.reopen_job(dead, now()).await.unwrap());
    assert!(db.store.dead_jobs().await.unwrap().is_empty());
    let pending = db.store.pending_jobs().await.unwrap();
    let job = pending
        .iter()
        .find(|j| j.id == dead)
        .expect("back in the queue");
    assert_eq!(job.attempts, 0);
}

/// Asked for every kind at once, every kind is claimed (the list was padded to six kinds and
/// silently dropped the seventh, the hand-off notices).
async fn claiming_every_kind_claims_the_last_one_too(db: &TestDb) {
    let engine = engine();
    let text = Event::Text {
        text: "соедините с администратором".into(),
    };
    send(db, &engine, &client(1), "h1", text, now()).await;
    let pending = db.store.pending_jobs().await.unwrap();
    assert!(
        pending.iter().any(|j| j.kind == JobKind::Handoff),
        "{pending:?}"
    );
    assert_eq!(JobKind::ALL.last(), Some(&JobKind::Handoff));
    let claimed = db
        .store
        .claim_outbox(&JobKind::ALL, now(), Duration::seconds(60), 100)
        .await
        .unwrap();
    let due: Vec<_> = pending.iter().filter(|j| j.due_at <= now()).collect();
    assert_eq!(claimed.len(), due.len(), "claimed {claimed:?} of {due:?}");
    assert!(claimed.iter().any(|j| j.kind == JobKind::Handoff));
}

both!(
    two_schedulers_never_take_the_same_job,
    outbox_leases_are_exclusive_until_they_expire,
    dead_letters_are_listed_and_can_be_retried,
    claiming_every_kind_claims_the_last_one_too,
);
