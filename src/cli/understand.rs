//! `bot understand`: messages from the arguments (or one per line from stdin) → one JSON
//! object per line with exactly the documented keys. A stdin line that is not UTF-8 is
//! reported on stderr (`stdin:LINE: not valid UTF-8`) and skipped; the exit code is then 1.

use crate::nlu::{Nlu, Understanding};
use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Business profile YAML (default: the embedded demo salon).
    #[arg(long, env = "BOT_PROFILE")]
    profile: Option<PathBuf>,
    /// Reference time, RFC 3339 (default: now).
    #[arg(long)]
    now: Option<String>,
    /// Also ask the LLM set by `BOT_LLM_*` where the rules give up, and add what it changed
    /// (`"llm"`: used fields or why not, and a grounded answer).
    #[arg(long)]
    llm: bool,
    /// Messages; read one per line from stdin when none are given.
    text: Vec<String>,
}

/// The JSON line for one understood message, keys in the documented order.
#[derive(Serialize)]
pub struct Line<'a> {
    text: &'a str,
    intent: &'static str,
    date: Option<String>,
    time: Option<String>,
    part_of_day: Option<&'static str>,
    service: Option<&'a str>,
    staff: Option<&'a str>,
    phone: Option<&'a str>,
    name: Option<&'a str>,
    email: Option<&'a str>,
    confidence: f64,
    /// With `--llm`: what the model did.
    #[serde(skip_serializing_if = "Option::is_none")]
    llm: Option<serde_json::Value>,
}

impl<'a> Line<'a> {
    pub fn new(text: &'a str, u: &'a Understanding) -> Self {
        Line {
            text,
            intent: u.intent.as_str(),
            date: u.when.date.map(|d| d.format("%Y-%m-%d").to_string()),
            time: u.when.time.map(|t| t.format("%H:%M").to_string()),
            part_of_day: u.when.part_of_day.map(|p| p.as_str()),
            service: u.service.as_ref().map(|s| s.as_str()),
            staff: u.staff.as_ref().map(|s| s.as_str()),
            phone: u.phone.as_deref(),
            name: u.name.as_deref(),
            email: u.email.as_deref(),
            confidence: (f64::from(u.confidence) * 100.0).round() / 100.0,
            llm: None,
        }
    }
}

/// Understand every message; false when a stdin line was not UTF-8 (reported and skipped).
fn execute(args: Args) -> anyhow::Result<bool> {
    let profile = super::profile_or_demo(args.profile.as_deref())?;
    let now: DateTime<Utc> = match &args.now {
        Some(s) => DateTime::parse_from_rfc3339(s)
            .with_context(|| {
                format!("--now {s:?}: expected RFC 3339, e.g. 2026-11-20T10:00:00+07:00")
            })?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let nlu = Nlu::new(&profile);
    let model = if args.llm {
        let config = crate::llm::LlmConfig::from_env()?.context(
            "--llm: no model is set (BOT_LLM_BASE_URL with /v1, BOT_LLM_MODEL, BOT_LLM_API_KEY)",
        )?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        Some((
            rt,
            crate::llm::Llm::new(config),
            crate::engine::Engine::new(profile.clone()),
        ))
    } else {
        None
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut emit = |text: &str| -> anyhow::Result<()> {
        let rules = nlu.understand(text, now);
        let (u, llm) = match &model {
            None => (rules, None),
            Some((rt, llm, engine)) => {
                let (u, outcome, _) = rt.block_on(crate::llm::assist::assist(
                    llm,
                    engine,
                    text,
                    &[],
                    None,
                    None,
                    now,
                    rules,
                ));
                let mut v = serde_json::to_value(&outcome)?;
                if let Some(a) = &u.assist {
                    v["assist"] = serde_json::to_value(a)?;
                }
                (u, Some(v))
            }
        };
        let mut line = Line::new(text, &u);
        line.llm = llm;
        writeln!(out, "{}", serde_json::to_string(&line)?)?;
        Ok(())
    };
    let mut all_read = true;
    if args.text.is_empty() {
        let mut stdin = std::io::stdin().lock();
        let mut bytes = Vec::new();
        for number in 1.. {
            bytes.clear();
            if stdin
                .read_until(b'\n', &mut bytes)
                .context("reading stdin")?
                == 0
            {
                break;
            }
            let line = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match std::str::from_utf8(line) {
                Ok(line) if !line.trim().is_empty() => emit(line)?,
                Ok(_) => {}
                Err(_) => {
                    eprintln!("stdin:{number}: not valid UTF-8");
                    all_read = false;
                }
            }
        }
    } else {
        for text in &args.text {
            emit(text)?;
        }
    }
    out.flush()?;
    Ok(all_read)
}

pub fn run(args: Args) -> ExitCode {
    match execute(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => super::fail(&e),
    }
}
