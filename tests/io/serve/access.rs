//! Who may reach what: security headers on every answer, the chat page's CSP with its nonce,
//! `/metrics` behind `BOT_METRICS_TOKEN`, and the web client id kept out of URLs.

use bot::server::{Access, RateLimits};
use testkit::app::{spawn_app, spawn_with_access};

#[tokio::test]
async fn every_answer_has_security_headers_and_the_page_allows_only_its_own_script() {
    let app = spawn_app().await;
    let page = app.http.get(app.url("/")).send().await.expect("page");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.expect("html");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in the CSP");
    assert!(nonce.len() >= 32, "{nonce}");
    assert!(
        html.contains(&format!("<script nonce=\"{nonce}\">")),
        "the script carries it"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(
        csp.contains("frame-ancestors *"),
        "embeddable by default: {csp}"
    );
    // A second page gets another nonce.
    let again = app.http.get(app.url("/")).send().await.expect("page");
    assert_ne!(
        again.headers()["content-security-policy"]
            .to_str()
            .unwrap_or(""),
        csp
    );
    // JSON answers and errors allow nothing.
    for path in ["/healthz", "/no-such-page"] {
        let r = app.http.get(app.url(path)).send().await.expect("get");
        assert_eq!(
            r.headers()["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'",
            "{path}"
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn metrics_ask_for_the_token_when_one_is_set_and_frames_are_limited() {
    let app = spawn_with_access(Access {
        metrics_token: Some("m3trics-t0ken".into()),
        frame_ancestors: "https://salon.example".into(),
        ..Access::default()
    })
    .await;
    let get = |auth: Option<&'static str>| {
        let mut req = app.http.get(app.url("/metrics"));
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        async move { req.send().await.expect("metrics").status().as_u16() }
    };
    assert_eq!(get(None).await, 401);
    assert_eq!(get(Some("Bearer wrong")).await, 401);
    assert_eq!(get(Some("m3trics-t0ken")).await, 401);
    assert_eq!(get(Some("Bearer m3trics-t0ken")).await, 200);
    let page = app.http.get(app.url("/")).send().await.expect("page");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap_or("");
    assert!(
        csp.ends_with("frame-ancestors https://salon.example"),
        "{csp}"
    );
    app.shutdown().await;

    // Without a token, metrics stay open (on loopback, as `bot serve` warns otherwise).
    let open = spawn_app().await;
    let r = open
        .http
        .get(open.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(r.status().as_u16(), 200);
    open.shutdown().await;
}

#[tokio::test]
async fn the_client_id_travels_in_a_header_and_the_old_query_still_works() {
    let app = spawn_app().await;
    let id = "w0123456789abcdef0123456789abcdef";
    app.say(id, "сколько стоит маникюр?").await;
    let poll = |query: &'static str, header: Option<&'static str>| {
        let mut req = app.http.get(app.url(&format!("/api/v1/messages{query}")));
        if let Some(h) = header {
            req = req.header("X-Client-Id", h);
        }
        async move {
            let r = req.send().await.expect("poll");
            let status = r.status().as_u16();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let (status, body) = poll("?after=0", Some(id)).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body["messages"].as_array().expect("messages").is_empty());
    let (status, old) = poll("?client_id=w0123456789abcdef0123456789abcdef&after=0", None).await;
    assert_eq!((status, &old["messages"]), (200, &body["messages"]));
    let (status, body) = poll("?client_id=someone-else", Some(id)).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = poll("?after=0", None).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("X-Client-Id"),
        "{body}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn over_the_limits_a_client_or_an_address_gets_429_with_retry_after() {
    let app = spawn_with_access(Access {
        rate: RateLimits {
            per_ip: 0,
            per_client: 2,
        },
        ..Access::default()
    })
    .await;
    let post = |client: &'static str| {
        let body = serde_json::json!({ "client_id": client, "text": "сколько стоит маникюр?" });
        let req = app.http.post(app.url("/api/v1/messages")).json(&body);
        async move { req.send().await.expect("post") }
    };
    let mut limited = None;
    for _ in 0..8 {
        let r = post("wflooder").await;
        if r.status().as_u16() == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status().as_u16(), 200);
    }
    let limited = limited.expect("a flood of one client is limited");
    let after: u64 = limited.headers()["retry-after"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&after), "{after}");
    assert_eq!(
        post("wsomeone-else").await.status().as_u16(),
        200,
        "others are served"
    );
    app.shutdown().await;

    let app = spawn_with_access(Access {
        rate: RateLimits {
            per_ip: 3,
            per_client: 0,
        },
        ..Access::default()
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let r = app.http.get(app.url("/healthz")).send().await.expect("get");
        statuses.push(r.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    // Webhooks are not limited per address (they carry a secret; providers send from few IPs).
    let hook = app
        .http
        .post(app.url("/webhooks/telegram"))
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(
        hook.status().as_u16(),
        404,
        "telegram is off here, but not rate-limited"
    );
    app.shutdown().await;
}
