//! The reference Server-Sent Events router for a live log feed. Embed it in your axum app.
//!
//! ```no_run
//! use pushbench_feed::FeedContext;
//! use pushbench_sse::{router, serve, ServeConfig, SseConfig};
//!
//! # async fn run() -> std::io::Result<()> {
//! let feed = FeedContext::in_memory();
//! let app = axum::Router::new()
//!     .merge(router(feed.clone(), SseConfig::default()).expect("valid SSE config"))
//!     .layer(axum::middleware::from_fn(pushbench_feed::http::error_bodies));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! serve(listener, app, ServeConfig::default(), feed.shutdown.clone()).await
//! # }
//! ```
//! A complete example with a publisher and graceful shutdown is in `examples/embed.rs`.
//!
//! Serve it with [`serve`], not `axum::serve`: `axum::serve` installs no timer, so hyper's
//! header-read timeout never fires (a client that stalls mid-request holds its connection
//! for ever), and it bounds neither request heads (hyper's default is ~400 KB) nor
//! connections. [`serve`] gives the protections feed-server has: a header-read timeout
//! (30 s), a 16 KiB request-head bound (`431` with a message beyond), an optional connection
//! limit (`503` with `Retry-After: 1` beyond), see [`ServeConfig`].
//!
//! # What it does, and why
//! `GET /{org}/{repo}/builds/{build}/steps/{step}/logs/events` streams a step's log:
//! - Every event carries `id: SEQ`, so a browser's `EventSource` reconnects with
//!   `Last-Event-ID` and gets exactly the lines it missed. Clients that cannot set headers pass
//!   `?lastEventId=SEQ` (or `?after=SEQ`). Each line is sent once, never the whole log again.
//! - The first bytes are a `retry:` hint, so the browser's reconnect delay is ours to set, and
//!   the response headers reach the client at once.
//! - Keep-alive comments (`:` lines, every 15 s by default) stop proxies from cutting an idle
//!   stream (an AWS load balancer cuts at 60 s).
//! - `Cache-Control: no-cache, no-transform` and `X-Accel-Buffering: no`, so nginx and
//!   compressing proxies neither buffer nor transform the stream.
//! - When the step finishes: a terminal `event: end` carrying the last id, then the stream
//!   closes. A reconnect whose `Last-Event-ID` is already the finished step's last line gets
//!   `204 No Content`, which makes `EventSource` stop reconnecting for good. A new viewer
//!   (no `Last-Event-ID`) of a finished step still gets the whole log, then `end`.
//! - A subscriber that falls further behind than the server's history gets `event: lagged`
//!   (`data: {"missing_from":N,"oldest_seq":M}`, see [`encode_lagged`]) and the stream
//!   closes; its reconnect is answered `410 Gone` (see the feed's lag policy). So is a
//!   reconnect to a server restarted without its history. A 410 body says where history now
//!   starts, `{"error":"...","oldest_seq":M}`: the client resumes with `Last-Event-ID: M-1`
//!   (a browser's `EventSource` cannot, it gives up on a 410; a page opens a new one with
//!   `?lastEventId=M-1`).
//! - Lines are JSON-encoded (`{"seq":N,"ts":UNIX_NANOS,"line":"..."}`), so carriage returns,
//!   newlines and NULs in CI output cannot break the framing (axum's `Event::data` would panic
//!   on a `\r`). Several ready lines are written as one chunk: one syscall per wake, not per line.
//! - Graceful shutdown ends every open stream (pending streams would otherwise hold the
//!   server's graceful shutdown open for ever).
//! - CORS echoes configured origins (never `*` with credentials); optional token auth accepts
//!   `Authorization: Bearer` or `?token=`, because `EventSource` cannot send headers.
//! - Bad input is a 4xx with a JSON message: unknown topic 404, malformed `Last-Event-ID` 400,
//!   connection limit 503 with `Retry-After`.
//!
//! # Memory per open stream
//! An idle stream's cost is mostly hyper's two 8 KiB per-connection buffers (read, and
//! response-head write). Two serving choices decide what it costs (idle-10k, 10,000 streams):
//! `axum::serve` 18.1 KiB per connection, because hyper-util's HTTP/2 sniffing makes hyper
//! grow the read buffer to 16 KiB; hyper's HTTP/1 connection driven directly, as [`serve`]
//! does, 11.9 KiB; and with jemalloc as the global allocator, which
//! never faults in the untouched parts of those buffers, 7.8 KiB. [`serve`] offers HTTP/2 on
//! the same port without changing that: it peeks at a connection's first bytes instead of
//! reading and replaying them (see [`serve`]'s module docs).
//!
//! # HTTP/2
//! Over HTTP/1.1 a browser opens at most six connections per host, so the seventh event
//! stream of a page never connects. [`serve`] speaks HTTP/2 beside HTTP/1.1 on the same port
//! (cleartext with prior knowledge, and over TLS with ALPN when [`ServeConfig::tls`] holds a
//! [`TlsConfig`]), where every stream of a page shares one connection. Nothing in the router
//! changes: the same response is a stream of DATA frames.
#![forbid(unsafe_code)]

mod framing;
pub mod serve;
pub mod tls;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures_util::{stream, StreamExt};
use pushbench_feed::http::{parse_seq, ApiError, CorsConfig, TokenAuth, TopicPath};
use pushbench_feed::shutdown::ShutdownWait;
use pushbench_feed::{ConnectionGuard, Delivery, FeedContext, Subscription, Transport};
use pushbench_protocol::{query, sse, Route};
use tokio::time::{sleep_until, Instant, Sleep};

pub use framing::{encode_end, encode_lagged, encode_lines, encode_retry, KEEP_ALIVE};
pub use serve::{serve, Http2Config, ServeConfig};
pub use tls::{TlsConfig, TlsError};

/// How the SSE router behaves.
#[derive(Clone, Debug)]
pub struct SseConfig {
    /// Idle time after which a keep-alive comment is sent.
    pub keep_alive: Duration,
    /// Reconnect delay suggested to clients with `retry:`; `None` sends no hint.
    pub retry: Option<Duration>,
    /// Lines written per chunk at most.
    pub max_batch: usize,
    pub cors: CorsConfig,
    pub auth: TokenAuth,
}

impl Default for SseConfig {
    fn default() -> Self {
        SseConfig {
            keep_alive: Duration::from_secs(15),
            retry: Some(Duration::from_secs(2)),
            max_batch: 256,
            cors: CorsConfig::default(),
            auth: TokenAuth::default(),
        }
    }
}

#[derive(Clone)]
struct SseState {
    feed: FeedContext,
    config: Arc<SseConfig>,
}

/// The route `GET …/logs/events` ([`Route::Events`]). Fails only on an invalid CORS configuration.
pub fn router(feed: FeedContext, config: SseConfig) -> Result<Router, String> {
    if config.keep_alive.is_zero() {
        return Err("SSE keep-alive interval must be greater than zero".into());
    }
    let cors = config.cors.layer()?;
    let state = SseState {
        feed,
        config: Arc::new(config),
    };
    let router = Router::new()
        .route(&Route::Events.pattern(), get(events))
        .with_state(state);
    Ok(match cors {
        Some(layer) => router.layer(layer),
        None => router,
    })
}

async fn events(
    State(s): State<SseState>,
    TopicPath(topic): TopicPath,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    s.config.auth.check_request(&headers, &query)?;
    let after = resume_cursor(&headers, &query)?;
    let status = s.feed.backend.status(&topic).await?;
    if status.finished && after.is_some_and(|a| a >= status.last_seq) {
        // The client has everything; 204 makes EventSource stop reconnecting.
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let guard = s
        .feed
        .metrics
        .try_open(Transport::Sse)
        .ok_or_else(ApiError::too_many_connections)?;
    let sub = s
        .feed
        .backend
        .subscribe(&topic, after, s.config.max_batch)
        .await?;
    let body = event_stream(sub, guard, &s);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(sse::CONTENT_TYPE),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache, no-transform"),
            ),
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// Where to resume: `Last-Event-ID` header, else `?lastEventId=`, else `?after=`.
fn resume_cursor(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Option<u64>, ApiError> {
    if let Some(v) = headers.get("last-event-id") {
        let v = v
            .to_str()
            .map_err(|_| ApiError::bad_request("Last-Event-ID header is not visible ASCII"))?;
        // EventSource sends the header only when its last event id is non-empty; treat an
        // empty one as absent rather than failing a sloppy client.
        if !v.trim().is_empty() {
            return parse_seq("Last-Event-ID", v).map(Some);
        }
    }
    for name in [query::LAST_EVENT_ID, query::AFTER] {
        if let Some(v) = query.get(name) {
            return parse_seq(name, v).map(Some);
        }
    }
    Ok(None)
}

/// Per-connection state of a streaming response.
struct StreamState {
    sub: Subscription,
    guard: ConnectionGuard,
    shutdown: std::pin::Pin<Box<ShutdownWait>>,
    keep_alive_every: Duration,
    keep_alive: std::pin::Pin<Box<Sleep>>,
    /// First chunk to send (the `retry:` hint), if not sent yet.
    preamble: Option<Bytes>,
    done: bool,
}

fn event_stream(
    sub: Subscription,
    guard: ConnectionGuard,
    s: &SseState,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let keep_alive_every = s.config.keep_alive;
    let state = StreamState {
        sub,
        guard,
        shutdown: Box::pin(s.feed.shutdown.wait()),
        keep_alive_every,
        keep_alive: Box::pin(sleep_until(Instant::now() + keep_alive_every)),
        // Always send something first so the headers and first bytes go out at once.
        preamble: Some(match s.config.retry {
            Some(r) => encode_retry(r),
            None => Bytes::from_static(KEEP_ALIVE),
        }),
        done: false,
    };
    stream::unfold(state, |mut st| async move {
        let chunk = st.next_chunk().await?;
        Some((Ok(chunk), st))
    })
}

impl StreamState {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(p) = self.preamble.take() {
            return Some(p);
        }
        if self.done {
            return None;
        }
        let metrics = self.guard.metrics().clone();
        tokio::select! {
            biased;
            _ = &mut self.shutdown => {
                // Ends the response; the client reconnects with its Last-Event-ID.
                self.done = true;
                None
            }
            delivery = self.sub.next() => {
                self.reset_keep_alive();
                match delivery {
                    Some(Delivery::Lines(lines)) => {
                        let chunk = encode_lines(&lines);
                        metrics.sent(Transport::Sse, lines.len() as u64, chunk.len() as u64);
                        Some(chunk)
                    }
                    Some(Delivery::End { last_seq }) => {
                        self.done = true;
                        let chunk = encode_end(last_seq);
                        metrics.sent(Transport::Sse, 0, chunk.len() as u64);
                        Some(chunk)
                    }
                    Some(Delivery::Lagged { missing_from, oldest_seq }) => {
                        self.done = true;
                        metrics.lag_drop(Transport::Sse);
                        Some(encode_lagged(missing_from, oldest_seq))
                    }
                    None => {
                        self.done = true;
                        None
                    }
                }
            }
            _ = &mut self.keep_alive => {
                self.reset_keep_alive();
                metrics.sent(Transport::Sse, 0, KEEP_ALIVE.len() as u64);
                Some(Bytes::from_static(KEEP_ALIVE))
            }
        }
    }

    fn reset_keep_alive(&mut self) {
        let at = Instant::now() + self.keep_alive_every;
        self.keep_alive.as_mut().reset(at);
    }
}
