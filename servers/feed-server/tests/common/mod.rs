//! Helpers shared by the integration tests: a real server on port 0 (in process, or the built
//! `feed-server` binary as a child process), a hyper HTTP/1.1 client (one TCP connection per
//! request), a streamed-body reader and a small SSE block parser.
//!
//! Every wait is bounded by [`T`] so that a broken server fails a test instead of hanging it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use feed_server::ServerConfig;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use pushbench_feed::memory::MemoryConfig;
use pushbench_feed::{FeedContext, MemoryBackend, Metrics, Shutdown};
use pushbench_protocol::Route;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

/// Upper bound of every single wait in these tests.
pub const T: Duration = Duration::from_secs(5);

/// The topic most tests use (`org/repo/builds/B/steps/S`, no leading slash).
pub const TOPIC: &str = "acme/app/builds/1/steps/test";
/// [`TOPIC`]'s routes, as the protocol crate builds them (its own tests pin the literal paths;
/// single tests still spell some out, as the README documents them).
pub static LOGS: RoutePath = RoutePath::new(Route::Logs);
pub static EVENTS: RoutePath = RoutePath::new(Route::Events);
pub static FINISH: RoutePath = RoutePath::new(Route::Finish);
pub static WS: RoutePath = RoutePath::new(Route::Ws);

/// One of [`TOPIC`]'s routes, built on first use: `&LOGS` is a `&str`, `{LOGS}` formats.
pub struct RoutePath {
    route: Route,
    path: OnceLock<String>,
}

impl RoutePath {
    const fn new(route: Route) -> Self {
        RoutePath {
            route,
            path: OnceLock::new(),
        }
    }
}

impl std::ops::Deref for RoutePath {
    type Target = str;

    fn deref(&self) -> &str {
        self.path.get_or_init(|| self.route.path(TOPIC))
    }
}

impl std::fmt::Display for RoutePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

/// Awaits `fut`, failing the test (with `what`) if it takes longer than [`T`].
pub async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(T, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {T:?} waiting for {what}"),
    }
}

/// A server running on 127.0.0.1 with an ephemeral port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub feed: FeedContext,
    pub handle: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    /// Serves `config` (its `memory` and `max_connections` size the feed, its `serve` bounds
    /// the connections).
    pub async fn start(config: ServerConfig) -> TestServer {
        let backend = Arc::new(MemoryBackend::new(config.memory));
        TestServer::start_on(config, backend).await
    }

    /// Serves `config` over a given backend (a Redis one, shared with other servers).
    pub async fn start_on(
        config: ServerConfig,
        backend: pushbench_feed::SharedBackend,
    ) -> TestServer {
        let feed = FeedContext {
            backend,
            metrics: Metrics::new(config.max_connections),
            shutdown: Shutdown::new(),
        };
        let router = feed_server::app(feed.clone(), &config).expect("valid server config");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(feed_server::serve_with(
            listener,
            router,
            feed.clone(),
            config.serve.clone(),
        ));
        TestServer { addr, feed, handle }
    }

    /// A server with default settings.
    pub async fn default() -> TestServer {
        TestServer::start(ServerConfig::default()).await
    }

    /// A server keeping `history` lines per topic.
    pub async fn with_history(history: usize) -> TestServer {
        TestServer::start(ServerConfig {
            memory: MemoryConfig {
                history,
                max_topics: 100,
            },
            ..ServerConfig::default()
        })
        .await
    }

    /// Sends one request on a fresh connection and returns the response with its body
    /// unread.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Streaming {
        send_to(self.addr, method, path, headers, body).await
    }

    /// `GET path` with headers, body read whole.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        get_from(self.addr, path, headers).await
    }

    /// `POST path` with a `text/plain` body, read whole.
    pub async fn post_text(&self, path: &str, body: impl Into<Bytes>) -> Answer {
        post_text_to(self.addr, path, body).await
    }

    /// Appends lines to [`TOPIC`] and checks the answer.
    pub async fn append(&self, body: &str) -> serde_json::Value {
        let r = self.post_text(&LOGS, body.to_string()).await;
        assert_eq!(r.status, StatusCode::OK, "append failed: {}", r.text());
        r.json()
    }

    /// Finishes [`TOPIC`].
    pub async fn finish(&self) {
        let r = self
            .send(Method::POST, &FINISH, &[], Bytes::new())
            .await
            .into_full()
            .await;
        assert_eq!(r.status, StatusCode::OK, "finish failed: {}", r.text());
    }

    /// A poll of [`LOGS`] with the given query, expected to succeed, as JSON.
    pub async fn poll(&self, query: &str) -> serde_json::Value {
        let r = self.get(&format!("{LOGS}?{query}"), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "poll failed: {}", r.text());
        r.json()
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let r = self.get("/metrics", &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        r.text()
    }
}

/// A feed-server process started from the built binary; killed when dropped, whatever the
/// test did.
pub struct ServerProcess {
    child: Child,
    /// Its stdout after the `listening on` line, kept open so the server never writes to a
    /// closed pipe.
    _stdout: Lines<BufReader<ChildStdout>>,
    pub addr: SocketAddr,
    /// The generator origin it printed before `listening on` (`None`: it printed none).
    pub origin_unix_ns: Option<u64>,
}

impl ServerProcess {
    /// `feed-server ARGS`, once it has printed its address.
    pub async fn start(args: &[&str]) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_feed-server"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start feed-server");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut origin_unix_ns = None;
        loop {
            let line = within("a line of feed-server's stdout", stdout.next_line())
                .await
                .expect("read stdout")
                .expect("feed-server exited before it was ready");
            if let Some(addr) = line.strip_prefix("listening on http://") {
                let addr = addr
                    .parse()
                    .unwrap_or_else(|e| panic!("{line:?} names no address: {e}"));
                return ServerProcess {
                    child,
                    _stdout: stdout,
                    addr,
                    origin_unix_ns,
                };
            }
            match line.strip_prefix("generator origin unix_ns=") {
                Some(n) if origin_unix_ns.is_none() => {
                    let n = n
                        .parse()
                        .unwrap_or_else(|e| panic!("{line:?} names no origin: {e}"));
                    origin_unix_ns = Some(n);
                }
                _ => panic!("unexpected line before `listening on`: {line:?}"),
            }
        }
    }

    /// SIGKILL, as a crash or the load generator's `restart` fault: no graceful shutdown,
    /// and the port refuses connections afterwards.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("SIGKILL feed-server");
        within("feed-server to die", self.child.wait())
            .await
            .expect("reap feed-server");
    }

    /// `GET path` with headers, body read whole.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        get_from(self.addr, path, headers).await
    }

    /// Appends lines to [`TOPIC`] and checks the answer.
    pub async fn append(&self, body: &str) -> serde_json::Value {
        let r = post_text_to(self.addr, &LOGS, body.to_string()).await;
        assert_eq!(r.status, StatusCode::OK, "append failed: {}", r.text());
        r.json()
    }
}

/// `GET path` to `addr` with headers, body read whole.
pub async fn get_from(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    send_to(addr, Method::GET, path, headers, Bytes::new())
        .await
        .into_full()
        .await
}

/// `POST path` to `addr` with a `text/plain` body, read whole.
pub async fn post_text_to(addr: SocketAddr, path: &str, body: impl Into<Bytes>) -> Answer {
    send_to(
        addr,
        Method::POST,
        path,
        &[("content-type", "text/plain; charset=utf-8")],
        body,
    )
    .await
    .into_full()
    .await
}

/// A new HTTP/1.1 connection to `addr`: its request sender, and the task driving it (which
/// ends when the connection closes).
pub async fn connect_http1(addr: SocketAddr) -> (SendRequest<Full<Bytes>>, JoinHandle<()>) {
    let stream = within("TCP connect", TcpStream::connect(addr))
        .await
        .expect("connect to the test server");
    let (sender, conn) = within(
        "HTTP handshake",
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .expect("HTTP/1.1 handshake");
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    (sender, conn)
}

/// Sends one request to `addr` on a fresh connection and returns the response with its body
/// unread (what [`TestServer::send`] does, for servers that are not a [`TestServer`]).
pub async fn send_to(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Streaming {
    let (mut sender, conn) = connect_http1(addr).await;
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body.into())).expect("valid request");
    let res = within("response head", sender.send_request(req))
        .await
        .expect("response head");
    let (parts, body) = res.into_parts();
    Streaming {
        status: parts.status,
        headers: parts.headers,
        body,
        buf: Vec::new(),
        ended: false,
        conn,
    }
}

/// A response read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
    }

    /// The `error` message of a JSON error answer, checking its content type.
    pub fn error(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "error answers are JSON"
        );
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field in {:?}", self.text()))
            .to_string()
    }
}

/// A response whose body is read frame by frame.
pub struct Streaming {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: Incoming,
    /// Everything read so far.
    pub buf: Vec<u8>,
    /// The body has ended.
    pub ended: bool,
    conn: JoinHandle<()>,
}

impl Drop for Streaming {
    fn drop(&mut self) {
        // Closes the TCP connection.
        self.conn.abort();
    }
}

impl Streaming {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
    }

    /// The next data chunk, or `None` at the end of the body. Fails the test after [`T`].
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        self.next_chunk_within(T)
            .await
            .expect("a body chunk in time")
    }

    /// Like [`Self::next_chunk`], `Err` if nothing arrived within `limit`.
    pub async fn next_chunk_within(&mut self, limit: Duration) -> Result<Option<Bytes>, ()> {
        loop {
            if self.ended {
                return Ok(None);
            }
            let frame = tokio::time::timeout(limit, self.body.frame())
                .await
                .map_err(|_| ())?;
            match frame {
                None => {
                    self.ended = true;
                    return Ok(None);
                }
                Some(Err(e)) => panic!("body error: {e}"),
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        self.buf.extend_from_slice(&data);
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// The body read so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }

    /// Reads until `done(text so far)` holds. Fails the test if the body ends first or the
    /// whole wait exceeds [`T`].
    pub async fn read_until(&mut self, what: &str, done: impl Fn(&str) -> bool) {
        within(what, async {
            while !done(&self.text()) {
                if self.next_chunk().await.is_none() {
                    panic!("body ended before {what}; got {:?}", self.text());
                }
            }
        })
        .await
    }

    /// Reads until the SSE events received so far satisfy `done`, then returns them.
    pub async fn read_events_until(
        &mut self,
        what: &str,
        done: impl Fn(&[SseBlock]) -> bool,
    ) -> Vec<SseBlock> {
        self.read_until(what, |t| done(&events(t))).await;
        events(&self.text())
    }

    /// Reads to the end of the body (bounded by [`T`]).
    pub async fn read_to_end(&mut self) {
        within("end of body", async {
            while self.next_chunk().await.is_some() {}
        })
        .await
    }

    pub async fn into_full(mut self) -> Answer {
        self.read_to_end().await;
        Answer {
            status: self.status,
            headers: std::mem::take(&mut self.headers),
            body: Bytes::from(std::mem::take(&mut self.buf)),
        }
    }
}

/// One block of an event stream (the lines up to a blank line).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseBlock {
    pub id: Option<String>,
    pub event: Option<String>,
    /// Data lines joined with LF, `None` if the block had no `data` field.
    pub data: Option<String>,
    pub retry: Option<String>,
    /// The block held a comment line (`:`).
    pub comment: bool,
}

impl SseBlock {
    /// An event a client would dispatch (it has data).
    pub fn is_event(&self) -> bool {
        self.data.as_deref().is_some_and(|d| !d.is_empty())
    }

    /// The data as JSON.
    pub fn json(&self) -> serde_json::Value {
        let d = self.data.as_deref().expect("event has data");
        serde_json::from_str(d).unwrap_or_else(|e| panic!("data is not JSON ({e}): {d:?}"))
    }
}

/// Parses the complete blocks (those ended by a blank line) of an event stream. The server
/// writes LF line ends only, which is all this needs to understand; an unterminated block at
/// the end is left out, as a client would not dispatch it yet.
pub fn blocks(text: &str) -> Vec<SseBlock> {
    let mut out = Vec::new();
    let mut cur = SseBlock::default();
    let mut has_fields = false;
    let mut rest = text;
    while let Some(nl) = rest.find('\n') {
        let line = &rest[..nl];
        rest = &rest[nl + 1..];
        if line.is_empty() {
            if has_fields {
                out.push(std::mem::take(&mut cur));
                has_fields = false;
            }
            continue;
        }
        has_fields = true;
        if line.starts_with(':') {
            cur.comment = true;
            continue;
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line, ""),
        };
        match field {
            "id" => cur.id = Some(value.to_string()),
            "event" => cur.event = Some(value.to_string()),
            "retry" => cur.retry = Some(value.to_string()),
            "data" => {
                cur.data = Some(match cur.data.take() {
                    Some(d) => format!("{d}\n{value}"),
                    None => value.to_string(),
                })
            }
            _ => {}
        }
    }
    out
}

/// The dispatchable events of an event stream (blocks with data).
pub fn events(text: &str) -> Vec<SseBlock> {
    blocks(text)
        .into_iter()
        .filter(SseBlock::is_event)
        .collect()
}

/// The `line` events (no `event:` field) of a stream.
pub fn line_events(text: &str) -> Vec<SseBlock> {
    events(text)
        .into_iter()
        .filter(|e| e.event.is_none())
        .collect()
}

/// Checks that a line event is well formed (`id` equals the payload's `seq`, payload has
/// exactly `seq`, `ts`, `line`) and returns `(seq, line)`.
pub fn check_line_event(e: &SseBlock) -> (u64, String) {
    let v = e.json();
    let obj = v.as_object().expect("payload is a JSON object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["line", "seq", "ts"], "payload fields of {v}");
    let seq = v["seq"].as_u64().expect("seq is a number");
    assert!(v["ts"].as_u64().expect("ts is a number") > 0, "ts is set");
    assert_eq!(
        e.id.as_deref(),
        Some(seq.to_string().as_str()),
        "id equals seq"
    );
    (
        seq,
        v["line"].as_str().expect("line is a string").to_string(),
    )
}

/// `(seq, line)` of every line event of a stream, checked.
pub fn lines_of(text: &str) -> Vec<(u64, String)> {
    line_events(text).iter().map(check_line_event).collect()
}

/// Seqs of every line event of a stream.
pub fn seqs_of(text: &str) -> Vec<u64> {
    lines_of(text).into_iter().map(|(s, _)| s).collect()
}

/// Polls `/metrics` until `metric` has `value`, or fails after [`T`].
pub async fn wait_for_metric(server: &TestServer, metric: &str, value: u64) {
    let want = format!("{metric} {value}\n");
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let text = server.metrics().await;
        if text.contains(&want) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{metric} never reached {value}; metrics:\n{text}");
        }
        // Bounded polling of a gauge: there is no event to await for "the server noticed".
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `line` texts of a poll answer's `lines`.
pub fn texts(v: &serde_json::Value) -> Vec<String> {
    v["lines"]
        .as_array()
        .expect("lines array")
        .iter()
        .map(|l| l["line"].as_str().unwrap().to_string())
        .collect()
}
