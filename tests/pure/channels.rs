//! No webhook body makes a channel parser panic: arbitrary bytes, and JSON built from the
//! field names each provider uses (so the deep paths are reached with every wrong type).

use bot::channels::{max, telegram, vk};
use chrono::Utc;
use proptest::prelude::*;
use serde_json::{Map, Value};

const KEYS: &[&str] = &[
    "update_type",
    "timestamp",
    "message",
    "sender",
    "recipient",
    "body",
    "mid",
    "seq",
    "text",
    "attachments",
    "type",
    "payload",
    "vcf_info",
    "max_info",
    "user_id",
    "is_bot",
    "callback",
    "callback_id",
    "user",
    "chat_id",
    "chat_type",
    "inline_keyboard",
    "buttons",
    "event_id",
    "object",
    "group_id",
    "secret",
    "from_id",
    "peer_id",
    "date",
    "out",
    "update_id",
    "chat",
    "from",
    "id",
    "data",
    "contact",
    "phone_number",
    "reply_to_message",
    "first_name",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[\\PC]{0,12}".prop_map(Value::String),
        prop::sample::select(KEYS).prop_map(|k| Value::String(k.to_string())),
        prop::sample::select(
            &[
                "message_created",
                "message_callback",
                "bot_started",
                "bot_stopped",
                "message_new",
                "message_event",
                "message_deny",
                "confirmation",
                "contact",
                "inline_keyboard",
                "private",
                "dialog"
            ][..]
        )
        .prop_map(|k| Value::String(k.to_string())),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|pairs| {
                let map: Map<String, Value> =
                    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                Value::Object(map)
            }),
        ]
    })
}

fn parse_all(body: &[u8]) {
    let now = Utc::now();
    let _ = max::parse_update(body, now);
    if let Ok(call) = vk::parse_call(body) {
        let _ = call.arrival(now);
    }
    let _ = telegram::parse_update(body, now, &[5]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_bytes_make_a_parser_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        parse_all(&body);
    }

    #[test]
    fn no_json_makes_a_parser_panic(value in json()) {
        parse_all(value.to_string().as_bytes());
    }
}

/// The strategy reaches the deep paths: a generated body is sometimes a real update.
#[test]
fn the_generator_reaches_real_updates() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = json();
    let mut parsed = 0;
    for _ in 0..3000 {
        let value = strategy.new_tree(&mut runner).expect("a value").current();
        if max::parse_update(value.to_string().as_bytes(), Utc::now()).is_ok() {
            parsed += 1;
        }
    }
    assert!(parsed > 0, "no generated body was a MAX update");
}
