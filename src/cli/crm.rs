//! `bot crm sync|setup`: push test leads from a CSV (or the store's pending lead jobs) into
//! Bitrix24 and show what happened to each; register our lead source. The portal is reached
//! through `BOT_BITRIX24_WEBHOOK`; exit 0 all landed (or were skipped as invalid), 1 some
//! failed, 2 usage, configuration or a fatal portal error.

use super::db::DbArg;
use crate::crm::bitrix24::{Bitrix24, CrmError, Retry, mask_webhook};
use crate::crm::lead::{self, Mapping, SourceState};
use crate::crm::{CrmLead, Outcome, SyncReport, csv};
use crate::store::JobKind;
use anyhow::Context;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, clap::Subcommand)]
pub enum CrmCommand {
    /// Push leads into Bitrix24: created, updated (duplicate found), skipped (invalid), failed.
    Sync(SyncArgs),
    /// Check the webhook and the CRM mode, and register the CHAT_BOT lead source if missing.
    Setup,
    /// Verify the webhook, its scopes, the CRM mode and the lead source; change nothing.
    Check,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// CSV of test leads: name,phone,email,channel,service,desired_at,comment,external_id.
    #[arg(
        long,
        value_name = "FILE.csv",
        required_unless_present = "pending",
        conflicts_with = "pending"
    )]
    pub leads: Option<PathBuf>,
    /// Push the store's pending lead jobs (the outbox) instead of a file.
    #[arg(long)]
    pub pending: bool,
    /// Look leads up in the portal and report what would happen; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output: a table on the terminal, or JSON on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub db: DbArg,
    /// Business profile YAML (default: the embedded demo salon): service names and time zone
    /// of the pending leads.
    #[arg(long, env = "BOT_PROFILE")]
    pub profile: Option<PathBuf>,
}

pub fn run(cmd: CrmCommand) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return super::fail(&anyhow::Error::new(e).context("starting the async runtime")),
    };
    let result = rt.block_on(async move {
        match cmd {
            CrmCommand::Sync(args) => sync(args).await,
            CrmCommand::Setup => setup().await,
            CrmCommand::Check => check().await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => super::fail(&e),
    }
}

fn connect() -> anyhow::Result<(Bitrix24, Mapping)> {
    let mapping = Mapping::from_env()?;
    Ok((Bitrix24::from_env()?, mapping))
}

async fn setup() -> anyhow::Result<ExitCode> {
    let (client, mapping) = connect()?;
    let mode = client
        .call("crm.settings.mode.get", &json!({}), Retry::Safe)
        .await?;
    let mode = match crate::crm::bitrix24::id(&mode.result) {
        Some(2) => "simple (leads are converted to deals at once)",
        Some(1) => "classic (leads)",
        _ => "unknown",
    };
    let source = lead::ensure_source(&client, &mapping, false).await?;
    println!("webhook: {} ok", mask_webhook(&client.settings().base));
    println!("CRM mode: {mode}");
    println!(
        "lead source {}: {}",
        mapping.source_id,
        match source {
            SourceState::Existed => "already registered",
            SourceState::Registered => "registered now",
            SourceState::Missing => "missing",
        }
    );
    Ok(ExitCode::SUCCESS)
}

async fn check() -> anyhow::Result<ExitCode> {
    let (client, mapping) = connect()?;
    let mut problems = 0;
    println!("webhook: {}", mask_webhook(&client.settings().base));
    let scopes = client.call("scope", &json!({}), Retry::Safe).await?;
    let has_crm = scopes
        .result
        .as_array()
        .is_some_and(|s| s.iter().any(|v| v.as_str() == Some("crm")));
    if has_crm {
        println!("scope crm: ok");
    } else {
        problems += 1;
        println!(
            "scope crm: MISSING (scopes: {}). Fix: edit the incoming webhook and tick CRM (crm)",
            scopes.result
        );
    }
    let mode = client
        .call("crm.settings.mode.get", &json!({}), Retry::Safe)
        .await?;
    match crate::crm::bitrix24::id(&mode.result) {
        Some(1) => println!("CRM mode: classic (leads)"),
        Some(2) => println!("CRM mode: simple (new leads become deals and contacts at once)"),
        _ => println!("CRM mode: unknown ({})", mode.result),
    }
    match lead::ensure_source(&client, &mapping, true).await? {
        SourceState::Missing => {
            problems += 1;
            println!(
                "lead source {}: MISSING. Fix: run `bot crm setup` (needs CRM settings rights)",
                mapping.source_id
            );
        }
        _ => println!("lead source {}: ok", mapping.source_id),
    }
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One input row and what became of it.
struct Line {
    /// CSV line, or the outbox job id.
    line: u64,
    origin_id: String,
    outcome: Outcome,
    /// The deal the lead became (simple CRM mode).
    deal: Option<u64>,
}

async fn sync(args: SyncArgs) -> anyhow::Result<ExitCode> {
    if args.pending {
        return sync_pending(args).await;
    }
    let Some(path) = &args.leads else {
        anyhow::bail!("give --leads FILE.csv or --pending");
    };
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let rows =
        csv::read(std::io::BufReader::new(file)).with_context(|| format!("{}", path.display()))?;
    let (client, mut mapping) = connect()?;
    let mut lines = Vec::with_capacity(rows.len());
    let mut leads: Vec<CrmLead> = Vec::new();
    let mut at: Vec<usize> = Vec::new();
    for row in rows {
        match row.lead {
            Ok(l) => {
                at.push(lines.len());
                lines.push(Line {
                    line: row.line,
                    origin_id: l.origin_id.clone(),
                    outcome: Outcome::Failed {
                        error: "not sent".into(),
                    },
                    deal: None,
                });
                leads.push(l);
            }
            Err(e) => lines.push(Line {
                line: row.line,
                origin_id: String::new(),
                outcome: Outcome::Skipped {
                    reason: format!("{}:{}: {e}", path.display(), row.line),
                },
                deal: None,
            }),
        }
    }
    let started = Instant::now();
    let (outcomes, deals) = push(&client, &mut mapping, &leads, args.dry_run, args.format).await?;
    for (i, o) in outcomes.into_iter().enumerate() {
        if let Some(line) = at.get(i).and_then(|&j| lines.get_mut(j)) {
            line.deal = lead_id(&o).and_then(|l| deals.get(&l).copied());
            line.outcome = o;
        }
    }
    Ok(report(&client, &lines, started, &args))
}

/// Ensure the source, then sync with a progress bar on a terminal. Fatal errors end the run.
async fn push(
    client: &Bitrix24,
    mapping: &mut Mapping,
    leads: &[CrmLead],
    dry_run: bool,
    format: Format,
) -> Result<(Vec<Outcome>, HashMap<u64, u64>), CrmError> {
    if lead::detect_mode(client, mapping).await? {
        eprintln!("simple CRM mode: new leads become deals at once");
    }
    let source = lead::ensure_source(client, mapping, dry_run).await?;
    if source == SourceState::Missing {
        eprintln!(
            "dry run: the lead source {} is missing and would be registered",
            mapping.source_id
        );
    }
    let bar = (format == Format::Table && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(leads.len() as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} leads {elapsed}") {
            bar.set_style(style);
        }
        bar
    });
    let progress = |done: usize| {
        if let Some(bar) = &bar {
            bar.set_position(done as u64);
        }
    };
    let outcomes = lead::sync(client, mapping, leads, dry_run, &progress).await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let outcomes = outcomes?;
    let mut deals = HashMap::new();
    if mapping.simple_mode && !dry_run {
        let ids: Vec<u64> = outcomes.iter().filter_map(lead_id).collect();
        deals = lead::follow_deals(client, &ids).await?;
    }
    Ok((outcomes, deals))
}

fn lead_id(o: &Outcome) -> Option<u64> {
    match o {
        Outcome::Created { id } => *id,
        Outcome::Updated { id } => Some(*id),
        _ => None,
    }
}

fn report(client: &Bitrix24, lines: &[Line], started: Instant, args: &SyncArgs) -> ExitCode {
    let outcomes: Vec<Outcome> = lines.iter().map(|l| l.outcome.clone()).collect();
    let summary = SyncReport::of(&outcomes);
    let seconds = started.elapsed().as_secs_f64();
    let sent = summary.created + summary.updated + summary.failed;
    let stats = client.stats();
    match args.format {
        Format::Json => {
            let rows: Vec<serde_json::Value> = lines
                .iter()
                .map(|l| {
                    let mut v = json!({"line": l.line, "origin_id": l.origin_id});
                    if let (Some(o), Some(deal)) = (v.as_object_mut(), l.deal) {
                        o.insert("deal_id".into(), json!(deal));
                    }
                    if let (Some(o), Ok(serde_json::Value::Object(extra))) =
                        (v.as_object_mut(), serde_json::to_value(&l.outcome))
                    {
                        o.extend(extra);
                    }
                    v
                })
                .collect();
            let out = json!({
                "dry_run": args.dry_run,
                "summary": summary,
                "rows": rows,
                "requests": stats.requests,
                "query_limit_retries": stats.query_limit_retries,
                "seconds": seconds,
                "leads_per_second": if seconds > 0.0 { sent as f64 / seconds } else { 0.0 },
            });
            println!("{out:#}");
        }
        Format::Table => {
            let verb = if args.dry_run { "would be " } else { "" };
            let mut table = Table::new();
            table
                .load_style(UTF8_FULL)
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_header(vec!["result", "leads"]);
            table.add_row(vec![format!("{verb}created"), summary.created.to_string()]);
            table.add_row(vec![
                format!("{verb}updated (duplicate found)"),
                summary.updated.to_string(),
            ]);
            table.add_row(vec![
                "skipped (invalid)".to_string(),
                summary.skipped.to_string(),
            ]);
            table.add_row(vec!["failed".to_string(), summary.failed.to_string()]);
            let deals = lines.iter().filter(|l| l.deal.is_some()).count();
            if deals > 0 {
                table.add_row(vec![
                    "became deals (simple CRM mode)".to_string(),
                    deals.to_string(),
                ]);
            }
            println!("{table}");
            let problems: Vec<&Line> = lines
                .iter()
                .filter(|l| matches!(l.outcome, Outcome::Skipped { .. } | Outcome::Failed { .. }))
                .collect();
            if !problems.is_empty() {
                let mut t = Table::new();
                t.load_style(UTF8_FULL)
                    .set_content_arrangement(ContentArrangement::Dynamic)
                    .set_header(vec!["line", "result", "reason"]);
                for l in problems {
                    let reason = match &l.outcome {
                        Outcome::Skipped { reason } => reason.clone(),
                        Outcome::Failed { error } => error.clone(),
                        _ => String::new(),
                    };
                    t.add_row(vec![
                        l.line.to_string(),
                        l.outcome.kind().to_string(),
                        reason,
                    ]);
                }
                println!("{t}");
            }
            eprintln!(
                "{sent} leads in {seconds:.2} s ({:.1} leads/s), {} requests, {} retried after QUERY_LIMIT_EXCEEDED",
                if seconds > 0.0 {
                    sent as f64 / seconds
                } else {
                    0.0
                },
                stats.requests,
                stats.query_limit_retries
            );
        }
    }
    if summary.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The outbox path: lease the due `crm_lead` jobs, push their leads, then complete each job
/// or schedule its retry. A dry run only reads the pending jobs.
/// The outbox jobs `--pending` carries out: leads first, then the bookings that update them.
const KINDS: [JobKind; 2] = [JobKind::CrmLead, JobKind::CrmBooking];

async fn sync_pending(args: SyncArgs) -> anyhow::Result<ExitCode> {
    let profile = match &args.profile {
        Some(path) => crate::config::load(path)?,
        None => crate::config::demo_salon(),
    };
    let store = args.db.open().await?;
    let (client, mut mapping) = connect()?;
    mapping.tz = profile.business.timezone;
    let now = chrono::Utc::now();
    let jobs = if args.dry_run {
        store
            .pending_jobs()
            .await?
            .into_iter()
            .filter(|j| KINDS.contains(&j.kind) && j.done_at.is_none())
            .collect()
    } else {
        store
            .claim_outbox(&KINDS, now, chrono::Duration::minutes(10), 10_000)
            .await?
    };
    let stored = store.leads().await?;
    let mut lines = Vec::new();
    let mut leads = Vec::new();
    let mut at = Vec::new();
    let mut job_of = Vec::new();
    let mut booking_jobs = Vec::new();
    for job in &jobs {
        if job.kind == JobKind::CrmBooking {
            booking_jobs.push(job);
            continue;
        }
        let lead_id = serde_json::from_str::<serde_json::Value>(&job.payload)
            .ok()
            .and_then(|v| v.get("lead").and_then(serde_json::Value::as_i64));
        let found = lead_id.and_then(|id| stored.iter().find(|l| l.id == id));
        match found {
            Some(l) => {
                let crm = CrmLead {
                    origin_id: format!("lead-{}", l.id),
                    name: l.contact.name.clone(),
                    phone: l.contact.phone.clone(),
                    email: l.contact.email.clone(),
                    channel: l.client.channel.into(),
                    service: l.service.as_ref().map(|s| service_name(&profile, s)),
                    desired_at: l.desired_at,
                    comment: Some(format!("Клиент {}", l.client)),
                    utm: Vec::new(),
                };
                at.push(lines.len());
                job_of.push(job.id);
                lines.push(Line {
                    line: job.id as u64,
                    origin_id: crm.origin_id.clone(),
                    outcome: Outcome::Failed {
                        error: "not sent".into(),
                    },
                    deal: None,
                });
                leads.push(crm);
            }
            None => {
                let reason = format!("job {}: lead not found (payload {})", job.id, job.payload);
                if !args.dry_run {
                    store
                        .retry_job(job.id, &reason, now + chrono::Duration::hours(1))
                        .await?;
                }
                lines.push(Line {
                    line: job.id as u64,
                    origin_id: String::new(),
                    outcome: Outcome::Skipped { reason },
                    deal: None,
                });
            }
        }
    }
    let started = Instant::now();
    let outcomes = push(&client, &mut mapping, &leads, args.dry_run, args.format).await;
    let (outcomes, deals) = match outcomes {
        Ok(o) => o,
        Err(e) => {
            // Give the leases back; a retry finds whatever landed and updates it.
            if !args.dry_run {
                for &id in &job_of {
                    store
                        .retry_job(id, &e.to_string(), now + chrono::Duration::minutes(5))
                        .await?;
                }
            }
            return Err(e.into());
        }
    };
    for (i, o) in outcomes.into_iter().enumerate() {
        if !args.dry_run
            && let Some(&job) = job_of.get(i)
        {
            match &o {
                Outcome::Created { .. } | Outcome::Updated { .. } => {
                    store.complete_job(job, chrono::Utc::now()).await?;
                }
                Outcome::Failed { error } | Outcome::Skipped { reason: error } => {
                    store
                        .retry_job(
                            job,
                            error,
                            chrono::Utc::now() + chrono::Duration::minutes(5),
                        )
                        .await?;
                }
            }
        }
        if let Some(line) = at.get(i).and_then(|&j| lines.get_mut(j)) {
            line.deal = lead_id(&o).and_then(|l| deals.get(&l).copied());
            line.outcome = o;
        }
    }
    for job in booking_jobs {
        let outcome = if args.dry_run {
            Outcome::Skipped {
                reason: format!("dry run: booking job {} not sent", job.id),
            }
        } else {
            match booking_change(&store, &stored, job, &profile).await? {
                None => Outcome::Skipped {
                    reason: format!("job {}: booking or its lead not found", job.id),
                },
                Some(change) => match lead::update_for_booking(&client, &mapping, &change).await {
                    Ok(Some(id)) => Outcome::Updated { id },
                    Ok(None) => Outcome::Failed {
                        error: "the client's lead is not in Bitrix24 yet".into(),
                    },
                    Err(e) if e.is_fatal() => return Err(e.into()),
                    Err(e) => Outcome::Failed {
                        error: e.to_string(),
                    },
                },
            }
        };
        if !args.dry_run {
            match &outcome {
                Outcome::Updated { .. } | Outcome::Created { .. } => {
                    store.complete_job(job.id, chrono::Utc::now()).await?;
                }
                Outcome::Failed { error } | Outcome::Skipped { reason: error } => {
                    let at = chrono::Utc::now() + chrono::Duration::minutes(5);
                    store.retry_job(job.id, error, at).await?;
                }
            }
        }
        lines.push(Line {
            line: job.id as u64,
            origin_id: String::new(),
            outcome,
            deal: None,
        });
    }
    Ok(report(&client, &lines, started, &args))
}

/// What a `crm_booking` job (payload `{"booking": id, "change": …}`) says, with the ORIGIN_ID
/// of the client's latest lead. None when the booking or the lead is unknown.
async fn booking_change(
    store: &crate::store::Store,
    leads: &[crate::store::StoredLead],
    job: &crate::store::Job,
    profile: &crate::config::Profile,
) -> anyhow::Result<Option<lead::BookingChange>> {
    let payload: serde_json::Value = serde_json::from_str(&job.payload).unwrap_or_default();
    let id = job.booking.clone().or_else(|| {
        payload
            .get("booking")
            .and_then(serde_json::Value::as_str)
            .map(|s| crate::domain::BookingId(s.to_string()))
    });
    let Some(id) = id else { return Ok(None) };
    let Some(stored) = store.booking(&id).await? else {
        return Ok(None);
    };
    let b = &stored.booking;
    let Some(lead) = leads
        .iter()
        .filter(|l| l.client == b.client)
        .max_by_key(|l| l.id)
    else {
        return Ok(None);
    };
    Ok(Some(lead::BookingChange {
        lead_origin_id: format!("lead-{}", lead.id),
        booking_id: b.id.to_string(),
        change: payload
            .get("change")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("changed")
            .to_string(),
        service: service_name(profile, &b.service),
        start: b.slot.start,
        staff: profile
            .staff
            .iter()
            .find(|s| s.id == b.slot.staff)
            .map_or_else(|| b.slot.staff.to_string(), |s| s.name.clone()),
    }))
}

/// The service as the business names it ("маникюр"), or its id when the profile lacks it.
fn service_name(profile: &crate::config::Profile, id: &crate::domain::ServiceId) -> String {
    profile
        .services
        .iter()
        .find(|s| &s.id == id)
        .map_or_else(|| id.to_string(), |s| s.name.clone())
}
