//! `bot crm sync|setup|check|reconcile`: push test leads from a CSV (or the store's pending lead
//! and booking jobs, through the same code as the worker of `bot serve`) into Bitrix24 and show
//! what happened to each; register our lead source; verify the portal; read back the status
//! of our leads. The portal is reached through `BOT_BITRIX24_WEBHOOK` (or OAuth); exit 0 all
//! landed (or were skipped as invalid), 1 some failed, 2 usage, configuration or a fatal
//! portal error.

use super::db::DbArg;
use crate::clock::Clock;
use crate::crm::bitrix24::{Bitrix24, CrmError, Retry, mask_webhook};
use crate::crm::lead::{self, Mapping, SourceState};
use crate::crm::outbox::{self, CrmOutbox, PUSH_KINDS, Session, carry_out, push_jobs};
use crate::crm::{CrmLead, Outcome, SyncReport, csv};
use crate::domain::{CrmEntity, CrmSemantic};
use crate::store::CrmStatus;
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
    /// Read the status of our leads (and, in simple CRM mode, their deals) changed since the
    /// last run and record it for the conversion KPI; `bot serve` does this on schedule.
    Reconcile(ReconcileArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// Business profile YAML (default: the embedded demo salon): the time zone.
    #[arg(long, env = "BOT_PROFILE")]
    pub profile: Option<PathBuf>,
    /// Output: a summary on the terminal, or JSON on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
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
            CrmCommand::Reconcile(args) => reconcile_once(args).await,
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
            line.deal = o.lead_id().and_then(|l| deals.get(&l).copied());
            line.outcome = o;
        }
    }
    Ok(report(&client, &lines, started, &args))
}

/// Read the mode and ensure the source, saying what matters on stderr.
async fn prepare(client: &Bitrix24, mapping: &mut Mapping, dry_run: bool) -> Result<(), CrmError> {
    let source = lead::prepare(client, mapping, dry_run).await?;
    if mapping.simple_mode {
        eprintln!("simple CRM mode: new leads become deals at once");
    }
    if source == SourceState::Missing {
        eprintln!(
            "dry run: the lead source {} is missing and would be registered",
            mapping.source_id
        );
    }
    Ok(())
}

/// A progress bar of `n` leads when the table goes to a terminal.
fn progress_bar(format: Format, n: usize) -> Option<ProgressBar> {
    (format == Format::Table && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(n as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} leads {elapsed}") {
            bar.set_style(style);
        }
        bar
    })
}

/// Prepare, then sync with a progress bar on a terminal, then find the deals of the leads in
/// simple CRM mode. Fatal errors end the run.
async fn push(
    client: &Bitrix24,
    mapping: &mut Mapping,
    leads: &[CrmLead],
    dry_run: bool,
    format: Format,
) -> Result<(Vec<Outcome>, HashMap<u64, u64>), CrmError> {
    prepare(client, mapping, dry_run).await?;
    let bar = progress_bar(format, leads.len());
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
        let ids: Vec<u64> = outcomes.iter().filter_map(Outcome::lead_id).collect();
        deals = lead::follow_deals(client, &ids).await?;
    }
    Ok((outcomes, deals))
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

/// The outbox path, the same code as the CRM worker of `bot serve` (`crm::outbox`): lease the
/// due `crm_lead` and `crm_booking` jobs, push them, then complete each job, retry it with
/// backoff, or dead-letter it. A dry run only reads the pending jobs and sends nothing.
async fn sync_pending(args: SyncArgs) -> anyhow::Result<ExitCode> {
    let profile = super::profile_or_demo(args.profile.as_deref())?;
    let store = args.db.open().await?;
    let (client, mut mapping) = connect()?;
    mapping.tz = profile.business.timezone;
    let bar = progress_bar(args.format, 0);
    let progress = |done: usize| {
        if let Some(bar) = &bar {
            bar.set_position(done as u64);
        }
    };
    let started = Instant::now();
    let pushed = if args.dry_run {
        let jobs: Vec<_> = store
            .pending_jobs()
            .await?
            .into_iter()
            .filter(|j| PUSH_KINDS.contains(&j.kind) && j.done_at.is_none())
            .collect();
        prepare(&client, &mut mapping, true).await?;
        if let Some(bar) = &bar {
            bar.set_length(jobs.len() as u64);
        }
        let o = CrmOutbox {
            store: &store,
            client: &client,
            mapping: &mapping,
            profile: &profile,
        };
        push_jobs(&o, &jobs, true, &progress).await?.jobs
    } else {
        let lease = chrono::Duration::minutes(10);
        let jobs = store
            .claim_outbox(&PUSH_KINDS, chrono::Utc::now(), lease, 10_000)
            .await?;
        if let Some(bar) = &bar {
            bar.set_length(jobs.len() as u64);
        }
        let mut session = Session::new(mapping);
        let round = carry_out(
            &store,
            &client,
            &profile,
            &mut session,
            &jobs,
            &Clock::System,
            &progress,
        )
        .await?;
        if session.mapping.simple_mode {
            eprintln!("simple CRM mode: new leads become deals at once");
        }
        if let Some(e) = round.fatal() {
            anyhow::bail!(
                "{e}\n{} job(s) are dead letters now; after the fix: bot outbox retry --all",
                jobs.len()
            );
        }
        if let Some(e) = round.prepare_error {
            anyhow::bail!("{e}\nthe jobs are retried later (or run this again)");
        }
        round.push.jobs
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let lines: Vec<Line> = pushed
        .into_iter()
        .map(|p| Line {
            line: p.job.id as u64,
            origin_id: p.origin_id,
            outcome: p.outcome,
            deal: p.deal,
        })
        .collect();
    Ok(report(&client, &lines, started, &args))
}

/// `bot crm reconcile`: once, what `bot serve` does on schedule.
async fn reconcile_once(args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let profile = super::profile_or_demo(args.profile.as_deref())?;
    let store = args.db.open().await?;
    let (client, mut mapping) = connect()?;
    mapping.tz = profile.business.timezone;
    lead::detect_mode(&client, &mut mapping).await?;
    let o = CrmOutbox {
        store: &store,
        client: &client,
        mapping: &mapping,
        profile: &profile,
    };
    let counts = outbox::reconcile(&o, chrono::Utc::now()).await?;
    let statuses = store.crm_statuses().await?;
    let per_lead = CrmStatus::per_lead(&statuses);
    let count = |s: CrmSemantic| per_lead.values().filter(|v| **v == s).count();
    let cursor = store.crm_cursor(CrmEntity::Lead).await?;
    store.close().await;
    match args.format {
        Format::Json => {
            let out = json!({
                "simple_mode": mapping.simple_mode,
                "read": counts,
                "leads": {
                    "in_work": count(CrmSemantic::InWork),
                    "converted": count(CrmSemantic::Converted),
                    "junk": count(CrmSemantic::Junk),
                },
                "cursor": cursor.and_then(|c| c.modified_at).map(|d| d.to_rfc3339()),
            });
            println!("{out:#}");
        }
        Format::Table => {
            println!(
                "read {} object(s): {} new, {} changed, {} unchanged, {} not ours",
                counts.read, counts.added, counts.changed, counts.unchanged, counts.not_ours
            );
            println!(
                "our leads in Bitrix24: {} in work, {} converted, {} junk",
                count(CrmSemantic::InWork),
                count(CrmSemantic::Converted),
                count(CrmSemantic::Junk)
            );
            if let Some(at) = cursor.and_then(|c| c.modified_at) {
                println!("next run reads changes since {}", at.to_rfc3339());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
