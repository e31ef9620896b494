use sqlx::ConnectOptions;
use testkit::app::spawn_app;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status().as_u16(), 200);
    let ready = app.get("/readyz").await;
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
    let metrics = app.metrics().await;
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

/// `/readyz` until it answers `want` (the server may still be finishing an earlier probe).
async fn ready_becomes(app: &testkit::app::TestApp, want: u16) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = app.get("/readyz").await;
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.expect("json");
        if status == want {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/readyz stayed {status} {body}, expected {want}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn not_ready_while_another_writer_holds_the_database() {
    let app = spawn_app().await;
    ready_becomes(&app, 200).await;
    // Another process's writer holds the SQLite write lock and does not let go.
    let mut holder = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(app.db_url.trim_start_matches("sqlite://"))
        .connect()
        .await
        .expect("second connection");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .expect("take the write lock");
    let body = ready_becomes(&app, 503).await;
    assert_eq!(body["reason"], "store write stalled");
    sqlx::query("ROLLBACK")
        .execute(&mut holder)
        .await
        .expect("release");
    ready_becomes(&app, 200).await;
    app.shutdown().await;
}

#[tokio::test]
async fn not_ready_on_a_full_disk_and_ready_again_when_space_returns() {
    let Some(disk) = testkit::tmpfs::SmallDisk::mount(2) else {
        return;
    };
    let dir = tempfile::tempdir_in(disk.path()).expect("dir on the tmpfs");
    let app = testkit::app::spawn_in(dir, "").await;
    ready_becomes(&app, 200).await;

    let filler = disk.fill();
    // A full disk fails the heartbeat's commit; once space returns the pool recovers.
    let body = ready_becomes(&app, 503).await;
    assert_eq!(body["reason"], "store refuses writes");
    std::fs::remove_file(filler).expect("free the space");
    ready_becomes(&app, 200).await;
    app.say("m", "сколько стоит маникюр?").await;
    app.shutdown().await;
}

#[tokio::test]
async fn not_ready_on_a_read_only_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bot.db").display());
    bot::store::Store::open(&url)
        .await
        .expect("migrated")
        .close()
        .await;
    let app = testkit::app::spawn_in(dir, "?mode=ro").await;
    let body = ready_becomes(&app, 503).await;
    assert_eq!(body["reason"], "store refuses writes");
    app.shutdown().await;
}
