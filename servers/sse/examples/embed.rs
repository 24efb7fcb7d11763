//! Embedding the reference SSE router in your own axum app.
//!
//! Run: `cargo run -p pushbench-sse --example embed`, then
//! `curl -N http://127.0.0.1:3000/acme/app/builds/7/steps/test/logs/events`.
//!
//! Your app keeps its own routes; the feed is appended to from your own code (here a task
//! standing in for a CI worker); Ctrl-C ends every open stream and the server exits cleanly.

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use pushbench_feed::backend::NewLine;
use pushbench_feed::clock::unix_nanos;
use pushbench_feed::http::CorsConfig;
use pushbench_feed::{FeedContext, TopicId};
use pushbench_sse::SseConfig;

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
        .merge(sse);

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
    let shutdown = feed.shutdown.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await?;
    Ok(())
}
