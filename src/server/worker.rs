//! The background worker of `bot serve`: runs due reminder and no-show turns (`run_due`) and
//! delivers the outbox `send` jobs through their client's channel (`channels::Sender`) — web
//! replies were already returned in the HTTP response, so they are only closed. Failures are
//! retried with the store's [`RetryPolicy::SEND`] (a rate limit's pause honoured) and
//! dead-lettered once its attempts are used up. Jobs of one client go out in order (Telegram:
//! one message per second per chat); different clients are served in parallel. It wakes on
//! new outbox jobs or every interval, and stops between jobs when shutdown is signalled. A send
//! to a channel that cannot recognise a repeat (Telegram, MAX) is recorded as started just
//! before the call, so a crash mid-send dead-letters the job instead of sending it twice; VK
//! recognises its `random_id`, so such a send simply goes again.

use super::{App, handoff};
use crate::channels::{NoSender, SendError, Sender};
use crate::domain::{ChannelKind, ClientRef, HandoffReason, Reply};
use crate::store::{Fate, Job, JobKind, JobPayload, RetryPolicy, StoreError};
use chrono::Duration as ChronoDuration;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long a claimed job is ours before another worker may take it.
const LEASE_SECONDS: i64 = 60;
const BATCH: usize = 50;

/// Outbox jobs waiting per client (a job without a client is its own queue); each queue has
/// one task delivering it in order.
type Queues = Arc<Mutex<HashMap<i64, VecDeque<Job>>>>;

pub async fn run(app: Arc<App>, mut stop: watch::Receiver<bool>, interval: Duration) {
    let queues: Queues = Arc::default();
    let mut tasks = JoinSet::new();
    let mut forgot_at: Option<Instant> = None;
    let mut tidied_at = Instant::now();
    loop {
        if *stop.borrow() {
            break;
        }
        tick(&app, &stop, &queues, &mut tasks).await;
        // Housekeeping, not on every wake (the worker wakes on every new reply).
        if tidied_at.elapsed() >= TIDY_EVERY {
            app.limiters.tidy();
            app.console_logins.tidy();
            tidied_at = Instant::now();
        }
        if forgot_at.is_none_or(|t| t.elapsed() >= RETENTION_EVERY) {
            forget_old_texts(&app).await;
            forgot_at = Some(Instant::now());
        }
        app.worker_beat.beat();
        while tasks.try_join_next().is_some() {}
        tokio::select! {
            _ = stop.changed() => {},
            () = app.wake.notified() => {},
            () = tokio::time::sleep(interval) => {},
        }
    }
    // Each delivery task stops after its current job.
    while tasks.join_next().await.is_some() {}
    tracing::info!("worker stopped");
}

/// How often the rate limiters forget quiet keys.
const TIDY_EVERY: Duration = Duration::from_secs(60);
/// How often the retention sweep runs.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Empty the texts older than the retention period, if one is set.
async fn forget_old_texts(app: &App) {
    let Some(keep) = app.retention else {
        return;
    };
    match app.store.forget_texts(app.clock.now() - keep).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(messages = n, "retention: old message texts emptied"),
        Err(e) => {
            tracing::error!(error = %e, "retention sweep failed");
            app.metrics.error("worker");
        }
    }
}

async fn tick(
    app: &Arc<App>,
    stop: &watch::Receiver<bool>,
    queues: &Queues,
    tasks: &mut JoinSet<()>,
) {
    let now = app.clock.now();
    match app.store.run_due(&app.engine, now, BATCH).await {
        Ok(ran) => {
            if ran.iter().any(|r| !r.replies.is_empty()) {
                tracing::info!(jobs = ran.len(), "ran due reminders and follow-ups");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "running due jobs failed");
            app.metrics.error("worker");
        }
    }
    loop {
        if *stop.borrow() {
            return;
        }
        let now = app.clock.now();
        let lease = ChronoDuration::seconds(LEASE_SECONDS);
        let jobs = match app
            .store
            .claim_outbox(&[JobKind::Send, JobKind::Handoff], now, lease, BATCH)
            .await
        {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::error!(error = %e, "claiming outbox jobs failed");
                app.metrics.error("worker");
                return;
            }
        };
        if jobs.is_empty() {
            return;
        }
        for job in jobs {
            dispatch(app, stop, queues, tasks, job);
        }
    }
}

/// Queue a job behind its client's earlier ones; start the client's delivery task if idle.
/// In order within a client, in parallel across clients.
fn dispatch(
    app: &Arc<App>,
    stop: &watch::Receiver<bool>,
    queues: &Queues,
    tasks: &mut JoinSet<()>,
    job: Job,
) {
    let key = job.client_id.unwrap_or(-job.id);
    {
        let Ok(mut q) = queues.lock() else {
            return;
        };
        if let Some(queue) = q.get_mut(&key) {
            queue.push_back(job);
            return;
        }
        q.insert(key, VecDeque::from([job]));
    }
    let (app, stop, queues) = (Arc::clone(app), stop.clone(), Arc::clone(queues));
    tasks.spawn(async move { deliver_queue(&app, &stop, &queues, key).await });
}

/// Deliver one client's queue until it is empty. Once a job must wait (429, outage), the newer
/// ones wait too, so the client never gets replies out of order.
async fn deliver_queue(app: &App, stop: &watch::Receiver<bool>, queues: &Queues, key: i64) {
    let mut waiting: Option<i64> = None;
    loop {
        let next = match queues.lock() {
            Ok(mut q) => {
                let job = q.get_mut(&key).and_then(VecDeque::pop_front);
                if job.is_none() || *stop.borrow() {
                    // Jobs left behind keep their lease and are taken again after a restart.
                    q.remove(&key);
                }
                job
            }
            Err(_) => None,
        };
        let Some(job) = next else {
            return;
        };
        if *stop.borrow() {
            return;
        }
        if let Some(after) = waiting {
            let at = app.clock.now() + ChronoDuration::seconds(after);
            if let Err(e) = app
                .store
                .retry_job(job.id, "an earlier reply waits", at)
                .await
            {
                tracing::error!(job = job.id, error = %e, "outbox job failed");
            }
            continue;
        }
        match deliver(app, &job).await {
            Ok(Some(after)) => waiting = Some(after),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(job = job.id, error = %e, "outbox job failed");
                app.metrics.error("worker");
            }
        }
    }
}

/// Wait until `gap` has passed since the last message to `client` (Telegram asks for at most
/// one message per second in one chat).
async fn pace(app: &App, client: &ClientRef, gap: Duration) {
    if gap.is_zero() {
        return;
    }
    let wait = app
        .pace
        .lock()
        .ok()
        .and_then(|last| last.get(client).map(|t| gap.saturating_sub(t.elapsed())));
    if let Some(wait) = wait.filter(|w| !w.is_zero()) {
        tokio::time::sleep(wait).await;
    }
    if let Ok(mut last) = app.pace.lock() {
        if last.len() > 10_000 {
            last.retain(|_, t| t.elapsed() < gap);
        }
        last.insert(client.clone(), Instant::now());
    }
}

/// One attempt's fate, and how long a retry must wait at least (a 429's pause, or a channel
/// that is not configured).
struct Attempt {
    fate: Fate,
    pause: ChronoDuration,
}

impl From<Fate> for Attempt {
    fn from(fate: Fate) -> Attempt {
        Attempt {
            fate,
            pause: ChronoDuration::zero(),
        }
    }
}

/// One attempt at a job; Some(seconds) when it was put back to wait.
async fn deliver(app: &App, job: &Job) -> Result<Option<i64>, StoreError> {
    let attempt = send(app, job).await?;
    let now = app.clock.now();
    let settled = app
        .store
        .settle(job, attempt.fate, &RetryPolicy::SEND, attempt.pause, now)
        .await?;
    if let Fate::Dead(_) = settled.fate {
        app.metrics.error("send_failed");
    }
    Ok(settled.retry_at.map(|at| (at - now).num_seconds().max(1)))
}

async fn send(app: &App, job: &Job) -> Result<Attempt, StoreError> {
    let message = match job.payload() {
        Ok(JobPayload::Send { message }) => message,
        Ok(JobPayload::Handoff { reason }) => return notify_managers(app, job, reason).await,
        Ok(_) => return Ok(Fate::Dead(format!("job {} is not a send", job.id)).into()),
        Err(e) => return Ok(Fate::Dead(e).into()),
    };
    let Some(out) = app.store.outgoing(message).await? else {
        return Ok(Fate::Dead(format!("message {message} is not a reply")).into());
    };
    if out.sent_at.is_some() {
        return Ok(Fate::Done.into());
    }
    let sender = match app.channels.sender(out.client.channel) {
        Ok(sender) => sender,
        // Returned in the HTTP response (or lost with it): nothing to push.
        Err(NoSender::InResponse) => return Ok(Fate::Sent(message).into()),
        Err(NoSender::Off(variable)) => return Ok(not_configured(out.client.channel, variable)),
    };
    let reply = out
        .payload
        .as_deref()
        .and_then(|p| serde_json::from_str::<Reply>(p).ok())
        .unwrap_or(Reply {
            text: out.text.clone(),
            buttons: Vec::new(),
            template: None,
            request_contact: false,
        });
    pace(app, &out.client, sender.per_chat_gap()).await;
    if !sender.deduplicates()
        && let Some(interrupted) = start_send(app, job).await?
    {
        return Ok(interrupted);
    }
    let sent = sender.send(&out.client.id, &reply, job.id).await;
    if sent.is_ok() {
        app.metrics.messages_out(sender.kind(), 1);
        return Ok(Fate::Sent(message).into());
    }
    if let Err(SendError::Blocked(_)) = &sent {
        // Reminders would meet the same refusal: drop them (an SMS fallback comes with SMS).
        let dropped = app.store.client_stopped(&out.client).await?;
        tracing::info!(channel = %out.client.channel, dropped, "client blocks the bot: reminders dropped");
    }
    Ok(attempt_of(app, sender, sent))
}

/// A channel that cannot send now: tried again in ten minutes (its settings may come).
fn not_configured(channel: ChannelKind, variable: &str) -> Attempt {
    Attempt {
        fate: Fate::Retry(format!("{channel} is not configured: set {variable}")),
        pause: ChronoDuration::minutes(10),
    }
}

/// What a send result means for its job.
fn attempt_of(app: &App, sender: Sender<'_>, sent: Result<(), SendError>) -> Attempt {
    let channel = sender.kind();
    match sent {
        Ok(()) => Fate::Done.into(),
        Err(SendError::RetryAfter(secs)) => {
            app.metrics.error(rate_limited(channel));
            Attempt {
                fate: Fate::Retry(format!("429 retry after {secs} s")),
                pause: ChronoDuration::seconds(i64::try_from(secs).unwrap_or(60).max(1)),
            }
        }
        Err(SendError::Transient(e)) => {
            app.metrics.error(send_failed(channel));
            Fate::Retry(e).into()
        }
        Err(SendError::Permanent(e) | SendError::Blocked(e)) => Fate::Dead(e).into(),
    }
}

/// Tell the managers' chat that a conversation waits for a human.
async fn notify_managers(
    app: &App,
    job: &Job,
    reason: HandoffReason,
) -> Result<Attempt, StoreError> {
    if app.managers_chat.is_none() {
        // No managers' channel: the client was asked for a phone, and `bot handoff list`
        // shows the call back. Nothing to deliver, nothing to dead-letter.
        return Ok(Fate::Done.into());
    }
    let (Some(api), Some(chat)) = (&app.channels.telegram, app.managers_chat) else {
        return Ok(Fate::Dead(
            "no managers chat: set BOT_TELEGRAM_TOKEN and BOT_MANAGERS_CHAT_ID".into(),
        )
        .into());
    };
    let Some(client_id) = job.client_id else {
        return Ok(Fate::Dead("hand-off without a client".into()).into());
    };
    let card = app.store.client_card(client_id, 6).await?;
    let reply = Reply {
        text: handoff::notice(&card, reason.as_str()),
        buttons: Vec::new(),
        template: None,
        request_contact: false,
    };
    if let Some(interrupted) = start_send(app, job).await? {
        return Ok(interrupted);
    }
    let sent = api.send_reply(chat, &reply).await;
    Ok(attempt_of(app, Sender::Telegram(api), sent))
}

/// Telegram cannot deduplicate a `sendMessage`, so a send is recorded as started before the
/// call. A job found already started was cut off mid-send by a crash: it may have reached the
/// chat, so it becomes a dead letter for a human to check instead of being sent twice.
async fn start_send(app: &App, job: &Job) -> Result<Option<Attempt>, StoreError> {
    if let Some(at) = job.send_started_at {
        app.metrics.error("send_interrupted");
        return Ok(Some(Attempt::from(Fate::Dead(format!(
            "interrupted while sending at {} (the bot stopped mid-send): the chat may already \
             have it; check, and `bot outbox retry {}` to send it again",
            at.to_rfc3339(),
            job.id
        )))));
    }
    let started = app.store.start_send(job.id, app.clock.now()).await?;
    Ok((!started).then(|| Fate::Done.into()))
}

/// The metric label of a rate-limited channel.
fn rate_limited(channel: ChannelKind) -> &'static str {
    match channel {
        ChannelKind::Telegram => "telegram_rate_limited",
        ChannelKind::Max => "max_rate_limited",
        ChannelKind::Vk => "vk_rate_limited",
        ChannelKind::Web | ChannelKind::Whatsapp | ChannelKind::Instagram => "rate_limited",
    }
}

/// The metric label of a failed send.
fn send_failed(channel: ChannelKind) -> &'static str {
    match channel {
        ChannelKind::Telegram => "telegram_send",
        ChannelKind::Max => "max_send",
        ChannelKind::Vk => "vk_send",
        ChannelKind::Web | ChannelKind::Whatsapp | ChannelKind::Instagram => "send",
    }
}
