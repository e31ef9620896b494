//! One dialog turn of the engine on the demo salon (understanding + decision + rendering),
//! for the goal of under 50 µs per turn.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use bot::calendar::ScheduleAvailability;
use bot::config;
use bot::domain::{ChannelKind, ClientRef, Event, Inbound};
use bot::engine::{Conversation, Engine};
use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn turns(c: &mut Criterion) {
    let engine = Engine::new(config::demo_salon());
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-20T10:00:00+07:00")
        .expect("valid time")
        .with_timezone(&Utc);
    let client = ClientRef {
        channel: ChannelKind::Telegram,
        id: "42".into(),
    };
    let bookings = Vec::new();
    let avail = ScheduleAvailability::new(engine.profile(), &bookings);
    let inbound = |text: &str| Inbound {
        client: client.clone(),
        at: now,
        event: Event::Text { text: text.into() },
    };

    let fresh = Conversation::new(client.clone());
    let first = inbound("здравствуйте хочу записаться на маникюр");
    c.bench_function("engine_turn_start_booking", |b| {
        b.iter(|| engine.turn(black_box(&fresh), black_box(&first), now, &avail))
    });

    // A turn that searches the schedule: a date and part of day → slot suggestions.
    let asked = engine.turn(&fresh, &first, now, &avail).conversation;
    let when = inbound("завтра после обеда");
    c.bench_function("engine_turn_offer_slots", |b| {
        b.iter(|| engine.turn(black_box(&asked), black_box(&when), now, &avail))
    });

    let price = inbound("сколько стоит окрашивание?");
    c.bench_function("engine_turn_price", |b| {
        b.iter(|| engine.turn(black_box(&fresh), black_box(&price), now, &avail))
    });
}

criterion_group!(benches, turns);
criterion_main!(benches);
