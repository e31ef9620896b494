//! Running dialogs: every variation path of every dialog (optionally several times), each in
//! a fresh `Replay`, checking each step's expectations in a fixed order — latency, silence,
//! messages (with captures), understanding, effects, pending reminders — and stopping a path
//! at its first failed check. Dialogs run in parallel on scoped threads; results come back in
//! input order. Produces plain data (`DialogReport`), rendered elsewhere.

use super::coverage::Seen;
use super::load::{parse_date, parse_time};
use super::matcher::MessageExpect;
use super::matcher::{Vocabulary, normalize};
use super::model::{
    Action, BookingExpect, Dialog, Expect, Origin, Press, Step, UnderstoodExpect, Want, When,
};
use super::replay::{Replay, TurnRecord};
use super::vars::{self, Vars};
use crate::domain::{
    BookingId, Button, ChannelKind, ClientRef, Effect, Event, LeadField, ReminderKind, Reply,
};
use crate::engine::Engine;
use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A dialog with what it runs against.
pub struct DialogRun<'a> {
    pub dialog: &'a Dialog,
    pub engine: &'a Engine,
    pub vocab: &'a Vocabulary,
}

/// A message as the bot sent it (for reports).
#[derive(Debug, Clone, Serialize)]
pub struct ReplyView {
    pub text: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

impl From<&Reply> for ReplyView {
    fn from(r: &Reply) -> Self {
        ReplyView {
            text: r.text.clone(),
            buttons: r.buttons.iter().map(|b| b.title.clone()).collect(),
            template: r.template.clone(),
        }
    }
}

/// The first check of a path that did not hold.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// 1-based number of the step in the run.
    pub step: usize,
    /// `steps[2]` (in `location`'s file).
    pub step_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_name: Option<String>,
    /// `file:line:column` of the step (or of the message expectation that failed).
    pub location: String,
    /// What the client did: «да, отменяйте», press «Подтверждаю», wait 23h.
    pub action: String,
    pub actual: Vec<ReplyView>,
    pub effects: Vec<String>,
    pub allowed: Vec<String>,
    /// Which check failed (`messages`, `any`, `booked`, `latency`, ...).
    pub check: String,
    pub detail: String,
}

impl Failure {
    /// The failure as readable text (for terminals and JUnit bodies).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let name = self
            .step_name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "step {} {}{} at {}",
            self.step, self.step_path, name, self.location
        );
        let _ = writeln!(s, "  client:  {}", self.action);
        if self.actual.is_empty() {
            let _ = writeln!(s, "  bot:     (silent)");
        }
        for (i, r) in self.actual.iter().enumerate() {
            let label = if i == 0 { "  bot:     " } else { "           " };
            let tpl = r
                .template
                .as_deref()
                .map(|t| format!(" [{t}]"))
                .unwrap_or_default();
            let _ = writeln!(s, "{label}«{}»{tpl}", r.text.replace('\n', " ⏎ "));
            if !r.buttons.is_empty() {
                let b: Vec<String> = r.buttons.iter().map(|t| format!("«{t}»")).collect();
                let _ = writeln!(s, "           buttons: [{}]", b.join(", "));
            }
        }
        if !self.effects.is_empty() {
            let _ = writeln!(s, "  effects: {}", self.effects.join("; "));
        }
        for (i, a) in self.allowed.iter().enumerate() {
            let label = if i == 0 { "  allowed: " } else { "           " };
            let _ = writeln!(s, "{label}{a}");
        }
        let _ = write!(s, "  failed:  {}: {}", self.check, self.detail);
        s
    }
}

/// A line of the transcript of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub step: usize,
    pub who: &'static str,
    pub text: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<String>,
}

/// Something a replay over HTTP could not check: a check of a step, the whole step, or this
/// step and every later one of the path (the conversation on the server would no longer be
/// the one the spec describes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skip {
    /// 1-based number of the step.
    pub step: usize,
    pub step_path: String,
    /// `file:line:column` of the step.
    pub location: String,
    /// `rest` (this step and every later one), `step` (this step only), or the check left
    /// out (`understood`, `booked`, `reminders`, ...).
    pub what: String,
    /// Why it needs the in-process replay.
    pub why: String,
}

impl Skip {
    pub const REST: &'static str = "rest";
    pub const STEP: &'static str = "step";

    /// A check left out of a step that ran (not a step that did not run).
    pub fn is_check(&self) -> bool {
        self.what != Skip::REST && self.what != Skip::STEP
    }
}

/// One replay of one variation path.
#[derive(Debug, Clone, Serialize)]
pub struct PathRun {
    /// 0-based path number.
    pub path: usize,
    /// 0-based repetition.
    pub repeat: usize,
    /// The variation (0-based) each step used.
    pub choices: Vec<usize>,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    pub turns: usize,
    pub slowest_turn_us: u64,
    pub elapsed_us: u64,
    pub transcript: Vec<Line>,
    /// Over HTTP: what this run could not check.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skip>,
}

impl PathRun {
    /// 0-based steps this run skipped (over HTTP) out of `steps`.
    pub fn steps_not_run(&self, steps: usize) -> std::collections::BTreeSet<usize> {
        let mut out = std::collections::BTreeSet::new();
        for s in &self.skipped {
            let i = s.step.saturating_sub(1);
            if s.what == Skip::REST {
                out.extend(i..steps);
            } else if s.what == Skip::STEP {
                out.insert(i);
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Flaky,
    Fail,
    /// Over HTTP: no step of the dialog could be checked.
    Skipped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Flaky => "flaky",
            Verdict::Fail => "fail",
            Verdict::Skipped => "skipped",
        }
    }
}

/// Everything about one dialog's runs.
#[derive(Debug, Clone, Serialize)]
pub struct DialogReport {
    pub id: String,
    pub title: String,
    pub file: String,
    pub profile: String,
    pub steps: usize,
    pub paths: usize,
    /// Client phrases and button choices written in the spec.
    pub variations: usize,
    /// How many of them were actually replayed.
    pub variations_replayed: usize,
    pub verdict: Verdict,
    pub slowest_turn_us: u64,
    pub elapsed_us: u64,
    /// Over HTTP: steps no path could run (they need the in-process replay).
    #[serde(skip_serializing_if = "is_zero")]
    pub steps_skipped: usize,
    /// Over HTTP: checks left out of steps that ran.
    #[serde(skip_serializing_if = "is_zero")]
    pub checks_skipped: usize,
    /// Over HTTP: everything not checked, once per step and check, with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skip>,
    pub runs: Vec<PathRun>,
    #[serde(skip)]
    pub seen: Seen,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl DialogReport {
    /// Verdict of one path over its repetitions.
    pub fn path_verdict(&self, path: usize) -> Verdict {
        let runs: Vec<&PathRun> = self.runs.iter().filter(|r| r.path == path).collect();
        let passed = runs.iter().filter(|r| r.passed).count();
        if passed == runs.len() {
            Verdict::Pass
        } else if passed == 0 {
            Verdict::Fail
        } else {
            Verdict::Flaky
        }
    }
}

/// Run every path of `job`'s dialog `repeat` times.
pub fn run_dialog(job: &DialogRun<'_>, repeat: usize) -> DialogReport {
    let started = Instant::now();
    let paths = job.dialog.paths();
    let mut runs = Vec::new();
    let mut seen = Seen::default();
    for r in 0..repeat.max(1) {
        for (i, choices) in paths.iter().enumerate() {
            runs.push(run_path(job, i, r, choices, &mut seen));
        }
    }
    assemble(job.dialog, paths.len(), runs, seen, started)
}

/// The report of `dialog` from its runs (in-process or over HTTP): which variations were
/// replayed, what was skipped, and the verdict.
pub(super) fn assemble(
    dialog: &Dialog,
    paths: usize,
    runs: Vec<PathRun>,
    seen: Seen,
    started: Instant,
) -> DialogReport {
    let mut replayed = std::collections::BTreeSet::new();
    // Steps no run could check (over HTTP), and the checks left out of steps that ran.
    let mut never_run: Option<std::collections::BTreeSet<usize>> = None;
    let mut skipped: Vec<Skip> = Vec::new();
    for run in &runs {
        let not_run = run.steps_not_run(dialog.steps.len());
        let upto = run.failure.as_ref().map_or(dialog.steps.len(), |f| f.step);
        for (i, (step, c)) in dialog.steps.iter().zip(&run.choices).enumerate().take(upto) {
            if matches!(step.action, Action::Text(_) | Action::Press(_)) && !not_run.contains(&i) {
                replayed.insert((i, *c));
            }
        }
        never_run = Some(match never_run {
            None => not_run,
            Some(n) => n.intersection(&not_run).copied().collect(),
        });
        for s in &run.skipped {
            if !skipped.contains(s) {
                skipped.push(s.clone());
            }
        }
    }
    skipped.sort_by(|a, b| (a.step, &a.what).cmp(&(b.step, &b.what)));
    let steps_skipped = never_run.map_or(0, |n| n.len());
    let mut report = DialogReport {
        id: dialog.id.clone(),
        title: dialog.title.clone(),
        file: dialog.file.clone(),
        profile: dialog.profile.to_string(),
        steps: dialog.steps.len(),
        paths,
        variations: dialog.variation_count(),
        variations_replayed: replayed.len(),
        verdict: Verdict::Pass,
        slowest_turn_us: runs.iter().map(|r| r.slowest_turn_us).max().unwrap_or(0),
        elapsed_us: started.elapsed().as_micros() as u64,
        steps_skipped,
        checks_skipped: skipped.iter().filter(|s| s.is_check()).count(),
        skipped,
        runs,
        seen,
    };
    let verdicts: Vec<Verdict> = (0..paths).map(|p| report.path_verdict(p)).collect();
    report.verdict = if verdicts.contains(&Verdict::Fail) {
        Verdict::Fail
    } else if verdicts.contains(&Verdict::Flaky) {
        Verdict::Flaky
    } else if report.steps > 0 && report.steps_skipped == report.steps {
        Verdict::Skipped
    } else {
        Verdict::Pass
    };
    report
}

/// Run all jobs on up to `threads` threads; `done` is called as each dialog finishes.
pub fn run_all(
    jobs: &[DialogRun<'_>],
    repeat: usize,
    threads: usize,
    done: &(dyn Fn(&DialogReport) + Sync),
) -> Vec<DialogReport> {
    run_all_with(jobs, threads, done, &|job| run_dialog(job, repeat))
}

/// Run all jobs with `run` (in-process or over HTTP) on up to `threads` threads, results in
/// input order.
pub fn run_all_with(
    jobs: &[DialogRun<'_>],
    threads: usize,
    done: &(dyn Fn(&DialogReport) + Sync),
    run: &(dyn Fn(&DialogRun<'_>) -> DialogReport + Sync),
) -> Vec<DialogReport> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<DialogReport>>> = Mutex::new(vec![None; jobs.len()]);
    let workers = threads.clamp(1, jobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let report = run(job);
                    done(&report);
                    if let Ok(mut r) = results.lock() {
                        r[i] = Some(report);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

/// The client of repetition `repeat`: a new id each time (so the bot's variation choice
/// changes), unless the spec fixed the id or the channel derives the phone from it.
fn client_for(dialog: &Dialog, repeat: usize) -> ClientRef {
    if repeat == 0 || dialog.fixed_client_id || dialog.channel == ChannelKind::Whatsapp {
        return dialog.client.clone();
    }
    ClientRef {
        channel: dialog.client.channel,
        id: format!("{}-r{repeat}", dialog.client.id),
    }
}

struct Ctx<'a, 'b> {
    job: &'a DialogRun<'a>,
    tz: Tz,
    year: i32,
    replay: Replay<'b>,
    vars: Vars,
}

fn run_path(
    job: &DialogRun<'_>,
    path: usize,
    repeat: usize,
    choices: &[usize],
    seen: &mut Seen,
) -> PathRun {
    let started = Instant::now();
    let dialog = job.dialog;
    let tz = job.engine.profile().business.timezone;
    let mut ctx = Ctx {
        job,
        tz,
        year: dialog.now.with_timezone(&tz).year(),
        replay: Replay::new(job.engine, dialog, client_for(dialog, repeat)),
        vars: Vars::new(),
    };
    let mut transcript = Vec::new();
    let mut turns = 0;
    let mut slowest = Duration::ZERO;
    let mut failure = None;
    for (i, step) in dialog.steps.iter().enumerate() {
        let choice = choices.get(i).copied().unwrap_or(0);
        ctx.vars.extend(step.set.iter().cloned());
        let (action, records) = match perform(&mut ctx, step, choice) {
            Ok(x) => x,
            Err((action, why)) => {
                failure = Some(fail(step, i, action, &[], "action", why, Vec::new(), tz));
                break;
            }
        };
        transcript.push(Line {
            step: i + 1,
            who: if matches!(
                step.action,
                Action::Text(_) | Action::Press(_) | Action::Contact { .. }
            ) {
                "client"
            } else {
                "event"
            },
            text: action.clone(),
            buttons: Vec::new(),
        });
        for rec in &records {
            turns += 1;
            slowest = slowest.max(rec.elapsed);
            seen.record(rec);
            push_replies(&mut transcript, i, rec);
        }
        if let Err(f) = check_step(&mut ctx, step, i, &action, &records) {
            failure = Some(*f);
            break;
        }
    }
    PathRun {
        path,
        repeat,
        choices: choices.to_vec(),
        passed: failure.is_none(),
        failure,
        turns,
        slowest_turn_us: slowest.as_micros() as u64,
        elapsed_us: started.elapsed().as_micros() as u64,
        transcript,
        skipped: Vec::new(),
    }
}

/// The bot's messages of a turn of step `index` (0-based) into the transcript.
pub(super) fn push_replies(transcript: &mut Vec<Line>, index: usize, rec: &TurnRecord) {
    for r in &rec.replies {
        transcript.push(Line {
            step: index + 1,
            who: "bot",
            text: r.text.clone(),
            buttons: r.buttons.iter().map(|b| b.title.clone()).collect(),
        });
    }
}

pub(super) type ActionError = (String, String);

fn perform(
    ctx: &mut Ctx<'_, '_>,
    step: &Step,
    choice: usize,
) -> Result<(String, Vec<TurnRecord>), ActionError> {
    let interp = |s: &str, vars: &Vars| vars::interpolate(s, vars);
    match &step.action {
        Action::Text(v) => {
            let raw = v.get(choice).or(v.first()).cloned().unwrap_or_default();
            let text = interp(&raw, &ctx.vars).map_err(|e| (format!("«{raw}»"), e))?;
            let label = format!("«{text}»");
            let rec = ctx
                .replay
                .send(Event::Text { text })
                .map_err(|e| (label.clone(), e))?;
            Ok((label, vec![rec]))
        }
        Action::Press(v) => {
            let buttons = ctx.replay.last_buttons().to_vec();
            let button = find_button(v, choice, &buttons, &ctx.vars)?;
            let label = format!("press «{}»", button.title);
            let rec = ctx
                .replay
                .send(Event::Button {
                    payload: button.payload,
                })
                .map_err(|e| (label.clone(), e))?;
            Ok((label, vec![rec]))
        }
        Action::Contact { phone, name } => {
            let label = format!("shares contact {phone}");
            let phone = interp(phone, &ctx.vars).map_err(|e| (label.clone(), e))?;
            let name = name
                .as_deref()
                .map(|n| interp(n, &ctx.vars))
                .transpose()
                .map_err(|e| (label.clone(), e))?;
            let rec = ctx
                .replay
                .send(Event::Contact { phone, name })
                .map_err(|e| (label.clone(), e))?;
            Ok((label, vec![rec]))
        }
        Action::Reminder(kind) => {
            let label = format!("{} reminder is due", kind_name(*kind));
            let recs = ctx.replay.reminder(*kind).map_err(|e| (label.clone(), e))?;
            Ok((label, recs))
        }
        Action::NoShow(id) => {
            let id = interp(id, &ctx.vars).map_err(|e| ("no-show".to_string(), e))?;
            let label = format!("booking {id} marked as no-show");
            let rec = ctx
                .replay
                .no_show(&BookingId(id))
                .map_err(|e| (label.clone(), e))?;
            Ok((label, vec![rec]))
        }
        Action::Wait(d) => {
            let label = format!("wait {}", fmt_duration(*d));
            let recs = ctx.replay.wait(*d).map_err(|e| (label.clone(), e))?;
            Ok((label, recs))
        }
        Action::Release => {
            let label = "a manager releases the conversation".to_string();
            let rec = ctx
                .replay
                .send(Event::Released)
                .map_err(|e| (label.clone(), e))?;
            Ok((label, vec![rec]))
        }
    }
}

/// The button of `buttons` (those of the last reply that offered any) that variation
/// `choice` of a `press:` step means: by title, payload or position.
pub(super) fn find_button(
    presses: &[Press],
    choice: usize,
    buttons: &[Button],
    vars: &Vars,
) -> Result<Button, ActionError> {
    let press = presses
        .get(choice)
        .or(presses.first())
        .cloned()
        .unwrap_or(Press::Index(1));
    let label = format!("press {press}");
    let found = match &press {
        Press::Title(t) => {
            let t = normalize(&vars::interpolate(t, vars).map_err(|e| (label.clone(), e))?);
            buttons.iter().find(|b| normalize(&b.title) == t)
        }
        Press::Payload(p) => {
            let p = vars::interpolate(p, vars).map_err(|e| (label.clone(), e))?;
            buttons.iter().find(|b| b.payload == p)
        }
        Press::Index(i) => buttons.get(i.saturating_sub(1)),
    };
    found.cloned().ok_or_else(|| {
        let t: Vec<&str> = buttons.iter().map(|b| b.title.as_str()).collect();
        let offered = if t.is_empty() {
            "no buttons were offered".to_string()
        } else {
            format!("offered: {}", t.join(", "))
        };
        (label, format!("no such button ({offered})"))
    })
}

fn kind_name(k: ReminderKind) -> &'static str {
    match k {
        ReminderKind::DayBefore => "day_before",
        ReminderKind::Soon => "soon",
    }
}

fn fmt_duration(d: chrono::Duration) -> String {
    let mins = d.num_minutes();
    match (mins / 1440, mins % 1440 / 60, mins % 60) {
        (0, 0, m) if m > 0 => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h{m}m"),
        (days, 0, 0) => format!("{days}d"),
        (days, h, m) => format!("{days}d{h}h{m}m"),
    }
}

/// A step being checked, as its failures name it.
pub(super) struct At<'a> {
    pub step: &'a Step,
    /// 0-based.
    pub index: usize,
    /// What the client did.
    pub action: &'a str,
    pub tz: Tz,
}

impl At<'_> {
    pub(super) fn fail(
        &self,
        records: &[TurnRecord],
        check: &str,
        detail: String,
        allowed: Vec<String>,
    ) -> Box<Failure> {
        Box::new(fail(
            self.step,
            self.index,
            self.action.to_string(),
            records,
            check,
            detail,
            allowed,
            self.tz,
        ))
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn fail(
    step: &Step,
    index: usize,
    action: String,
    records: &[TurnRecord],
    check: &str,
    detail: String,
    allowed: Vec<String>,
    tz: Tz,
) -> Failure {
    Failure {
        step: index + 1,
        step_path: step.origin.path.clone(),
        step_name: step.name.clone(),
        location: step.origin.to_string(),
        action,
        actual: records
            .iter()
            .flat_map(|r| r.replies.iter().map(ReplyView::from))
            .collect(),
        effects: records
            .iter()
            .flat_map(|r| r.effects.iter())
            .map(|e| describe_effect(e, tz))
            .collect(),
        allowed,
        check: check.to_string(),
        detail,
    }
}

fn local(tz: Tz, t: DateTime<Utc>) -> String {
    t.with_timezone(&tz).format("%d.%m %H:%M").to_string()
}

/// An effect in one line, the way the spec names things (times in the business zone `tz`).
pub fn describe_effect(e: &Effect, tz: Tz) -> String {
    match e {
        Effect::BookingRequested { booking } => format!(
            "booked {} {} {} (id {})",
            booking.service,
            local(tz, booking.slot.start),
            booking.slot.staff,
            booking.id
        ),
        Effect::BookingMoved { id, from, to } => format!(
            "moved {id} {} → {} {}",
            local(tz, from.start),
            local(tz, to.start),
            to.staff
        ),
        Effect::BookingCancelled { id } => format!("cancelled {id}"),
        Effect::BookingConfirmed { id } => format!("confirmed {id}"),
        Effect::LeadQualified { lead } => {
            let fields: Vec<&str> = lead.fields.iter().map(|f| f.as_str()).collect();
            format!(
                "lead service={} at={} phone={} name={} fields=[{}] source={} channel={}",
                lead.service.as_ref().map_or("-", |s| s.as_str()),
                lead.desired_at.map_or("-".to_string(), |t| local(tz, t)),
                lead.contact.phone.as_deref().unwrap_or("-"),
                lead.contact.name.as_deref().unwrap_or("-"),
                fields.join(","),
                lead.source,
                lead.channel
            )
        }
        Effect::ContactCaptured { contact } => format!(
            "contact name={} phone={}",
            contact.name.as_deref().unwrap_or("-"),
            contact.phone.as_deref().unwrap_or("-")
        ),
        Effect::HandoffRequested { reason } => format!("handoff {}", reason.as_str()),
    }
}

type StepResult = Result<(), Box<Failure>>;

fn check_step(
    ctx: &mut Ctx<'_, '_>,
    step: &Step,
    index: usize,
    action: &str,
    records: &[TurnRecord],
) -> StepResult {
    let at = At {
        step,
        index,
        action,
        tz: ctx.tz,
    };
    let f = |check: &str, detail: String, allowed: Vec<String>| {
        at.fail(records, check, detail, allowed)
    };
    let budget = step.latency.unwrap_or(ctx.job.dialog.latency);
    if let Some(slow) = records.iter().map(|r| r.elapsed).max()
        && slow > budget
    {
        return Err(f(
            "latency",
            format!("a turn took {slow:.1?}, the budget is {budget:.1?}"),
            Vec::new(),
        ));
    }
    let e = &step.expect;
    // What the bot understood explains a wrong answer best, so it is checked first.
    check_understood(ctx, e, records).map_err(|(d, a)| f("understood", d, a))?;
    let replies: Vec<&Reply> = records.iter().flat_map(|r| r.replies.iter()).collect();
    if e.silent && !replies.is_empty() {
        return Err(f(
            "silent",
            format!("the bot sent {} message(s)", replies.len()),
            vec!["silence".into()],
        ));
    }
    if let Some(messages) = &e.messages {
        check_messages(messages, &replies, &mut ctx.vars, ctx.job.vocab).map_err(|m| {
            let mut failure = f(&m.check, m.detail, m.allowed);
            if let Some(origin) = m.origin {
                failure.location = origin.to_string();
                failure.step_path = origin.path.clone();
            }
            failure
        })?;
    }
    let effects: Vec<&Effect> = records.iter().flat_map(|r| r.effects.iter()).collect();
    check_effects(ctx, e, &effects).map_err(|(c, d, a)| f(&c, d, a))?;
    if let Some(want) = &e.reminders {
        let have: Vec<String> = ctx
            .replay
            .pending()
            .iter()
            .map(|p| format!("{} {}", kind_name(p.kind), local(ctx.tz, p.at)))
            .collect();
        let same = want.len() == ctx.replay.pending().len()
            && want
                .iter()
                .zip(ctx.replay.pending())
                .all(|(w, p)| w.at == p.at && w.kind.is_none_or(|k| k == p.kind));
        if !same {
            return Err(f(
                "reminders",
                format!("pending reminders: [{}]", have.join(", ")),
                vec![format!(
                    "reminders [{}]",
                    want.iter()
                        .map(|w| format!(
                            "{}{}",
                            w.kind
                                .map(|k| format!("{} ", kind_name(k)))
                                .unwrap_or_default(),
                            local(ctx.tz, w.at)
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                )],
            ));
        }
    }
    Ok(())
}

/// A message check that failed: which, why, what was allowed, and where the expected message
/// was written (None when the number of messages is wrong).
pub(super) struct MessagesMismatch<'a> {
    pub check: String,
    pub detail: String,
    pub allowed: Vec<String>,
    pub origin: Option<&'a Origin>,
}

/// The messages of a step against what the spec expects, in order; values captured from them
/// are added to `vars`.
pub(super) fn check_messages<'a>(
    messages: &'a [(Origin, MessageExpect)],
    replies: &[&Reply],
    vars: &mut Vars,
    vocab: &Vocabulary,
) -> Result<(), MessagesMismatch<'a>> {
    if messages.len() != replies.len() {
        let allowed = messages
            .iter()
            .enumerate()
            .flat_map(|(i, (_, m))| {
                m.allowed().into_iter().map(move |a| {
                    if messages.len() > 1 {
                        format!("message {}: {a}", i + 1)
                    } else {
                        a
                    }
                })
            })
            .collect();
        return Err(MessagesMismatch {
            check: "messages".into(),
            detail: format!(
                "expected {} message(s), the bot sent {}",
                messages.len(),
                replies.len()
            ),
            allowed,
            origin: None,
        });
    }
    for (i, ((origin, m), reply)) in messages.iter().zip(replies).enumerate() {
        match m.check(reply, vars, vocab) {
            Ok(captured) => vars.extend(captured),
            Err(mm) => {
                return Err(MessagesMismatch {
                    check: mm.check,
                    detail: if messages.len() > 1 {
                        format!("message {}: {}", i + 1, mm.detail)
                    } else {
                        mm.detail
                    },
                    allowed: m.allowed(),
                    origin: Some(origin),
                });
            }
        }
    }
    Ok(())
}

type Check = Result<(), (String, Vec<String>)>;

/// Compare a local date/time with what the spec wants (strings may hold `${...}`).
fn when_matches(ctx: &Ctx<'_, '_>, want: &When, at: Option<DateTime<Utc>>) -> Result<bool, String> {
    if want.date.is_none() && want.time.is_none() {
        return Ok(true);
    }
    let Some(at) = at else { return Ok(false) };
    let local = at.with_timezone(&ctx.tz);
    if let Some(d) = &want.date {
        let d = parse_date(&vars::interpolate(d, &ctx.vars)?, ctx.year)?;
        if local.date_naive() != d {
            return Ok(false);
        }
    }
    if let Some(t) = &want.time {
        let t = parse_time(&vars::interpolate(t, &ctx.vars)?)?;
        if local.time() != t {
            return Ok(false);
        }
    }
    Ok(true)
}

fn describe_when(w: &When) -> String {
    let mut parts = Vec::new();
    if let Some(d) = &w.date {
        parts.push(format!("date={d}"));
    }
    if let Some(t) = &w.time {
        parts.push(format!("time={t}"));
    }
    parts.join(" ")
}

fn describe_understood(w: &UnderstoodExpect) -> String {
    let mut parts = vec!["understood".to_string()];
    if let Some(i) = w.intent {
        parts.push(format!("intent={i}"));
    }
    for (k, v) in [
        ("service", w.service.as_ref().map(|s| s.to_string())),
        ("staff", w.staff.as_ref().map(|s| s.to_string())),
        ("phone", w.phone.clone()),
        ("name", w.name.clone()),
        ("email", w.email.clone()),
        ("faq", w.faq.clone()),
    ] {
        if let Some(v) = v {
            parts.push(format!("{k}={v}"));
        }
    }
    let at = describe_when(&w.at);
    if !at.is_empty() {
        parts.push(at);
    }
    parts.join(" ")
}

fn check_understood(ctx: &Ctx<'_, '_>, e: &Expect, records: &[TurnRecord]) -> Check {
    let Some(want) = &e.understood else {
        return Ok(());
    };
    let allowed = vec![describe_understood(want)];
    let Some(u) = records.iter().find_map(|r| r.understanding.as_ref()) else {
        return Err(("no client text was understood in this step".into(), allowed));
    };
    let mut wrong = Vec::new();
    if let Some(i) = want.intent
        && u.intent != i
    {
        wrong.push(format!("intent {} (want {})", u.intent, i));
    }
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    if let Some(s) = &want.service
        && u.service.as_ref() != Some(s)
    {
        wrong.push(format!(
            "service {} (want {s})",
            opt(&u.service.as_ref().map(|s| s.to_string()))
        ));
    }
    if let Some(s) = &want.staff
        && u.staff.as_ref() != Some(s)
    {
        wrong.push(format!(
            "staff {} (want {s})",
            opt(&u.staff.as_ref().map(|s| s.to_string()))
        ));
    }
    let check_str = |what: &str,
                     have: &Option<String>,
                     want: &Option<String>,
                     wrong: &mut Vec<String>|
     -> Result<(), String> {
        if let Some(w) = want {
            let w = vars::interpolate(w, &ctx.vars)?;
            let same = have
                .as_deref()
                .is_some_and(|h| normalize(h) == normalize(&w));
            if !same {
                wrong.push(format!("{what} {} (want {w})", opt(have)));
            }
        }
        Ok(())
    };
    let err = |e: String| (e, allowed.clone());
    check_str("phone", &u.phone, &want.phone, &mut wrong).map_err(err)?;
    check_str("name", &u.name, &want.name, &mut wrong).map_err(err)?;
    check_str("email", &u.email, &want.email, &mut wrong).map_err(err)?;
    check_str("faq", &u.faq, &want.faq, &mut wrong).map_err(err)?;
    if let Some(d) = &want.at.date {
        let d =
            parse_date(&vars::interpolate(d, &ctx.vars).map_err(err)?, ctx.year).map_err(err)?;
        if u.when.date != Some(d) {
            wrong.push(format!(
                "date {} (want {})",
                u.when
                    .date
                    .map_or("-".into(), |x| x.format("%d.%m").to_string()),
                d.format("%d.%m")
            ));
        }
    }
    if let Some(t) = &want.at.time {
        let t = parse_time(&vars::interpolate(t, &ctx.vars).map_err(err)?).map_err(err)?;
        if u.when.time != Some(t) {
            wrong.push(format!(
                "time {} (want {})",
                u.when
                    .time
                    .map_or("-".into(), |x| x.format("%H:%M").to_string()),
                t.format("%H:%M")
            ));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err((format!("understood {}", wrong.join(", ")), allowed))
    }
}

fn describe_booking(what: &str, b: &BookingExpect) -> String {
    let mut parts = vec![what.to_string()];
    if let Some(id) = &b.id {
        parts.push(format!("id={id}"));
    }
    if let Some(s) = &b.service {
        parts.push(format!("service={s}"));
    }
    let at = describe_when(&b.at);
    if !at.is_empty() {
        parts.push(at);
    }
    if let Some(s) = &b.staff {
        parts.push(format!("staff={s}"));
    }
    let from = describe_when(&b.from);
    if !from.is_empty() {
        parts.push(format!("from {from}"));
    }
    parts.join(" ")
}

type EffectCheck = Result<(), (String, String, Vec<String>)>;

/// Booking, lead, contact and hand-off expectations. Bookings made, moved or cancelled and
/// hand-offs are checked strictly: one that the step does not expect is a failure.
fn check_effects(ctx: &mut Ctx<'_, '_>, e: &Expect, effects: &[&Effect]) -> EffectCheck {
    let err = |check: &str, detail: String, allowed: Vec<String>| {
        Err((check.to_string(), detail, allowed))
    };
    let strict = |check: &str, present: bool, add: &str| -> EffectCheck {
        if present {
            return Err((
                check.to_string(),
                format!("unexpected {check} effect (add `{add}:` to the step if it is right)"),
                Vec::new(),
            ));
        }
        Ok(())
    };

    // booked
    let booked: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::BookingRequested { booking } => Some(booking),
            _ => None,
        })
        .collect();
    match &e.booked {
        None => strict("booked", !booked.is_empty(), "booked")?,
        Some(Want::Absent) if !booked.is_empty() => {
            return err(
                "booked",
                "a booking was made".into(),
                vec!["booked: false".into()],
            );
        }
        Some(Want::Absent) => {}
        Some(Want::Present(w)) => {
            let mut hit = None;
            for b in &booked {
                let ok = w.service.as_ref().is_none_or(|s| s == &b.service)
                    && w.staff.as_ref().is_none_or(|s| s == &b.slot.staff)
                    && when_matches(ctx, &w.at, Some(b.slot.start))
                        .map_err(|m| ("booked".to_string(), m, Vec::new()))?;
                if ok {
                    hit = Some(b.id.clone());
                    break;
                }
            }
            match hit {
                Some(id) => {
                    if let Some(name) = &w.capture {
                        ctx.vars.insert(name.clone(), id.to_string());
                    }
                }
                None => {
                    return err(
                        "booked",
                        if booked.is_empty() {
                            "no booking was made".into()
                        } else {
                            "no booking made matches".into()
                        },
                        vec![describe_booking("booked", w)],
                    );
                }
            }
        }
    }

    // moved
    let moved: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::BookingMoved { id, from, to } => Some((id, from, to)),
            _ => None,
        })
        .collect();
    match &e.moved {
        None => strict("moved", !moved.is_empty(), "moved")?,
        Some(Want::Absent) if !moved.is_empty() => {
            return err(
                "moved",
                "a booking was moved".into(),
                vec!["moved: false".into()],
            );
        }
        Some(Want::Absent) => {}
        Some(Want::Present(w)) => {
            let mut ok = false;
            for (id, from, to) in &moved {
                let want_id =
                    w.id.as_deref()
                        .map(|i| vars::interpolate(i, &ctx.vars))
                        .transpose()
                        .map_err(|m| ("moved".to_string(), m, Vec::new()))?;
                let service = ctx
                    .replay
                    .bookings()
                    .iter()
                    .find(|b| &b.id == *id)
                    .map(|b| b.service.clone());
                let m =
                    |r: Result<bool, String>| r.map_err(|m| ("moved".to_string(), m, Vec::new()));
                if want_id.as_deref().is_none_or(|i| i == id.as_str())
                    && w.service
                        .as_ref()
                        .is_none_or(|s| Some(s) == service.as_ref())
                    && w.staff.as_ref().is_none_or(|s| s == &to.staff)
                    && m(when_matches(ctx, &w.at, Some(to.start)))?
                    && m(when_matches(ctx, &w.from, Some(from.start)))?
                {
                    ok = true;
                    break;
                }
            }
            if !ok {
                return err(
                    "moved",
                    if moved.is_empty() {
                        "no booking was moved".into()
                    } else {
                        "no move matches".into()
                    },
                    vec![describe_booking("moved", w)],
                );
            }
        }
    }

    // cancelled
    let cancelled: Vec<&BookingId> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::BookingCancelled { id } => Some(id),
            _ => None,
        })
        .collect();
    match &e.cancelled {
        None => strict("cancelled", !cancelled.is_empty(), "cancelled")?,
        Some(Want::Absent) if !cancelled.is_empty() => {
            return err(
                "cancelled",
                "a booking was cancelled".into(),
                vec!["cancelled: false".into()],
            );
        }
        Some(Want::Absent) => {}
        Some(Want::Present(w)) => {
            let mut ok = false;
            for id in &cancelled {
                let Some(b) = ctx.replay.bookings().iter().find(|b| &b.id == *id).cloned() else {
                    continue;
                };
                if w.service.as_ref().is_none_or(|s| s == &b.service)
                    && w.staff.as_ref().is_none_or(|s| s == &b.slot.staff)
                    && when_matches(ctx, &w.at, Some(b.slot.start))
                        .map_err(|m| ("cancelled".to_string(), m, Vec::new()))?
                {
                    ok = true;
                    break;
                }
            }
            if !ok {
                return err(
                    "cancelled",
                    if cancelled.is_empty() {
                        "no booking was cancelled".into()
                    } else {
                        "no cancellation matches".into()
                    },
                    vec![describe_booking("cancelled", w)],
                );
            }
        }
    }

    // confirmed
    let confirmed = effects
        .iter()
        .any(|e| matches!(e, Effect::BookingConfirmed { .. }));
    match e.confirmed {
        Some(true) if !confirmed => {
            return err(
                "confirmed",
                "the visit was not confirmed".into(),
                vec!["confirmed: true".into()],
            );
        }
        Some(false) if confirmed => {
            return err(
                "confirmed",
                "the visit was confirmed".into(),
                vec!["confirmed: false".into()],
            );
        }
        _ => {}
    }

    // hand-off
    let handoffs: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::HandoffRequested { reason } => Some(*reason),
            _ => None,
        })
        .collect();
    match &e.handoff {
        None => strict("handoff", !handoffs.is_empty(), "handoff")?,
        Some(Want::Absent) if !handoffs.is_empty() => {
            return err(
                "handoff",
                "the conversation was handed off".into(),
                vec!["handoff: false".into()],
            );
        }
        Some(Want::Absent) => {}
        Some(Want::Present(reason)) => {
            let ok = handoffs.iter().any(|r| reason.is_none_or(|w| w == *r));
            if !ok {
                return err(
                    "handoff",
                    if handoffs.is_empty() {
                        "no hand-off".into()
                    } else {
                        "the hand-off has another reason".into()
                    },
                    vec![format!(
                        "handoff {}",
                        reason.map_or("(any reason)", |r| r.as_str())
                    )],
                );
            }
        }
    }

    // lead
    let leads: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::LeadQualified { lead } => Some(lead),
            _ => None,
        })
        .collect();
    match &e.lead {
        None => {}
        Some(Want::Absent) if !leads.is_empty() => {
            return err(
                "lead",
                "a lead was qualified".into(),
                vec!["lead: false".into()],
            );
        }
        Some(Want::Absent) => {}
        Some(Want::Present(w)) => {
            let mut why = Vec::new();
            let mut ok = false;
            for l in &leads {
                why.clear();
                let missing: Vec<&str> = w
                    .fields
                    .iter()
                    .filter(|f| !l.fields.contains(f))
                    .map(|f: &LeadField| f.as_str())
                    .collect();
                if !missing.is_empty() {
                    why.push(format!("fields lack {}", missing.join(", ")));
                }
                if w.service
                    .as_ref()
                    .is_some_and(|s| l.service.as_ref() != Some(s))
                {
                    why.push("another service".into());
                }
                if !when_matches(ctx, &w.at, l.desired_at)
                    .map_err(|m| ("lead".to_string(), m, Vec::new()))?
                {
                    why.push("another date/time".into());
                }
                for (what, want, have) in [
                    ("phone", &w.phone, &l.contact.phone),
                    ("name", &w.name, &l.contact.name),
                ] {
                    if let Some(want) = want {
                        let want = vars::interpolate(want, &ctx.vars)
                            .map_err(|m| ("lead".to_string(), m, Vec::new()))?;
                        if have.as_deref().map(normalize) != Some(normalize(&want)) {
                            why.push(format!("{what} is not {want}"));
                        }
                    }
                }
                if l.channel != w.channel {
                    why.push(format!("channel {} (want {})", l.channel, w.channel));
                }
                if l.source != w.source {
                    why.push(format!("source {} (want {})", l.source, w.source));
                }
                if why.is_empty() {
                    ok = true;
                    break;
                }
            }
            if !ok {
                let mut allowed = format!("lead source={} channel={}", w.source, w.channel);
                if !w.fields.is_empty() {
                    let f: Vec<&str> = w.fields.iter().map(|f| f.as_str()).collect();
                    let _ = write!(allowed, " fields⊇[{}]", f.join(","));
                }
                if let Some(s) = &w.service {
                    let _ = write!(allowed, " service={s}");
                }
                return err(
                    "lead",
                    if leads.is_empty() {
                        "no lead was qualified".into()
                    } else {
                        why.join("; ")
                    },
                    vec![allowed],
                );
            }
        }
    }

    // contact captured
    let contacts: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::ContactCaptured { contact } => Some(contact),
            _ => None,
        })
        .collect();
    match &e.contact {
        None => {}
        Some(Want::Absent) if !contacts.is_empty() => {
            return err(
                "contact_captured",
                "a contact was captured".into(),
                vec!["contact_captured: false".into()],
            );
        }
        Some(Want::Absent) => {}
        Some(Want::Present(w)) => {
            let last = contacts.last();
            let mut ok = last.is_some();
            if let Some(c) = last {
                for (want, have) in [(&w.phone, &c.phone), (&w.name, &c.name)] {
                    if let Some(want) = want {
                        let want = vars::interpolate(want, &ctx.vars)
                            .map_err(|m| ("contact_captured".to_string(), m, Vec::new()))?;
                        if have.as_deref().map(normalize) != Some(normalize(&want)) {
                            ok = false;
                        }
                    }
                }
            }
            if !ok {
                return err(
                    "contact_captured",
                    if contacts.is_empty() {
                        "no contact was captured".into()
                    } else {
                        "the captured contact differs".into()
                    },
                    vec![format!(
                        "contact name={} phone={}",
                        w.name.as_deref().unwrap_or("*"),
                        w.phone.as_deref().unwrap_or("*")
                    )],
                );
            }
        }
    }
    Ok(())
}
