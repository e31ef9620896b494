//! `bot report [--from DATE --to DATE | --weeks N] [--source live|import|LABEL|all]
//! [--format table|json|csv|html] [--out PATH]`: the KPIs of a period from the live store and the
//! imports. Default: the last full Monday–Sunday week, a table with one column per source
//! (the imports' baseline beside the live bot) and the change; `--weeks N` puts the last N
//! weeks side by side instead. Names, phones and ids are masked unless
//! `--with-personal-data` (JSON only).

use super::db::{DbArg, block_on_code};
use crate::kpi::{self, ChatLog, Period, Report, render};
use anyhow::{Context, bail};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Table,
    Json,
    Csv,
    /// One self-contained page with charts (the last period when there are several).
    Html,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// First day (YYYY-MM-DD, business-local), with --to.
    #[arg(long, requires = "to", conflicts_with = "weeks")]
    from: Option<NaiveDate>,
    /// Last day, included.
    #[arg(long, requires = "from")]
    to: Option<NaiveDate>,
    /// The last N full Monday–Sunday weeks, one column each.
    #[arg(long)]
    weeks: Option<u32>,
    /// Whose chats: `live`, `import` (every import), an import's label, or `all`.
    #[arg(long, default_value = "all")]
    source: String,
    #[arg(long, value_enum, default_value = "table")]
    format: Output,
    /// Write the report here: a folder gets `<YYYY>-W<ww>.html` and `.json` (the week of the
    /// period's start); a file name gets the chosen format.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep chat names and ids in `--format json` (masked otherwise).
    #[arg(long)]
    with_personal_data: bool,
    #[command(flatten)]
    db: DbArg,
    /// Business profile YAML (time zone, services; default: the embedded demo salon).
    #[arg(long, env = "BOT_PROFILE")]
    profile: Option<PathBuf>,
    /// Reference time, RFC 3339 (default: now): which week is «last».
    #[arg(long)]
    now: Option<DateTime<Utc>>,
}

pub fn run(args: Args) -> ExitCode {
    block_on_code(async move {
        let profile = super::profile_or_demo(args.profile.as_deref())?;
        let tz = profile.business.timezone;
        let now = args.now.unwrap_or_else(Utc::now);
        let today = now.with_timezone(&tz).date_naive();
        let last_monday = today
            - Duration::days(i64::from(today.weekday().num_days_from_monday()))
            - Duration::weeks(1);
        let periods: Vec<Period> = match (args.from, args.to, args.weeks) {
            (Some(from), Some(to), _) => {
                if to < from {
                    bail!("--to {to} is before --from {from}");
                }
                vec![Period { from, to, tz }]
            }
            (_, _, Some(0)) => bail!("--weeks must be at least 1"),
            (_, _, Some(n)) => (0..n)
                .rev()
                .map(|i| {
                    let from = last_monday - Duration::weeks(i64::from(i));
                    Period {
                        from,
                        to: from + Duration::days(6),
                        tz,
                    }
                })
                .collect(),
            _ => vec![Period {
                from: last_monday,
                to: last_monday + Duration::days(6),
                tz,
            }],
        };
        let first = periods[0];
        let last = periods[periods.len() - 1];
        // A request may begin before the period's first day or end after its last.
        let window_from = first.start() - Duration::days(3);
        let window_to = Period {
            from: last.to + Duration::days(1),
            ..last
        }
        .start()
            + Duration::days(3);
        let store = args.db.open().await?;
        let loaded = async {
            let chats = store.chat_logs(window_from, window_to).await?;
            let bookings = store.booking_facts().await?;
            let pilot = super::pilot::pilot_out(&store, &profile, now).await?;
            anyhow::Ok((chats, bookings, pilot))
        }
        .await;
        store.close().await;
        let (chats, bookings, pilot) = loaded.context("reading the store")?;
        let chats: Vec<ChatLog> = chats
            .into_iter()
            .filter(|c| match args.source.as_str() {
                "all" => true,
                "live" => c.live,
                "import" => !c.live,
                label => c.source == label,
            })
            .collect();
        let nlu = crate::nlu::Nlu::new(&profile);
        let reports: Vec<Report> = periods
            .iter()
            .map(|p| Report {
                pilot: pilot.clone(),
                ..kpi::report(&chats, &bookings, &nlu, p, now)
            })
            .collect();
        // What is shown or written: names, phones and ids masked unless asked for.
        let mut shown: Vec<Report> = reports.clone();
        if !args.with_personal_data {
            for r in &mut shown {
                for q in &mut r.requests {
                    q.chat = render::mask_chat(&q.chat);
                    q.source = render::mask_source(&q.source);
                }
                r.kpis.by_source = std::mem::take(&mut r.kpis.by_source)
                    .into_iter()
                    .map(|(s, k)| (render::mask_source(&s), k))
                    .collect();
            }
        }
        let reports = &shown;
        let text = match args.format {
            Output::Table => {
                let columns: Vec<(String, &kpi::Kpis)> = if reports.len() > 1 {
                    reports
                        .iter()
                        .map(|r| (week_name(r.period.from), &r.kpis.all))
                        .collect()
                } else {
                    let r = &reports[0];
                    let mut cols: Vec<(String, &kpi::Kpis)> = r
                        .kpis
                        .by_source
                        .iter()
                        .filter(|(s, _)| s.as_str() != "live")
                        .map(|(s, k)| (s.clone(), k))
                        .collect();
                    if let Some(live) = r.kpis.by_source.get("live") {
                        cols.push(("live".into(), live));
                    }
                    if cols.len() != 1 {
                        cols.push(("all".into(), &r.kpis.all));
                    }
                    cols
                };
                let heading = format!(
                    "{} – {} ({})",
                    first.from.format("%d.%m.%Y"),
                    last.to.format("%d.%m.%Y"),
                    tz.name()
                );
                format!("{heading}\n{}\n", render::table(&columns))
            }
            Output::Json => {
                let value = if shown.len() == 1 {
                    serde_json::to_string_pretty(&shown[0])?
                } else {
                    serde_json::to_string_pretty(&shown)?
                };
                format!("{value}\n")
            }
            Output::Csv => {
                let mut scopes: Vec<(String, &kpi::Kpis)> = Vec::new();
                for r in reports {
                    let prefix = if reports.len() > 1 {
                        format!("{}:", week_name(r.period.from))
                    } else {
                        String::new()
                    };
                    scopes.push((format!("{prefix}all"), &r.kpis.all));
                    for (c, k) in &r.kpis.by_channel {
                        scopes.push((format!("{prefix}channel:{c}"), k));
                    }
                    for (s, k) in &r.kpis.by_source {
                        scopes.push((format!("{prefix}source:{s}"), k));
                    }
                }
                render::csv(&scopes)?
            }
            Output::Html => kpi::html::page(&shown[shown.len() - 1], &profile.business.name, tz),
        };
        match &args.out {
            None => print!("{text}"),
            Some(dir) if dir.is_dir() || dir.to_string_lossy().ends_with('/') => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let last = &shown[shown.len() - 1];
                let name = week_name(last.period.from);
                let json = dir.join(format!("{name}.json"));
                std::fs::write(&json, serde_json::to_string_pretty(last)?)
                    .with_context(|| format!("writing {}", json.display()))?;
                let html = dir.join(format!("{name}.html"));
                std::fs::write(&html, kpi::html::page(last, &profile.business.name, tz))
                    .with_context(|| format!("writing {}", html.display()))?;
                eprintln!("wrote {} and {}", html.display(), json.display());
            }
            Some(file) => {
                std::fs::write(file, text)
                    .with_context(|| format!("writing {}", file.display()))?;
                eprintln!("wrote {}", file.display());
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `2026-W49`: the ISO week of a day.
fn week_name(day: NaiveDate) -> String {
    let w = day.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}
