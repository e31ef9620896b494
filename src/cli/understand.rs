//! `bot understand`: messages from the arguments (or one per line from stdin) → one JSON
//! object per line with exactly the documented keys.

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
        }
    }
}

fn execute(args: Args) -> anyhow::Result<()> {
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
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut emit = |text: &str| -> anyhow::Result<()> {
        let u = nlu.understand(text, now);
        writeln!(out, "{}", serde_json::to_string(&Line::new(text, &u))?)?;
        Ok(())
    };
    if args.text.is_empty() {
        for line in std::io::stdin().lock().lines() {
            let line = line.context("reading stdin")?;
            if !line.trim().is_empty() {
                emit(&line)?;
            }
        }
    } else {
        for text in &args.text {
            emit(text)?;
        }
    }
    out.flush()?;
    Ok(())
}

pub fn run(args: Args) -> ExitCode {
    match execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::fail(&e),
    }
}
