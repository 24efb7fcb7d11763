//! `raw-fanout`: the machine's limit, measured the same way as the real servers.
//!
//! The same feed (in-memory hub and open-loop generator) and the same SSE bytes, written to
//! each subscriber's socket by the simplest tokio writer there is: no HTTP framework, no
//! routing, no middleware, one task per connection, one `write_all` per wake (the same batching
//! the SSE server does). A request line is read just far enough to know the topic; the answer
//! is a bare status line and `Content-Type`, and the body is the event stream, delimited by
//! closing the connection. So `pushbench` measures it exactly like `feed-server` (as an SSE
//! server, `[server] binary = "target/release/raw-fanout"`), and each real server's
//! deliveries per core can be stated as a fraction of this.
//!
//! It accepts `feed-server`'s command line (so the orchestrator starts it the same way) and
//! serves only what a run needs: `GET /healthz`, `GET …/logs/events` (with `Last-Event-ID`),
//! `POST …/logs/finish`. It is a yardstick, not a server to deploy: no limits, no auth.
#![forbid(unsafe_code)]

use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use feed_server::config::Args;
use feed_server::listener;
use futures_util::StreamExt;
use pushbench_feed::{Delivery, MemoryBackend, Metrics, SharedBackend, Shutdown};
use pushbench_protocol::route::HEALTHZ;
use pushbench_protocol::{sse, Route};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn main() -> std::process::ExitCode {
    match run_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_main() -> Result<()> {
    let args = Args::parse();
    let config = args.resolve().map_err(anyhow::Error::msg)?;
    let _ = listener::raise_fd_limit();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = args.workers {
        runtime.worker_threads(n.max(1));
    }
    let runtime = runtime.build().context("starting the tokio runtime")?;
    let backend: SharedBackend = Arc::new(MemoryBackend::new(config.memory));
    let shutdown = Shutdown::new();
    let generator = match config.generator.clone() {
        Some(g) => Some(
            pushbench_feed::generator::spawn(
                g,
                backend.clone(),
                Metrics::new(u64::MAX),
                shutdown.clone(),
                runtime.handle().clone(),
            )
            .map_err(|e| anyhow::anyhow!("generator: {e}"))?,
        ),
        None => None,
    };
    if let Some(g) = &generator {
        // As feed-server prints it, so a restart fault works against this server too.
        println!("generator origin unix_ns={}", g.origin_unix_ns());
    }
    runtime.block_on(async {
        let listener =
            listener::bind(args.listen).with_context(|| format!("binding {}", args.listen))?;
        println!("listening on http://{}", listener.local_addr()?);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_connection(stream, backend.clone(), shutdown.clone()));
                }
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
            }
        }
        Ok::<_, anyhow::Error>(())
    })?;
    shutdown.trigger();
    if let Some(g) = generator {
        let _ = g.join();
    }
    Ok(())
}

/// Reads requests until one turns into a stream (or the peer leaves).
async fn serve_connection(stream: TcpStream, backend: SharedBackend, shutdown: Shutdown) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        if read.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut last_event_id: Option<u64> = None;
        loop {
            let mut header = String::new();
            if read.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("last-event-id") {
                    last_event_id = value.trim().parse().ok();
                }
            }
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let path = path.split('?').next().unwrap_or("");
        let answer = match (method, path) {
            ("GET", HEALTHZ) => simple(200, "ok\n"),
            ("POST", _) if Route::Finish.topic_of(path).is_some() => {
                match backend
                    .finish(&Route::Finish.topic_of(path).expect("checked"))
                    .await
                {
                    Ok(st) => simple(
                        200,
                        &format!("{{\"last_seq\":{},\"finished\":true}}", st.last_seq),
                    ),
                    Err(e) => simple(404, &format!("{{\"error\":\"{e}\"}}")),
                }
            }
            ("GET", _) if Route::Events.topic_of(path).is_some() => {
                let t = Route::Events.topic_of(path).expect("checked");
                let sub = match backend.subscribe(&t, last_event_id, 256).await {
                    Ok(sub) => sub,
                    Err(e) => {
                        let _ = write
                            .write_all(simple(404, &e.to_string()).as_bytes())
                            .await;
                        return;
                    }
                };
                stream_events(&mut write, sub, shutdown).await;
                return;
            }
            _ => simple(404, "not found\n"),
        };
        if write.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// An answer with a length, so the connection can carry the next request.
fn simple(status: u16, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The event stream: each wake's lines in one write, then the end event and close.
async fn stream_events(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    mut sub: pushbench_feed::Subscription,
    shutdown: Shutdown,
) {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nConnection: close\r\n\r\n",
        sse::CONTENT_TYPE
    );
    if write.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        let delivery = tokio::select! {
            d = sub.next() => d,
            _ = &mut stop => return,
        };
        let bytes = match delivery {
            Some(Delivery::Lines(lines)) => pushbench_sse::encode_lines(&lines),
            Some(Delivery::End { last_seq }) => {
                let _ = write.write_all(&pushbench_sse::encode_end(last_seq)).await;
                return;
            }
            Some(Delivery::Lagged {
                missing_from,
                oldest_seq,
            }) => {
                let _ = write
                    .write_all(&pushbench_sse::encode_lagged(missing_from, oldest_seq))
                    .await;
                return;
            }
            None => return,
        };
        if write.write_all(&bytes).await.is_err() {
            return;
        }
    }
}
