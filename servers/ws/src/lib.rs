//! WebSocket transport for the log feed.
//!
//! `GET /{org}/{repo}/builds/{build}/steps/{step}/logs/ws[?after=SEQ]` upgrades to a WebSocket
//! that carries one text frame per log line, the same JSON as every transport
//! (`{"seq":N,"ts":UNIX_NANOS,"line":"..."}`). A client resumes with `?after=SEQ` (the last seq
//! it received).
//!
//! - Everything that can be refused is refused *before* the upgrade, as a plain HTTP answer
//!   a client can read: unknown topic 404, bad `after` 400, history gone 410, limit 503. The
//!   410 body says where history starts: `{"error":"...","oldest_seq":M}` (after a slow
//!   client lagged, or a server restarted without its history); resume with `after=M-1`.
//! - Ready lines are queued with `feed` and written with one `flush`, so a batch costs one
//!   syscall, as with SSE.
//! - Pings every `ping_interval`; a peer that has not answered within two intervals is closed.
//! - Close codes: `1000` "step finished" after the last line, `1001` on server shutdown,
//!   `4008` when the client fell behind the server's history, with the reason
//!   `lagged: seq N is gone, oldest is M` ([`lagged_reason`]): `N` is the first seq it missed,
//!   `M` the oldest still held, so it can resume with `after=M-1` and count `N..M` as lost.
//! - HTTP/1.1 only: a request over HTTP/2 gets `505` saying so (WebSocket over HTTP/2, RFC
//!   8441's extended CONNECT, is not offered; browsers open WebSockets over HTTP/1.1 anyway
//!   when the server does not advertise it).
//! - Frames from the client are not part of the protocol: pongs are noted, pings answered
//!   (by tungstenite), a close ends the stream, data frames are ignored.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use pushbench_feed::http::{parse_seq, ApiError, TokenAuth, TopicPath};
use pushbench_feed::{ConnectionGuard, Delivery, FeedContext, Subscription, Transport};
use tokio::time::{interval_at, Instant, MissedTickBehavior};

/// The close codes (defined by the protocol crate, which clients share).
pub use pushbench_protocol::ws::{CLOSE_FINISHED, CLOSE_LAGGED, CLOSE_SHUTDOWN};
use pushbench_protocol::{query, Route};

/// How the WebSocket router behaves.
#[derive(Clone, Debug)]
pub struct WsConfig {
    /// Time between pings; a peer silent for two intervals is dropped.
    pub ping_interval: Duration,
    /// Lines written per flush at most.
    pub max_batch: usize,
    /// tungstenite's read buffer per connection. Its default, 128 KiB, is allocated for every
    /// connection up front; a log viewer only ever sends pongs and a close, so 4 KiB is plenty
    /// (measured on the reference scenario, 1,000 clients: ~140 KiB of server RSS per connection
    /// with the default, ~12 KiB with 4 KiB).
    pub read_buffer_size: usize,
    /// Bytes queued before tungstenite writes to the socket. Batches are flushed explicitly
    /// anyway; this only bounds how much of a batch is held before writing.
    pub write_buffer_size: usize,
    /// Token a client must present (`Authorization: Bearer`, or `?token=`, since a browser's
    /// `WebSocket` cannot set headers); checked before the upgrade.
    pub auth: TokenAuth,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            ping_interval: Duration::from_secs(30),
            max_batch: 256,
            read_buffer_size: 4 * 1024,
            write_buffer_size: 16 * 1024,
            auth: TokenAuth::default(),
        }
    }
}

#[derive(Clone)]
struct WsState {
    feed: FeedContext,
    config: Arc<WsConfig>,
}

/// The route `GET …/logs/ws` ([`Route::Ws`]).
pub fn router(feed: FeedContext, config: WsConfig) -> Router {
    Router::new()
        .route(&Route::Ws.pattern(), get(upgrade))
        .with_state(WsState {
            feed,
            config: Arc::new(config),
        })
}

async fn upgrade(
    State(s): State<WsState>,
    TopicPath(topic): TopicPath,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    version: Version,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // Over HTTP/2 a WebSocket needs extended CONNECT (RFC 8441), which this server does not
    // offer: say so, rather than axum's "method not allowed" for a GET that is right on HTTP/1.1.
    if version == Version::HTTP_2 {
        return Err(ApiError::new(
            StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            "WebSocket is served over HTTP/1.1 only (WebSocket over HTTP/2, RFC 8441, is not \
             offered): connect with HTTP/1.1",
        ));
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    s.config.auth.check_request(&headers, &query)?;
    let after = query
        .get(query::AFTER)
        .map(|v| parse_seq(query::AFTER, v))
        .transpose()?;
    let guard = s
        .feed
        .metrics
        .try_open(Transport::Ws)
        .ok_or_else(ApiError::too_many_connections)?;
    let sub = s
        .feed
        .backend
        .subscribe(&topic, after, s.config.max_batch)
        .await?;
    let ping_interval = s.config.ping_interval;
    let shutdown = s.feed.shutdown.clone();
    let ws = ws
        .read_buffer_size(s.config.read_buffer_size)
        .write_buffer_size(s.config.write_buffer_size);
    Ok(ws.on_upgrade(move |socket| async move {
        if let Err(e) = stream_lines(socket, sub, guard, ping_interval, shutdown).await {
            tracing::debug!(error = %e, "websocket ended with an error");
        }
    }))
}

/// The reason of a [`CLOSE_LAGGED`] close: `lagged: seq N is gone, oldest is M`, where `N` is
/// the first seq the client missed and `M` the oldest one the server still holds. Clients may
/// parse it (the format is pinned by a test); it stays far below the 123 bytes a close reason
/// may have.
pub fn lagged_reason(missing_from: u64, oldest_seq: u64) -> String {
    format!("lagged: seq {missing_from} is gone, oldest is {oldest_seq}")
}

async fn stream_lines(
    mut socket: WebSocket,
    mut sub: Subscription,
    guard: ConnectionGuard,
    ping_interval: Duration,
    shutdown: pushbench_feed::Shutdown,
) -> Result<(), axum::Error> {
    let metrics = guard.metrics().clone();
    let mut ping = interval_at(Instant::now() + ping_interval, ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let shutdown = shutdown.wait();
    tokio::pin!(shutdown);
    let close = loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break (CLOSE_SHUTDOWN, "server shutting down".to_string()),
            delivery = sub.next() => match delivery {
                Some(Delivery::Lines(lines)) => {
                    let mut bytes = 0;
                    for l in &lines {
                        bytes += l.json.len() as u64;
                        let text = Utf8Bytes::try_from(l.json.clone())
                            .expect("line JSON is UTF-8");
                        socket.feed(Message::Text(text)).await?;
                    }
                    socket.flush().await?;
                    metrics.sent(Transport::Ws, lines.len() as u64, bytes);
                }
                Some(Delivery::End { last_seq }) => {
                    break (CLOSE_FINISHED, format!("step finished at seq {last_seq}"));
                }
                Some(Delivery::Lagged { missing_from, oldest_seq }) => {
                    metrics.lag_drop(Transport::Ws);
                    break (CLOSE_LAGGED, lagged_reason(missing_from, oldest_seq));
                }
                None => break (CLOSE_SHUTDOWN, "feed closed".to_string()),
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                Some(Ok(_)) => last_heard = Instant::now(),
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > ping_interval * 2 {
                    tracing::debug!("websocket peer silent for two ping intervals; dropping");
                    return Ok(());
                }
                socket.send(Message::Ping(Default::default())).await?;
            }
        }
    };
    let (code, reason) = close;
    socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await?;
    // Give the peer a moment to answer the close, so the TCP connection ends cleanly; do not
    // wait for a silent one.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(m)) = socket.recv().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
    drop(guard);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lagged_reason_is_pinned_and_fits_a_close_frame() {
        assert_eq!(lagged_reason(3, 7), "lagged: seq 3 is gone, oldest is 7");
        assert!(lagged_reason(u64::MAX, u64::MAX).len() <= 123);
    }
}
