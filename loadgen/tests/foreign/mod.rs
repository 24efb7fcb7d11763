//! A "foreign" push server: one that knows nothing of pushbench, for testing external-target
//! mode against something other than our own `feed-server`.
//!
//! It imitates the small hand-rolled log-streaming services pushbench is meant to measure:
//! its own routes, its own cursors (1-based line indices, not pushbench's seqs), no end-of-step
//! signal of any kind, a publish endpoint that closes every connection, and an event stream
//! that uses every legal oddity of the WHATWG format. Whatever pushbench gets right against
//! it, it gets right from the `pb:SEQ:TS` markers alone. Routes (`{topic}` is
//! `acme/app/builds/B/steps/S`, at least five segments):
//!
//! - `POST /pub/{topic}`: appends the body (one line; a trailing line end is dropped) and
//!   answers `200` with a small JSON body and `Connection: close`, then closes. With
//!   [`Options::fail_every`] `Some(n)`, every n-th POST (counted server-wide) is answered
//!   `503 Service Unavailable` instead and appends nothing.
//! - `GET /sub/{topic}/sse[?chunked=1]`: an endless event stream (see [`sse`]) of the lines
//!   appended after the request arrived, or after `Last-Event-ID` (event ids are line
//!   indices); close-delimited, or chunked with `chunked=1`.
//! - `GET /sub/{topic}/ws[?after=N]`: WebSocket; each line after index N (default: the lines
//!   appended from now on) as a text frame; never a close frame; pings answered.
//! - `GET /sub/{topic}/poll[?since=N][&wait=MS]`: `200 text/plain`, the lines after index N
//!   one per line, `ETag: "LAST"`; without `since`, the cursor is `If-None-Match: "N"` (or 0).
//!   Nothing new: `304 Not Modified`, at once or, with `wait`, after up to MS milliseconds
//!   without a new line. Connections are kept alive.
//! - anything else: `404` with a body.
//!
//! Its cursors are positions in its own log. They match pushbench's seqs only while every seq
//! is appended once and in order: a line the publisher gives up on shifts every later index.
//!
//! The server runs on its own thread and single-threaded runtime, bound to `127.0.0.1:0`, and
//! stops (every connection closed) when its [`ForeignServer`] handle is dropped.

mod http;
mod sse;
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

use http::{Conn, ReadError, Request};

/// How the server misbehaves.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Answer every n-th POST (counted over the whole server) with 503, appending nothing.
    pub fail_every: Option<u32>,
}

/// What the server did with the POSTs it received (for one build, or in all).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PostCounts {
    /// POST requests read in full.
    pub received: u64,
    /// Of those, answered 503 (nothing appended).
    pub unavailable: u64,
    /// Lines appended.
    pub appended: u64,
}

/// The running server; dropping it stops the server and waits for its thread.
pub struct ForeignServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ForeignServer {
    /// Binds `127.0.0.1:0` and starts serving; the address is known when this returns.
    pub fn start(options: Options) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            options,
            topics: Mutex::new(HashMap::new()),
            posts_seen: AtomicU64::new(0),
            builds: Mutex::new(Vec::new()),
        });
        let (stop, stopped) = oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("foreign-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("foreign server runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    tokio::select! {
                        _ = accept_loop(listener, serving) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime here cancels every connection task: sockets close.
            })
            .expect("spawn the foreign server thread");
        ForeignServer {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// POST counts over the whole server.
    pub fn posts(&self) -> PostCounts {
        let builds = self.shared.builds.lock().unwrap();
        builds
            .iter()
            .fold(PostCounts::default(), |sum, (_, c)| PostCounts {
                received: sum.received + c.received,
                unavailable: sum.unavailable + c.unavailable,
                appended: sum.appended + c.appended,
            })
    }

    /// POST counts per build (`acme/app/builds/B`, the topic less `/steps/S`), in the order
    /// each build's first POST arrived: pushbench publishes each run to a fresh build, so this
    /// is one entry per run, in run order.
    pub fn posts_by_build(&self) -> Vec<(String, PostCounts)> {
        self.shared.builds.lock().unwrap().clone()
    }

    /// The lines of a topic, in order.
    pub fn lines(&self, topic: &str) -> Vec<Arc<str>> {
        let t = self.shared.topic(topic);
        let len = t.lines.lock().unwrap().len();
        t.lines(0, len)
    }
}

impl Drop for ForeignServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Shared {
    options: Options,
    topics: Mutex<HashMap<String, Arc<Topic>>>,
    /// POSTs read over the whole server, for [`Options::fail_every`].
    posts_seen: AtomicU64,
    builds: Mutex<Vec<(String, PostCounts)>>,
}

impl Shared {
    fn topic(&self, name: &str) -> Arc<Topic> {
        self.topics
            .lock()
            .unwrap()
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Topic::new()))
            .clone()
    }

    fn count_post(&self, topic: &str, update: impl FnOnce(&mut PostCounts)) {
        let build = topic.rsplitn(3, '/').nth(2).unwrap_or(topic).to_string();
        let mut builds = self.builds.lock().unwrap();
        let i = match builds.iter().position(|(b, _)| *b == build) {
            Some(i) => i,
            None => {
                builds.push((build, PostCounts::default()));
                builds.len() - 1
            }
        };
        update(&mut builds[i].1);
    }
}

/// One topic's log. Line `i` (1-based) is `lines[i - 1]`; `len` announces every append.
pub struct Topic {
    lines: Mutex<Vec<Arc<str>>>,
    len: watch::Sender<usize>,
}

impl Topic {
    fn new() -> Self {
        Topic {
            lines: Mutex::new(Vec::new()),
            len: watch::Sender::new(0),
        }
    }

    /// Appends a line; its 1-based index.
    fn append(&self, line: &str) -> usize {
        let mut lines = self.lines.lock().unwrap();
        lines.push(line.into());
        let n = lines.len();
        // Announced under the lock, so announcements never go backwards.
        self.len.send_replace(n);
        n
    }

    /// Lines `from + 1 ..= to` (1-based), clamped to what exists.
    fn lines(&self, from: usize, to: usize) -> Vec<Arc<str>> {
        let lines = self.lines.lock().unwrap();
        let to = to.min(lines.len());
        lines[from.min(to)..to].to_vec()
    }

    /// A receiver of the log's length, its current value marked seen.
    fn subscribe(&self) -> watch::Receiver<usize> {
        self.len.subscribe()
    }

    fn len(&self) -> usize {
        *self.len.borrow()
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(stream, shared.clone()));
            }
            Err(e) => {
                // Out of descriptors, most likely: let connections close, then go on.
                eprintln!("foreign server: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// What a request asks for.
enum Route<'a> {
    Publish(&'a str),
    Sse(&'a str),
    Ws(&'a str),
    Poll(&'a str),
    NotFound,
}

fn route(req: &Request) -> Route<'_> {
    let path = req.path();
    let valid = |t: &str| t.split('/').count() >= 5 && t.split('/').all(|s| !s.is_empty());
    if req.method == "POST" {
        return match path.strip_prefix("/pub/") {
            Some(topic) if valid(topic) => Route::Publish(topic),
            _ => Route::NotFound,
        };
    }
    if req.method != "GET" {
        return Route::NotFound;
    }
    let Some((topic, kind)) = path.strip_prefix("/sub/").and_then(|p| p.rsplit_once('/')) else {
        return Route::NotFound;
    };
    if !valid(topic) {
        return Route::NotFound;
    }
    match kind {
        "sse" => Route::Sse(topic),
        "ws" => Route::Ws(topic),
        "poll" => Route::Poll(topic),
        _ => Route::NotFound,
    }
}

/// Serves one connection: requests one after the other until one takes the connection over
/// (a stream, a WebSocket) or ends it (a publish, an error, the client's close).
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let mut conn = Conn::new(stream);
    loop {
        let req = match conn.read_head().await {
            Ok(Some(req)) => req,
            Ok(None) | Err(ReadError::Gone) => return,
            Err(ReadError::Bad(status, body)) => {
                let _ = conn.respond(status, &[], body.as_bytes(), true).await;
                return;
            }
        };
        // Every request's body is read, used or not, so the next request starts in place.
        let body = match conn.read_body(&req).await {
            Ok(body) => body,
            Err(ReadError::Bad(status, text)) => {
                let _ = conn.respond(status, &[], text.as_bytes(), true).await;
                return;
            }
            Err(ReadError::Gone) => return,
        };
        let done = match route(&req) {
            Route::Publish(topic) => {
                let _ = publish(&mut conn, &shared, topic, &body).await;
                true
            }
            Route::Sse(topic) => {
                let after = match req.header("last-event-id").and_then(|v| v.parse().ok()) {
                    Some(id) => id,
                    None => shared.topic(topic).len(),
                };
                let chunked = req.query("chunked") == Some("1");
                let _ = sse::stream(&mut conn.stream, shared.topic(topic), after, chunked).await;
                true
            }
            Route::Ws(topic) => {
                let topic = shared.topic(topic);
                let after = req
                    .query("after")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| topic.len());
                websocket(conn.replaying(&req.raw), topic, after).await;
                return;
            }
            Route::Poll(topic) => {
                poll(&mut conn, &req, shared.topic(topic)).await.is_err() || req.wants_close()
            }
            Route::NotFound => {
                let text = format!("no route for {} {}\n", req.method, req.path());
                let close = req.wants_close();
                let answer = conn.respond(
                    "404 Not Found",
                    &[("Content-Type", "text/plain")],
                    text.as_bytes(),
                    close,
                );
                answer.await.is_err() || close
            }
        };
        if done {
            return;
        }
    }
}

/// `POST /pub/{topic}`: one line, answered and closed.
async fn publish(
    conn: &mut Conn,
    shared: &Shared,
    topic: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let n = shared.posts_seen.fetch_add(1, Ordering::Relaxed) + 1;
    if shared
        .options
        .fail_every
        .is_some_and(|every| n % u64::from(every.max(1)) == 0)
    {
        shared.count_post(topic, |c| {
            c.received += 1;
            c.unavailable += 1;
        });
        return conn
            .respond(
                "503 Service Unavailable",
                &[("Content-Type", "text/plain")],
                b"overloaded, try again\n",
                true,
            )
            .await;
    }
    let line = String::from_utf8_lossy(body);
    let line = line.trim_end_matches(['\r', '\n']);
    if line.contains(['\r', '\n']) {
        shared.count_post(topic, |c| c.received += 1);
        return conn
            .respond(
                "400 Bad Request",
                &[("Content-Type", "text/plain")],
                b"one line per POST\n",
                true,
            )
            .await;
    }
    let id = shared.topic(topic).append(line);
    shared.count_post(topic, |c| {
        c.received += 1;
        c.appended += 1;
    });
    let answer = format!("{{\"ok\":true,\"id\":{id}}}\n");
    conn.respond(
        "200 OK",
        &[("Content-Type", "application/json")],
        answer.as_bytes(),
        true,
    )
    .await
}

/// `GET /sub/{topic}/poll`: the lines after the cursor, or 304.
async fn poll(conn: &mut Conn, req: &Request, topic: Arc<Topic>) -> std::io::Result<()> {
    let close = req.wants_close();
    let since = match req.query("since") {
        Some(v) => v.parse().ok(),
        None => match req.header("if-none-match") {
            Some(tag) => tag.trim_start_matches("W/").trim_matches('"').parse().ok(),
            None => Some(0),
        },
    };
    let Some(since) = since else {
        return conn
            .respond(
                "400 Bad Request",
                &[("Content-Type", "text/plain")],
                b"bad cursor\n",
                close,
            )
            .await;
    };
    let wait = req
        .query("wait")
        .map(|v| v.trim_end_matches("ms").parse::<u64>())
        .transpose()
        .ok()
        .flatten()
        .map(Duration::from_millis);
    let mut appended = topic.subscribe();
    let deadline = tokio::time::Instant::now() + wait.unwrap_or_default();
    let len = loop {
        let len = *appended.borrow_and_update();
        if len > since {
            break len;
        }
        match tokio::time::timeout_at(deadline, appended.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => break len,
        }
    };
    if len <= since {
        let tag = format!("\"{since}\"");
        return conn
            .respond("304 Not Modified", &[("ETag", &tag)], b"", close)
            .await;
    }
    let mut body = String::new();
    for line in topic.lines(since, len) {
        body.push_str(&line);
        body.push('\n');
    }
    let tag = format!("\"{len}\"");
    conn.respond(
        "200 OK",
        &[
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Cache-Control", "no-cache"),
            ("ETag", &tag),
        ],
        body.as_bytes(),
        close,
    )
    .await
}

/// `GET /sub/{topic}/ws`: every line after `after` as a text frame, for as long as the client
/// stays; pings are answered (by tungstenite, flushed here), the client's close ends it.
async fn websocket(stream: http::Replay, topic: Arc<Topic>, after: usize) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let mut appended = topic.subscribe();
    let mut sent = after;
    loop {
        let len = *appended.borrow_and_update();
        if sent < len {
            for line in topic.lines(sent, len) {
                if ws.feed(Message::text(line.to_string())).await.is_err() {
                    return;
                }
            }
            if ws.flush().await.is_err() {
                return;
            }
            sent = len;
        }
        tokio::select! {
            changed = appended.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Ping(_))) => {
                    if ws.flush().await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    let _ = ws.flush().await;
                    return;
                }
                Some(Ok(_)) => {}
            },
        }
    }
}
