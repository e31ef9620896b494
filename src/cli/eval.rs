//! `bot eval understand FILE`: scores the bot's understanding on the integrator's own labelled
//! messages — the rules alone, and the rules with the LLM set by `BOT_LLM_*` — field by field
//! (intent, service, staff, date, time, phone, name), so a business can measure what the model
//! adds on its data. The file:
//!
//! ```yaml
//! now: 2026-11-20T10:00:00+07:00      # the reference time of relative dates (default: now)
//! messages:
//!   - text: "ну это самое, в пятничку бы"
//!     intent: book
//!     date: 2026-11-20
//!   - {text: "выезжаете на дом?", intent: faq}
//! ```
//! A label left out is not scored; `null` means «nothing there». Errors name file:line:column.

use super::TableFormat as Format;
use crate::domain::Intent;
use crate::llm::{Llm, LlmConfig};
use crate::nlu::Understanding;
use anyhow::Context;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum EvalCommand {
    /// Score the understanding of labelled messages: rules alone vs rules + LLM.
    Understand(Args),
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The labelled messages (YAML).
    file: PathBuf,
    /// Business profile YAML (default: the embedded demo salon).
    #[arg(long, env = "BOT_PROFILE")]
    profile: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    now: Option<DateTime<chrono::FixedOffset>>,
    messages: Vec<Labelled>,
}

/// A label: absent (not scored) or a value, where `null` is a value («nothing there»).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Labelled {
    text: String,
    #[serde(default)]
    intent: Option<Intent>,
    #[serde(default, deserialize_with = "present")]
    service: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    staff: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    date: Option<Option<NaiveDate>>,
    #[serde(default, deserialize_with = "present")]
    time: Option<Option<NaiveTime>>,
    #[serde(default, deserialize_with = "present")]
    phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    name: Option<Option<String>>,
}

fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

const FIELDS: [&str; 7] = [
    "intent", "service", "staff", "date", "time", "phone", "name",
];

/// One field of one understanding, as text (None: nothing there).
fn field(u: &Understanding, f: &str) -> Option<String> {
    match f {
        "intent" => Some(u.intent.as_str().to_string()),
        "service" => u.service.as_ref().map(|s| s.as_str().to_string()),
        "staff" => u.staff.as_ref().map(|s| s.as_str().to_string()),
        "date" => u.when.date.map(|d| d.to_string()),
        "time" => u.when.time.map(|t| t.format("%H:%M").to_string()),
        "phone" => u.phone.clone(),
        "name" => u.name.clone(),
        _ => None,
    }
}

/// The labelled value of field `f`, when labelled.
fn label(m: &Labelled, f: &str) -> Option<Option<String>> {
    match f {
        "intent" => m.intent.map(|i| Some(i.as_str().to_string())),
        "service" => m.service.clone(),
        "staff" => m.staff.clone(),
        "date" => m.date.map(|d| d.map(|d| d.to_string())),
        "time" => m.time.map(|t| t.map(|t| t.format("%H:%M").to_string())),
        "phone" => m.phone.clone(),
        "name" => m.name.clone(),
        _ => None,
    }
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
struct Score {
    labelled: u64,
    rules: u64,
    with_llm: u64,
}

#[derive(Debug, Serialize)]
struct MessageOut {
    text: String,
    /// Fields the rules got wrong.
    rules_wrong: Vec<&'static str>,
    /// Fields rules + LLM got wrong (null without a model).
    with_llm_wrong: Option<Vec<&'static str>>,
    llm: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct Report {
    messages: usize,
    llm: Option<String>,
    asked: u64,
    used: u64,
    fields: BTreeMap<&'static str, Score>,
    details: Vec<MessageOut>,
}

pub fn run(cmd: EvalCommand) -> ExitCode {
    let EvalCommand::Understand(args) = cmd;
    match execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::fail(&e),
    }
}

fn execute(args: Args) -> anyhow::Result<()> {
    let profile = super::profile_or_demo(args.profile.as_deref())?;
    let name = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {name}"))?;
    let file: File = serde_saphyr::from_str(&text)
        .map_err(|e| crate::config::locate::yaml_error(&e, &text, &name))?;
    if file.messages.is_empty() {
        anyhow::bail!("{name}: messages: the list is empty");
    }
    let now = file.now.map_or_else(Utc::now, |t| t.with_timezone(&Utc));
    let engine = crate::engine::Engine::new(profile);
    let model = LlmConfig::from_env()?.map(Llm::new);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut fields: BTreeMap<&'static str, Score> = BTreeMap::new();
    let (mut asked, mut used) = (0, 0);
    let mut details = Vec::new();
    for m in &file.messages {
        let rules = engine.nlu().understand(&m.text, now);
        let assisted = model.as_ref().map(|llm| {
            rt.block_on(crate::llm::assist::assist(
                llm,
                &engine,
                &m.text,
                &[],
                None,
                None,
                now,
                rules.clone(),
            ))
        });
        let mut rules_wrong = Vec::new();
        let mut llm_wrong = Vec::new();
        for f in FIELDS {
            let Some(want) = label(m, f) else {
                continue;
            };
            let s = fields.entry(f).or_default();
            s.labelled += 1;
            if field(&rules, f) == want {
                s.rules += 1;
            } else {
                rules_wrong.push(f);
            }
            if let Some((u, _, _)) = &assisted {
                if field(u, f) == want {
                    s.with_llm += 1;
                } else {
                    llm_wrong.push(f);
                }
            }
        }
        let outcome = assisted.as_ref().map(|(_, o, _)| o.clone());
        if let Some(o) = &outcome {
            asked += u64::from(!matches!(o, crate::llm::assist::Outcome::NotAsked));
            used += u64::from(matches!(o, crate::llm::assist::Outcome::Used { .. }));
        }
        details.push(MessageOut {
            text: m.text.clone(),
            rules_wrong,
            with_llm_wrong: assisted.is_some().then_some(llm_wrong),
            llm: outcome.map(|o| serde_json::to_value(o).unwrap_or_default()),
        });
    }
    let report = Report {
        messages: file.messages.len(),
        llm: model
            .as_ref()
            .map(|l| format!("{} at {}", l.config.model, l.config.host())),
        asked,
        used,
        fields,
        details,
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Table => print_table(&report),
    }
    Ok(())
}

fn print_table(r: &Report) {
    let pct = |x: u64, n: u64| {
        if n == 0 {
            "—".to_string()
        } else {
            format!("{:.0} % ({x}/{n})", x as f64 * 100.0 / n as f64)
        }
    };
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(["field", "labelled", "rules", "rules + LLM"]);
    for (f, s) in &r.fields {
        t.add_row([
            f.to_string(),
            s.labelled.to_string(),
            pct(s.rules, s.labelled),
            if r.llm.is_some() {
                pct(s.with_llm, s.labelled)
            } else {
                "—".into()
            },
        ]);
    }
    println!("{} messages", r.messages);
    println!("{t}");
    match &r.llm {
        Some(m) => println!(
            "LLM {m}: asked about {} message(s), its answer used for {}",
            r.asked, r.used
        ),
        None => println!("no LLM set (BOT_LLM_BASE_URL…): the rules alone"),
    }
    for d in r.details.iter().filter(|d| !d.rules_wrong.is_empty()) {
        let llm = match &d.with_llm_wrong {
            Some(w) if w.is_empty() => " — right with the LLM".to_string(),
            Some(w) => format!(" — with the LLM still: {}", w.join(", ")),
            None => String::new(),
        };
        println!(
            "rules wrong on {}: {:?}{llm}",
            d.rules_wrong.join(", "),
            d.text
        );
    }
}
