//! Random requests against every public endpoint of a server with all channels on: random
//! methods, paths, queries, headers (including the right secrets some of the time) and bodies
//! (bytes, or JSON built from the providers' field names). None may make the server fail: no
//! 5xx, and the server still answers afterwards.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value};
use testkit::app::{SECRET, TestApp, spawn_with_messengers};

const PATHS: &[&str] = &[
    "/",
    "/api/v1/messages",
    "/webhooks/telegram",
    "/webhooks/max",
    "/webhooks/vk",
    "/webhooks/bitrix24",
    "/healthz",
    "/metrics",
    "/nope",
    "/api/v1/messages/../../etc/passwd",
    "/console",
    "/console/login",
    "/console/logout",
    "/console/inbox",
    "/console/today",
    "/console/c/web%3Aw1",
    "/console/c/web%3Aw1/reply",
    "/console/c/%FF%00/book",
    "/console/bookings/000001/mark",
    "/console/static/console.js",
];

const KEYS: &[&str] = &[
    "client_id",
    "text",
    "button",
    "message_id",
    "update_id",
    "message",
    "chat",
    "id",
    "type",
    "from",
    "callback_query",
    "data",
    "update_type",
    "timestamp",
    "body",
    "mid",
    "sender",
    "user_id",
    "callback",
    "callback_id",
    "payload",
    "object",
    "event_id",
    "secret",
    "group_id",
    "peer_id",
    "from_id",
    "event",
    "auth",
];

#[derive(Debug, Clone)]
struct Request {
    post: bool,
    path: String,
    query: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[\\PC]{0,20}".prop_map(Value::String),
        Just(Value::String(SECRET.into())),
        Just(Value::String(testkit::vk::SECRET.into())),
        prop::sample::select(
            &[
                "message_new",
                "message_event",
                "confirmation",
                "bot_started",
                "message_created",
                "message_callback",
                "private",
                "slot:2026-11-21T06:00Z|olga",
                "book",
                "wfuzz0123456789abcdef0123456789ab"
            ][..]
        )
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
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

fn request() -> impl Strategy<Value = Request> {
    let header = prop_oneof![
        Just(("content-type".to_string(), b"application/json".to_vec())),
        Just(("content-type".to_string(), b"text/plain".to_vec())),
        Just((
            "x-telegram-bot-api-secret-token".to_string(),
            SECRET.as_bytes().to_vec()
        )),
        Just((
            "x-max-bot-api-secret".to_string(),
            testkit::max::SECRET.as_bytes().to_vec()
        )),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|v| ("x-client-id".to_string(), v)),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|v| ("authorization".to_string(), v)),
        prop::collection::vec(any::<u8>(), 0..40)
            .prop_map(|v| ("x-max-bot-api-secret".to_string(), v)),
        Just((
            "content-type".to_string(),
            b"application/x-www-form-urlencoded".to_vec()
        )),
        Just(("cookie".to_string(), b"bot_console_login=x".to_vec())),
        prop::collection::vec(any::<u8>(), 0..70).prop_map(|v| ("cookie".to_string(), v)),
    ];
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        json().prop_map(|v| v.to_string().into_bytes()),
        "(csrf=x&)?(name=[a-z%]{0,8}&)?(password=[ -~]{0,12}&)?(text=[\\PC]{0,12})?"
            .prop_map(String::into_bytes),
    ];
    (
        any::<bool>(),
        prop::sample::select(PATHS),
        prop_oneof![
            Just(String::new()),
            "[ -~]{0,40}",
            Just("client_id=w1&after=0".to_string())
        ],
        prop::collection::vec(header, 0..4),
        body,
    )
        .prop_map(|(post, path, query, headers, body)| Request {
            post,
            path: path.to_string(),
            query,
            headers,
            body,
        })
}

async fn send(app: &TestApp, r: &Request) -> Option<u16> {
    let url = if r.query.is_empty() {
        app.url(&r.path)
    } else {
        app.url(&format!("{}?{}", r.path, r.query))
    };
    let mut req = if r.post {
        app.http.post(url).body(r.body.clone())
    } else {
        app.http.get(url)
    };
    for (name, value) in &r.headers {
        // A header the HTTP client itself cannot write is not a request anyone can send.
        let Ok(value) = reqwest::header::HeaderValue::from_bytes(value) else {
            return None;
        };
        req = req.header(name.as_str(), value);
    }
    match req.send().await {
        Ok(resp) => Some(resp.status().as_u16()),
        // An unparseable URL (the query) never reaches the server.
        Err(e) if e.is_builder() => None,
        Err(e) => panic!("the server dropped a request: {e}"),
    }
}

#[test]
fn no_request_makes_the_server_fail() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let app = rt.block_on(spawn_with_messengers());
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let seen = std::sync::Mutex::new(std::collections::BTreeMap::<u16, usize>::new());
    let result = runner.run(&request(), |r| {
        if let Some(status) = rt.block_on(send(&app, &r)) {
            *seen.lock().expect("seen").entry(status).or_default() += 1;
            prop_assert!(status < 500, "{status} for {r:?}");
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let seen = seen.into_inner().expect("seen");
    eprintln!("fuzzed statuses: {seen:?}");
    // The fuzzing reached both refusals and acceptances.
    assert!(seen.keys().any(|s| (400..500).contains(s)), "{seen:?}");
    assert!(seen.keys().any(|s| (200..300).contains(s)), "{seen:?}");
    let health = rt.block_on(async { app.get_json("/healthz").await });
    assert_eq!(health["status"], "ok");
    rt.block_on(app.shutdown());
}
