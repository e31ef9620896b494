//! The Bitrix24 side of `bot serve`: the CRM worker loop ([`run`]: claims due `crm_*` jobs,
//! carries them out through the shared outbox path `crm::outbox`, reconciles on schedule,
//! woken with the send worker and stopping on the same signal) and the status webhook
//! ([`webhook`]: `POST /webhooks/bitrix24`, answered as soon as the fetch is queued).

use super::App;
use super::error::ApiError;
use crate::crm::bitrix24::{Bitrix24, mask_webhook};
use crate::crm::events::{self, EventError, EventKind};
use crate::crm::lead::Mapping;
use crate::crm::outbox::{CrmOutbox, CrmRunError, Round, Session, carry_out, reconcile};
use crate::domain::CrmEntity;
use crate::store::{Job, JobKind, StoreError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Reconciliation runs this often unless configured otherwise.
pub const DEFAULT_RECONCILE: Duration = Duration::from_secs(15 * 60);
/// Every job the worker takes.
const WORKER_KINDS: [JobKind; 3] = [JobKind::CrmLead, JobKind::CrmBooking, JobKind::CrmFetch];
/// How long claimed jobs are ours; a batch in flight outlives no lease.
const LEASE_MINUTES: i64 = 10;
/// Jobs taken per round (the lead sync chunks them into batches of 49).
const CLAIM: usize = 245;
/// A failed reconciliation is tried again after this long (our clock).
const RECONCILE_RETRY_SECONDS: i64 = 60;
/// On shutdown, the batch in flight gets this long to finish; then it is left to its lease.
const GRACE: Duration = Duration::from_secs(5);

/// How `bot serve` reaches Bitrix24 and hears back from it.
#[derive(Clone)]
pub struct Bitrix24Config {
    /// The portal client (`BOT_BITRIX24_WEBHOOK`, or OAuth); None: jobs wait in the outbox.
    pub client: Option<Arc<Bitrix24>>,
    pub mapping: Mapping,
    /// `BOT_BITRIX24_APP_TOKEN`: the outgoing webhook's `application_token`; None refuses
    /// status events.
    pub app_token: Option<String>,
    /// How often to reconcile; None: never.
    pub reconcile_every: Option<Duration>,
}

impl Default for Bitrix24Config {
    fn default() -> Bitrix24Config {
        Bitrix24Config {
            client: None,
            mapping: Mapping::default(),
            app_token: None,
            reconcile_every: Some(DEFAULT_RECONCILE),
        }
    }
}

impl std::fmt::Debug for Bitrix24Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bitrix24Config")
            .field(
                "client",
                &self
                    .client
                    .as_ref()
                    .map(|c| mask_webhook(&c.settings().base)),
            )
            .field("mapping", &self.mapping)
            .field("app_token", &self.app_token.as_ref().map(|_| "***"))
            .field("reconcile_every", &self.reconcile_every)
            .finish()
    }
}

/// The worker's state between rounds.
struct Worker {
    session: Session,
    /// A failed reconciliation waits until then.
    reconcile_after: Option<DateTime<Utc>>,
}

/// The CRM worker of `bot serve`: pushes lead and booking jobs, fetches statuses after events,
/// reconciles on schedule. Without a Bitrix24 client it returns at once and the jobs wait.
pub(super) async fn run(app: Arc<App>, mut stop: watch::Receiver<bool>, interval: Duration) {
    let Some(client) = app.bitrix24.client.clone() else {
        return;
    };
    let mut worker = Worker {
        session: Session::new(Mapping {
            tz: app.engine.profile().business.timezone,
            ..app.bitrix24.mapping.clone()
        }),
        reconcile_after: None,
    };
    loop {
        if *stop.borrow() {
            break;
        }
        {
            let round = worker.round(&app, &client);
            tokio::pin!(round);
            tokio::select! {
                () = &mut round => {},
                _ = stop.changed() => {
                    // Jobs of a batch left unfinished keep their lease and are looked up
                    // again after it, never sent twice.
                    let _ = tokio::time::timeout(GRACE, &mut round).await;
                    break;
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => {},
            () = app.crm_wake.notified() => {},
            () = tokio::time::sleep(interval) => {},
        }
    }
    tracing::info!("crm worker stopped");
}

impl Worker {
    async fn round(&mut self, app: &App, client: &Bitrix24) {
        loop {
            let now = app.clock.now();
            let lease = chrono::Duration::minutes(LEASE_MINUTES);
            let (jobs, more) = match claim(app, now, lease).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::error!(error = %e, "claiming CRM jobs failed");
                    app.metrics.error("crm_worker");
                    break;
                }
            };
            if jobs.is_empty() {
                break;
            }
            let profile = app.engine.profile();
            let round = carry_out(
                &app.store,
                client,
                profile,
                &mut self.session,
                &jobs,
                &app.clock,
                &|_| {},
            )
            .await;
            match round {
                Ok(r) => log_round(app, jobs.len(), &r),
                Err(e) => {
                    // The jobs keep their lease and are taken again after it.
                    tracing::error!(error = %e, "recording CRM job results failed");
                    app.metrics.error("crm_worker");
                    break;
                }
            }
            if !more {
                break;
            }
        }
        self.reconcile_if_due(app, client).await;
    }

    async fn reconcile_if_due(&mut self, app: &App, client: &Bitrix24) {
        let Some(every) = app.bitrix24.reconcile_every else {
            return;
        };
        let now = app.clock.now();
        if self.reconcile_after.is_some_and(|t| now < t) {
            return;
        }
        let every = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
        let due = match app.store.crm_cursor(CrmEntity::Lead).await {
            Ok(cursor) => cursor.is_none_or(|c| now >= c.run_at + every),
            Err(e) => {
                tracing::error!(error = %e, "reading the reconciliation cursor failed");
                return;
            }
        };
        if !due {
            return;
        }
        let result = match self.session.prepare(client).await {
            Err(e) => Err(CrmRunError::Crm(e)),
            Ok(()) => {
                let o = CrmOutbox {
                    store: &app.store,
                    client,
                    mapping: &self.session.mapping,
                    profile: app.engine.profile(),
                };
                reconcile(&o, now).await
            }
        };
        match result {
            Ok(counts) => {
                self.reconcile_after = None;
                // Read the mode and the source again next time: they may have changed.
                self.session.prepared = false;
                tracing::info!(
                    read = counts.read,
                    added = counts.added,
                    changed = counts.changed,
                    "bitrix24 reconciled"
                );
            }
            Err(e) => {
                if e.is_fatal() {
                    self.session.prepared = false;
                }
                self.reconcile_after =
                    Some(now + chrono::Duration::seconds(RECONCILE_RETRY_SECONDS));
                tracing::warn!(error = %e, "bitrix24 reconciliation failed; trying again in a minute");
                app.metrics.error("crm_reconcile");
            }
        }
    }
}

/// Lease the due jobs, leads first (a booking is written on its lead, which must be there by
/// then); true when more may be due.
async fn claim(
    app: &App,
    now: DateTime<Utc>,
    lease: chrono::Duration,
) -> Result<(Vec<Job>, bool), StoreError> {
    let (leads, rest) = WORKER_KINDS.split_at(1);
    let mut jobs = app.store.claim_outbox(leads, now, lease, CLAIM).await?;
    let mut more = jobs.len() == CLAIM;
    let others = app.store.claim_outbox(rest, now, lease, CLAIM).await?;
    more |= others.len() == CLAIM;
    jobs.extend(others);
    Ok((jobs, more))
}

fn log_round(app: &App, jobs: usize, round: &Round) {
    let tally = round.tally;
    if tally.dead > 0 {
        app.metrics.error("crm_dead_letter");
    }
    if let Some(e) = round.fatal().or(round.prepare_error.as_ref()) {
        tracing::warn!(error = %e, "bitrix24 refused");
    }
    tracing::info!(
        jobs,
        done = tally.done,
        retried = tally.retried,
        dead = tally.dead,
        "bitrix24 jobs"
    );
}

/// `POST /webhooks/bitrix24`: a Bitrix24 outgoing-webhook event (form-encoded), checked
/// against `BOT_BITRIX24_APP_TOKEN`. A lead or deal event queues a fetch of that object and
/// is answered at once; the worker reads the object (events carry only its id).
pub(super) async fn webhook(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let result = event(&app, body).await;
    if let Err(e) = &result {
        app.metrics.error(e.code());
    }
    result.map(Json)
}

async fn event(app: &App, body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let Some(token) = &app.bitrix24.app_token else {
        return Err(ApiError::NotFound(
            "the Bitrix24 status webhook is off: set BOT_BITRIX24_APP_TOKEN",
        ));
    };
    let body = body?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("the event is not UTF-8 form data".into()))?;
    let event = match events::parse_event(text, token) {
        Ok(e) => e,
        Err(EventError::BadToken) => {
            tracing::warn!("bitrix24 event with a wrong or missing application token refused");
            return Err(ApiError::Unauthorized);
        }
        Err(EventError::Malformed(why)) => {
            return Err(ApiError::BadRequest(format!("not a Bitrix24 event: {why}")));
        }
        Err(EventError::Ignored(name)) => return Ok(json!({ "ok": true, "ignored": name })),
    };
    let entity = match event.kind {
        EventKind::LeadAdd | EventKind::LeadUpdate => CrmEntity::Lead,
        EventKind::DealAdd | EventKind::DealUpdate => CrmEntity::Deal,
        EventKind::LeadDelete => return Ok(json!({ "ok": true, "ignored": "ONCRMLEADDELETE" })),
    };
    let id = i64::try_from(event.id)
        .map_err(|_| ApiError::BadRequest(format!("object id {} is out of range", event.id)))?;
    if app
        .store
        .queue_crm_fetch(entity, id, app.clock.now())
        .await?
    {
        app.crm_wake.notify_one();
    }
    Ok(json!({ "ok": true }))
}
