//! The accept loop of `bot serve`: every connection is served by hyper with a timer, so a
//! client that sends its headers slowly (or keeps an idle connection open) is cut off after
//! [`HttpTimeouts::header`], and a body that trickles in is cut off after
//! [`HttpTimeouts::body`] (the router's layer). On shutdown the listener stops accepting,
//! connections finish their requests, and after [`HttpTimeouts::grace`] the rest are dropped
//! so the process always exits.
//! (`axum::serve` sets no timer, so a half-sent request used to hold a connection and a
//! SIGTERM forever.)

use super::limits::RateLimits;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// The HTTP server's time limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// How long a client may take to send a request's headers, and how long an idle
    /// keep-alive connection is kept.
    pub header: Duration,
    /// How long a client may take to send a request's body.
    pub body: Duration,
    /// How long in-flight requests may run after the shutdown signal.
    pub grace: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        HttpTimeouts {
            header: Duration::from_secs(10),
            body: Duration::from_secs(10),
            grace: Duration::from_secs(10),
        }
    }
}

/// Who may reach what: the `/metrics` token and who may frame the chat page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// `BOT_METRICS_TOKEN`: `/metrics` asks for `Authorization: Bearer <token>`; None: open.
    pub metrics_token: Option<String>,
    /// `BOT_FRAME_ANCESTORS`: the CSP `frame-ancestors` of the chat page (the sites that may
    /// embed it); default `*`, any site, as a widget.
    pub frame_ancestors: String,
    /// Requests a second per IP and per web client (none by default here; `bot serve` sets
    /// [`RateLimits::SERVE`]).
    pub rate: RateLimits,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            metrics_token: None,
            frame_ancestors: "*".to_string(),
            rate: RateLimits::OFF,
        }
    }
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let metrics = if self.metrics_token.is_some() {
            "token"
        } else {
            "open"
        };
        write!(
            f,
            "metrics {metrics}, frame-ancestors {}",
            self.frame_ancestors
        )
    }
}

/// Serve `router` on `listener` until `shutdown` resolves, then drain with a deadline.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
    limits: HttpTimeouts,
) {
    let grace = limits.grace;
    let graceful = GracefulShutdown::new();
    // HTTP/1.1 only: webhooks and browsers speak it, and the protocol sniffing of an
    // HTTP/1-or-2 server reads the first bytes with no time limit at all.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header)
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // The peer address travels with each request (the per-IP rate limit reads it).
        let service = TowerToHyperService::new(router.clone().map_request(
            move |req: axum::http::Request<Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req
            },
        ));
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing requests");
    tokio::select! {
        () = graceful.shutdown() => {},
        () = tokio::time::sleep(grace) => {
            tracing::warn!(
                grace_seconds = grace.as_secs(),
                "connections still open after the shutdown grace period; closing them"
            );
        }
    }
}
