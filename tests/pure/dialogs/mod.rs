//! `bot test dialogs` and the spec runner behind it: every matcher and expectation accepts
//! what it should and rejects a wrong answer, the runner replays variations, clock, reminders
//! and captures as documented, malformed specs are rejected with their location, and the
//! command's exit codes, tables, JSON and JUnit hold, in-process and over HTTP (`--target`).
//! Specs here drive the engine with events and buttons where they can, so they do not depend
//! on how well the NLU reads Russian.

mod cli;
mod matchers;
mod parse;
mod reference;
mod runner;
mod target;

use bot::config;
use bot::engine::Engine;
use bot::spec::SpecError;
use bot::spec::load;
use bot::spec::matcher::Vocabulary;
use bot::spec::model::Dialog;
use bot::spec::runner::{DialogReport, DialogRun, Failure, run_dialog};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The demo salon engine, built once for all tests.
pub fn salon() -> &'static (Engine, Vocabulary) {
    static SALON: OnceLock<(Engine, Vocabulary)> = OnceLock::new();
    SALON.get_or_init(|| {
        let profile = config::demo_salon();
        let vocab = Vocabulary::new(&profile);
        (Engine::new(profile), vocab)
    })
}

/// Write `files` (name → YAML) into a fresh folder.
pub fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write spec");
    }
    dir
}

/// Parse and compile a dialog file against the demo salon.
pub fn compile_file(path: &Path) -> Result<Dialog, Vec<SpecError>> {
    let (engine, vocab) = salon();
    let parsed = load::parse_file(path).map_err(|e| vec![e])?;
    load::compile(&parsed, engine.profile(), vocab)
}

/// Compile one dialog given as text (it lives in a temp folder with `extra` files).
pub fn compile_spec(yaml: &str, extra: &[(&str, &str)]) -> Result<Dialog, Vec<SpecError>> {
    let mut files = vec![("dialog.yaml", yaml)];
    files.extend_from_slice(extra);
    let dir = folder(&files);
    compile_file(&dir.path().join("dialog.yaml"))
}

/// The errors of a spec that must not compile, as text.
pub fn spec_errors(yaml: &str) -> String {
    match compile_spec(yaml, &[]) {
        Ok(_) => panic!("the spec compiled but should not:\n{yaml}"),
        Err(errors) => errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// Run a dialog given as text on the demo salon.
pub fn run_spec(yaml: &str) -> DialogReport {
    run_spec_with(yaml, &[], 1)
}

pub fn run_spec_with(yaml: &str, extra: &[(&str, &str)], repeat: usize) -> DialogReport {
    let dialog = compile_spec(yaml, extra).unwrap_or_else(|errors| {
        let e: Vec<String> = errors.iter().map(ToString::to_string).collect();
        panic!("spec does not compile:\n{}\n{yaml}", e.join("\n"))
    });
    let (engine, vocab) = salon();
    run_dialog(
        &DialogRun {
            dialog: &dialog,
            engine,
            vocab,
        },
        repeat,
    )
}

/// The failure of the first run of a dialog that must fail.
pub fn failure_of(yaml: &str) -> Failure {
    let report = run_spec(yaml);
    report
        .runs
        .first()
        .and_then(|r| r.failure.clone())
        .unwrap_or_else(|| panic!("the dialog should fail:\n{yaml}"))
}

/// The rendered failures of a report (for assertion messages).
pub fn failures(r: &DialogReport) -> String {
    r.runs
        .iter()
        .filter_map(|x| x.failure.as_ref())
        .map(|f| f.render())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A command's exit code and both streams, for assertion messages.
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The command exited with `code` and said each of `wants` on stdout.
pub fn assert_says(o: &std::process::Output, code: i32, wants: &[&str]) {
    assert_eq!(o.status.code(), Some(code), "{}", output_text(o));
    let out = String::from_utf8_lossy(&o.stdout);
    for want in wants {
        assert!(out.contains(want), "{want:?} in {}", output_text(o));
    }
}

/// The repository's folder (for the reference dialogs).
/// How many reference dialogs `dialogs/` holds.
pub fn reference_dialog_files() -> usize {
    std::fs::read_dir(repo().join("dialogs"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "yaml"))
                .count()
        })
        .unwrap_or(0)
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A dialog with a manicure booking tomorrow at 15:00 whose day-before reminder fires in step 1;
/// `step1` is the rest of that step (indented by 4 spaces), `more` further steps.
pub fn reminder_dialog(step1: &str, more: &str) -> String {
    format!(
        "id: reminder\ntitle: Напоминание\nnow: 2026-11-20 10:00\nbookings:\n  - {{id: B1, service: manicure, staff: olga, at: 2026-11-21 15:00}}\nsteps:\n  - reminder: day_before\n{step1}\n{more}"
    )
}
