//! The Bitrix24 outbox path that the CRM worker of `bot serve` (`server::crm`) and the CLI
//! (`bot crm sync --pending`, `bot crm reconcile`) share — the one file under `crm/` that
//! reads and writes the store:
//! - [`push_jobs`]: `crm_lead` jobs become Bitrix24 leads (each looked up first, so it lands
//!   once however often it is retried), then `crm_booking` jobs update those leads; both in
//!   batches of up to 50 commands, throttled by the client's leaky bucket;
//! - [`fetch_jobs`]: `crm_fetch` jobs, queued by the status webhook, read the lead or deal and
//!   record its status for the conversion KPI;
//! - [`reconcile`]: Bitrix24 never redelivers an event, so leads (and in simple CRM mode the
//!   deals they became) changed since the stored cursor are read and recorded; the cursor
//!   moves only once every page was read and recorded;
//! - [`settle`]: the store's one retry policy ([`RetryPolicy::CRM`]: 30 s doubling up to an
//!   hour, about a day of attempts) with the portal's 429 pause; a dead letter at once when no
//!   retry can help (wrong webhook, no rights, REST not on the plan), with the cause and the
//!   fix as its reason;
//! - [`carry_out`]: one round over claimed jobs.
//!
//! The portal's wire format is `bitrix24.rs`'s and `lead.rs`'s, the tables are `store/`'s;
//! this file decides only what to send when and what the answers mean for the jobs.

use crate::clock::Clock;
use crate::config::Profile;
use crate::crm::bitrix24::{Bitrix24, CrmError};
use crate::crm::events::{self, CrmObject, Fetched};
use crate::crm::lead::{self, BookingOnLead, Mapping, origin_of_lead};
use crate::crm::{CrmLead, Outcome};
use crate::domain::{CrmEntity, ServiceId};
use crate::store::{
    CrmCursor, CrmReading, Fate, Job, JobKind, JobPayload, Recorded, RetryPolicy, Store, StoreError,
};
use chrono::{DateTime, Utc};
use std::collections::HashSet;

/// The jobs `bot crm sync --pending` carries out: leads first, then the bookings on them.
pub const PUSH_KINDS: [JobKind; 2] = [JobKind::CrmLead, JobKind::CrmBooking];

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
        let stored = match job.payload() {
            Ok(JobPayload::CrmLead { lead }) => o.store.lead(lead).await?,
            _ => None,
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
            utm: l
                .came_from
                .iter()
                .map(|c| ("UTM_SOURCE".to_string(), c.clone()))
                .collect(),
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

/// What a `crm_booking` job asks for, on the lead of the job's client. `Err` is the job's
/// outcome when there is nothing to send: the payload is unreadable or the booking is gone (a
/// dead letter), or the client has no lead yet (again later).
async fn booking_change(
    o: &CrmOutbox<'_>,
    job: &Job,
) -> Result<Result<BookingOnLead, Outcome>, StoreError> {
    let (id, change) = match job.payload() {
        Ok(JobPayload::CrmBooking { booking, change }) => (booking, change),
        Ok(_) => {
            return Ok(Err(Outcome::Skipped {
                reason: format!("job {} is not a booking change", job.id),
            }));
        }
        Err(reason) => return Ok(Err(Outcome::Skipped { reason })),
    };
    let Some(stored) = o.store.booking(&id).await? else {
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
    Ok(Ok(BookingOnLead {
        lead_origin_id: origin_of_lead(lead.id),
        booking_id: b.id.to_string(),
        change,
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
fn service_name(profile: &Profile, id: &ServiceId) -> String {
    profile
        .services
        .iter()
        .find(|s| &s.id == id)
        .map_or_else(|| id.to_string(), |s| s.name.clone())
}

/// Apply `fate` to a claimed CRM job with the CRM retry policy; a retry waits at least until
/// the portal's 429 pause ends.
pub async fn settle(
    store: &Store,
    client: &Bitrix24,
    job: &Job,
    fate: Fate,
    now: DateTime<Utc>,
) -> Result<Fate, StoreError> {
    let pause = client
        .paused_for()
        .and_then(|p| chrono::Duration::from_std(p).ok())
        .unwrap_or_default();
    Ok(store
        .settle(job, fate, &RetryPolicy::CRM, pause, now)
        .await?
        .fate)
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
            Fate::Done | Fate::Sent(_) => self.done += 1,
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
        let key = match job.payload() {
            Ok(JobPayload::CrmFetch { entity, id }) => u64::try_from(id)
                .map(|id| (entity, id))
                .map_err(|_| format!("bad crm_fetch id {id}")),
            Ok(_) => Err(format!("job {} is not a CRM fetch", job.id)),
            Err(e) => Err(e),
        };
        match key {
            Ok(key) => {
                wanted.push(key);
                waiting.push((job.clone(), key));
            }
            Err(reason) => out.push((job.clone(), Fate::Dead(reason))),
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
    pub(crate) prepared: bool,
}

impl Session {
    pub fn new(mapping: Mapping) -> Session {
        Session {
            mapping,
            prepared: false,
        }
    }

    pub(crate) async fn prepare(&mut self, client: &Bitrix24) -> Result<(), CrmError> {
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
