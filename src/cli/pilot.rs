//! `bot pilot --share N [--seed S] [--weeks 2] [--start NOW|DATETIME] [--existing bot|managers]`
//! starts a pilot (or changes the running one's share: its seed and every assignment stay) and
//! prints the plan; `bot pilot stop`, `bot pilot status [--format table|json]` (per-arm counts,
//! SRM, the comparisons and the verdict) and `bot pilot assign KEY...` (the arm and hash of
//! each key, for support). The pilot lives in the store, so every `bot serve` replica reads it.

use super::TableFormat as Format;
use super::db::{DbArg, block_on};
use crate::engine::reply::fmt_count;
use crate::kpi::{self, Period};
use crate::pilot::analysis::{self, PilotOut};
use crate::pilot::{self, Arm, stats};
use crate::store::pilot::{Pilot, PilotPlan, Started};
use anyhow::{Context, bail};
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::path::PathBuf;
use std::process::ExitCode;

const EXAMPLE: &str = "Example:\n  bot pilot --share 10\n      The bot serves 10 % of the clients who write for the first time from now on, for two\n      weeks; the managers serve the other 90 % (the bot stays silent and relays their\n      messages). Each client keeps their arm. `bot pilot status` shows the verdict.";

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, after_help = EXAMPLE)]
pub struct Args {
    #[command(subcommand)]
    command: Option<PilotCommand>,
    #[command(flatten)]
    start: StartArgs,
}

#[derive(Debug, clap::Args)]
struct StartArgs {
    /// The bot's share of new clients, in percent (0–100); the managers serve the rest.
    #[arg(long, value_parser = valid_share)]
    share: Option<f64>,
    /// The hash seed (default: random, stored; a share change keeps the running pilot's).
    #[arg(long)]
    seed: Option<String>,
    /// How long the pilot runs, in weeks.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=52))]
    weeks: u32,
    /// When it starts: NOW, RFC 3339, or `YYYY-MM-DD HH:MM` in the business's time zone.
    #[arg(long, default_value = "NOW")]
    start: String,
    /// Who serves the clients known before the start (they are not in the pilot).
    #[arg(long, value_enum, default_value = "bot")]
    existing: ArmArg,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct Common {
    #[command(flatten)]
    db: DbArg,
    /// Business profile YAML (time zone, hours, services; default: the embedded demo salon).
    #[arg(long, env = "BOT_PROFILE")]
    profile: Option<PathBuf>,
    /// Reference time, RFC 3339 (default: now).
    #[arg(long)]
    now: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ArmArg {
    Bot,
    Managers,
}

#[derive(Debug, clap::Subcommand)]
enum PilotCommand {
    /// Stop the running pilot: new clients get the bot again (the managers keep whom they serve
    /// until they give them back in the console).
    Stop(Common),
    /// The pilot's numbers: clients per arm, SRM, qualified %, booking conversion, response
    /// times, and the verdict.
    Status(StatusArgs),
    /// The arm and hash of client keys (`tel:+7…`, `web:ID`, `telegram:ID`, `max:ID`, `vk:ID`)
    /// under the latest pilot's seed and share.
    Assign(AssignArgs),
}

#[derive(Debug, clap::Args)]
struct StatusArgs {
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct AssignArgs {
    /// Client keys, exactly as the pilot forms them.
    #[arg(required = true)]
    keys: Vec<String>,
    /// The seed to use instead of the stored pilot's.
    #[arg(long)]
    seed: Option<String>,
    /// The share to use instead of the stored pilot's.
    #[arg(long, value_parser = valid_share)]
    share: Option<f64>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    #[command(flatten)]
    db: DbArg,
}

fn valid_share(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?} is not a number (the share is in percent, e.g. 10)"))?;
    if !(0.0..=100.0).contains(&v) {
        return Err(format!("{v} is not a percentage from 0 to 100"));
    }
    Ok(v)
}

fn parse_start(s: &str, now: DateTime<Utc>, tz: Tz) -> anyhow::Result<DateTime<Utc>> {
    if s.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .with_context(|| {
            format!("--start {s:?}: expected NOW, RFC 3339 or YYYY-MM-DD HH:MM (local time)")
        })?;
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("--start {s:?} does not exist in {}", tz.name()))
}

pub fn run(args: Args) -> ExitCode {
    block_on(async move {
        match (args.command, args.start.share) {
            (Some(PilotCommand::Stop(c)), _) => stop(c).await,
            (Some(PilotCommand::Status(s)), _) => status(s).await,
            (Some(PilotCommand::Assign(a)), _) => assign(a).await,
            (None, Some(share)) => start(args.start, share).await,
            (None, None) => bail!(
                "say what to do: `bot pilot --share N` starts a pilot (or changes its share), \
                 or `bot pilot stop|status|assign` (see bot pilot --help)"
            ),
        }
    })
}

async fn start(a: StartArgs, share: f64) -> anyhow::Result<()> {
    let profile = super::profile_or_demo(a.common.profile.as_deref())?;
    let tz = profile.business.timezone;
    let now = a.common.now.unwrap_or_else(Utc::now);
    let start = parse_start(&a.start, now, tz)?;
    let plan = PilotPlan {
        share,
        seed: a.seed.clone(),
        start,
        ends_at: start + Duration::weeks(i64::from(a.weeks)),
        existing: match a.existing {
            ArmArg::Bot => Arm::Bot,
            ArmArg::Managers => Arm::Managers,
        },
    };
    let store = a.common.db.open().await?;
    let result = async {
        if let Some(running) = store.pilot().await?.filter(|p| p.running_at(now))
            && a.seed.as_ref().is_some_and(|s| *s != running.seed)
        {
            bail!(
                "a pilot is running with seed {:?}: a share change keeps it (stop the pilot to start \
                 another with a new seed)",
                running.seed
            );
        }
        let started = store.start_pilot(&plan, now).await?;
        let operators = store.operators().await?.len();
        let chats = store
            .chat_logs(now - Duration::weeks(4) - Duration::days(3), now)
            .await?;
        anyhow::Ok((started, operators, chats))
    }
    .await;
    store.close().await;
    let (started, operators, chats) = result?;
    let pilot = match &started {
        Started::New(p) => {
            println!("pilot started (#{})", p.id);
            p
        }
        Started::Changed { before, after } => {
            println!(
                "pilot #{} changed: share {} % → {} % (clients assigned so far keep their arm; \
                 the new share applies to clients first seen from now on)",
                after.id,
                fmt_num(before.share),
                fmt_num(after.share)
            );
            after
        }
    };
    if std::env::var_os("BOT_MANAGERS_CHAT_ID").is_none() && operators == 0 {
        eprintln!(
            "warning: no managers' channel: set BOT_TELEGRAM_TOKEN and BOT_MANAGERS_CHAT_ID, or add \
             a console operator (bot operator add NAME) — the managers' arm waits unanswered until then"
        );
    }
    print_plan(pilot, &chats, &profile, now, tz);
    Ok(())
}

fn print_plan(
    p: &Pilot,
    chats: &[kpi::ChatLog],
    profile: &crate::config::Profile,
    now: DateTime<Utc>,
    tz: Tz,
) {
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%d.%m.%Y %H:%M").to_string();
    println!("share:  {} % of new clients to the bot", fmt_num(p.share));
    println!("seed:   {}", p.seed);
    println!("start:  {} ({})", local(p.started_at), tz.name());
    println!("end:    {}", local(p.ends_at));
    println!(
        "known clients (first seen before the start): served by {}",
        arm_word(p.existing)
    );
    // The volume and booking conversion of the last four weeks, live and imported alike.
    let today = now.with_timezone(&tz).date_naive();
    let period = Period {
        from: today - Duration::days(28),
        to: today - Duration::days(1),
        tz,
    };
    let nlu = crate::nlu::Nlu::new(profile);
    let report = kpi::report(chats, &[], &nlu, &period, now);
    let requests = report.kpis.all.requests;
    let baseline = report
        .kpis
        .all
        .booking_conversion_pct
        .map(|p| p / 100.0)
        .filter(|p| *p > 0.0 && *p < 0.95);
    let p_managers = baseline.unwrap_or(0.20);
    let share = p.share / 100.0;
    println!(
        "booking conversion now: {}",
        baseline.map_or("unknown (20 % assumed)".to_string(), |b| format!(
            "{} % over {requests} requests of the last four weeks",
            fmt_num((b * 1000.0).round() / 10.0)
        ))
    );
    let target = (p_managers + 0.05).min(0.99);
    for (alpha, what) in [
        (0.05, "α 0.05"),
        (0.05 / 3.0, "α 0.05/3, the verdict's bar"),
    ] {
        match stats::sample_size(p_managers, target, share, alpha, 0.8) {
            Some((bot, managers)) => println!(
                "needed to detect +5 pp at 80 % power ({what}): {} clients ({} bot, {} managers)",
                fmt_count(bot + managers),
                fmt_count(bot),
                fmt_count(managers)
            ),
            None => println!(
                "needed to detect +5 pp: not computable at a {} % share",
                fmt_num(p.share)
            ),
        }
    }
    let weeks = (p.ends_at - p.started_at).num_days() as f64 / 7.0;
    let expected = (requests as f64 / 4.0 * weeks).round() as u64;
    match stats::mde_pp(expected, share, p_managers, 0.05 / 3.0, 0.8) {
        Some(mde) if requests > 0 => println!(
            "at the last four weeks' volume (~{} new requests in the pilot) it can detect +{} pp",
            fmt_count(expected),
            fmt_num((mde * 10.0).round() / 10.0)
        ),
        _ => println!(
            "minimum detectable effect: unknown (no requests in the last four weeks to size the pilot)"
        ),
    }
}

async fn stop(c: Common) -> anyhow::Result<()> {
    let now = c.now.unwrap_or_else(Utc::now);
    let store = c.db.open().await?;
    let stopped = store.stop_pilot(now).await;
    store.close().await;
    match stopped? {
        Some(p) => {
            println!(
                "pilot #{} stopped: new clients get the bot; the managers keep the clients they \
                 serve until they give them back in the console",
                p.id
            );
            Ok(())
        }
        None => bail!("no pilot is running"),
    }
}

/// The pilot's numbers now, as `bot report` and `bot pilot status` show them.
pub(crate) async fn pilot_out(
    store: &crate::store::Store,
    profile: &crate::config::Profile,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<PilotOut>> {
    let Some(p) = store.pilot().await? else {
        return Ok(None);
    };
    let assignments = store.pilot_assignments(p.id).await?;
    let end = p
        .stopped_at
        .map_or(p.ends_at, |s| s.min(p.ends_at))
        .min(now);
    // A request may run past the window's end by a few days.
    // A channel's time of a message may be a little before the server's; a request may run
    // past the window's end by a few days.
    let chats = store
        .chat_logs(
            p.started_at - Duration::days(1),
            end.max(p.started_at) + Duration::days(3),
        )
        .await?;
    let chats: Vec<_> = chats.into_iter().filter(|c| c.live).collect();
    let nlu = crate::nlu::Nlu::new(profile);
    Ok(Some(analysis::analyze(
        &p,
        &assignments,
        &chats,
        profile,
        &nlu,
        now,
    )))
}

async fn status(s: StatusArgs) -> anyhow::Result<()> {
    let profile = super::profile_or_demo(s.common.profile.as_deref())?;
    let now = s.common.now.unwrap_or_else(Utc::now);
    let store = s.common.db.open().await?;
    let out = pilot_out(&store, &profile, now).await;
    store.close().await;
    let Some(out) = out? else {
        bail!("no pilot was ever started (bot pilot --share N starts one)");
    };
    match s.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&out)?),
        Format::Table => print!("{}", status_table(&out, profile.business.timezone, now)),
    }
    Ok(())
}

/// The status for people: SRM first, then the comparisons and the verdict.
fn status_table(o: &PilotOut, tz: Tz, now: DateTime<Utc>) -> String {
    use std::fmt::Write;
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%d.%m.%Y %H:%M").to_string();
    let mut s = String::new();
    let state = match o.stopped {
        Some(t) => format!("stopped {}", local(t)),
        None if now >= o.end => "ended".to_string(),
        None if now < o.start => "not started yet".to_string(),
        None => format!("running, {} day(s) left", o.days_left),
    };
    let _ = writeln!(
        s,
        "pilot: share {} %, seed {}, {} – {} ({state})",
        fmt_num(o.share),
        o.seed,
        local(o.start),
        local(o.end)
    );
    let _ = writeln!(
        s,
        "clients: bot {}, managers {} (expected {:.1} / {:.1}; requests {} / {}); SRM p = {}{}",
        o.clients.bot,
        o.clients.managers,
        o.expected.bot,
        o.expected.managers,
        o.requests.bot,
        o.requests.managers,
        o.srm_p.map_or("—".into(), |p| format!("{p:.4}")),
        if o.srm_alarm {
            " — SAMPLE RATIO MISMATCH: the split is broken, do not read the KPIs below until the cause is found"
        } else {
            ""
        }
    );
    if o.multiple_exposures > 0 {
        let _ = writeln!(
            s,
            "multiple exposures: {} person(s) reached both arms under two keys",
            o.multiple_exposures
        );
    }
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header([
        "",
        "bot",
        "managers",
        "difference (95 % CI)",
        "p",
        "P(bot better)",
    ]);
    let pct = |v: Option<f64>| v.map_or("—".to_string(), |x| format!("{x:.1} %"));
    for (name, c) in &o.comparisons {
        let label = match name.as_str() {
            "qualified_pct" => "qualified",
            "booking_conversion_pct" => "booking conversion",
            other => other,
        };
        table.add_row([
            label.to_string(),
            pct(c.bot_pct),
            pct(c.managers_pct),
            match (c.diff_pp, c.ci_low_pp, c.ci_high_pp) {
                (Some(d), Some(l), Some(h)) => format!("{d:+.1} pp [{l:+.1}; {h:+.1}]"),
                _ => "—".into(),
            },
            c.p_value.map_or("—".into(), |p| format!("{p:.3}")),
            c.chance_bot_better
                .map_or("—".into(), |p| format!("{:.0} %", p * 100.0)),
        ]);
    }
    let secs = |v: Option<f64>| v.map_or("—".to_string(), human_seconds);
    let r = &o.first_response;
    table.add_row([
        "first response, median".to_string(),
        secs(r.bot.median_s),
        secs(r.managers.median_s),
        match (r.median_diff_s, r.median_diff_ci_s) {
            (Some(d), Some((l, h))) => format!("{d:+.0} s [{l:+.0}; {h:+.0}]"),
            _ => "—".into(),
        },
        r.mann_whitney_p.map_or("—".into(), |p| format!("{p:.3}")),
        String::new(),
    ]);
    table.add_row([
        "first response, p90 / mean".to_string(),
        format!("{} / {}", secs(r.bot.p90_s), secs(r.bot.mean_s)),
        format!("{} / {}", secs(r.managers.p90_s), secs(r.managers.mean_s)),
        String::new(),
        String::new(),
        String::new(),
    ]);
    let within = |v: Option<f64>| v.map_or("—".to_string(), |x| format!("{:.0} %", x * 100.0));
    table.add_row([
        "answered within 60 s".to_string(),
        within(r.bot.within_60s),
        within(r.managers.within_60s),
        String::new(),
        String::new(),
        String::new(),
    ]);
    let h = &o.first_response_business_hours;
    table.add_row([
        "first response, median, business hours".to_string(),
        secs(h.bot.median_s),
        secs(h.managers.median_s),
        match (h.median_diff_s, h.median_diff_ci_s) {
            (Some(d), Some((l, hi))) => format!("{d:+.0} s [{l:+.0}; {hi:+.0}]"),
            _ => "—".into(),
        },
        h.mann_whitney_p.map_or("—".into(), |p| format!("{p:.3}")),
        String::new(),
    ]);
    let _ = writeln!(s, "{table}");
    let _ = writeln!(s, "verdict: {}", o.verdict_text);
    if let Some(mde) = o.mde_pp {
        let _ = writeln!(
            s,
            "the clients so far can detect a conversion difference of ±{mde:.1} pp (80 % power)"
        );
    }
    s
}

fn human_seconds(s: f64) -> String {
    if s < 90.0 {
        format!("{s:.1} s")
    } else if s < 5400.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

async fn assign(a: AssignArgs) -> anyhow::Result<()> {
    let store = a.db.open().await?;
    let found = async {
        let p = store.pilot().await?;
        let mut assigned = Vec::new();
        if let Some(p) = &p {
            for k in &a.keys {
                assigned.push(store.pilot_assignment(p.id, k).await?);
            }
        }
        anyhow::Ok((p, assigned))
    }
    .await;
    store.close().await;
    let (stored, assigned) = found?;
    let Some(seed) = a
        .seed
        .clone()
        .or_else(|| stored.as_ref().map(|p| p.seed.clone()))
    else {
        bail!("no pilot was ever started: give --seed and --share");
    };
    let share = a
        .share
        .or_else(|| stored.as_ref().map(|p| p.share))
        .unwrap_or(0.0);
    // A stored assignment is the client's arm (sticky); otherwise the arm the key would get
    // now. With --seed or --share given, only the computation.
    let what_if = a.seed.is_some() || a.share.is_some();
    let rows: Vec<(String, f64, Arm, Option<f64>)> = a
        .keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let stored = assigned
                .get(i)
                .and_then(Option::as_ref)
                .filter(|_| !what_if);
            match stored {
                Some(s) => (k.clone(), s.h, s.arm, Some(s.share)),
                None => {
                    let h = pilot::hash_v2(&seed, k);
                    (k.clone(), h, pilot::arm(h, share), None)
                }
            }
        })
        .collect();
    match a.format {
        Format::Json => {
            let list: Vec<_> = rows
                .iter()
                .map(|(k, h, arm, at)| {
                    serde_json::json!({
                        "key": k, "h": h, "arm": arm,
                        "assigned": at.is_some(), "share_at_assignment": at
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "seed": seed, "share": share, "keys": list
                }))?
            );
        }
        Format::Table => {
            println!("seed {seed}, share {} %", fmt_num(share));
            for (k, h, arm, at) in rows {
                let how = at.map_or(
                    "not assigned yet: the arm it would get now".to_string(),
                    |s| format!("assigned at a {} % share", fmt_num(s)),
                );
                println!("{k}\th = {h:.4}\t{}\t{how}", arm_word(arm));
            }
        }
    }
    Ok(())
}

fn arm_word(arm: Arm) -> &'static str {
    match arm {
        Arm::Bot => "bot",
        Arm::Managers => "managers",
    }
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}
