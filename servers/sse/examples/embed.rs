//! Embedding the reference SSE router in your own axum app.
//!
//! Run: `cargo run -p pushbench-sse --example embed`, then
//! `curl -N http://127.0.0.1:3000/acme/app/builds/7/steps/test/logs/events`.
//!
//! Your app keeps its own routes; the feed is appended to from your own code (here a task
//! standing in for a CI worker); Ctrl-C ends every open stream and the server exits cleanly.
//!
//! It serves with `pushbench_sse::serve`, not `axum::serve`: that one installs no timer, so
//! hyper's header-read timeout never fires, and bounds neither request heads nor connections.
//! Copy this part too.

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use pushbench_feed::backend::NewLine;
use pushbench_feed::clock::unix_nanos;
use pushbench_feed::http::CorsConfig;
use pushbench_feed::{FeedContext, TopicId};
use pushbench_sse::{ServeConfig, SseConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let feed = FeedContext::in_memory();
    let sse = pushbench_sse::router(
        feed.clone(),
        SseConfig {
            keep_alive: Duration::from_secs(20),
            cors: CorsConfig {
                allowed_origins: vec!["http://localhost:5173".into()],
                allow_credentials: true,
            },
            ..SseConfig::default()
        },
    )?;
    let app = Router::new()
        .route("/", get(|| async { "my CI app\n" }))
        .merge(sse)
        // Every error answer (routing's 404/405 too) as one line of JSON, like the feed's own.
        .layer(axum::middleware::from_fn(
            pushbench_feed::http::error_bodies,
        ));

    // A stand-in CI worker: ten lines, one every 300 ms, then the step finishes.
    let topic = TopicId::new("acme", "app", "7", "test")?;
    let worker_feed = feed.clone();
    tokio::spawn(async move {
        for i in 1..=10 {
            let line = NewLine {
                ts: unix_nanos(),
                text: format!("running test {i}/10 ... ok"),
            };
            let _ = worker_feed.backend.append(&topic, vec![line]).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let _ = worker_feed.backend.finish(&topic).await;
    });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    let shutdown = feed.shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        shutdown.trigger();
    });
    let config = ServeConfig {
        // Stalled request heads are closed after 10 s; at most 10,000 connections, beyond
        // that `503` with `Retry-After: 1`. Heads stay bounded at the default 16 KiB.
        header_read_timeout: Duration::from_secs(10),
        max_connections: Some(10_000),
        ..ServeConfig::default()
    };
    pushbench_sse::serve(listener, app, config, feed.shutdown.clone()).await?;
    Ok(())
}
