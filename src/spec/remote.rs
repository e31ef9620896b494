//! Replaying dialogs over HTTP against a running `bot serve` (`bot test dialogs --target`):
//! each variation path is a fresh web client of the server's chat API (`POST` and `GET
//! /api/v1/messages`, shapes in `channels::web`), and the runner's checks are made on what that
//! API shows — the text and buttons of the replies, silence, whether a manager has the
//! conversation, and the round-trip latency. What only the in-process replay sees (what the
//! NLU understood, effects, pending reminders) or can do (start with bookings or a known
//! client, share a contact card, move the clock, mark a no-show, release a hand-off) never
//! passes silently: it becomes a `Skip` with its reason, and an action that cannot be sent
//! ends the path there. After each path its client cancels what it booked (button `cancel`,
//! then `yes`), so the next path finds the slot free again.
//! Network I/O only; the reports are rendered by `cli::test`.

use super::coverage::Seen;
use super::model::{Action, Dialog, Expect, Step, Want};
use super::replay::TurnRecord;
use super::runner::{
    self, At, DialogReport, DialogRun, Failure, Line, PathRun, Skip, check_messages, fail,
    find_button, push_replies,
};
use super::vars::{self, Vars};
use crate::channels::web::{MAX_CLIENT_ID, WebResponse, WebUpdates};
use crate::domain::{Button, Event, Reply};
use crate::engine::Payload;
use chrono_tz::Tz;
use std::time::{Duration, Instant};

/// A running `bot serve` to replay against.
pub struct Target {
    /// The URL as given, for messages.
    pub url: String,
    /// Without a trailing slash; endpoints are appended.
    base: String,
    /// Makes client ids unique to this run of the command.
    nonce: String,
    /// Of each request.
    pub timeout: Duration,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    /// Whether the server's hand-offs reach a managers' channel (from `/healthz`; true when it
    /// does not say).
    managers: bool,
}

/// Why the target cannot be used (a usage or environment error: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("--target {url}: not an http(s) URL ({reason})")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot reach bot serve at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} does not answer like bot serve: {reason}")]
    NotBot { url: String, reason: String },
}

/// A request that did not get an answer of the web API: `check` names the kind
/// (`connection`, `timeout`, `http`) as failures report it.
struct HttpError {
    check: &'static str,
    detail: String,
}

/// The error with its causes (`error sending request: connection refused`).
fn chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text = format!("{text}: {s_text}");
        }
        source = s.source();
    }
    text
}

fn http_error(e: reqwest::Error, timeout: Duration) -> HttpError {
    if e.is_timeout() {
        HttpError {
            check: "timeout",
            detail: format!("no answer within {timeout:?}"),
        }
    } else if e.is_connect() {
        HttpError {
            check: "connection",
            detail: format!("the server went away: {}", chain(&e)),
        }
    } else {
        HttpError {
            check: "http",
            detail: chain(&e),
        }
    }
}

impl Target {
    /// Check the URL, and that `bot serve` answers `/healthz` there within `timeout`.
    pub fn connect(url: &str, timeout: Duration) -> Result<Target, TargetError> {
        let invalid = |reason: String| TargetError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        let parsed = reqwest::Url::parse(url.trim()).map_err(|e| invalid(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(invalid("expected http://HOST:PORT".into()));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(invalid("no query or fragment, please".into()));
        }
        let unreachable = |reason: String| TargetError::Unreachable {
            url: url.to_string(),
            reason,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| unreachable(format!("no async runtime: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| unreachable(format!("no HTTP client: {e}")))?;
        let nonce = format!(
            "{:x}{:x}",
            chrono::Utc::now().timestamp_millis(),
            std::process::id()
        );
        let mut target = Target {
            url: url.to_string(),
            base: parsed.as_str().trim_end_matches('/').to_string(),
            nonce,
            timeout,
            http,
            runtime,
            managers: true,
        };
        target.managers = target.runtime.block_on(target.health())?;
        Ok(target)
    }

    /// `/healthz` answers as `bot serve` does; whether its hand-offs reach managers.
    async fn health(&self) -> Result<bool, TargetError> {
        let answer = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .map_err(|e| TargetError::Unreachable {
                url: self.url.clone(),
                reason: if e.is_timeout() {
                    "no answer to GET /healthz in time".to_string()
                } else {
                    chain(&e)
                },
            })?;
        let not_bot = |reason: String| TargetError::NotBot {
            url: self.url.clone(),
            reason,
        };
        if !answer.status().is_success() {
            return Err(not_bot(format!(
                "GET /healthz answered {}",
                answer.status()
            )));
        }
        let body: serde_json::Value = answer
            .json()
            .await
            .map_err(|e| not_bot(format!("GET /healthz is not JSON: {e}")))?;
        if body["status"] != "ok" {
            return Err(not_bot(format!("GET /healthz answered {body}")));
        }
        Ok(body["managers"].as_bool().unwrap_or(true))
    }
}

/// Why a dialog cannot be replayed over HTTP at all: it starts from a state the web API
/// cannot set up. None when it can.
pub fn needs_in_process(dialog: &Dialog) -> Option<String> {
    if !dialog.bookings.is_empty() {
        let ids: Vec<&str> = dialog.booking_ids().map(|b| b.as_str()).collect();
        return Some(format!(
            "the dialog starts with bookings ({}), which the server cannot be given over HTTP",
            ids.join(", ")
        ));
    }
    let known = &dialog.known;
    let fields: Vec<&str> = [
        ("name", &known.name),
        ("phone", &known.phone),
        ("email", &known.email),
    ]
    .iter()
    .filter(|(_, v)| v.is_some())
    .map(|(k, _)| *k)
    .collect();
    if !fields.is_empty() {
        return Some(format!(
            "the bot already knows the client's {} (client:), which the server cannot be given over HTTP",
            fields.join(" and ")
        ));
    }
    if dialog.channel.provides_phone() {
        return Some(format!(
            "on {} the bot reads the client's phone from the channel; a web chat has none",
            dialog.channel
        ));
    }
    None
}

/// Run every path of `job`'s dialog `repeat` times against `target`; paths of one dialog run
/// one after another (they may want the same slot).
pub fn run_dialog(job: &DialogRun<'_>, target: &Target, repeat: usize) -> DialogReport {
    let started = Instant::now();
    let paths = job.dialog.paths();
    let runs = target.runtime.block_on(async {
        let mut runs = Vec::new();
        for r in 0..repeat.max(1) {
            for (i, choices) in paths.iter().enumerate() {
                runs.push(run_path(job, target, i, r, choices).await);
            }
        }
        runs
    });
    runner::assemble(job.dialog, paths.len(), runs, Seen::default(), started)
}

/// One web client of the server: its id, and the last message id it has seen.
struct WebClient<'a> {
    target: &'a Target,
    id: String,
    sent: usize,
    seen: i64,
}

impl WebClient<'_> {
    /// Send a text or a button press; the replies and whether a manager has the conversation.
    async fn send(&mut self, event: &Event) -> Result<(Vec<Reply>, bool), HttpError> {
        self.sent += 1;
        let mut body = serde_json::json!({
            "client_id": self.id,
            "message_id": format!("m{}", self.sent),
        });
        match event {
            Event::Text { text } => body["text"] = text.as_str().into(),
            Event::Button { payload } => body["button"] = payload.as_str().into(),
            other => {
                return Err(HttpError {
                    check: "http",
                    detail: format!("the web API has no {other:?}"),
                });
            }
        }
        let request = self
            .target
            .http
            .post(format!("{}/api/v1/messages", self.target.base))
            .json(&body);
        let answer: WebResponse = self.answer(request).await?;
        self.seen = self.seen.max(answer.last_id.unwrap_or(0));
        let replies = answer.replies.into_iter().map(|r| reply(r.text, r.buttons));
        Ok((replies.collect(), answer.handoff))
    }

    /// What the server sent this client since the last message seen (reminders, a manager).
    async fn updates(&mut self) -> Result<Vec<Reply>, HttpError> {
        let request = self
            .target
            .http
            .get(format!("{}/api/v1/messages", self.target.base))
            .query(&[
                ("client_id", self.id.clone()),
                ("after", self.seen.to_string()),
            ]);
        let answer: WebUpdates = self.answer(request).await?;
        self.seen = answer
            .messages
            .iter()
            .map(|m| m.id)
            .fold(self.seen, i64::max);
        Ok(answer
            .messages
            .into_iter()
            .map(|m| reply(m.text, m.buttons))
            .collect())
    }

    async fn answer<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, HttpError> {
        let timeout = self.target.timeout;
        let answer = request.send().await.map_err(|e| http_error(e, timeout))?;
        let status = answer.status();
        let text = answer.text().await.map_err(|e| http_error(e, timeout))?;
        if !status.is_success() {
            let why = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or(text);
            return Err(HttpError {
                check: "http",
                detail: format!("the server answered {status}: {why}"),
            });
        }
        serde_json::from_str(&text).map_err(|e| HttpError {
            check: "http",
            detail: format!("the answer is not the web API's JSON ({e}): {text}"),
        })
    }

    /// Best effort: cancel what this client booked, so that the next path finds the slot
    /// free (a failure here shows as that path's failure, never as a pass).
    async fn cancel_bookings(&mut self) {
        let (cancel, yes) = (Payload::Cancel.encode(), Payload::Yes.encode());
        for _ in 0..3 {
            let Ok((replies, _)) = self
                .send(&Event::Button {
                    payload: cancel.clone(),
                })
                .await
            else {
                return;
            };
            let asks = replies
                .iter()
                .any(|r| r.buttons.iter().any(|b| b.payload == yes));
            if !asks {
                return;
            }
            let press_yes = Event::Button {
                payload: yes.clone(),
            };
            if self.send(&press_yes).await.is_err() {
                return;
            }
        }
    }
}

fn reply(text: String, buttons: Vec<Button>) -> Reply {
    Reply {
        text,
        buttons,
        template: None,
        request_contact: false,
    }
}

/// `spec-<dialog>-p<path>-r<repeat>-<nonce>`, within the web API's limit.
fn client_id(dialog: &Dialog, path: usize, repeat: usize, nonce: &str) -> String {
    let suffix = format!("-p{}-r{}-{nonce}", path + 1, repeat + 1);
    let room = MAX_CLIENT_ID.saturating_sub(suffix.chars().count() + "spec-".len());
    let id: String = dialog
        .id
        .chars()
        .filter(|c| !c.is_control())
        .take(room)
        .collect();
    format!("spec-{id}{suffix}")
}

fn skip(step: &Step, index: usize, what: &str, why: String) -> Skip {
    Skip {
        step: index + 1,
        step_path: step.origin.path.clone(),
        location: step.origin.to_string(),
        what: what.to_string(),
        why,
    }
}

/// What a step does over HTTP.
enum Plan {
    Send(String, Event),
    /// The step cannot be sent; later steps still can.
    SkipStep(String),
    /// The step cannot be sent, and the conversation would differ from the spec after it.
    SkipRest(String),
}

/// Waits up to this long, when nothing is expected to be said meanwhile, are left out and
/// the path goes on: the server's clock runs on by itself, and dates do not change.
const SHORT_WAIT: chrono::Duration = chrono::Duration::hours(1);

fn plan(
    step: &Step,
    choice: usize,
    vars: &Vars,
    buttons: &[Button],
) -> Result<Plan, (String, String)> {
    Ok(match &step.action {
        Action::Text(v) => {
            let raw = v.get(choice).or(v.first()).cloned().unwrap_or_default();
            let text = vars::interpolate(&raw, vars).map_err(|e| (format!("«{raw}»"), e))?;
            Plan::Send(format!("«{text}»"), Event::Text { text })
        }
        Action::Press(v) => {
            let b = find_button(v, choice, buttons, vars)?;
            Plan::Send(
                format!("press «{}»", b.title),
                Event::Button { payload: b.payload },
            )
        }
        Action::Contact { .. } => {
            Plan::SkipRest("a contact card cannot be shared through the web API".into())
        }
        Action::Reminder(_) => Plan::SkipRest(
            "a reminder fires on the server's clock, which the runner cannot move".into(),
        ),
        Action::NoShow(_) => Plan::SkipRest(
            "a no-show is marked by staff (`bot booking mark`), not through the web API".into(),
        ),
        Action::Release => Plan::SkipRest(
            "a manager releases the conversation from the managers' chat, not through the web API"
                .into(),
        ),
        Action::Wait(d) => {
            let says = step.expect.messages.as_ref().is_some_and(|m| !m.is_empty());
            if says || *d > SHORT_WAIT {
                Plan::SkipRest(
                    "time passes on the server's own clock, which the runner cannot move".into(),
                )
            } else {
                Plan::SkipStep(
                    "time passes on the server's own clock, which the runner cannot move".into(),
                )
            }
        }
    })
}

/// Expectations of a step the HTTP answer cannot show, each with why.
fn unseen(e: &Expect) -> Vec<(&'static str, &'static str)> {
    const EFFECT: &str = "effects are not in the HTTP answer";
    let mut out = Vec::new();
    if e.understood.is_some() {
        out.push((
            "understood",
            "what the NLU understood is not in the HTTP answer",
        ));
    }
    for (what, given) in [
        ("booked", e.booked.is_some()),
        ("moved", e.moved.is_some()),
        ("cancelled", e.cancelled.is_some()),
        ("confirmed", e.confirmed.is_some()),
        ("lead", e.lead.is_some()),
        ("contact_captured", e.contact.is_some()),
    ] {
        if given {
            out.push((what, EFFECT));
        }
    }
    if e.reminders.is_some() {
        out.push(("reminders", "pending reminders are not in the HTTP answer"));
    }
    out
}

/// What one path has learnt so far.
struct PathState {
    vars: Vars,
    /// Names a `booked: {capture: ...}` would have set (effects are not visible).
    from_effects: Vec<String>,
    buttons: Vec<Button>,
    handoff: bool,
}

async fn run_path(
    job: &DialogRun<'_>,
    target: &Target,
    path: usize,
    repeat: usize,
    choices: &[usize],
) -> PathRun {
    let started = Instant::now();
    let dialog = job.dialog;
    let mut run = PathRun {
        path,
        repeat,
        choices: choices.to_vec(),
        passed: true,
        failure: None,
        turns: 0,
        slowest_turn_us: 0,
        elapsed_us: 0,
        transcript: Vec::new(),
        skipped: Vec::new(),
    };
    let other_business = (dialog.managers != target.managers).then(|| {
        let (want, has) = if dialog.managers {
            ("with", "has none")
        } else {
            ("without", "has one")
        };
        format!("the dialog is for a business {want} a managers' channel; the server {has}")
    });
    if let Some(why) = needs_in_process(dialog).or(other_business) {
        if let Some(first) = dialog.steps.first() {
            run.skipped.push(skip(first, 0, Skip::REST, why));
        }
        return run;
    }
    let mut client = WebClient {
        target,
        id: client_id(dialog, path, repeat, &target.nonce),
        sent: 0,
        seen: 0,
    };
    let mut state = PathState {
        vars: Vars::new(),
        from_effects: Vec::new(),
        buttons: Vec::new(),
        handoff: false,
    };
    let tz = job.engine.profile().business.timezone;
    let mut slowest = Duration::ZERO;
    for (i, step) in dialog.steps.iter().enumerate() {
        state.vars.extend(step.set.iter().cloned());
        let choice = choices.get(i).copied().unwrap_or(0);
        let planned = match plan(step, choice, &state.vars, &state.buttons) {
            Ok(p) => p,
            // A value only an effect would have captured is not a spec error here.
            Err((action, why)) => match state
                .from_effects
                .iter()
                .find(|n| why.contains(&format!("${{{n}}}")))
            {
                Some(name) => Plan::SkipRest(format!(
                    "${{{name}}} comes from an effect, which the HTTP answer does not show"
                )),
                None => {
                    run.failure = Some(fail(step, i, action, &[], "action", why, Vec::new(), tz));
                    break;
                }
            },
        };
        let (action, event) = match planned {
            Plan::Send(action, event) => (action, event),
            Plan::SkipStep(why) => {
                run.skipped.push(skip(step, i, Skip::STEP, why));
                continue;
            }
            Plan::SkipRest(why) => {
                run.skipped.push(skip(step, i, Skip::REST, why));
                break;
            }
        };
        run.transcript.push(Line {
            step: i + 1,
            who: "client",
            text: action.clone(),
            buttons: Vec::new(),
        });
        match turn(job, &mut client, &mut state, step, i, &action, event, tz).await {
            Ok((rec, skips)) => {
                run.turns += 1;
                slowest = slowest.max(rec.elapsed);
                run.skipped.extend(skips);
                push_replies(&mut run.transcript, i, &rec);
            }
            Err((rec, failure)) => {
                if let Some(rec) = rec {
                    run.turns += 1;
                    slowest = slowest.max(rec.elapsed);
                    push_replies(&mut run.transcript, i, &rec);
                }
                run.failure = Some(*failure);
                break;
            }
        }
    }
    if !state.handoff && run.failure.as_ref().is_none_or(|f| f.check != "connection") {
        client.cancel_bookings().await;
    }
    run.passed = run.failure.is_none();
    run.slowest_turn_us = slowest.as_micros() as u64;
    run.elapsed_us = started.elapsed().as_micros() as u64;
    run
}

type TurnResult = Result<(TurnRecord, Vec<Skip>), (Option<TurnRecord>, Box<Failure>)>;

/// Send one step's action and check what came back; the skipped checks of the step.
#[allow(clippy::too_many_arguments)]
async fn turn(
    job: &DialogRun<'_>,
    client: &mut WebClient<'_>,
    state: &mut PathState,
    step: &Step,
    index: usize,
    action: &str,
    event: Event,
    tz: Tz,
) -> TurnResult {
    let at = At {
        step,
        index,
        action,
        tz,
    };
    let failure = |records: &[TurnRecord], check: &str, detail: String, allowed: Vec<String>| {
        at.fail(records, check, detail, allowed)
    };
    let sent = Instant::now();
    let (mut replies, handoff) = client
        .send(&event)
        .await
        .map_err(|e| (None, failure(&[], e.check, e.detail, Vec::new())))?;
    let elapsed = sent.elapsed();
    let e = &step.expect;
    if e.silent {
        // Silence is also nothing arriving by the side channel (a reminder, the worker).
        let more = client
            .updates()
            .await
            .map_err(|e| (None, failure(&[], e.check, e.detail, Vec::new())))?;
        replies.extend(more);
    }
    if let Some(r) = replies.iter().rev().find(|r| !r.buttons.is_empty()) {
        state.buttons = r.buttons.clone();
    }
    let before = std::mem::replace(&mut state.handoff, handoff);
    let rec = TurnRecord {
        at: job.dialog.now,
        event,
        replies,
        effects: Vec::new(),
        understanding: None,
        elapsed,
    };
    let records = std::slice::from_ref(&rec);
    let fail_with = |check: &str, detail: String, allowed: Vec<String>| {
        (Some(rec.clone()), failure(records, check, detail, allowed))
    };

    let budget = step.latency.unwrap_or(job.dialog.latency);
    if elapsed > budget {
        return Err(fail_with(
            "latency",
            format!("the HTTP round trip took {elapsed:.1?}, the budget is {budget:.1?}"),
            Vec::new(),
        ));
    }
    let mut skips: Vec<Skip> = unseen(e)
        .into_iter()
        .map(|(what, why)| skip(step, index, what, why.to_string()))
        .collect();
    if let Some(Want::Present(b)) = &e.booked
        && let Some(name) = &b.capture
    {
        state.from_effects.push(name.clone());
    }
    let replies: Vec<&Reply> = rec.replies.iter().collect();
    if e.silent && !replies.is_empty() {
        return Err(fail_with(
            "silent",
            format!("the bot sent {} message(s)", replies.len()),
            vec!["silence".into()],
        ));
    }
    if let Some(messages) = &e.messages
        && let Err(m) = check_messages(messages, &replies, &mut state.vars, job.vocab)
    {
        let (rec, mut f) = fail_with(&m.check, m.detail, m.allowed);
        if let Some(origin) = m.origin {
            f.location = origin.to_string();
            f.step_path = origin.path.clone();
        }
        return Err((rec, f));
    }
    // The answer says whether a manager has the conversation now; a hand-off is that
    // changing from no to yes.
    let handed = !before && handoff;
    match &e.handoff {
        None if handed => {
            return Err(fail_with(
                "handoff",
                "unexpected hand-off: a manager has the conversation now (add `handoff:` to the step if it is right)".into(),
                Vec::new(),
            ));
        }
        None => {}
        Some(Want::Present(reason)) => {
            if !handoff {
                return Err(fail_with(
                    "handoff",
                    "no hand-off: the bot still has the conversation".into(),
                    vec![format!(
                        "handoff {}",
                        reason.map_or("(any reason)", |r| r.as_str())
                    )],
                ));
            }
            if reason.is_some() {
                skips.push(skip(
                    step,
                    index,
                    "handoff reason",
                    "the reason of a hand-off is not in the HTTP answer".into(),
                ));
            }
        }
        Some(Want::Absent) if before => skips.push(skip(
            step,
            index,
            "handoff: false",
            "a manager already had the conversation, so a new hand-off is not visible over HTTP"
                .into(),
        )),
        Some(Want::Absent) if handed => {
            return Err(fail_with(
                "handoff",
                "the conversation was handed off".into(),
                vec!["handoff: false".into()],
            ));
        }
        Some(Want::Absent) => {}
    }
    Ok((rec, skips))
}
