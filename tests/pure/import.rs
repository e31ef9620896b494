//! No export makes `bot import` panic — arbitrary bytes, JSON built from Telegram's own field
//! names, WhatsApp-shaped lines with wrong numbers, CSV rows of anything — and the KPIs do
//! not depend on the order in which a file lists the messages.

use bot::import::{csv, instagram, telegram, whatsapp};
use bot::kpi::{self, ChatLog, LogMessage, Period, Side};
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::path::Path;

const NSK: chrono_tz::Tz = chrono_tz::Asia::Novosibirsk;

const KEYS: &[&str] = &[
    "personal_information",
    "user_id",
    "chats",
    "list",
    "name",
    "type",
    "id",
    "messages",
    "date",
    "date_unixtime",
    "from",
    "from_id",
    "text",
    "contact_information",
    "phone_number",
    "media_type",
    "photo",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[\\PC]{0,12}".prop_map(Value::String),
        prop::sample::select(
            &[
                "personal_chat",
                "message",
                "service",
                "user5100000001",
                "1796195133",
                "2026-12-02T10:05:33",
                "-5",
                "99999999999999999999"
            ][..]
        )
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..7).prop_map(|pairs| {
                let map: Map<String, Value> =
                    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                Value::Object(map)
            }),
        ]
    })
}

fn whatsapp_line() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            0u32..40,
            0u32..40,
            0u32..3000,
            0u32..30,
            0u32..70,
            "[\\PC]{0,20}"
        )
            .prop_map(|(a, b, y, h, m, t)| format!("{a}.{b}.{y}, {h}:{m:02} - Name: {t}")),
        (
            0u32..40,
            0u32..40,
            0u32..100,
            0u32..30,
            0u32..70,
            "[\\PC]{0,20}"
        )
            .prop_map(|(a, b, y, h, m, t)| format!(
                "[{a}/{b}/{y}, {h}:{m:02}:00\u{202f}PM] Имя: \u{200e}{t}"
            )),
        "[\\PC]{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn no_bytes_make_the_readers_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let path = Path::new("fuzz");
        let _ = telegram::parse(&bytes[..], path, NSK);
        let _ = csv::parse(&bytes[..], path, NSK);
        let _ = whatsapp::parse(&String::from_utf8_lossy(&bytes), path, "chat", NSK);
        let file = instagram::ThreadFile { name: path.into(), thread: "t".into(), bytes: bytes.clone() };
        let _ = instagram::parse(vec![file], path);
    }

    #[test]
    fn no_instagram_shaped_json_makes_it_panic(v in json(), s in "[\\PC]{0,12}") {
        let thread = serde_json::json!({"participants": [{"name": s}], "messages": [v, {"sender_name": s, "timestamp_ms": i64::MAX, "content": s}], "title": s});
        let file = instagram::ThreadFile { name: "m.json".into(), thread: "t".into(), bytes: thread.to_string().into_bytes() };
        let _ = instagram::parse(vec![file], Path::new("m.json"));
        prop_assert_eq!(instagram::repair(&instagram::repair(&s)), instagram::repair(&s));
    }

    #[test]
    fn no_telegram_shaped_json_makes_it_panic(v in json()) {
        let _ = telegram::parse(v.to_string().as_bytes(), Path::new("fuzz.json"), NSK);
        let chat = serde_json::json!({"name": "x", "type": "personal_chat", "id": 1, "messages": [v]});
        let _ = telegram::parse(chat.to_string().as_bytes(), Path::new("fuzz.json"), NSK);
    }

    #[test]
    fn no_whatsapp_shaped_lines_make_it_panic(lines in prop::collection::vec(whatsapp_line(), 0..12)) {
        let text = lines.join("\n");
        if let Ok(p) = whatsapp::parse(&text, Path::new("chat.txt"), "chat", NSK) {
            for m in &p.messages {
                prop_assert_eq!(m.chat, 0);
            }
        }
    }

    #[test]
    fn no_csv_rows_make_it_panic(rows in prop::collection::vec(("[a-z0-9]{0,4}", "[a-z]{0,8}", "(client|business|x)", "[0-9T:+ -]{0,25}", "[\\PC\n,\"]{0,20}"), 0..8)) {
        let mut text = String::from("conversation_id,channel,sender,timestamp,text\n");
        for (a, b, c, d, e) in rows {
            text.push_str(&format!("{a},{b},{c},{d},\"{}\"\n", e.replace('"', "\"\"")));
        }
        let _ = csv::parse(text.as_bytes(), Path::new("x.csv"), NSK);
    }
}

proptest! {
    // Each case reads every message with the NLU: fewer cases keep this binary fast.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_kpis_do_not_depend_on_the_order_of_the_file(
        msgs in prop::collection::vec((0i64..(14 * 24 * 60), any::<bool>(), 0usize..4), 1..40),
        seed in any::<u64>(),
    ) {
        let start = NSK.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap().with_timezone(&Utc);
        let texts = ["можно на маникюр завтра?", "89131234567", "Записала вас на завтра 03.12 в 15:00, ждём", "спасибо"];
        // Distinct minutes: a file lists each message once.
        let mut seen = std::collections::BTreeSet::new();
        let logs: Vec<LogMessage> = msgs
            .into_iter()
            .filter(|(m, _, _)| seen.insert(*m))
            .map(|(m, client, t)| LogMessage {
                at: start + Duration::minutes(m),
                side: if client { Side::Client } else { Side::Business },
                text: texts[t].to_string(),
                phone: None,
            })
            .collect();
        let chat = |messages: Vec<LogMessage>| {
            let mut messages = messages;
            // What the store does with any file order.
            messages.sort_by_key(|m| m.at);
            ChatLog { source: "x".into(), channel: "telegram".into(), chat: "c".into(), messages, ..ChatLog::default() }
        };
        let mut shuffled = logs.clone();
        let n = shuffled.len();
        for i in 0..n {
            let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) % n as u64) as usize;
            shuffled.swap(i, j);
        }
        let nlu = bot::nlu::Nlu::new(&bot::config::demo_salon());
        let period = Period {
            from: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 12, 13).unwrap(),
            tz: NSK,
        };
        let now = start + Duration::days(30);
        let a = kpi::report(&[chat(logs)], &[], &nlu, &period, now);
        let b = kpi::report(&[chat(shuffled)], &[], &nlu, &period, now);
        prop_assert_eq!(a, b);
    }
}
