//! The Bitrix24 side of `bot serve`, and the outbox path that `bot crm sync --pending` and
//! `bot crm reconcile` run once:
//! - [`push_jobs`]: `crm_lead` jobs become Bitrix24 leads (each looked up first, so it lands
//!   once however often it is retried), then `crm_booking` jobs update those leads; both in
//!   batches of up to 50 commands, throttled by the client's leaky bucket;
//! - [`fetch_jobs`]: `crm_fetch` jobs, queued by the status webhook, read the lead or deal and
//!   record its status for the conversion KPI;
//! - [`reconcile`]: Bitrix24 never redelivers an event, so leads (and in simple CRM mode the
//!   deals they became) changed since the stored cursor are read and recorded; the cursor
//!   moves only once every page was read and recorded;
//! - [`settle`]: what becomes of a job after an attempt: done, retried with backoff (30 s
//!   doubling up to an hour, or when a 429's pause ends), or a dead letter after
//!   [`MAX_CRM_ATTEMPTS`] — at once when no retry can help (wrong webhook, no rights, REST not
//!   on the plan), with the cause and the fix as its reason;
//! - [`carry_out`]: one round over claimed jobs, shared by the worker and the CLI;
//! - [`run`]: the worker loop, woken with the send worker and stopping on the same signal;
//! - [`webhook`]: `POST /webhooks/bitrix24`, answered as soon as the fetch is queued.
//!
//! The portal's wire format is `crm/`'s, the tables are `store/`'s; this file decides only
//! what to send when and what the answers mean for the jobs.

use super::error::ApiError;
use super::{App, Clock};
use crate::config::Profile;
use crate::crm::bitrix24::{Bitrix24, CrmError, mask_webhook};
use crate::crm::events::{self, CrmObject, EventError, EventKind, Fetched};
use crate::crm::lead::{self, BookingChange, Mapping, origin_of_lead};
use crate::crm::{CrmLead, Outcome};
use crate::domain::{BookingId, CrmEntity};
use crate::store::{
    CrmCursor, CrmReading, Job, JobKind, Recorded, Store, StoreError, parse_fetch_payload,
};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Reconciliation runs this often unless configured otherwise.
pub const DEFAULT_RECONCILE: Duration = Duration::from_secs(15 * 60);
/// Attempts before a CRM job is a dead letter: with the backoff below, about a day of outage.
pub const MAX_CRM_ATTEMPTS: i64 = 30;
/// The jobs `bot crm sync --pending` carries out: leads first, then the bookings on them.
pub const PUSH_KINDS: [JobKind; 2] = [JobKind::CrmLead, JobKind::CrmBooking];
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

/// A CRM step failed on the portal or in the store.
#[derive(Debug, thiserror::Error)]
pub enum CrmRunError {
    #[error(transparent)]
    Crm(#[from] CrmError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CrmRunError {
    pub fn is_fatal(&self) -> bool {
        matches!(self, CrmRunError::Crm(e) if e.is_fatal())
    }
}

/// What the outbox path works with.
pub struct CrmOutbox<'a> {
    pub store: &'a Store,
    pub client: &'a Bitrix24,
    /// Prepared: the CRM mode read and the lead source ensured ([`lead::prepare`]).
    pub mapping: &'a Mapping,
    /// Service and staff names, time zone.
    pub profile: &'a Profile,
}

/// What to do with a job after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    Done,
    Retry(String),
    Dead(String),
}

impl Fate {
    /// A failure: a dead letter when no retry can help, else again later.
    fn failed(fatal: bool, error: &dyn std::fmt::Display) -> Fate {
        if fatal {
            Fate::Dead(error.to_string())
        } else {
            Fate::Retry(error.to_string())
        }
    }
}

/// One lead or booking job and what became of it.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub job: Job,
    /// ORIGIN_ID of a lead job's lead; empty for a booking job.
    pub origin_id: String,
    pub outcome: Outcome,
    /// The deal the lead became (simple CRM mode).
    pub deal: Option<u64>,
    /// Our lead of a lead job.
    pub lead: Option<i64>,
}

/// The result of [`push_jobs`]: every job's outcome, and the error that stopped the run, if
/// one did (the jobs it left unsent are `Failed` with it).
#[derive(Debug)]
pub struct Push {
    pub jobs: Vec<Pushed>,
    pub fatal: Option<CrmError>,
}

impl Pushed {
    /// Landed: done; invalid (its lead or booking is gone): a dead letter; failed: again
    /// later, unless the run met an error no retry fixes.
    pub fn fate(&self, fatal: Option<&CrmError>) -> Fate {
        match (&self.outcome, fatal) {
            (Outcome::Created { .. } | Outcome::Updated { .. }, _) => Fate::Done,
            (Outcome::Skipped { reason }, _) => Fate::Dead(reason.clone()),
            (Outcome::Failed { .. }, Some(f)) => Fate::Dead(f.to_string()),
            (Outcome::Failed { error }, None) => Fate::Retry(error.clone()),
        }
    }
}

fn not_sent() -> Outcome {
    Outcome::Failed {
        error: "not sent".into(),
    }
}

/// Push the leads of `crm_lead` jobs, then the bookings of `crm_booking` jobs (other kinds are
/// ignored). A dry run looks the leads up and sends nothing. Only store errors are `Err`;
/// the portal's are in the outcomes.
pub async fn push_jobs(
    o: &CrmOutbox<'_>,
    jobs: &[Job],
    dry_run: bool,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Push, StoreError> {
    let mut pushed: Vec<Pushed> = Vec::new();
    let mut leads = Vec::new();
    let mut at = Vec::new();
    for job in jobs.iter().filter(|j| j.kind == JobKind::CrmLead) {
        let id = serde_json::from_str::<Value>(&job.payload)
            .ok()
            .and_then(|v| v.get("lead").and_then(Value::as_i64));
        let stored = match id {
            Some(id) => o.store.lead(id).await?,
            None => None,
        };
        let Some(l) = stored else {
            pushed.push(Pushed {
                job: job.clone(),
                origin_id: String::new(),
                outcome: Outcome::Skipped {
                    reason: format!("job {}: lead not found (payload {})", job.id, job.payload),
                },
                deal: None,
                lead: None,
            });
            continue;
        };
        let crm = CrmLead {
            origin_id: origin_of_lead(l.id),
            name: l.contact.name.clone(),
            phone: l.contact.phone.clone(),
            email: l.contact.email.clone(),
            channel: l.client.channel.into(),
            service: l.service.as_ref().map(|s| service_name(o.profile, s)),
            desired_at: l.desired_at,
            comment: Some(format!("Клиент {}", l.client)),
            utm: Vec::new(),
        };
        at.push(pushed.len());
        pushed.push(Pushed {
            job: job.clone(),
            origin_id: crm.origin_id.clone(),
            outcome: not_sent(),
            deal: None,
            lead: Some(l.id),
        });
        leads.push(crm);
    }
    let mut fatal = None;
    match lead::sync(o.client, o.mapping, &leads, dry_run, progress).await {
        Ok(outcomes) => {
            for (i, outcome) in outcomes.into_iter().enumerate() {
                if let Some(p) = at.get(i).and_then(|&j| pushed.get_mut(j)) {
                    p.outcome = outcome;
                }
            }
            if o.mapping.simple_mode && !dry_run {
                let ids: Vec<u64> = pushed.iter().filter_map(|p| p.outcome.lead_id()).collect();
                // The leads landed either way; a failed lookup only leaves the deals unnamed.
                match lead::follow_deals(o.client, &ids).await {
                    Ok(deals) => {
                        for p in &mut pushed {
                            p.deal = p.outcome.lead_id().and_then(|l| deals.get(&l).copied());
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "finding the deals of new leads failed"),
                }
            }
        }
        Err(e) => {
            for &j in &at {
                pushed[j].outcome = Outcome::Failed {
                    error: e.to_string(),
                };
            }
            fatal = Some(e);
        }
    }
    let bookings: Vec<&Job> = jobs
        .iter()
        .filter(|j| j.kind == JobKind::CrmBooking)
        .collect();
    let mut changes = Vec::new();
    let mut change_of = Vec::new();
    for job in bookings {
        let outcome = if dry_run {
            Outcome::Skipped {
                reason: format!("dry run: booking job {} not sent", job.id),
            }
        } else if let Some(f) = &fatal {
            Outcome::Failed {
                error: f.to_string(),
            }
        } else {
            match booking_change(o, job).await? {
                Ok(change) => {
                    change_of.push(pushed.len());
                    changes.push(change);
                    not_sent()
                }
                Err(outcome) => outcome,
            }
        };
        pushed.push(Pushed {
            job: job.clone(),
            origin_id: String::new(),
            outcome,
            deal: None,
            lead: None,
        });
    }
    if !changes.is_empty() {
        match lead::update_for_bookings(o.client, o.mapping, &changes).await {
            Ok(results) => {
                for (i, r) in results.into_iter().enumerate() {
                    let Some(p) = change_of.get(i).and_then(|&j| pushed.get_mut(j)) else {
                        continue;
                    };
                    p.outcome = match r {
                        Ok(Some(id)) => Outcome::Updated { id },
                        Ok(None) => Outcome::Failed {
                            error: "the client's lead is not in Bitrix24 yet".into(),
                        },
                        Err(e) => Outcome::Failed {
                            error: e.to_string(),
                        },
                    };
                }
            }
            Err(e) => {
                for &j in &change_of {
                    pushed[j].outcome = Outcome::Failed {
                        error: e.to_string(),
                    };
                }
                if e.is_fatal() {
                    fatal = Some(e);
                }
            }
        }
    }
    Ok(Push {
        jobs: pushed,
        fatal,
    })
}

/// What a `crm_booking` job (payload `{"booking": id, "change": …}`) asks for, on the lead of
/// the job's client. `Err` is the job's outcome when there is nothing to send: the booking is
/// gone (a dead letter), or the client has no lead yet (again later).
async fn booking_change(
    o: &CrmOutbox<'_>,
    job: &Job,
) -> Result<Result<BookingChange, Outcome>, StoreError> {
    let payload: Value = serde_json::from_str(&job.payload).unwrap_or_default();
    let id = job.booking.clone().or_else(|| {
        payload
            .get("booking")
            .and_then(Value::as_str)
            .map(|s| BookingId(s.to_string()))
    });
    let stored = match &id {
        Some(id) => o.store.booking(id).await?,
        None => None,
    };
    let Some(stored) = stored else {
        return Ok(Err(Outcome::Skipped {
            reason: format!(
                "job {}: booking not found (payload {})",
                job.id, job.payload
            ),
        }));
    };
    let client = job.client_id.unwrap_or(stored.client_id);
    let Some(lead) = o.store.latest_lead_of(client).await? else {
        return Ok(Err(Outcome::Failed {
            error: format!(
                "booking {}: the client has no qualified lead yet",
                stored.booking.id
            ),
        }));
    };
    let b = &stored.booking;
    Ok(Ok(BookingChange {
        lead_origin_id: origin_of_lead(lead.id),
        booking_id: b.id.to_string(),
        change: payload
            .get("change")
            .and_then(Value::as_str)
            .unwrap_or("changed")
            .to_string(),
        service: service_name(o.profile, &b.service),
        start: b.slot.start,
        staff: o
            .profile
            .staff
            .iter()
            .find(|s| s.id == b.slot.staff)
            .map_or_else(|| b.slot.staff.to_string(), |s| s.name.clone()),
    }))
}

/// The service as the business names it ("маникюр"), or its id when the profile lacks it.
fn service_name(profile: &Profile, id: &crate::domain::ServiceId) -> String {
    profile
        .services
        .iter()
        .find(|s| &s.id == id)
        .map_or_else(|| id.to_string(), |s| s.name.clone())
}

/// Exponential backoff of CRM jobs: 30 s, 1 min, 2 min … at most an hour.
pub fn backoff(attempts: i64) -> chrono::Duration {
    let exp = u32::try_from(attempts.clamp(1, 8) - 1).unwrap_or(7);
    chrono::Duration::seconds((30i64 << exp).min(3600))
}

/// Apply `fate` to a claimed job: complete it, retry it (after the backoff of its attempts or
/// the end of a 429 pause, whichever is later; a dead letter once the attempts are used up),
/// or close it as a dead letter. Returns what was applied.
pub async fn settle(
    store: &Store,
    client: &Bitrix24,
    job: &Job,
    fate: Fate,
    now: DateTime<Utc>,
) -> Result<Fate, StoreError> {
    match fate {
        Fate::Done => {
            store.complete_job(job.id, now).await?;
            Ok(Fate::Done)
        }
        Fate::Retry(error) if job.attempts >= MAX_CRM_ATTEMPTS => {
            let reason = format!("gave up after {} attempts: {error}", job.attempts);
            store.fail_job(job.id, &reason, now).await?;
            Ok(Fate::Dead(reason))
        }
        Fate::Retry(error) => {
            let pause = client
                .paused_for()
                .and_then(|p| chrono::Duration::from_std(p).ok())
                .unwrap_or_default();
            let at = now + backoff(job.attempts).max(pause);
            store.retry_job(job.id, &error, at).await?;
            Ok(Fate::Retry(error))
        }
        Fate::Dead(reason) => {
            tracing::warn!(job = job.id, kind = job.kind.as_str(), %reason, "CRM job dead-lettered");
            store.fail_job(job.id, &reason, now).await?;
            Ok(Fate::Dead(reason))
        }
    }
}

/// How many jobs of a round ended how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub done: usize,
    pub retried: usize,
    pub dead: usize,
}

impl Tally {
    fn add(&mut self, fate: &Fate) {
        match fate {
            Fate::Done => self.done += 1,
            Fate::Retry(_) => self.retried += 1,
            Fate::Dead(_) => self.dead += 1,
        }
    }
}

/// What recording readings did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecordCounts {
    pub read: usize,
    pub added: usize,
    pub changed: usize,
    pub unchanged: usize,
    pub stale: usize,
    pub not_ours: usize,
}

impl RecordCounts {
    fn add(&mut self, r: Recorded) {
        match r {
            Recorded::Added => self.added += 1,
            Recorded::Changed => self.changed += 1,
            Recorded::Unchanged => self.unchanged += 1,
            Recorded::Stale => self.stale += 1,
            Recorded::NotOurs => self.not_ours += 1,
        }
    }

    fn merge(&mut self, other: RecordCounts) {
        self.read += other.read;
        self.added += other.added;
        self.changed += other.changed;
        self.unchanged += other.unchanged;
        self.stale += other.stale;
        self.not_ours += other.not_ours;
    }
}

fn reading(o: &CrmOutbox<'_>, obj: &CrmObject) -> Option<CrmReading> {
    Some(CrmReading {
        entity: obj.entity,
        crm_id: i64::try_from(obj.id).ok()?,
        status_id: obj.status_id.clone(),
        semantic: obj.semantic,
        modified_at: obj.modified_at,
        our_lead: obj.our_lead(o.mapping),
        crm_lead_id: obj.lead_id.and_then(|l| i64::try_from(l).ok()),
    })
}

/// Record readings. With `follow_leads`, a deal whose lead we cannot place yet (its event
/// came before we knew the lead's id) has that lead fetched and recorded first.
async fn record(
    o: &CrmOutbox<'_>,
    objects: &[CrmObject],
    follow_leads: bool,
    now: DateTime<Utc>,
) -> Result<RecordCounts, CrmRunError> {
    let mut counts = RecordCounts::default();
    let mut unplaced = Vec::new();
    for obj in objects {
        let Some(r) = reading(o, obj) else { continue };
        counts.read += 1;
        let recorded = o.store.record_crm_status(&r, now).await?;
        match (recorded, obj.lead_id) {
            (Recorded::NotOurs, Some(lead)) if follow_leads && obj.entity == CrmEntity::Deal => {
                unplaced.push((r, lead));
            }
            _ => counts.add(recorded),
        }
    }
    if unplaced.is_empty() {
        return Ok(counts);
    }
    let wanted: Vec<(CrmEntity, u64)> = unplaced
        .iter()
        .map(|(_, lead)| (CrmEntity::Lead, *lead))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    for fetched in events::fetch(o.client, &wanted).await?.into_values() {
        if let Fetched::Found(lead) = fetched
            && let Some(r) = reading(o, &lead)
        {
            o.store.record_crm_status(&r, now).await?;
        }
    }
    for (r, _) in &unplaced {
        counts.add(o.store.record_crm_status(r, now).await?);
    }
    Ok(counts)
}

/// Carry out `crm_fetch` jobs: read the objects in batches and record their status. A
/// deleted object, or one that is none of ours, is done with; a portal failure is retried.
pub async fn fetch_jobs(
    o: &CrmOutbox<'_>,
    jobs: &[Job],
    now: DateTime<Utc>,
) -> Result<Vec<(Job, Fate)>, StoreError> {
    let mut out = Vec::new();
    let mut wanted = Vec::new();
    let mut waiting = Vec::new();
    for job in jobs.iter().filter(|j| j.kind == JobKind::CrmFetch) {
        match parse_fetch_payload(&job.payload)
            .and_then(|(e, id)| Some((e, u64::try_from(id).ok()?)))
        {
            Some(key) => {
                wanted.push(key);
                waiting.push((job.clone(), key));
            }
            None => out.push((
                job.clone(),
                Fate::Dead(format!("bad crm_fetch payload {}", job.payload)),
            )),
        }
    }
    wanted.sort_unstable();
    wanted.dedup();
    if wanted.is_empty() {
        return Ok(out);
    }
    let fetched = match events::fetch(o.client, &wanted).await {
        Ok(f) => f,
        Err(e) => {
            let fate = Fate::failed(e.is_fatal(), &e);
            out.extend(waiting.into_iter().map(|(job, _)| (job, fate.clone())));
            return Ok(out);
        }
    };
    let found: Vec<CrmObject> = fetched
        .values()
        .filter_map(|f| match f {
            Fetched::Found(obj) => Some(obj.clone()),
            _ => None,
        })
        .collect();
    let recorded = match record(o, &found, true, now).await {
        Ok(_) => None,
        Err(CrmRunError::Store(e)) => return Err(e),
        Err(e) => Some(Fate::failed(e.is_fatal(), &e)),
    };
    for (job, key) in waiting {
        let fate = match fetched.get(&key) {
            Some(Fetched::Found(_)) => recorded.clone().unwrap_or(Fate::Done),
            Some(Fetched::Gone) => Fate::Done,
            Some(Fetched::Failed(e)) => Fate::Retry(e.to_string()),
            None => Fate::Retry("the fetch did not run".into()),
        };
        out.push((job, fate));
    }
    Ok(out)
}

/// Read every lead of ours (and, in simple CRM mode, every deal from a lead) changed since
/// the stored cursor, page by page, record the statuses, and only then move the cursor to the
/// latest DATE_MODIFY seen. A failure leaves the cursor where it was: the next run reads the
/// same changes again.
pub async fn reconcile(o: &CrmOutbox<'_>, now: DateTime<Utc>) -> Result<RecordCounts, CrmRunError> {
    let mut entities = vec![CrmEntity::Lead];
    if o.mapping.simple_mode {
        entities.push(CrmEntity::Deal);
    }
    let mut counts = RecordCounts::default();
    for entity in entities {
        let since = o
            .store
            .crm_cursor(entity)
            .await?
            .and_then(|c| c.modified_at);
        let objects = events::changed_since(o.client, o.mapping, entity, since).await?;
        let newest = objects.iter().filter_map(|obj| obj.modified_at).max();
        counts.merge(record(o, &objects, false, now).await?);
        o.store
            .save_crm_cursor(
                entity,
                &CrmCursor {
                    modified_at: newest,
                    run_at: now,
                },
            )
            .await?;
    }
    Ok(counts)
}

/// The portal as prepared for pushes: its CRM mode read and our lead source ensured
/// ([`lead::prepare`]) once, and again after a fatal error or a reconciliation (either may
/// have changed).
pub struct Session {
    pub mapping: Mapping,
    prepared: bool,
}

impl Session {
    pub fn new(mapping: Mapping) -> Session {
        Session {
            mapping,
            prepared: false,
        }
    }

    async fn prepare(&mut self, client: &Bitrix24) -> Result<(), CrmError> {
        if !self.prepared {
            lead::prepare(client, &mut self.mapping, false).await?;
            self.prepared = true;
        }
        Ok(())
    }
}

/// One round over claimed jobs.
#[derive(Debug)]
pub struct Round {
    /// The lead and booking jobs.
    pub push: Push,
    /// Preparing the portal failed, so nothing was sent.
    pub prepare_error: Option<CrmError>,
    pub tally: Tally,
}

impl Round {
    /// The error after which every job of the round became a dead letter.
    pub fn fatal(&self) -> Option<&CrmError> {
        self.prepare_error
            .as_ref()
            .filter(|e| e.is_fatal())
            .or(self.push.fatal.as_ref())
    }
}

/// Carry out claimed jobs, what the worker of `bot serve` and `bot crm sync --pending` both
/// do: prepare the portal, push the lead and booking jobs, fetch the statuses of fetch jobs,
/// and settle every job (times from `clock`).
pub async fn carry_out(
    store: &Store,
    client: &Bitrix24,
    profile: &Profile,
    session: &mut Session,
    jobs: &[Job],
    clock: &Clock,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Round, StoreError> {
    let mut tally = Tally::default();
    if let Err(e) = session.prepare(client).await {
        let fate = Fate::failed(e.is_fatal(), &e);
        for job in jobs {
            tally.add(&settle(store, client, job, fate.clone(), clock.now()).await?);
        }
        return Ok(Round {
            push: Push {
                jobs: Vec::new(),
                fatal: None,
            },
            prepare_error: Some(e),
            tally,
        });
    }
    let o = CrmOutbox {
        store,
        client,
        mapping: &session.mapping,
        profile,
    };
    let push = push_jobs(&o, jobs, false, progress).await?;
    let now = clock.now();
    for p in &push.jobs {
        if let (Some(lead), Some(crm)) = (p.lead, p.outcome.lead_id())
            && let Ok(crm) = i64::try_from(crm)
        {
            store.lead_pushed(lead, crm, now).await?;
        }
        tally.add(&settle(store, client, &p.job, p.fate(push.fatal.as_ref()), now).await?);
    }
    for (job, fate) in fetch_jobs(&o, jobs, clock.now()).await? {
        tally.add(&settle(store, client, &job, fate, clock.now()).await?);
    }
    if push.fatal.is_some() {
        session.prepared = false;
    }
    Ok(Round {
        push,
        prepare_error: None,
        tally,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_thirty_seconds_up_to_an_hour() {
        let secs: Vec<i64> = (1..=9).map(|a| backoff(a).num_seconds()).collect();
        assert_eq!(secs, vec![30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(0).num_seconds(), 30);
        // About a day of outage before a job is given up.
        let total: i64 = (1..MAX_CRM_ATTEMPTS)
            .map(|a| backoff(a).num_seconds())
            .sum();
        assert!((20 * 3600..30 * 3600).contains(&total), "{total}");
    }
}
