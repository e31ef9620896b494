//! `bot test dialogs`: find, check and run the dialog specs — in-process, or over HTTP against
//! a running `bot serve` with `--target` — then report: a progress bar on a terminal, a table
//! and readable failure diffs (or JSON), optional JUnit XML and coverage, and over HTTP what
//! could not be checked there. Exit codes: 0 every dialog passed (over HTTP: everything that
//! could be checked), 1 a dialog failed or was flaky, 2 a spec, profile or usage error
//! (nothing was run) or a server that cannot be reached.

use crate::config::{self, Profile};
use crate::domain::ChannelKind;
use crate::engine::Engine;
use crate::spec::coverage::{Coverage, Seen, coverage};
use crate::spec::load::{self, Parsed};
use crate::spec::matcher::Vocabulary;
use crate::spec::model::{Dialog, ProfileRef};
use crate::spec::remote::{self, Target};
use crate::spec::runner::{self, DialogReport, DialogRun, PathRun, Skip, Verdict};
use crate::spec::{SpecError, junit};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct DialogsArgs {
    /// Dialog files or folders of them (default: dialogs/). Folders are not searched
    /// recursively, so shared fragments live in a sub-folder.
    pub paths: Vec<PathBuf>,
    /// Business profile YAML used by every dialog instead of the one each dialog names.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Run only dialogs whose id contains this text (repeat for several).
    #[arg(long, value_name = "ID")]
    pub filter: Vec<String>,
    /// Output: a table with failure diffs, or JSON on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write JUnit XML here (one testcase per dialog variation path).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Report which intents, reply templates, escalation paths and effects of the profile the
    /// dialogs exercised, and which none did.
    #[arg(long)]
    pub coverage: bool,
    /// Run every path N times and label each dialog pass / flaky / fail.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: u32,
    /// Replay over HTTP against a running `bot serve` (its web-chat API) instead of in-process;
    /// start it at the dialogs' `now` (hidden `--now` / `BOT_NOW`). Checks that need the
    /// engine's internals are reported as skipped.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// With --target: seconds to wait for each HTTP answer.
    #[arg(long, default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout: u64,
    /// Replay every dialog as if its client wrote on this channel (telegram, max, vk, web,
    /// instagram) — the same conversation must hold everywhere. Dialogs on a channel that
    /// gives the client's phone (whatsapp) keep theirs.
    #[arg(long, value_name = "CHANNEL", value_parser = parse_channel)]
    pub channel: Option<ChannelKind>,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print the whole transcript of each failed path.
    #[arg(long, short)]
    pub verbose: bool,
}

/// A profile, and what is built from it once for all its dialogs.
struct Loaded {
    name: String,
    profile: Profile,
    engine: Engine,
    /// The same business without a managers' channel (`managers: false` in a dialog).
    engine_alone: Engine,
    vocab: Vocabulary,
}

fn parse_channel(s: &str) -> Result<ChannelKind, String> {
    ChannelKind::parse(s).ok_or_else(|| {
        let all: Vec<&str> = ChannelKind::ALL.iter().map(|c| c.as_str()).collect();
        format!("unknown channel {s:?} (expected one of {})", all.join(", "))
    })
}

fn load_profile(r: &ProfileRef) -> Result<Profile, String> {
    let r = r.clone();
    // The demo loaders panic on an invalid embedded profile; report that as an error.
    std::panic::catch_unwind(move || match &r {
        ProfileRef::Salon => Ok(config::demo_salon()),
        ProfileRef::Clinic => Ok(config::demo_clinic()),
        ProfileRef::File(p) => config::load(p).map_err(|e| e.to_string()),
    })
    .map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the profile loader panicked".into())
    })?
}

fn print_spec_errors(errors: &[SpecError]) -> ExitCode {
    for e in errors {
        eprintln!("{e}");
    }
    eprintln!(
        "bot test dialogs: {} spec error(s), nothing was run",
        errors.len()
    );
    ExitCode::from(2)
}

pub fn run(args: DialogsArgs) -> ExitCode {
    let started = Instant::now();
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("dialogs")]
    } else {
        args.paths.clone()
    };
    let files = match load::discover(&paths) {
        Ok(f) => f,
        Err(e) => return print_spec_errors(&[e]),
    };
    if files.is_empty() {
        eprintln!("bot test dialogs: no dialog files (*.yaml) in {paths:?}");
        return ExitCode::from(2);
    }

    // Parse everything first, so all syntax errors are reported together.
    let mut errors = Vec::new();
    let mut parsed: Vec<Parsed> = Vec::new();
    for f in &files {
        match load::parse_file(f) {
            Ok(mut p) => {
                if let Some(channel) = args.channel {
                    let own = p.spec.channel.unwrap_or(ChannelKind::Telegram);
                    if !own.provides_phone() {
                        p.spec.channel = Some(channel);
                    }
                }
                parsed.push(p)
            }
            Err(e) => errors.push(e),
        }
    }
    let mut seen_ids: BTreeMap<String, String> = BTreeMap::new();
    for p in &parsed {
        if let Some(first) = seen_ids.insert(p.id().to_string(), p.file.clone()) {
            errors.push(SpecError::at(
                &p.file,
                &p.spec.id,
                "id",
                &format!("id {:?} is also used by {first}", p.id()),
            ));
        }
    }
    if !errors.is_empty() {
        return print_spec_errors(&errors);
    }
    parsed.retain(|p| args.filter.is_empty() || args.filter.iter().any(|f| p.id().contains(f)));
    if parsed.is_empty() {
        eprintln!(
            "bot test dialogs: no dialog id matches --filter {}",
            args.filter.join(", ")
        );
        return ExitCode::from(2);
    }

    // One engine per profile.
    let profile_of = |p: &Parsed| match &args.profile {
        Some(path) => ProfileRef::File(path.clone()),
        None => p.profile(),
    };
    let mut profiles: BTreeMap<ProfileRef, Loaded> = BTreeMap::new();
    for p in &parsed {
        let r = profile_of(p);
        if profiles.contains_key(&r) {
            continue;
        }
        match load_profile(&r) {
            Ok(profile) => {
                let vocab = Vocabulary::new(&profile);
                let engine = Engine::new(profile.clone());
                let engine_alone = Engine::new(profile.clone()).without_managers();
                profiles.insert(
                    r.clone(),
                    Loaded {
                        name: r.to_string(),
                        profile,
                        engine,
                        engine_alone,
                        vocab,
                    },
                );
            }
            Err(e) => {
                eprintln!("bot test dialogs: profile {r} (used by {}): {e}", p.file);
                return ExitCode::from(2);
            }
        }
    }

    let mut dialogs: Vec<(Dialog, ProfileRef)> = Vec::new();
    for p in &parsed {
        let r = profile_of(p);
        let Some(l) = profiles.get(&r) else { continue };
        match load::compile(p, &l.profile, &l.vocab) {
            Ok(mut d) => {
                d.profile = r.clone();
                dialogs.push((d, r));
            }
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return print_spec_errors(&errors);
    }
    let jobs: Vec<DialogRun<'_>> = dialogs
        .iter()
        .filter_map(|(d, r)| {
            profiles.get(r).map(|l| DialogRun {
                dialog: d,
                engine: if d.managers {
                    &l.engine
                } else {
                    &l.engine_alone
                },
                vocab: &l.vocab,
            })
        })
        .collect();

    let target = match &args.target {
        Some(url) => match Target::connect(url, std::time::Duration::from_secs(args.timeout)) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("bot test dialogs: {e}");
                if !matches!(e, remote::TargetError::InvalidUrl { .. }) {
                    eprintln!(
                        "  start it first, e.g. `BOT_NOW=<the dialogs' now> bot serve --listen 127.0.0.1:8080`"
                    );
                }
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    if let Some(t) = &target {
        warn_about_the_clock(&t.url, &jobs);
        if args.coverage {
            eprintln!(
                "bot test dialogs: --coverage is left out with --target: intents, templates and effects are not visible over HTTP"
            );
        }
    }

    let threads = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let progress = (args.format == Format::Table && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(jobs.len() as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} dialogs {msg}") {
            bar.set_style(style);
        }
        bar
    });
    let done = |r: &DialogReport| {
        if let Some(bar) = &progress {
            bar.set_message(r.id.clone());
            bar.inc(1);
        }
    };
    let repeat = args.repeat as usize;
    let reports = match &target {
        Some(t) => runner::run_all_with(&jobs, threads, &done, &|job| {
            remote::run_dialog(job, t, repeat)
        }),
        None => runner::run_all(&jobs, repeat, threads, &done),
    };
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let elapsed_us = started.elapsed().as_micros() as u64;

    let coverages: Vec<Coverage> = if args.coverage && target.is_none() {
        profiles
            .iter()
            .map(|(r, l)| {
                let mut seen = Seen::default();
                for (rep, (_, pr)) in reports.iter().zip(&dialogs) {
                    if pr == r {
                        seen.merge(&rep.seen);
                    }
                }
                coverage(&l.name, &l.profile, &seen)
            })
            .collect()
    } else {
        Vec::new()
    };

    if let Some(path) = &args.junit {
        let written = std::fs::File::create(path)
            .and_then(|f| junit::write(&reports, elapsed_us, std::io::BufWriter::new(f)));
        if let Err(e) = written {
            eprintln!("bot test dialogs: --junit {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }

    let target_url = target.as_ref().map(|t| t.url.as_str());
    let out = match args.format {
        Format::Json => print_json(&reports, &coverages, elapsed_us, target_url),
        Format::Table => print_table(&reports, &coverages, elapsed_us, args.verbose),
    };
    if let Err(e) = out {
        // A closed pipe (`| head`) is not a test failure; other write errors are.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("bot test dialogs: {e}");
            return ExitCode::from(2);
        }
    }
    let lost = reports
        .iter()
        .flat_map(|r| &r.runs)
        .filter_map(|run| run.failure.as_ref())
        .find(|f| f.check == "connection");
    if let (Some(f), Some(url)) = (lost, target_url) {
        eprintln!(
            "bot test dialogs: lost the connection to {url}: {}",
            f.detail
        );
        return ExitCode::from(2);
    }
    if reports
        .iter()
        .all(|r| matches!(r.verdict, Verdict::Pass | Verdict::Skipped))
    {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Over HTTP the server's clock is its own: say which moment the dialogs assume, so that the
/// server can be started there (`BOT_NOW`), and when they assume several.
fn warn_about_the_clock(url: &str, jobs: &[DialogRun<'_>]) {
    let mut moments: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for j in jobs {
        if remote::needs_in_process(j.dialog).is_none() {
            moments
                .entry(
                    j.dialog
                        .now
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                )
                .or_default()
                .push(&j.dialog.id);
        }
    }
    let mut lines = Vec::new();
    for (at, ids) in &moments {
        lines.push(format!("  now = {at}: {}", ids.join(", ")));
    }
    if lines.is_empty() {
        return;
    }
    eprintln!(
        "bot test dialogs: note: the dialogs assume a clock the runner cannot set on {url}; start the server with `BOT_NOW=<now> bot serve` (or `--now`) at:\n{}",
        lines.join("\n")
    );
    if moments.len() > 1 {
        eprintln!(
            "  they assume {} different moments: run each group with --filter against a server started at its moment; the others will fail on dates",
            moments.len()
        );
    }
}

/// The terminal's width, or 120 columns when not on a terminal (CI logs).
fn terminal_width() -> u16 {
    let probe = Table::new();
    probe.width().unwrap_or(120)
}

/// 412 µs, 3.2 ms, 1.05 s.
pub fn fmt_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1_000.0)
    } else {
        format!("{:.2} s", us as f64 / 1_000_000.0)
    }
}

fn summary(reports: &[DialogReport]) -> serde_json::Value {
    let count = |v: Verdict| reports.iter().filter(|r| r.verdict == v).count();
    json!({
        "dialogs": reports.len(),
        "passed": count(Verdict::Pass),
        "flaky": count(Verdict::Flaky),
        "failed": count(Verdict::Fail),
        "paths": reports.iter().map(|r| r.paths).sum::<usize>(),
        "runs": reports.iter().map(|r| r.runs.len()).sum::<usize>(),
        "variations": reports.iter().map(|r| r.variations).sum::<usize>(),
        "variations_replayed": reports.iter().map(|r| r.variations_replayed).sum::<usize>(),
        "skipped": count(Verdict::Skipped),
        "steps": reports.iter().map(|r| r.steps).sum::<usize>(),
        "steps_skipped": reports.iter().map(|r| r.steps_skipped).sum::<usize>(),
        "checks_skipped": reports.iter().map(|r| r.checks_skipped).sum::<usize>(),
    })
}

fn print_json(
    reports: &[DialogReport],
    coverages: &[Coverage],
    elapsed_us: u64,
    target: Option<&str>,
) -> std::io::Result<()> {
    let mut s = summary(reports);
    s["elapsed_us"] = json!(elapsed_us);
    if let Some(url) = target {
        s["target"] = json!(url);
    }
    let mut doc = json!({ "summary": s, "dialogs": reports });
    if !coverages.is_empty() {
        doc["coverage"] = json!(coverages);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    serde_json::to_writer_pretty(&mut out, &doc)?;
    writeln!(out)
}

fn print_table(
    reports: &[DialogReport],
    coverages: &[Coverage],
    elapsed_us: u64,
    verbose: bool,
) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut table = Table::new();
    table.load_style(UTF8_FULL);
    table.set_header(vec![
        "dialog",
        "steps",
        "variations replayed",
        "result",
        "slowest turn",
    ]);
    for r in reports {
        let repeats = r.runs.len() / r.paths.max(1);
        let runs = if repeats > 1 {
            format!(" ×{repeats}")
        } else {
            String::new()
        };
        table.add_row(vec![
            format!("{}\n{}", r.id, r.title),
            r.steps.to_string(),
            format!(
                "{}/{} in {} path{}{runs}",
                r.variations_replayed,
                r.variations,
                r.paths,
                if r.paths == 1 { "" } else { "s" }
            ),
            match r.verdict {
                Verdict::Pass => "pass".to_string(),
                Verdict::Flaky => {
                    let passed = r.runs.iter().filter(|x| x.passed).count();
                    format!("FLAKY ({passed}/{} runs)", r.runs.len())
                }
                Verdict::Fail => "FAIL".to_string(),
                Verdict::Skipped => "skipped (needs in-process)".to_string(),
            } + &skipped_note(r),
            fmt_us(r.slowest_turn_us),
        ]);
    }
    writeln!(out, "{table}")?;

    for r in reports.iter().filter(|r| r.verdict != Verdict::Pass) {
        // The first failed run of each failing path; paths that fail the same way (same
        // step, check and answer) are named once.
        let failed: Vec<&PathRun> = (0..r.paths)
            .filter_map(|p| r.runs.iter().find(|x| x.path == p && !x.passed))
            .collect();
        let key = |run: &PathRun| {
            run.failure.as_ref().map(|f| {
                let texts: Vec<&str> = f.actual.iter().map(|a| a.text.as_str()).collect();
                (
                    f.step_path.clone(),
                    f.check.clone(),
                    f.detail.clone(),
                    texts.join("\n"),
                )
            })
        };
        let mut shown = Vec::new();
        for run in &failed {
            let path = run.path;
            if shown.contains(&key(run)) {
                continue;
            }
            shown.push(key(run));
            let Some(f) = &run.failure else { continue };
            let same: Vec<String> = failed
                .iter()
                .filter(|o| o.path != path && key(o) == key(run))
                .map(|o| (o.path + 1).to_string())
                .collect();
            let choices: Vec<String> = run.choices.iter().map(|c| (c + 1).to_string()).collect();
            writeln!(
                out,
                "\n{} {} ({}) — path {} of {}, variations {}{}",
                if r.path_verdict(path) == Verdict::Flaky {
                    "FLAKY"
                } else {
                    "FAIL"
                },
                r.id,
                r.file,
                path + 1,
                r.paths,
                choices.join(","),
                if run.repeat > 0 {
                    format!(", run {}", run.repeat + 1)
                } else {
                    String::new()
                }
            )?;
            writeln!(out, "{}", f.render())?;
            if !same.is_empty() {
                writeln!(out, "  (the same failure on paths {})", same.join(", "))?;
            }
            if verbose {
                writeln!(out, "  transcript:")?;
                for l in &run.transcript {
                    writeln!(
                        out,
                        "    {:>2} {:<6} {}",
                        l.step,
                        l.who,
                        l.text.replace('\n', " ⏎ ")
                    )?;
                    if !l.buttons.is_empty() {
                        writeln!(out, "              [{}]", l.buttons.join("] ["))?;
                    }
                }
            }
        }
    }

    print_skipped(&mut out, reports)?;

    for c in coverages {
        let mut t = Table::new();
        t.load_style(UTF8_FULL)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(terminal_width());
        t.set_header(vec![
            "coverage".to_string(),
            c.profile.clone(),
            "not exercised by any dialog".to_string(),
        ]);
        for a in &c.areas {
            t.add_row(vec![
                a.name.to_string(),
                format!(
                    "{}/{} ({}%)",
                    a.covered.len(),
                    a.covered.len() + a.missing.len(),
                    a.percent()
                ),
                if a.missing.is_empty() {
                    "—".to_string()
                } else {
                    a.missing.join(", ")
                },
            ]);
        }
        writeln!(out, "\n{t}")?;
    }

    let s = summary(reports);
    writeln!(
        out,
        "\n{} dialogs, {} paths, {} runs: {} passed, {} flaky, {} failed{} in {}",
        s["dialogs"],
        s["paths"],
        s["runs"],
        s["passed"],
        s["flaky"],
        s["failed"],
        if s["skipped"] == 0 {
            String::new()
        } else {
            format!(", {} skipped", s["skipped"])
        },
        fmt_us(elapsed_us)
    )?;
    if s["steps_skipped"] != 0 || s["checks_skipped"] != 0 {
        writeln!(
            out,
            "not checked over HTTP (needs in-process): {} of {} steps, and {} checks of the steps that ran",
            s["steps_skipped"], s["steps"], s["checks_skipped"]
        )?;
    }
    Ok(())
}

/// `, 3/8 steps and 5 checks skipped` for a dialog that ran in part over HTTP.
fn skipped_note(r: &DialogReport) -> String {
    if r.verdict == Verdict::Skipped || (r.steps_skipped == 0 && r.checks_skipped == 0) {
        return String::new();
    }
    format!(
        "\n{}/{} steps, {} check{} skipped",
        r.steps_skipped,
        r.steps,
        r.checks_skipped,
        if r.checks_skipped == 1 { "" } else { "s" }
    )
}

/// What could not be checked over HTTP, dialog by dialog, step by step, with the reasons.
fn print_skipped(out: &mut impl Write, reports: &[DialogReport]) -> std::io::Result<()> {
    for r in reports.iter().filter(|r| !r.skipped.is_empty()) {
        writeln!(
            out,
            "\nskipped in {} ({}) — needs in-process:",
            r.id, r.file
        )?;
        // One line per step and reason: `steps[2] (file:line:col): booked, lead — why`.
        let mut lines: Vec<(usize, String, &str, Vec<&str>)> = Vec::new();
        for s in &r.skipped {
            let what = match s.what.as_str() {
                Skip::REST => "this step and the rest of the path",
                Skip::STEP => "this step",
                w => w,
            };
            match lines
                .iter_mut()
                .find(|l| l.0 == s.step && l.2 == s.why.as_str())
            {
                Some(l) => l.3.push(what),
                None => lines.push((s.step, s.location.clone(), &s.why, vec![what])),
            }
        }
        for (step, location, why, what) in lines {
            writeln!(
                out,
                "  step {step} at {location}: {} — {why}",
                what.join(", ")
            )?;
        }
    }
    Ok(())
}
