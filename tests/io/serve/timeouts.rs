//! Slow and half-sent requests: headers that never end, a body that never comes, an idle
//! connection, and a SIGTERM-like shutdown while one of them is open. Each is cut off by the
//! server's time limits instead of holding a connection (and the shutdown) forever.

use bot::server::HttpTimeouts;
use std::time::Duration;
use testkit::app::spawn_with_http;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn short() -> HttpTimeouts {
    HttpTimeouts {
        header: Duration::from_millis(500),
        body: Duration::from_millis(500),
        grace: Duration::from_secs(1),
    }
}

/// Everything the server says on `conn` until it closes it (None if it stays open for 10 s).
async fn until_closed(conn: &mut TcpStream) -> Option<String> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut got)).await;
    read.ok()
        .map(|_| String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test]
async fn half_sent_requests_and_idle_connections_are_cut_off() {
    let app = spawn_with_http(short()).await;

    let mut headers = TcpStream::connect(app.addr).await.expect("connect");
    headers
        .write_all(b"POST /api/v1/messages HTTP/1.1\r\nHost: bot\r\nContent-Ty")
        .await
        .expect("write");
    let said = until_closed(&mut headers).await;
    assert!(
        said.is_some(),
        "a connection with half its headers stayed open"
    );

    let mut body = TcpStream::connect(app.addr).await.expect("connect");
    body.write_all(
        b"POST /api/v1/messages HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"client_id\": \"slow\", ",
    )
    .await
    .expect("write");
    let said = until_closed(&mut body)
        .await
        .expect("a trickling body held the connection");
    assert!(
        said.starts_with("HTTP/1.1 4"),
        "a cut-off body is a 4xx: {said}"
    );

    let mut idle = TcpStream::connect(app.addr).await.expect("connect");
    assert!(
        until_closed(&mut idle).await.is_some(),
        "an idle connection stayed open"
    );

    // The server still serves everyone else.
    app.say("ok", "привет").await;
    app.shutdown().await;
}

#[tokio::test]
async fn shutdown_finishes_even_with_a_half_sent_request_open() {
    let app = spawn_with_http(HttpTimeouts {
        header: Duration::from_secs(3600),
        body: Duration::from_secs(3600),
        grace: Duration::from_secs(1),
    })
    .await;
    let mut stuck = TcpStream::connect(app.addr).await.expect("connect");
    stuck
        .write_all(
            b"POST /api/v1/messages HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{",
        )
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopped = tokio::time::timeout(Duration::from_secs(20), app.shutdown()).await;
    assert!(stopped.is_ok(), "shutdown hung on a half-sent request");
    drop(stuck);
}
