//! The numbers of a pilot, per arm, over its window: the clients assigned (SRM first), then
//! qualified % and booking conversion per client, first response times, and the verdict.
//! Inputs are the stored pilot and assignments and the live chat logs the report reads
//! (`store/kpi.rs`), so both arms are measured by the same instrument: the KPI module's
//! request reading runs over the bot's and the managers' conversations alike.
//!
//! The unit is the client (the unit of assignment): a client counts as qualified or booked
//! when any of their requests in the window was; their response time is their first
//! request's. A key linked by phone to an earlier key is the same person and is counted once
//! (as a multiple exposure when the two arms differ).

use super::Arm;
use super::stats::{self, Rate, TimeSummary, Verdict};
use crate::config::Profile;
use crate::kpi::{ChatLog, requests};
use crate::nlu::Nlu;
use crate::store::pilot::{Assignment, Pilot};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Bot and managers, as the JSON spells them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct PerArm<T> {
    pub bot: T,
    pub managers: T,
}

impl<T> PerArm<T> {
    fn get_mut(&mut self, arm: Arm) -> &mut T {
        match arm {
            Arm::Bot => &mut self.bot,
            Arm::Managers => &mut self.managers,
        }
    }
}

/// One proportion metric compared (binding names).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonOut {
    pub bot_pct: Option<f64>,
    pub managers_pct: Option<f64>,
    pub bot_ci_pct: Option<(f64, f64)>,
    pub managers_ci_pct: Option<(f64, f64)>,
    pub diff_pp: Option<f64>,
    pub ci_low_pp: Option<f64>,
    pub ci_high_pp: Option<f64>,
    pub p_value: Option<f64>,
    /// Fisher's exact and Newcombe's interval (a cell under 10) rather than z and Wald.
    pub small_cells: bool,
    pub lift_pct: Option<f64>,
    pub lift_ci_pct: Option<(f64, f64)>,
    pub chance_bot_better: Option<f64>,
    /// The interval the verdict reads: 1 − 0.05/3 (three KPIs read at once).
    pub corrected_ci_pp: Option<(f64, f64)>,
}

/// First response times of one arm (seconds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimesOut {
    pub n: usize,
    pub median_s: Option<f64>,
    pub p90_s: Option<f64>,
    pub mean_s: Option<f64>,
    pub within_60s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseOut {
    pub bot: TimesOut,
    pub managers: TimesOut,
    pub mann_whitney_p: Option<f64>,
    /// Bot minus managers, with a seeded bootstrap 95 % interval.
    pub median_diff_s: Option<f64>,
    pub median_diff_ci_s: Option<(f64, f64)>,
}

/// The `"pilot"` object of `bot report --format json` and `bot pilot status --format json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PilotOut {
    /// The bot's share now, in percent.
    pub share: f64,
    pub seed: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub stopped: Option<DateTime<Utc>>,
    pub existing_clients: Arm,
    pub clients: PerArm<u64>,
    /// Their requests in the window (a client may come back with a new one).
    pub requests: PerArm<u64>,
    /// The counts the shares in force at each assignment expect.
    pub expected: PerArm<f64>,
    pub srm_p: Option<f64>,
    /// p < 0.001: the split is broken; read no KPI before finding why.
    pub srm_alarm: bool,
    /// People seen under two keys (their phone linked them) with different arms.
    pub multiple_exposures: u64,
    pub comparisons: BTreeMap<String, ComparisonOut>,
    pub first_response: ResponseOut,
    /// The same, for requests begun in business hours only.
    pub first_response_business_hours: ResponseOut,
    /// `better`, `worse` or `unclear`.
    pub verdict: &'static str,
    /// In plain Russian, for the owner.
    pub verdict_text: String,
    pub more_clients_needed: Option<u64>,
    /// The smallest conversion difference (pp) the clients so far can detect at 80 % power.
    pub mde_pp: Option<f64>,
    pub days_left: i64,
}

/// What one client did in the window.
#[derive(Debug, Clone, Copy, Default)]
struct Outcome {
    requests: u64,
    qualified: bool,
    booked: bool,
    first_response_s: Option<f64>,
    in_hours: bool,
}

/// The pilot's numbers at `now` (chats: live chat logs covering the pilot's window).
pub fn analyze(
    pilot: &Pilot,
    assignments: &[Assignment],
    chats: &[ChatLog],
    profile: &Profile,
    nlu: &Nlu,
    now: DateTime<Utc>,
) -> PilotOut {
    let end = pilot
        .stopped_at
        .map_or(pilot.ends_at, |s| s.min(pilot.ends_at));
    let by_client: HashMap<i64, &ChatLog> = chats
        .iter()
        .filter_map(|c| c.client_id.map(|id| (id, c)))
        .collect();
    let arm_of: HashMap<&str, Arm> = assignments
        .iter()
        .map(|a| (a.client_key.as_str(), a.arm))
        .collect();
    let mut clients = PerArm::<u64>::default();
    let mut expected = PerArm::<f64>::default();
    let mut multiple_exposures = 0;
    let mut outcomes = PerArm::<Vec<Outcome>>::default();
    for a in assignments {
        if let Some(first) = a.linked_to.as_deref() {
            // The same person as an earlier key: counted there.
            if arm_of.get(first).is_some_and(|arm| *arm != a.arm) {
                multiple_exposures += 1;
            }
            continue;
        }
        *clients.get_mut(a.arm) += 1;
        let bot = (a.share / 100.0).clamp(0.0, 1.0);
        expected.bot += bot;
        expected.managers += 1.0 - bot;
        let outcome = a
            .client_id
            .and_then(|id| by_client.get(&id))
            .map(|chat| outcome(chat, end, profile, nlu))
            .unwrap_or_default();
        outcomes.get_mut(a.arm).push(outcome);
    }
    let srm_p = stats::srm_p(
        clients.bot as f64,
        clients.managers as f64,
        expected.bot,
        expected.managers,
    );
    let seed = u64::from(super::fnv1a32(&pilot.seed));
    let rate = |arm: &[Outcome], f: fn(&Outcome) -> bool| Rate {
        x: arm.iter().filter(|o| f(o)).count() as u64,
        n: arm.len() as u64,
    };
    let qualified = stats::compare_rates(
        rate(&outcomes.bot, |o| o.qualified),
        rate(&outcomes.managers, |o| o.qualified),
        seed,
    );
    let conversion = stats::compare_rates(
        rate(&outcomes.bot, |o| o.booked),
        rate(&outcomes.managers, |o| o.booked),
        seed ^ 1,
    );
    let times = |arm: &[Outcome], hours_only: bool| -> Vec<f64> {
        arm.iter()
            .filter(|o| !hours_only || o.in_hours)
            .filter_map(|o| o.first_response_s)
            .collect()
    };
    let response = |hours_only: bool| {
        let t = stats::compare_times(
            &times(&outcomes.bot, hours_only),
            &times(&outcomes.managers, hours_only),
            seed ^ 2,
        );
        ResponseOut {
            bot: times_out(&t.bot),
            managers: times_out(&t.managers),
            mann_whitney_p: t.mann_whitney_p,
            median_diff_s: t.median_diff,
            median_diff_ci_s: t.median_diff_ci,
        }
    };
    let share = pilot.share / 100.0;
    let verdict = stats::verdict(&conversion, &qualified, share);
    let total = clients.bot + clients.managers;
    let p_managers = conversion
        .managers
        .n
        .gt(&0)
        .then(|| conversion.managers.x as f64 / conversion.managers.n as f64)
        .filter(|p| *p > 0.0 && *p < 1.0)
        .unwrap_or(0.20);
    let mut comparisons = BTreeMap::new();
    comparisons.insert("qualified_pct".to_string(), comparison_out(&qualified));
    comparisons.insert(
        "booking_conversion_pct".to_string(),
        comparison_out(&conversion),
    );
    let days_left = if pilot.stopped_at.is_some() || now >= end {
        0
    } else {
        (end - now).num_hours().div_euclid(24) + i64::from((end - now).num_hours() % 24 > 0)
    };
    PilotOut {
        share: pilot.share,
        seed: pilot.seed.clone(),
        start: pilot.started_at,
        end: pilot.ends_at,
        stopped: pilot.stopped_at,
        existing_clients: pilot.existing,
        clients,
        requests: PerArm {
            bot: outcomes.bot.iter().map(|o| o.requests).sum(),
            managers: outcomes.managers.iter().map(|o| o.requests).sum(),
        },
        expected: PerArm {
            bot: round(expected.bot, 2),
            managers: round(expected.managers, 2),
        },
        srm_p: srm_p.map(|p| round(p, 6)),
        srm_alarm: srm_p.is_some_and(|p| p < stats::SRM_ALARM),
        multiple_exposures,
        comparisons,
        first_response: response(false),
        first_response_business_hours: response(true),
        verdict: match verdict {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Unclear { .. } => "unclear",
        },
        verdict_text: stats::verdict_text(&verdict),
        more_clients_needed: match verdict {
            Verdict::Unclear { more_clients } => more_clients,
            _ => None,
        },
        mde_pp: (total > 0)
            .then(|| stats::mde_pp(total, share, p_managers, 0.05 / 3.0, 0.8))
            .flatten()
            .map(|d| round(d, 1)),
        days_left,
    }
}

/// A client's requests begun before the pilot's end. All of them are the pilot's: the client
/// was first seen after its start (a channel's own time of the first message may be a little
/// earlier than the server's, so no lower bound is applied).
fn outcome(chat: &ChatLog, to: DateTime<Utc>, profile: &Profile, nlu: &Nlu) -> Outcome {
    let mine: Vec<_> = requests(chat, nlu)
        .into_iter()
        .filter(|r| r.first_client_at < to)
        .collect();
    let Some(first) = mine.first() else {
        return Outcome::default();
    };
    Outcome {
        requests: mine.len() as u64,
        qualified: mine.iter().any(|r| r.qualified),
        booked: mine.iter().any(|r| r.booked),
        first_response_s: first.first_response_s,
        in_hours: in_business_hours(profile, first.first_client_at),
    }
}

/// Whether `t` falls in the business's opening hours (its time zone).
pub fn in_business_hours(profile: &Profile, t: DateTime<Utc>) -> bool {
    use chrono::Datelike;
    let local = t.with_timezone(&profile.business.timezone);
    profile
        .hours
        .on(local.weekday())
        .is_some_and(|h| local.time() >= h.open && local.time() < h.close)
}

fn times_out(t: &TimeSummary) -> TimesOut {
    TimesOut {
        n: t.n,
        median_s: t.median.map(|x| round(x, 2)),
        p90_s: t.p90.map(|x| round(x, 2)),
        mean_s: t.mean.map(|x| round(x, 2)),
        within_60s: t.within_60s.map(|x| round(x, 4)),
    }
}

fn comparison_out(c: &stats::ProportionComparison) -> ComparisonOut {
    let pct = |r: Rate| (r.n > 0).then(|| round(r.x as f64 * 100.0 / r.n as f64, 2));
    let pct_pair =
        |p: Option<(f64, f64)>| p.map(|(a, b)| (round(a * 100.0, 2), round(b * 100.0, 2)));
    let pp = |x: Option<f64>| x.map(|v| round(v, 2));
    ComparisonOut {
        bot_pct: pct(c.bot),
        managers_pct: pct(c.managers),
        bot_ci_pct: pct_pair(c.bot_ci),
        managers_ci_pct: pct_pair(c.managers_ci),
        diff_pp: pp(c.diff_pp),
        ci_low_pp: pp(c.ci_low_pp),
        ci_high_pp: pp(c.ci_high_pp),
        p_value: c.p_value.map(|p| round(p, 6)),
        small_cells: c.small_cells,
        lift_pct: c.lift.map(|l| round(l * 100.0, 2)),
        lift_ci_pct: pct_pair(c.lift_ci),
        chance_bot_better: c.chance_bot_better.map(|p| round(p, 4)),
        corrected_ci_pp: c
            .corrected_low_pp
            .zip(c.corrected_high_pp)
            .map(|(a, b)| (round(a, 2), round(b, 2))),
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kpi::{LogMessage, Side};
    use chrono::TimeZone;

    fn at(min: i64) -> DateTime<Utc> {
        // Friday 20 Nov 2026, 10:00 in Novosibirsk (business hours).
        Utc.with_ymd_and_hms(2026, 11, 20, 3, 0, 0).unwrap() + chrono::Duration::minutes(min)
    }

    fn assignment(key: &str, id: i64, arm: Arm, share: f64, linked: Option<&str>) -> Assignment {
        Assignment {
            client_key: key.into(),
            client_id: Some(id),
            arm,
            h: 0.5,
            share,
            assigned_at: at(id),
            linked_to: linked.map(String::from),
        }
    }

    fn chat(id: i64, answered_after_s: Option<i64>, booked: bool) -> ChatLog {
        let mut messages = vec![LogMessage {
            at: at(id),
            side: Side::Client,
            text: "здравствуйте".into(),
            phone: None,
        }];
        if let Some(s) = answered_after_s {
            messages.push(LogMessage {
                at: at(id) + chrono::Duration::seconds(s),
                side: Side::Business,
                text: "Здравствуйте!".into(),
                phone: None,
            });
        }
        ChatLog {
            source: "live".into(),
            channel: "web".into(),
            chat: format!("web:c{id}"),
            messages,
            bookings_made: if booked {
                vec![at(id) + chrono::Duration::seconds(1)]
            } else {
                vec![]
            },
            live: true,
            client_id: Some(id),
            ..ChatLog::default()
        }
    }

    #[test]
    fn clients_expected_counts_exposures_and_times_come_from_the_assignments() {
        let profile = crate::config::demo_salon();
        let nlu = Nlu::new(&profile);
        let pilot = Pilot {
            id: 1,
            seed: "t".into(),
            share: 50.0,
            existing: Arm::Bot,
            started_at: at(0),
            ends_at: at(60 * 24 * 14),
            changed_at: at(5),
            stopped_at: None,
        };
        let assignments = vec![
            assignment("web:c1", 1, Arm::Bot, 10.0, None),
            assignment("web:c2", 2, Arm::Managers, 10.0, None),
            assignment("web:c3", 3, Arm::Managers, 50.0, None),
            // The same person as web:c1 under another key, in the other arm.
            assignment("web:c4", 4, Arm::Managers, 50.0, Some("web:c1")),
        ];
        let chats = vec![
            chat(1, Some(1), true),
            chat(2, Some(600), false),
            chat(3, None, false),
            chat(4, Some(30), false),
        ];
        let out = analyze(&pilot, &assignments, &chats, &profile, &nlu, at(60));
        assert_eq!((out.clients.bot, out.clients.managers), (1, 2));
        assert_eq!((out.requests.bot, out.requests.managers), (1, 2));
        // 0.1 + 0.1 + 0.5 of the three unique clients were expected in the bot's arm.
        assert!((out.expected.bot - 0.7).abs() < 1e-9, "{:?}", out.expected);
        assert!((out.expected.managers - 2.3).abs() < 1e-9);
        assert_eq!(out.multiple_exposures, 1);
        let conv = &out.comparisons["booking_conversion_pct"];
        assert_eq!((conv.bot_pct, conv.managers_pct), (Some(100.0), Some(0.0)));
        assert!(conv.small_cells);
        assert_eq!(out.first_response.bot.median_s, Some(1.0));
        assert_eq!(out.first_response.managers.n, 1, "c3 is unanswered");
        assert_eq!(out.first_response.managers.median_s, Some(600.0));
        assert_eq!(out.verdict, "unclear");
        assert_eq!(out.days_left, 14);
    }
}
