//! The accept loop and the HTTP/1 driver of each connection.
//!
//! This replaces `axum::serve` for one measured reason. `axum::serve` drives every connection
//! through hyper-util's `auto` builder, which first reads up to 24 bytes to tell an HTTP/2
//! preface from HTTP/1 and then replays them. hyper's HTTP/1 reader sees the replayed bytes
//! as a partial request head and, to read the rest, grows its 8 KiB read buffer to 16 KiB
//! (`Vec` doubling), which the connection then keeps for its whole life: 8 KiB more memory
//! per open event stream (heaptrack at 10,000 SSE connections: 164 MB in that buffer alone).
//! feed-server offers HTTP/1.1 only, so it drives hyper's HTTP/1 connection directly; when
//! HTTP/2 arrives, switch to the `auto` builder and take the cost knowingly.
//!
//! Shape: [`serve`] is the listener (accepts until shutdown, then waits for its connections);
//! each accepted socket gets a task running one hyper connection with the [`Router`] as its
//! service. On shutdown a connection finishes the response in flight and closes; open
//! streams end themselves (every transport merges the shutdown signal into its streams).

use std::io;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use pushbench_feed::Shutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;
use tower::Service;

/// How long a client may take to send a request head before the connection is closed
/// (hyper's default; a slow-loris guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` triggers, then stops accepting and waits
/// until every connection has closed.
pub async fn serve(listener: TcpListener, app: Router, shutdown: Shutdown) -> io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connections = TaskTracker::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    after_accept_error(e).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        connections.spawn(handle(stream, http.clone(), app.clone(), shutdown.clone()));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Runs one connection to its end; on shutdown, lets the response in flight finish.
async fn handle(stream: TcpStream, http: http1::Builder, app: Router, shutdown: Shutdown) {
    // Latency is the point of this server: never let Nagle hold a small event back.
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut router = app.clone();
        router.call(request.map(Body::new))
    });
    let connection = http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    // Errors here are the peer's (reset, malformed request: hyper answers 400 itself) and
    // end only this connection.
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = shutdown.wait() => connection.as_mut().graceful_shutdown(),
    }
    let _ = connection.await;
}

/// Accept errors that concern one connection (it was reset before we took it) are skipped;
/// running out of file descriptors or memory is retried after a pause, as `axum::serve`
/// does, rather than spinning or ending the server.
async fn after_accept_error(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    ) {
        return;
    }
    tracing::error!("accept failed: {e}; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
