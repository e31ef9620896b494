use serde_json::json;
use testkit::app::{payloads, spawn_app, texts};

#[tokio::test]
async fn books_manicure_over_the_web_api_with_a_slot_button() {
    let app = spawn_app().await;
    let first = app.say("anna", "хочу записаться на маникюр").await;
    assert_eq!(first["conversation_id"], "web:anna");
    assert_eq!(first["handoff"], false);
    assert!(!texts(&first).is_empty(), "{first}");

    let offer = app.say("anna", "завтра после обеда").await;
    let slots: Vec<String> = payloads(&offer)
        .into_iter()
        .filter(|p| p.starts_with("slot:"))
        .collect();
    assert!(!slots.is_empty(), "slot buttons expected: {offer}");
    let titles: Vec<&str> = offer["replies"][0]["buttons"]
        .as_array()
        .expect("buttons")
        .iter()
        .filter_map(|b| b["title"].as_str())
        .collect();
    let time = titles[0].to_string();

    let asked = app.press("anna", &slots[0]).await;
    assert!(
        !texts(&asked).is_empty(),
        "the bot asks for the contact: {asked}"
    );

    let booked = app
        .say("anna", "Меня зовут Марина, мой номер 8 913 123-45-67")
        .await;
    let confirmation = texts(&booked);
    assert!(
        confirmation.contains("маникюр") && confirmation.contains("21.11"),
        "{confirmation}"
    );
    assert!(confirmation.contains(&time), "{time} in {confirmation}");

    // Every message and reply is stored with its timestamps; web replies count as sent.
    let store = app.store().await;
    let client = bot::domain::ClientRef {
        channel: bot::domain::ChannelKind::Web,
        id: "anna".into(),
    };
    let messages = store.messages(&client).await.expect("messages");
    assert_eq!(messages.iter().filter(|m| m.inbound).count(), 4);
    for m in &messages {
        if m.inbound {
            assert!(m.received_at.is_some(), "{m:?}");
        } else {
            assert!(m.sent_at.is_some_and(|s| s >= m.created_at), "{m:?}");
        }
    }
    assert_eq!(store.counts().await.expect("counts").active_bookings, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_4xx_with_a_json_error() {
    let app = spawn_app().await;
    let url = app.url("/api/v1/messages");
    let cases: Vec<(&str, reqwest::RequestBuilder, u16)> = vec![
        (
            "missing text and button",
            app.http.post(&url).json(&json!({ "client_id": "a" })),
            400,
        ),
        (
            "missing client_id",
            app.http.post(&url).json(&json!({ "text": "привет" })),
            400,
        ),
        (
            "invalid JSON",
            app.http
                .post(&url)
                .header("content-type", "application/json")
                .body("{\"client_id\": "),
            400,
        ),
        (
            "unknown field",
            app.http
                .post(&url)
                .json(&json!({ "client_id": "a", "text": "x", "admin": true })),
            400,
        ),
        (
            "empty text",
            app.http
                .post(&url)
                .json(&json!({ "client_id": "a", "text": " " })),
            400,
        ),
        (
            "not JSON",
            app.http.post(&url).body("client_id=a&text=hi"),
            415,
        ),
        (
            "over 4096 characters",
            app.http
                .post(&url)
                .json(&json!({ "client_id": "a", "text": "я".repeat(4097) })),
            422,
        ),
        (
            "over 64 KiB",
            app.http
                .post(&url)
                .header("content-type", "application/json")
                .body(format!(
                    "{{\"client_id\": \"a\", \"text\": \"{}\"}}",
                    "я".repeat(33_000)
                )),
            413,
        ),
        (
            "unknown path",
            app.http.get(app.url("/api/v1/nothing")),
            404,
        ),
    ];
    for (what, req, want) in cases {
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status().as_u16(), want, "{what}");
        let body: serde_json::Value = resp.json().await.expect("JSON error body");
        assert!(body["error"].is_string(), "{what}: {body}");
        assert!(body["message"].is_string(), "{what}: {body}");
    }
    // Nothing of that reached the store.
    let counts = app.counts().await;
    assert_eq!(counts.messages, 0);
    app.shutdown().await;
}

#[tokio::test]
async fn a_resent_message_id_is_processed_once() {
    let app = spawn_app().await;
    let body = json!({ "client_id": "b", "text": "сколько стоит маникюр?", "message_id": "m1" });
    let (status, first) = app.post_json("/api/v1/messages", &body).await;
    assert_eq!(status, 200);
    assert!(!texts(&first).is_empty());
    let (status, again) = app.post_json("/api/v1/messages", &body).await;
    assert_eq!(status, 200);
    assert_eq!(again["duplicate"], true, "{again}");
    // The retry gets the answer of the first delivery again, nothing new is stored.
    assert_eq!(texts(&again), texts(&first));
    assert_eq!(again["last_id"], first["last_id"]);
    let counts = app.counts().await;
    assert_eq!(counts.processed_inbound, 1);
    let (status, other) = app
        .post_json(
            "/api/v1/messages",
            &json!({ "client_id": "b", "text": "а педикюр?", "message_id": "m2" }),
        )
        .await;
    assert_eq!(status, 200);
    assert_ne!(texts(&other), texts(&first));
    assert_eq!(
        texts(&app.post_json("/api/v1/messages", &body).await.1),
        texts(&first),
        "an older message_id still answers with its own replies"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn message_ids_with_colons_of_two_clients_are_both_processed() {
    let app = spawn_app().await;
    for (client, id) in [("a:b", "c"), ("a", "b:c")] {
        let body =
            json!({ "client_id": client, "text": "сколько стоит маникюр?", "message_id": id });
        let (status, answer) = app.post_json("/api/v1/messages", &body).await;
        assert_eq!(status, 200, "{client}: {answer}");
        assert!(answer["duplicate"].is_null(), "{client} {id}: {answer}");
        assert!(!texts(&answer).is_empty(), "{client} {id}: {answer}");
    }
    assert_eq!(app.counts().await.processed_inbound, 2);
    app.shutdown().await;
}

#[tokio::test]
async fn serves_the_chat_page() {
    let app = spawn_app().await;
    let resp = app.http.get(app.url("/")).send().await.expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    let ctype = resp.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(ctype.starts_with("text/html"), "{ctype}");
    let page = resp.text().await.expect("text");
    assert!(page.contains("api/v1/messages") && page.contains("lang=\"ru\""));
    assert!(page.contains("name=\"viewport\""), "works on a phone");
    assert!(
        page.contains("«Лаванда»"),
        "the business's name and greeting"
    );
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no CDN"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn later_messages_are_fetched_after_the_last_reply() {
    let app = spawn_app().await;
    let first = app.say("poll", "сколько стоит маникюр?").await;
    let last = first["last_id"].as_i64().expect("last_id");
    let url = |after: i64| format!("/api/v1/messages?client_id=poll&after={after}");
    let all = app.get_json(&url(0)).await;
    assert_eq!(all["conversation_id"], "web:poll");
    let messages = all["messages"].as_array().expect("messages");
    assert_eq!(
        messages.len(),
        first["replies"].as_array().map_or(0, Vec::len)
    );
    assert!(messages.iter().all(|m| m["from"] == "bot"));
    let none = app.get_json(&url(last)).await;
    assert_eq!(none["messages"], json!([]));
    for bad in [
        "/api/v1/messages",
        "/api/v1/messages?client_id=&after=1",
        "/api/v1/messages?client_id=a&after=x",
    ] {
        let resp = app.http.get(app.url(bad)).send().await.expect("get");
        assert_eq!(resp.status().as_u16(), 400, "{bad}");
        let body: serde_json::Value = resp.json().await.expect("JSON error");
        assert!(body["error"].is_string(), "{bad}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_4096_character_russian_text_escaped_as_ascii_json_is_accepted() {
    let app = spawn_app().await;
    // Python's json.dumps (ensure_ascii) writes each Cyrillic letter as \uXXXX: 6 bytes.
    let text: String = "можно записаться на маникюр завтра "
        .chars()
        .cycle()
        .take(bot::channels::web::MAX_TEXT)
        .collect();
    let escaped: String = text
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                format!("\\u{:04x}", c as u32)
            }
        })
        .collect();
    let body = format!("{{\"client_id\": \"long\", \"text\": \"{escaped}\"}}");
    assert!(body.len() > 16 * 1024, "the old limit would refuse it");
    let resp = app
        .http
        .post(app.url("/api/v1/messages"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn invisible_client_ids_and_broken_query_escapes_are_refused() {
    let app = spawn_app().await;
    let (status, body) = app
        .post_json(
            "/api/v1/messages",
            &json!({ "client_id": "anna\u{202E}", "text": "привет" }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("invisible")),
        "{body}"
    );
    for (query, why) in [
        ("client_id=%E2%80%8Banna", "invisible"),
        ("client_id=%ff%fe", "UTF-8"),
        ("client_id=%ff%fe&after=0", "UTF-8"),
    ] {
        let resp = app
            .http
            .get(app.url(&format!("/api/v1/messages?{query}")))
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status().as_u16(), 400, "{query}");
        let body: serde_json::Value = resp.json().await.expect("JSON error");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(why)),
            "{query}: {body}"
        );
    }
    let polled = app
        .get_json("/api/v1/messages?client_id=%D0%B0%D0%BD%D1%8F")
        .await;
    assert_eq!(polled["conversation_id"], "web:аня");
    assert_eq!(app.counts().await.messages, 0);
    app.shutdown().await;
}
