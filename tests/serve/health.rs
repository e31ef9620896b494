use crate::support::spawn_app;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    let health = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    let ready = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["status"], "ready");

    app.say("m", "привет").await;
    let _ = app
        .http
        .post(app.url("/api/v1/messages"))
        .json(&serde_json::json!({ "client_id": "m" }))
        .send()
        .await;
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for line in [
        "bot_messages_in_total{channel=\"web\"} 1",
        "bot_messages_out_total{channel=\"web\"} 1",
        "bot_messages_in_total{channel=\"telegram\"} 0",
        "bot_reply_latency_seconds_count 1",
        "bot_reply_latency_seconds_bucket{le=\"+Inf\"} 1",
        "bot_errors_total{kind=\"bad_request\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing in\n{metrics}"
        );
    }
    assert!(metrics.contains("bot_queue_depth "), "{metrics}");
    app.shutdown().await;
}
