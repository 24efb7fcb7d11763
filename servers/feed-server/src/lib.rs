//! `feed-server`: every pushbench transport on one port, over one shared log feed.
//!
//! # Layout
//! - [`backend`]: `--backend`, memory or Redis Streams, and connecting to it.
//! - [`config`]: the command line ([`config::Args`]) and what it resolves to.
//! - [`publish`]: `POST .../logs` (append lines) and `POST .../logs/finish` (end a step).
//! - [`viewer`]: the log viewer page at `/` (embedded HTML/CSS/JS).
//! - [`topics`]: `GET /topics`, the steps held with their last seq, for the viewer.
//! - [`admin`]: fault injection (`POST /admin/drop-connections/...`), only with `--admin-token`.
//! - [`app`]: composes the transport routers, publishing, `/healthz`, `/metrics` and
//!   `/_pushbench/time` into one [`axum::Router`], separate from `main` so tests serve it on
//!   port 0.
//! - [`listener`]: binds with a 4096-deep accept backlog (tokio's default of 128 overflows
//!   when thousands of clients connect at once; each overflow costs a ~1 s SYN retry) and
//!   raises the open-file limit.
//! - [`serve`]: runs the app until a shutdown signal, ending open streams first. The accept
//!   loop and per-connection HTTP/1 driver are [`pushbench_sse::serve`], shared with
//!   embedders of the SSE crate: not `axum::serve`, which leaves hyper's header-read timeout
//!   inert (no timer), bounds neither request heads nor connections, and whose HTTP/2
//!   detection costs 8 KiB per connection (the reasons are in `pushbench_sse::serve`'s docs).
//!   HTTP/2 is served on the same port (h2c prior knowledge; over TLS with ALPN with
//!   `--tls-cert/--tls-key` or `--tls-self-signed`); `--http1-only` turns it off.
//! - [`tls`]: `--tls-self-signed`, a certificate for localhost made at start-up.
//!
//! # One server or several
//! The feed lives in memory by default; `--backend redis://HOST:PORT` puts it in Redis
//! Streams so that several servers serve one feed (see [`backend`] and
//! `pushbench_feed::redis`). The routes behave the same either way; a Redis out of reach is a
//! `503` with `Retry-After: 1`.
//!
//! # The clock route
//! `GET /_pushbench/time` answers `{"unix_ns":N}` (`Cache-Control: no-store`), the server's
//! wall clock read in the handler, just before the answer is written. Load generators on
//! other machines measure their clock offset to the server from it (NTP-style: their own
//! clock before the request and after the answer bracket the server's reading; see the load
//! generator's `clock` module). It needs no token: the time is no secret, and a load generator
//! must be able to read it from any target it measures.
//!
//! # Bad input
//! Every error answer is one line of JSON, `{"error":"..."}`, whatever produced it: the
//! handlers' [`pushbench_feed::http::ApiError`]s, routing's `404`/`405` (with `Allow`) and
//! axum's rejections through [`pushbench_feed::http::error_bodies`], hyper's own `400`/`431`
//! through the connection driver. The bounds: request head 16 KiB (`--max-header-bytes`,
//! `431` beyond), request target 8 KiB (`414`), POST body 1 MiB (`--max-body-bytes`, `413`
//! before the body is read when `Content-Length` says so, as soon as the limit is crossed for
//! a chunked one), request head within 30 s (`--header-read-timeout`, closed beyond), open
//! TCP connections `--max-tcp-connections` (none by default; `503` + `Retry-After: 1`
//! beyond), open streams and in-flight requests `--max-connections` (`503` +
//! `Retry-After`).
//!
//! # What the binary prints
//! On stdout, and nothing else there: with the built-in generator (`--gen-topics` > 0) first
//! `generator origin unix_ns=N`, the Unix time in nanoseconds its schedule counts from, then,
//! once the port is bound, `listening on http://ADDR`. Logs go to stderr. A server started
//! again with `--gen-origin-unix-ns N` (say, on the same `--listen` address after its
//! predecessor was killed) continues that schedule: the lines due in between are gone with the
//! old process, but every step's seq goes on where the schedule is, so resuming clients get
//! `410 Gone` with `oldest_seq` instead of a second seq 1 (see the feed's lag policy and
//! `pushbench_feed::generator`). The load generator's `restart` fault reads the line for this.
#![forbid(unsafe_code)]

pub mod admin;
pub mod backend;
pub mod config;
pub mod listener;
pub mod publish;
pub mod tls;
pub mod topics;
pub mod viewer;

use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use pushbench_feed::{FeedContext, Transport};
use pushbench_protocol::route::{HEALTHZ, METRICS, TIME};
use pushbench_protocol::{Route, ServerTime};
use tokio::net::TcpListener;

pub use config::ServerConfig;

/// The whole server's routes.
pub fn app(feed: FeedContext, config: &ServerConfig) -> Result<Router, String> {
    let mut router = Router::new()
        .route(HEALTHZ, get(|| async { "ok\n" }))
        .route(METRICS, get(metrics))
        .route(TIME, get(server_time))
        .with_state(feed.clone())
        .merge(publish::router(feed.clone(), config.publish.clone()))
        .merge(viewer::router())
        .merge(topics::router(
            feed.clone(),
            config.sse.auth.clone(),
            &config.sse.cors,
        )?);
    if let Some(token) = &config.admin_token {
        router = router.merge(admin::router(feed.clone(), token.clone()));
    }
    if config.transports.contains(&Transport::Sse) {
        router = router.merge(pushbench_sse::router(feed.clone(), config.sse.clone())?);
    }
    if config.transports.contains(&Transport::Ws) {
        router = router.merge(pushbench_ws::router(feed.clone(), config.ws.clone()));
    }
    if config.transports.contains(&Transport::Poll) {
        let mut poll = pushbench_poll::router(feed.clone(), config.poll.clone());
        // Browsers fetch polls cross-origin like they open event streams: same CORS policy.
        if let Some(cors) = config.sse.cors.layer()? {
            poll = poll.layer(cors);
        }
        router = router.merge(poll);
    }
    let not_found = format!(
        "no such route; topics live at {}[{}|{}|{}]",
        Route::Logs.pattern(),
        Route::Events.suffix(),
        Route::Ws.suffix(),
        Route::Finish.suffix()
    );
    Ok(router
        .fallback(move || async move {
            pushbench_feed::http::ApiError::new(StatusCode::NOT_FOUND, not_found)
        })
        // Outermost, so that it sees every answer, routing's own included.
        .layer(middleware::from_fn(pushbench_feed::http::error_bodies)))
}

async fn metrics(
    axum::extract::State(feed): axum::extract::State<FeedContext>,
) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        feed.metrics.render(),
    )
}

/// `GET /_pushbench/time`. The clock is read here, after routing and extraction, so that
/// the reading lies as close as the server can put it to the answer's departure. `no-store`:
/// a cached time is a wrong time (and would shrink the measured round trip, hiding it).
async fn server_time() -> impl IntoResponse {
    let time = ServerTime {
        unix_ns: pushbench_feed::clock::unix_nanos(),
    };
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(time))
}

/// Serves `app` on `listener` with the default [`pushbench_sse::ServeConfig`] until
/// `feed.shutdown` triggers, then ends open streams and waits for in-flight requests.
pub async fn serve(listener: TcpListener, app: Router, feed: FeedContext) -> std::io::Result<()> {
    serve_with(listener, app, feed, pushbench_sse::ServeConfig::default()).await
}

/// [`serve`] with the given bounds (header timeout and size, connection limit).
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    feed: FeedContext,
    config: pushbench_sse::ServeConfig,
) -> std::io::Result<()> {
    pushbench_sse::serve(listener, app, config, feed.shutdown.clone()).await
}
