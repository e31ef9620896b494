//! Every KPI against numbers worked out by hand, and the edges of the definitions.

use super::*;
use chrono::TimeZone;

fn nlu() -> Nlu {
    Nlu::new(&crate::config::demo_salon())
}

/// 2026-12-02 (a Wednesday) at `h:m:s` Novosibirsk, plus `days`.
fn at(days: i64, h: u32, m: u32, s: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Novosibirsk
        .with_ymd_and_hms(2026, 12, 2, h, m, s)
        .unwrap()
        .with_timezone(&Utc)
        + Duration::days(days)
}

fn msg(t: DateTime<Utc>, side: Side, text: &str) -> LogMessage {
    LogMessage {
        at: t,
        side,
        text: text.into(),
        phone: None,
    }
}

fn chat(name: &str, messages: Vec<LogMessage>) -> ChatLog {
    ChatLog {
        source: "export".into(),
        channel: "telegram".into(),
        chat: name.into(),
        messages,
        ..ChatLog::default()
    }
}

fn week() -> Period {
    Period {
        from: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 12, 6).unwrap(),
        tz: chrono_tz::Asia::Novosibirsk,
    }
}

use Side::{Business as B, Client as C};

#[test]
fn a_gap_of_exactly_twelve_hours_keeps_one_request_and_a_second_more_splits_it() {
    let n = nlu();
    let one = chat(
        "a",
        vec![
            msg(at(0, 10, 0, 0), C, "здравствуйте"),
            msg(at(0, 10, 5, 0), B, "добрый день"),
            msg(at(0, 22, 5, 0), C, "а завтра можно?"),
        ],
    );
    assert_eq!(requests(&one, &n).len(), 1);
    let two = chat(
        "b",
        vec![
            msg(at(0, 10, 0, 0), C, "здравствуйте"),
            msg(at(0, 10, 5, 0), B, "добрый день"),
            msg(at(0, 22, 5, 1), C, "а завтра можно?"),
        ],
    );
    let r = requests(&two, &n);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].first_response_s, Some(300.0));
    assert_eq!(r[1].first_response_s, None, "the second is unanswered");
}

#[test]
fn a_night_message_answered_next_morning_and_a_broadcast_without_reply() {
    let n = nlu();
    let night = chat(
        "night",
        vec![
            msg(at(0, 23, 0, 0), C, "можно на маникюр?"),
            msg(at(1, 9, 0, 0), B, "доброе утро! да"),
        ],
    );
    let r = requests(&night, &n);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].first_response_s, Some(36_000.0));
    let broadcast = chat(
        "news",
        vec![msg(at(0, 12, 0, 0), B, "акция: −20 % на педикюр")],
    );
    assert!(requests(&broadcast, &n).is_empty(), "no client message");
}

#[test]
fn every_response_measures_each_client_message_to_the_next_business_one() {
    let n = nlu();
    let c = chat(
        "x",
        vec![
            msg(at(0, 10, 0, 0), C, "привет"),
            msg(at(0, 10, 0, 30), C, "есть кто?"),
            msg(at(0, 10, 1, 0), B, "да"),
            msg(at(0, 10, 2, 0), C, "спасибо"),
        ],
    );
    let r = &requests(&c, &n)[0];
    assert_eq!(r.first_response_s, Some(60.0));
    assert_eq!(r.every_response_s, vec![60.0, 30.0], "the last has none");
}

#[test]
fn quantiles_interpolate_between_closest_ranks() {
    assert_eq!(quantile(&[], 0.5), None);
    assert_eq!(quantile(&[7.0], 0.9), Some(7.0));
    assert_eq!(quantile(&[10.0, 20.0, 30.0, 40.0], 0.5), Some(25.0));
    let p90 = quantile(&[10.0, 20.0, 30.0, 40.0], 0.9).unwrap();
    assert!((p90 - 37.0).abs() < 1e-9, "{p90}");
}

#[test]
fn the_kpis_of_a_week_worked_out_by_hand() {
    let n = nlu();
    let chats = vec![
        // Answered in 30 s, qualified (service, day, phone) and confirmed by the business.
        chat(
            "anna",
            vec![
                msg(
                    at(0, 10, 0, 0),
                    C,
                    "хочу на маникюр завтра в 15, 89131234567",
                ),
                msg(
                    at(0, 10, 0, 30),
                    B,
                    "Записала вас на завтра 03.12 в 15:00, ждём!",
                ),
            ],
        ),
        // Answered in 10 min; a service and a day but no phone.
        chat(
            "boris",
            vec![
                msg(at(1, 12, 0, 0), C, "сколько стоит стрижка в пятницу?"),
                msg(at(1, 12, 10, 0), B, "1 500 ₽, можем записать на 15:00?"),
            ],
        ),
        // Answered after 20 minutes.
        chat(
            "vera",
            vec![
                msg(at(2, 9, 0, 0), C, "добрый день"),
                msg(at(2, 9, 20, 0), B, "здравствуйте!"),
            ],
        ),
        // Unanswered.
        chat("gleb", vec![msg(at(3, 21, 0, 0), C, "ау")]),
        // Before the week: not counted.
        chat(
            "old",
            vec![
                msg(at(-3, 10, 0, 0), C, "привет"),
                msg(at(-3, 10, 1, 0), B, "привет"),
            ],
        ),
    ];
    let nov30 = at(-2, 12, 0, 0);
    assert!(!week().contains(at(-3, 10, 0, 0)) && week().contains(nov30));
    let report = report(&chats, &[], &n, &week(), at(10, 0, 0, 0));
    let k = &report.kpis.all;
    assert_eq!(k.chats, 4);
    assert_eq!((k.messages_client, k.messages_business), (4, 3));
    assert_eq!((k.requests, k.answered, k.unanswered), (4, 3, 1));
    // First responses 30, 600, 1200: median 600, p90 at pos 1.8 → 600 + 0.8·600 = 1080.
    assert_eq!(k.first_response_median_s, Some(600.0));
    assert_eq!(k.first_response_p90_s, Some(1080.0));
    assert_eq!(
        k.answered_within_60s,
        Some(0.25),
        "1 of 4, the unanswered counted"
    );
    assert_eq!(k.answered_within_15min, Some(0.5));
    assert_eq!(k.every_response_median_s, Some(600.0));
    assert_eq!((k.qualified, k.qualified_pct), (1, Some(25.0)));
    assert_eq!(k.qualified_without_human, None, "imports know no hand-offs");
    assert_eq!((k.booked, k.booking_conversion_pct), (1, Some(25.0)));
    assert_eq!(
        k.no_show_rate_pct, None,
        "no bookings are known for an import"
    );
    assert_eq!(report.requests.len(), 4);
    assert_eq!(report.kpis.by_source["export"], *k);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["requests"][3]["first_response_s"],
        serde_json::Value::Null
    );
    assert_eq!(json["period"]["timezone"], "Asia/Novosibirsk");
    for key in super::render::FIELDS {
        assert!(json["kpis"]["all"].get(key).is_some(), "{key}");
    }
    assert_eq!(json["kpis"]["all"].as_object().unwrap().len(), 22);
}

#[test]
fn a_phone_from_a_contact_card_or_the_channel_qualifies() {
    let n = nlu();
    let mut card = chat(
        "card",
        vec![msg(at(0, 10, 0, 0), C, "на маникюр в субботу после обеда")],
    );
    assert!(!requests(&card, &n)[0].qualified);
    card.messages.push(LogMessage {
        phone: Some("+79131234567".into()),
        ..msg(at(0, 10, 1, 0), C, "")
    });
    assert!(requests(&card, &n)[0].qualified);
    let mut wa = chat(
        "wa",
        vec![msg(at(0, 10, 0, 0), C, "на маникюр в субботу после обеда")],
    );
    wa.phone_known = true;
    assert!(requests(&wa, &n)[0].qualified);
}

#[test]
fn live_requests_count_bookings_and_hand_offs_and_no_shows() {
    let n = nlu();
    let mut live = chat(
        "web:1",
        vec![
            msg(at(0, 10, 0, 0), C, "маникюр завтра в 15"),
            msg(at(0, 10, 0, 1), B, "ваш телефон?"),
            msg(at(0, 10, 1, 0), C, "89131234567"),
            msg(at(0, 10, 1, 1), B, "записала"),
        ],
    );
    live.live = true;
    live.source = "live".into();
    live.bookings_made = vec![at(0, 10, 1, 0)];
    live.handoffs = vec![at(0, 10, 5, 0)];
    let r = &requests(&live, &n)[0];
    assert!(r.booked && r.qualified);
    assert_eq!(r.qualified_without_human, Some(true));
    live.handoffs = vec![at(0, 10, 0, 30)];
    assert_eq!(
        requests(&live, &n)[0].qualified_without_human,
        Some(false),
        "handed over before the phone came"
    );
    let fact = |status: &str, day: i64, client: &str| BookingFact {
        client: client.into(),
        channel: "web".into(),
        start: at(day, 12, 0, 0),
        end: at(day, 13, 0, 0),
        created: at(day - 1, 12, 0, 0),
        status: status.into(),
    };
    let bookings = vec![
        fact("completed", 0, "1"),
        fact("completed", 1, "2"),
        fact("completed", 2, "3"),
        fact("no_show", 3, "4"),
        fact("booked", 3, "5"),
        fact("booked", 9, "6"),
        fact("completed", -10, "2"),
    ];
    let report = report(&[live], &bookings, &n, &week(), at(4, 0, 0, 0));
    let k = &report.kpis.all;
    assert_eq!(k.no_show_rate_pct, Some(25.0), "1 of 4 marked");
    assert_eq!(
        k.unmarked_past_bookings,
        Some(1),
        "the future one is not past"
    );
    assert_eq!(
        k.returning_clients,
        Some(1),
        "client 2 had a completed visit before"
    );
}

#[test]
fn a_booking_confirmation_needs_a_date_a_time_and_a_confirming_word() {
    for yes in [
        "Записала вас на пятницу 04.12 в 15:00, ждём!",
        "Ждём вас завтра в 10:30",
        "подтверждаю запись на 05.12 в 9:00",
    ] {
        assert!(confirms_booking(yes), "{yes}");
    }
    for no in [
        "Можем записать на 15:00?",
        "Записала вас, ждём",
        "ждём вас 04.12",
        "стоимость 1500, время 15:00 завтра",
    ] {
        assert!(!confirms_booking(no), "{no}");
    }
}
