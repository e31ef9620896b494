//! The KPIs of `bot report`, as pure functions over chat logs — live conversations from the
//! store and imported exports alike (`store/kpi.rs` reads both into [`ChatLog`]s). The
//! definitions are binding (README, «KPIs»):
//!
//! - a **request** is a maximal run of a chat's messages with no gap over 12 hours (exactly 12 h
//!   does not split) that holds at least one client message; it belongs to the period of its
//!   first client message (business-local dates);
//! - its **first response time** runs from that first client message to the first business
//!   message after it in the request (none: unanswered); **every response** is, for each client
//!   message, the gap to the next business message in the request;
//! - **qualified**: by the end of the request the client's messages — read by the bot's own
//!   understanding with «now» at the request's first message — name a service of the profile, a
//!   wanted day or time, and a phone (written, in a contact card, given by the channel, or already
//!   known for a live client); **without a human**: before any hand-off (live only);
//! - **booked**: a booking was made during the request (live), or a business message confirms
//!   one — a date and an HH:MM time with a confirming word (imports, managers);
//! - percentiles interpolate linearly between closest ranks (`pos = (n−1)·q`).
//!
//! Nothing here reads a clock, a file or the database.

pub mod html;
pub mod render;

use crate::nlu::Nlu;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The longest gap inside one request.
pub const REQUEST_GAP: Duration = Duration::hours(12);

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Client,
    Business,
}

/// One message of a chat log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogMessage {
    pub at: DateTime<Utc>,
    pub side: Side,
    pub text: String,
    /// A phone the message carries outside its text (a shared contact card).
    pub phone: Option<String>,
}

/// One chat (a client on one channel) with what the KPIs need to know of it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatLog {
    /// `live`, or the label of an import.
    pub source: String,
    pub channel: String,
    /// The export's chat name or id, or the live client id.
    pub chat: String,
    /// In time order (ties keep the file's order).
    pub messages: Vec<LogMessage>,
    /// The channel gives the client's phone (WhatsApp), or (live) it is known already.
    pub phone_known: bool,
    /// When bookings were made in this chat (live).
    pub bookings_made: Vec<DateTime<Utc>>,
    /// When the conversation was handed to a human (live).
    pub handoffs: Vec<DateTime<Utc>>,
    pub live: bool,
    /// The live client's id in the store.
    pub client_id: Option<i64>,
    /// When the LLM was asked about a client message (live), and whether it was used.
    pub llm_asked: Vec<(DateTime<Utc>, bool)>,
    /// The arm of the client's latest pilot assignment (live).
    pub arm: Option<crate::pilot::Arm>,
}

/// One request, as `bot report --format json` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Request {
    pub source: String,
    pub channel: String,
    pub chat: String,
    pub first_client_at: DateTime<Utc>,
    /// Null when unanswered.
    pub first_response_s: Option<f64>,
    pub qualified: bool,
    pub booked: bool,
    #[serde(skip)]
    pub every_response_s: Vec<f64>,
    /// Qualified before any hand-off (None for imports: no hand-offs are known there).
    #[serde(skip)]
    pub qualified_without_human: Option<bool>,
}

/// The requests of one chat.
pub fn requests(chat: &ChatLog, nlu: &Nlu) -> Vec<Request> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=chat.messages.len() {
        let split =
            i == chat.messages.len() || chat.messages[i].at - chat.messages[i - 1].at > REQUEST_GAP;
        if split {
            if let Some(r) = request(chat, &chat.messages[start..i], nlu) {
                out.push(r);
            }
            start = i;
        }
    }
    out
}

fn request(chat: &ChatLog, run: &[LogMessage], nlu: &Nlu) -> Option<Request> {
    let first = run.iter().position(|m| m.side == Side::Client)?;
    let first_client_at = run[first].at;
    let first_response_s = run[first..]
        .iter()
        .find(|m| m.side == Side::Business)
        .map(|m| seconds(m.at - first_client_at));
    let every_response_s = run
        .iter()
        .enumerate()
        .filter(|(_, m)| m.side == Side::Client)
        .filter_map(|(i, m)| {
            run[i..]
                .iter()
                .find(|b| b.side == Side::Business)
                .map(|b| seconds(b.at - m.at))
        })
        .collect();
    let begin = run[0].at;
    let end = run[run.len() - 1].at;
    let qualified_at = qualified_at(chat, run, nlu);
    let handed = chat
        .handoffs
        .iter()
        .copied()
        .filter(|h| *h >= begin && *h <= end)
        .min();
    let booked = chat.bookings_made.iter().any(|b| *b >= begin && *b <= end)
        || run
            .iter()
            .any(|m| m.side == Side::Business && confirms_booking(&m.text));
    Some(Request {
        source: chat.source.clone(),
        channel: chat.channel.clone(),
        chat: chat.chat.clone(),
        first_client_at,
        first_response_s,
        qualified: qualified_at.is_some(),
        booked,
        every_response_s,
        qualified_without_human: chat.live.then(|| match (qualified_at, handed) {
            (Some(q), Some(h)) => q < h,
            (Some(_), None) => true,
            (None, _) => false,
        }),
    })
}

fn seconds(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// When the client's messages of `run` first named a service, a wanted day or time, and a
/// phone (each possibly in a different message); None when they never did.
fn qualified_at(chat: &ChatLog, run: &[LogMessage], nlu: &Nlu) -> Option<DateTime<Utc>> {
    let now = run.iter().find(|m| m.side == Side::Client)?.at;
    // Without a phone anywhere the request cannot qualify: no language reading needed (most
    // messenger requests carry no phone). The phone reader is a byte scan; understanding a
    // message costs far more.
    let any_phone = chat.phone_known
        || run.iter().filter(|m| m.side == Side::Client).any(|m| {
            m.phone.is_some()
                || crate::nlu::phone::find(crate::nlu::read_part(&m.text), None)
                    .e164
                    .is_some()
        });
    if !any_phone {
        return None;
    }
    let (mut service, mut when, mut phone) = (false, false, chat.phone_known);
    for m in run.iter().filter(|m| m.side == Side::Client) {
        let u = nlu.understand(&m.text, now);
        service |= u.service.is_some();
        when |= u.when.date.is_some() || u.when.time.is_some() || u.when.part_of_day.is_some();
        phone |= u.phone.is_some() || m.phone.is_some();
        if service && when && phone {
            return Some(m.at);
        }
    }
    None
}

/// A business message that confirms a booking: a date (DD.MM, a weekday, «завтра»…) and an
/// HH:MM time together with a confirming word.
pub fn confirms_booking(text: &str) -> bool {
    // An HH:MM time is required: most messages have no colon at all.
    if !text.contains(':') {
        return false;
    }
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '.' && c != ':')
        .filter(|w| !w.is_empty())
        .collect();
    let bare = |w: &str| w.trim_matches(|c| c == '.' || c == ':').to_string();
    const CONFIRM: &[&str] = &[
        "записал",
        "записала",
        "записали",
        "записываю",
        "записан",
        "записана",
        "записаны",
        "ждём",
        "ждем",
        "подтверждаю",
        "подтверждаем",
        "подтверждена",
        "забронировал",
        "забронировала",
        "забронировали",
        "забронировано",
    ];
    const DAYS: &[&str] = &[
        "сегодня",
        "завтра",
        "послезавтра",
        "понедельник",
        "вторник",
        "среду",
        "среда",
        "четверг",
        "пятницу",
        "пятница",
        "субботу",
        "суббота",
        "воскресенье",
        "пн",
        "вт",
        "ср",
        "чт",
        "пт",
        "сб",
        "вс",
    ];
    let is_time = |w: &str| {
        let w = bare(w);
        let Some((h, m)) = w.split_once(':') else {
            return false;
        };
        h.len() <= 2
            && m.len() == 2
            && h.parse::<u32>().is_ok_and(|h| h < 24)
            && m.parse::<u32>().is_ok_and(|m| m < 60)
    };
    let is_date = |w: &str| {
        let w = bare(w);
        if DAYS.contains(&w.as_str()) {
            return true;
        }
        let mut parts = w.split('.');
        match (parts.next(), parts.next()) {
            (Some(d), Some(m)) => {
                d.parse::<u32>().is_ok_and(|d| (1..=31).contains(&d))
                    && m.len() == 2
                    && m.parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
            }
            _ => false,
        }
    };
    let confirm = words.iter().any(|w| CONFIRM.contains(&bare(w).as_str()));
    confirm && words.iter().any(|w| is_time(w)) && words.iter().any(|w| is_date(w))
}

/// The `q` quantile of sorted `values` with linear interpolation between closest ranks.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = (sorted.len() - 1) as f64 * q;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// A live booking, for the no-show and returning-client KPIs.
#[derive(Debug, Clone, PartialEq)]
pub struct BookingFact {
    pub client: String,
    pub channel: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub created: DateTime<Utc>,
    /// `booked`, `confirmed`, `completed`, `no_show`, `cancelled`, `rescheduled`.
    pub status: String,
}

/// The KPIs of a set of requests (binding JSON names).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Kpis {
    pub chats: u64,
    pub messages_client: u64,
    pub messages_business: u64,
    pub requests: u64,
    pub answered: u64,
    pub unanswered: u64,
    pub first_response_median_s: Option<f64>,
    pub first_response_p90_s: Option<f64>,
    pub answered_within_60s: Option<f64>,
    pub answered_within_15min: Option<f64>,
    pub every_response_median_s: Option<f64>,
    pub every_response_p90_s: Option<f64>,
    pub qualified: u64,
    pub qualified_pct: Option<f64>,
    pub qualified_without_human: Option<u64>,
    pub booked: u64,
    pub booking_conversion_pct: Option<f64>,
    pub no_show_rate_pct: Option<f64>,
    pub unmarked_past_bookings: Option<u64>,
    pub returning_clients: Option<u64>,
    /// Client messages the LLM was asked about (live data only).
    pub llm_asked: Option<u64>,
    /// Of those, the ones where what it returned was used.
    pub llm_used: Option<u64>,
}

/// A reporting period: business-local dates, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub tz: Tz,
}

impl Period {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let d = t.with_timezone(&self.tz).date_naive();
        d >= self.from && d <= self.to
    }

    /// The period's first instant (UTC).
    pub fn start(&self) -> DateTime<Utc> {
        local_midnight(self.from, self.tz)
    }
}

fn local_midnight(d: NaiveDate, tz: Tz) -> DateTime<Utc> {
    use chrono::TimeZone;
    tz.from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map_or_else(
            || d.and_time(chrono::NaiveTime::MIN).and_utc(),
            |t| t.with_timezone(&Utc),
        )
}

fn pct(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| round2(part as f64 * 100.0 / whole as f64))
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| round4(part as f64 / whole as f64))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The KPIs of `chats` over `period`: their requests that start in it, their messages in it,
/// and — when `bookings` is given (live data) — the no-show and returning-client figures.
pub fn kpis(
    chats: &[&ChatLog],
    requests: &[&Request],
    bookings: Option<&[BookingFact]>,
    period: &Period,
    now: DateTime<Utc>,
) -> Kpis {
    let mut k = Kpis::default();
    let mut active = 0;
    for chat in chats {
        let mut any = false;
        for m in chat.messages.iter().filter(|m| period.contains(m.at)) {
            any = true;
            match m.side {
                Side::Client => k.messages_client += 1,
                Side::Business => k.messages_business += 1,
            }
        }
        active += u64::from(any);
    }
    k.chats = active;
    if chats.iter().any(|c| c.live) {
        let asked: Vec<bool> = chats
            .iter()
            .flat_map(|c| c.llm_asked.iter())
            .filter(|(t, _)| period.contains(*t))
            .map(|(_, used)| *used)
            .collect();
        k.llm_asked = Some(asked.len() as u64);
        k.llm_used = Some(asked.iter().filter(|u| **u).count() as u64);
    }
    let mine: Vec<&&Request> = requests
        .iter()
        .filter(|r| period.contains(r.first_client_at))
        .collect();
    k.requests = mine.len() as u64;
    let mut first: Vec<f64> = mine.iter().filter_map(|r| r.first_response_s).collect();
    first.sort_by(f64::total_cmp);
    k.answered = first.len() as u64;
    k.unanswered = k.requests - k.answered;
    k.first_response_median_s = quantile(&first, 0.5).map(round2);
    k.first_response_p90_s = quantile(&first, 0.9).map(round2);
    let within = |limit: f64| first.iter().filter(|s| **s <= limit).count() as u64;
    k.answered_within_60s = share(within(60.0), k.requests);
    k.answered_within_15min = share(within(900.0), k.requests);
    let mut every: Vec<f64> = mine
        .iter()
        .flat_map(|r| r.every_response_s.iter().copied())
        .collect();
    every.sort_by(f64::total_cmp);
    k.every_response_median_s = quantile(&every, 0.5).map(round2);
    k.every_response_p90_s = quantile(&every, 0.9).map(round2);
    k.qualified = mine.iter().filter(|r| r.qualified).count() as u64;
    k.qualified_pct = pct(k.qualified, k.requests);
    let live: Vec<bool> = mine
        .iter()
        .filter_map(|r| r.qualified_without_human)
        .collect();
    k.qualified_without_human =
        (!live.is_empty()).then(|| live.iter().filter(|q| **q).count() as u64);
    k.booked = mine.iter().filter(|r| r.booked).count() as u64;
    k.booking_conversion_pct = pct(k.booked, k.requests);
    if let Some(bookings) = bookings {
        let past: Vec<&BookingFact> = bookings
            .iter()
            .filter(|b| period.contains(b.start) && b.end <= now)
            .collect();
        let no_shows = past.iter().filter(|b| b.status == "no_show").count() as u64;
        let completed = past.iter().filter(|b| b.status == "completed").count() as u64;
        k.no_show_rate_pct = pct(no_shows, no_shows + completed);
        k.unmarked_past_bookings = Some(
            past.iter()
                .filter(|b| b.status == "booked" || b.status == "confirmed")
                .count() as u64,
        );
        let start = period.start();
        let before: BTreeSet<(&str, &str)> = bookings
            .iter()
            .filter(|b| b.status == "completed" && b.start < start)
            .map(|b| (b.channel.as_str(), b.client.as_str()))
            .collect();
        let returning: BTreeSet<(&str, &str)> = bookings
            .iter()
            .filter(|b| period.contains(b.created))
            .map(|b| (b.channel.as_str(), b.client.as_str()))
            .filter(|c| before.contains(c))
            .collect();
        k.returning_clients = Some(returning.len() as u64);
    }
    k
}

/// The KPIs of a period broken down: all, by channel, by source.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Breakdown {
    pub all: Kpis,
    pub by_channel: BTreeMap<String, Kpis>,
    pub by_source: BTreeMap<String, Kpis>,
}

/// The whole report of one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub period: PeriodOut,
    pub kpis: Breakdown,
    /// The KPIs of the live clients of each pilot arm (when a pilot assigned any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_arm: Option<BTreeMap<String, Kpis>>,
    /// The latest pilot's comparison over its own window (filled by `bot report`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pilot: Option<crate::pilot::analysis::PilotOut>,
    pub requests: Vec<Request>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodOut {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub timezone: String,
}

/// The requests of every chat, read on all cores (understanding the client's messages is
/// most of a report's work).
fn all_requests(chats: &[ChatLog], nlu: &Nlu) -> Vec<Vec<Request>> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if threads < 2 || chats.len() < 64 {
        return chats.iter().map(|c| requests(c, nlu)).collect();
    }
    let chunk = chats.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = chats
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || part.iter().map(|c| requests(c, nlu)).collect::<Vec<_>>())
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// The report of `chats` over `period` (bookings: the live store's, for no-shows).
pub fn report(
    chats: &[ChatLog],
    bookings: &[BookingFact],
    nlu: &Nlu,
    period: &Period,
    now: DateTime<Utc>,
) -> Report {
    let per_chat = all_requests(chats, nlu);
    let slice = |keep: &dyn Fn(&ChatLog) -> bool| -> (Vec<&ChatLog>, Vec<&Request>) {
        let mut cs = Vec::new();
        let mut rs = Vec::new();
        for (c, r) in chats.iter().zip(&per_chat) {
            if keep(c) {
                cs.push(c);
                rs.extend(r.iter());
            }
        }
        (cs, rs)
    };
    let has_live = chats.iter().any(|c| c.live);
    let live_bookings = |keep: &dyn Fn(&BookingFact) -> bool| -> Vec<BookingFact> {
        bookings.iter().filter(|b| keep(b)).cloned().collect()
    };
    let figure = |keep: &dyn Fn(&ChatLog) -> bool, with_bookings: Option<Vec<BookingFact>>| {
        let (cs, rs) = slice(keep);
        kpis(&cs, &rs, with_bookings.as_deref(), period, now)
    };
    let all = figure(&|_| true, has_live.then(|| live_bookings(&|_| true)));
    let mut by_channel = BTreeMap::new();
    let channels: BTreeSet<&str> = chats.iter().map(|c| c.channel.as_str()).collect();
    for ch in channels {
        let live_here = chats.iter().any(|c| c.live && c.channel == ch);
        by_channel.insert(
            ch.to_string(),
            figure(
                &|c| c.channel == ch,
                live_here.then(|| live_bookings(&|b| b.channel == ch)),
            ),
        );
    }
    let mut by_source = BTreeMap::new();
    let sources: BTreeSet<&str> = chats.iter().map(|c| c.source.as_str()).collect();
    for src in sources {
        let live_here = chats.iter().any(|c| c.live && c.source == src);
        by_source.insert(
            src.to_string(),
            figure(
                &|c| c.source == src,
                live_here.then(|| live_bookings(&|_| true)),
            ),
        );
    }
    let by_arm = chats.iter().any(|c| c.arm.is_some()).then(|| {
        use crate::pilot::Arm;
        [(Arm::Bot, "bot"), (Arm::Managers, "managers")]
            .into_iter()
            .map(|(arm, name)| {
                let clients: BTreeSet<String> = chats
                    .iter()
                    .filter(|c| c.arm == Some(arm))
                    .map(|c| c.chat.clone())
                    .collect();
                let k = figure(
                    &|c| c.arm == Some(arm),
                    Some(live_bookings(&|b| {
                        clients.contains(&format!("{}:{}", b.channel, b.client))
                    })),
                );
                (name.to_string(), k)
            })
            .collect()
    });
    let mut requests: Vec<Request> = per_chat
        .into_iter()
        .flatten()
        .filter(|r| period.contains(r.first_client_at))
        .collect();
    requests.sort_by(|a, b| {
        (a.first_client_at, &a.source, &a.chat).cmp(&(b.first_client_at, &b.source, &b.chat))
    });
    Report {
        period: PeriodOut {
            from: period.from,
            to: period.to,
            timezone: period.tz.name().to_string(),
        },
        kpis: Breakdown {
            all,
            by_channel,
            by_source,
        },
        by_arm,
        pilot: None,
        requests,
    }
}

#[cfg(test)]
mod tests;
