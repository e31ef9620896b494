//! `cargo test --test pure engine::adversarial -- --ignored --nocapture`: replays the adversarial
//! conversations of `adversarial.txt` and prints how each ends — done (booked, moved,
//! cancelled, handed over, answered), or stuck (the goal not reached, or the same message
//! twice in a row). A measurement for the closing note, not a pass/fail check.

use super::Chat;
use bot::domain::{
    Booking, BookingId, BookingStatus, ChannelKind, ClientRef, Effect, Event, ServiceId, Slot,
    StaffId,
};
use chrono::{DateTime, Duration, Utc};

struct Conversation {
    goal: String,
    client: Option<(String, String)>,
    bookings: Vec<(String, String, String)>,
    lines: Vec<String>,
}

fn conversations() -> Vec<Conversation> {
    let text = include_str!("adversarial.txt");
    let mut out: Vec<Conversation> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(goal) = line.strip_prefix("= ") {
            out.push(Conversation {
                goal: goal.to_string(),
                client: None,
                bookings: Vec::new(),
                lines: Vec::new(),
            });
            continue;
        }
        let Some(c) = out.last_mut() else { continue };
        if let Some(rest) = line.strip_prefix("@client ") {
            let (name, phone) = rest.rsplit_once(' ').unwrap_or((rest, ""));
            c.client = Some((name.to_string(), phone.to_string()));
        } else if let Some(rest) = line.strip_prefix("@booking ") {
            let p: Vec<&str> = rest.split_whitespace().collect();
            if let [service, staff, at] = p.as_slice() {
                c.bookings
                    .push((service.to_string(), staff.to_string(), at.to_string()));
            }
        } else {
            c.lines.push(line.to_string());
        }
    }
    out
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{s}:00+07:00"))
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_default()
}

/// How a conversation ended: "done" or why it is stuck.
fn replay(c: &Conversation, n: usize) -> (String, Vec<String>) {
    let mut chat = Chat::new(
        bot::config::demo_salon(),
        ChannelKind::Web,
        &format!("adv-{n}"),
    );
    if let Some((name, phone)) = &c.client {
        chat.conv.contact.name = Some(name.clone());
        chat.conv.contact.phone = Some(phone.clone());
    }
    for (i, (service, staff, start)) in c.bookings.iter().enumerate() {
        let start = at(start);
        chat.bookings.push(Booking {
            id: BookingId(format!("B{}", i + 1)),
            client: ClientRef {
                channel: ChannelKind::Web,
                id: format!("adv-{n}"),
            },
            service: ServiceId(service.clone()),
            slot: Slot {
                start,
                end: start + Duration::minutes(60),
                staff: StaffId(staff.clone()),
            },
            status: BookingStatus::Booked,
        });
    }
    let mut transcript = Vec::new();
    let mut last_buttons: Vec<String> = Vec::new();
    let mut previous: Vec<String> = Vec::new();
    let mut repeated = false;
    for line in &c.lines {
        let event = match line.strip_prefix('>').and_then(|n| n.parse::<usize>().ok()) {
            Some(k) => match last_buttons.get(k.saturating_sub(1)) {
                Some(payload) => Event::Button {
                    payload: payload.clone(),
                },
                None => {
                    transcript.push(format!("  (no button {k})"));
                    continue;
                }
            },
            None => Event::Text { text: line.clone() },
        };
        transcript.push(format!("> {line}"));
        let turn = chat.event(event);
        let texts: Vec<String> = turn.replies.iter().map(|r| r.text.clone()).collect();
        if texts.iter().any(|t| previous.contains(t)) {
            repeated = true;
        }
        if !texts.is_empty() {
            previous = texts.clone();
        }
        for r in &turn.replies {
            transcript.push(format!(
                "< {} [{}]",
                r.text,
                r.template.as_deref().unwrap_or("")
            ));
        }
        if let Some(r) = turn.replies.iter().rev().find(|r| !r.buttons.is_empty()) {
            last_buttons = r.buttons.iter().map(|b| b.payload.clone()).collect();
        }
    }
    let has = |f: &dyn Fn(&Effect) -> bool| chat.effects.iter().any(f);
    let reached = match c.goal.as_str() {
        "book" => has(&|e| matches!(e, Effect::BookingRequested { .. })),
        "move" => has(&|e| matches!(e, Effect::BookingMoved { .. })),
        "cancel" => has(&|e| matches!(e, Effect::BookingCancelled { .. })),
        "human" => has(&|e| matches!(e, Effect::HandoffRequested { .. })),
        _ => !transcript
            .iter()
            .any(|l| l.ends_with("[fallback]") || l.ends_with("[handoff]")),
    };
    let double_booked = c.goal == "move" && has(&|e| matches!(e, Effect::BookingRequested { .. }));
    let outcome = if double_booked {
        "stuck: booked a second visit instead of moving".to_string()
    } else if repeated {
        "stuck: the same message twice in a row".to_string()
    } else if reached {
        "done".to_string()
    } else if has(&|e| matches!(e, Effect::HandoffRequested { .. })) {
        "handed off (goal not reached by the bot)".to_string()
    } else {
        format!("stuck: {} not reached", c.goal)
    };
    (outcome, transcript)
}

#[test]
#[ignore]
fn adversarial_conversations() {
    let all = conversations();
    let mut tally: std::collections::BTreeMap<String, usize> = Default::default();
    for (n, c) in all.iter().enumerate() {
        let (outcome, transcript) = replay(c, n);
        let class = outcome.split(':').next().unwrap_or("").to_string();
        *tally.entry(class).or_default() += 1;
        println!("#{n:02} {} → {outcome}", c.goal);
        if outcome != "done" {
            for l in transcript {
                println!("      {l}");
            }
        }
    }
    println!("{} conversations: {tally:?}", all.len());
}
