//! deploy/nginx/pushbench.conf.template over real sockets: the template rendered as
//! scripts/cluster.sh renders it, a real nginx (Debian's /usr/sbin/nginx) in front of two
//! feed-server processes (memory backends: proxying is what is tested here, not the shared
//! log) and, where a misbehaving instance is needed, a fake upstream that reads a request and
//! hangs up without answering.
//!
//! With memory backends each instance has its own topics, and the test cannot know which
//! instance nginx picked for a stream; so lines are POSTed to both instances directly, and a
//! client through nginx sees them whichever instance serves it.
//!
//! Checked: SSE is not buffered (a line POSTed after the stream opened arrives within 1 s
//! while the stream stays open) and keeps its headers; a WebSocket upgrade passes and
//! delivers lines; 1,500 polls (more than nginx's default keepalive_requests of 1,000) reuse
//! one client connection; a GET is answered by the other instance when one is killed or hangs
//! up after reading it, and so is a POST whose connect failed (never sent: exactly once); a
//! POST that reached an instance which then hung up is not resent to the other one; an SSE
//! stream whose instance dies ends (nginx does not splice it elsewhere), and the client's
//! resume with Last-Event-ID through nginx continues on the survivor.
//!
//! What the SSE check can and cannot catch (measured with nginx 1.22): a compressed stream
//! (`gzip on` for text/event-stream) fails it, and so do a missing Upgrade header, the default
//! keepalive_requests, `proxy_next_upstream off` or `non_idempotent` (each tried against the
//! template). `proxy_buffering on` alone does not: nginx still forwards each chunk of a quiet
//! stream as it reads it; what buffering changes is where a slow client's backlog piles up
//! (in nginx's buffers and temp files instead of the instance's per-connection queue, which
//! the server's lag policy watches), which this test does not load.

mod common;

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

const TEMPLATE: &str = include_str!("../../../deploy/nginx/pushbench.conf.template");

/// How soon a line POSTed to an instance must reach a client through nginx: unbuffered
/// delivery takes milliseconds; a buffering proxy holds a small event until its buffer fills
/// or the stream ends, i.e. for ever on a quiet stream.
const UNBUFFERED: Duration = Duration::from_secs(1);

/// More sequential polls than nginx's default `keepalive_requests` (1,000).
const POLLS_ON_ONE_CONNECTION: usize = 1_500;

/// Renders the template: nginx's files under `prefix`, listening on `listen`, one upstream
/// line per instance, as scripts/cluster.sh writes them.
fn render(prefix: &Path, listen: SocketAddr, upstreams: &[SocketAddr]) -> String {
    let lines: Vec<String> = upstreams
        .iter()
        .map(|a| format!("        server {a} max_fails=1 fail_timeout=2s;"))
        .collect();
    let conf = TEMPLATE
        .replace("{{PREFIX}}", &prefix.display().to_string())
        .replace("{{WORKERS}}", "1")
        .replace("{{LISTEN}}", &listen.to_string())
        .replace("{{UPSTREAMS}}", &lines.join("\n"));
    assert!(
        !conf.contains("{{"),
        "the template has a placeholder this test does not fill:\n{conf}"
    );
    conf
}

/// Debian's nginx, or the first `nginx` on PATH.
fn nginx_binary() -> PathBuf {
    let debian = PathBuf::from("/usr/sbin/nginx");
    if debian.is_file() {
        return debian;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("nginx not found: install nginx (scripts/ensure-debian-packages.sh nginx)")
        })
}

/// A loopback port free a moment ago (nginx cannot report a port it picked itself; a port
/// taken in between makes [`Nginx::start`] try again).
fn free_port() -> SocketAddr {
    let l = StdTcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().unwrap()
}

/// A private directory for one nginx, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pushbench-nginx-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create nginx scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An nginx master (in the foreground: the template says `daemon off`) and its worker.
struct Nginx {
    child: std::process::Child,
    addr: SocketAddr,
    // Dropped after `child` is stopped (fields drop in order, after `Drop::drop`).
    scratch: Scratch,
}

impl Nginx {
    /// nginx in front of `upstreams`, once it has bound its port and written its pid file
    /// (the master does both before it starts workers; a connection made before a worker runs
    /// waits in the listen backlog). No request is sent here, so no upstream sees one.
    async fn start(upstreams: &[SocketAddr]) -> Nginx {
        let scratch = Scratch::new();
        let prefix = &scratch.0;
        let error_log = prefix.join("error.log");
        for attempt in 1.. {
            let addr = free_port();
            let conf = prefix.join("nginx.conf");
            std::fs::write(&conf, render(prefix, addr, upstreams)).expect("write nginx.conf");
            let _ = std::fs::remove_file(prefix.join("nginx.pid"));
            let mut child = std::process::Command::new(nginx_binary())
                .arg("-p")
                .arg(prefix)
                .arg("-c")
                .arg(&conf)
                // The error log before the config is read (else /var/log/nginx).
                .arg("-e")
                .arg(&error_log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start nginx");
            let deadline = Instant::now() + T;
            loop {
                if let Some(status) = child.try_wait().expect("nginx status") {
                    let log = std::fs::read_to_string(&error_log).unwrap_or_default();
                    if attempt < 3 && log.contains("Address already in use") {
                        break;
                    }
                    panic!("nginx exited ({status}) before it was ready; error.log:\n{log}");
                }
                let pid = std::fs::read_to_string(prefix.join("nginx.pid")).unwrap_or_default();
                if pid.trim() == child.id().to_string() && TcpStream::connect(addr).await.is_ok() {
                    return Nginx {
                        child,
                        addr,
                        scratch,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let log = std::fs::read_to_string(&error_log).unwrap_or_default();
                    panic!("nginx not ready on {addr} after {T:?}; error.log:\n{log}");
                }
                // Bounded wait for a pid file: nothing to await.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// The error log so far, for failure messages.
    fn error_log(&self) -> String {
        std::fs::read_to_string(self.scratch.0.join("error.log")).unwrap_or_default()
    }

    async fn get(&self, path: &str) -> Answer {
        get_from(self.addr, path, &[]).await
    }

    async fn post_text(&self, path: &str, body: &str) -> Answer {
        post_text_to(self.addr, path, body.to_string()).await
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // TERM: the master stops its workers and exits; SIGKILL would leave the worker
        // running, holding the port.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + T;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A feed-server process (no generator, one worker thread); killed when dropped.
type Instance = ServerProcess;

async fn start_instance() -> Instance {
    ServerProcess::start(&[
        "--listen",
        "127.0.0.1:0",
        "--gen-topics",
        "0",
        "--workers",
        "1",
    ])
    .await
}

/// The line texts [`TOPIC`] holds on `instance` (directly, not through nginx).
async fn lines_on(instance: &Instance) -> Vec<String> {
    let r = instance.get(&format!("{LOGS}?after=0"), &[]).await;
    match r.status {
        StatusCode::OK => texts(&r.json()),
        StatusCode::NOT_FOUND => Vec::new(),
        s => panic!("poll of {}: {s} {}", instance.addr, r.text()),
    }
}

/// Two instances behind nginx.
struct Cluster {
    instances: Vec<Instance>,
    nginx: Nginx,
}

impl Cluster {
    async fn start() -> Cluster {
        let instances = vec![start_instance().await, start_instance().await];
        let addrs: Vec<SocketAddr> = instances.iter().map(|i| i.addr).collect();
        let nginx = Nginx::start(&addrs).await;
        Cluster { instances, nginx }
    }

    /// Appends `body` to [`TOPIC`] on every instance, so a client through nginx sees it
    /// whichever instance serves it.
    async fn append_everywhere(&self, body: &str) {
        for i in &self.instances {
            i.append(body).await;
        }
    }
}

/// An upstream that reads each request head and closes the connection without a byte of
/// answer: what nginx sees of an instance dying mid-request. Counts the requests it read.
struct HangUp {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl HangUp {
    async fn start() -> HangUp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    // Dropping `conn` closes it.
                });
            }
        });
        HangUp {
            addr,
            requests,
            task,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for HangUp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn sse_through_nginx_is_not_buffered_and_keeps_its_headers() {
    let cluster = Cluster::start().await;
    cluster.append_everywhere("before the stream").await;

    let mut stream = send_to(
        cluster.nginx.addr,
        Method::GET,
        &EVENTS,
        // As a browser's EventSource asks: a proxy that compressed the stream would buffer it.
        &[("accept", "text/event-stream"), ("accept-encoding", "gzip")],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        stream.status,
        StatusCode::OK,
        "{}",
        cluster.nginx.error_log()
    );
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    assert_eq!(stream.header("content-encoding"), None, "not compressed");
    let cache = stream.header("cache-control").unwrap_or_default();
    assert!(cache.contains("no-cache"), "cache-control: {cache:?}");
    assert!(cache.contains("no-transform"), "cache-control: {cache:?}");
    // nginx drops X-Accel-* headers unless told to pass them; the template passes this one so
    // that a second nginx in front of this one does not buffer either.
    assert_eq!(stream.header("x-accel-buffering"), Some("no"));
    stream
        .read_until("the line from before the stream", |t| {
            t.contains("before the stream")
        })
        .await;

    for n in 1..=3 {
        let line = format!("posted while streaming {n}");
        let posted = Instant::now();
        cluster.append_everywhere(&line).await;
        tokio::time::timeout(
            UNBUFFERED,
            stream.read_until("a line POSTed after the stream opened", |t| {
                t.contains(&line)
            }),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{line:?} did not arrive within {UNBUFFERED:?}: nginx buffers SSE; got {:?}",
                stream.text()
            )
        });
        assert!(!stream.ended, "the stream stays open");
        eprintln!("line {n} through nginx after {:?}", posted.elapsed());
    }
    let seqs = seqs_of(&stream.text());
    assert_eq!(seqs, [1, 2, 3, 4], "every line once, in order");
}

#[tokio::test]
async fn a_websocket_upgrade_through_nginx_delivers_lines() {
    let cluster = Cluster::start().await;
    cluster.append_everywhere("first").await;

    let url = format!("ws://{}{WS}", cluster.nginx.addr);
    let (mut ws, res) = within("WebSocket handshake through nginx", connect_async(url))
        .await
        .unwrap_or_else(|e| panic!("upgrade through nginx: {e}; {}", cluster.nginx.error_log()));
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);

    let mut next_line = async || -> serde_json::Value {
        within("a WebSocket line through nginx", async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        return serde_json::from_str(t.as_str()).expect("JSON text frame")
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    other => panic!("expected a line, got {other:?}"),
                }
            }
        })
        .await
    };
    let v = next_line().await;
    assert_eq!(
        (v["seq"].as_u64(), v["line"].as_str()),
        (Some(1), Some("first"))
    );
    cluster.append_everywhere("second").await;
    let v = next_line().await;
    assert_eq!(
        (v["seq"].as_u64(), v["line"].as_str()),
        (Some(2), Some("second"))
    );
}

#[tokio::test]
async fn a_poller_keeps_one_connection_for_more_polls_than_nginx_allows_by_default() {
    let cluster = Cluster::start().await;
    cluster.append_everywhere("polled").await;

    let (mut sender, conn) = connect_http1(cluster.nginx.addr).await;
    let path = format!("{LOGS}?after=0");
    let started = Instant::now();
    for n in 1..=POLLS_ON_ONE_CONNECTION {
        let req = Request::get(&path)
            .header("host", cluster.nginx.addr.to_string())
            .body(Full::new(Bytes::new()))
            .unwrap();
        let res = within("a poll through nginx", sender.send_request(req))
            .await
            .unwrap_or_else(|e| panic!("poll {n} on the kept connection failed: {e}"));
        assert_eq!(res.status(), StatusCode::OK, "poll {n}");
        // nginx says `Connection: close` on the last request it allows on a connection.
        assert_ne!(
            res.headers().get("connection").map(|v| v.as_bytes()),
            Some(&b"close"[..]),
            "nginx closes the poller's connection after poll {n}"
        );
        let body = within("a poll body", res.into_body().collect())
            .await
            .expect("poll body")
            .to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON poll answer");
        assert_eq!(texts(&v), ["polled"], "poll {n}");
    }
    eprintln!(
        "{POLLS_ON_ONE_CONNECTION} polls through nginx on one connection in {:?}",
        started.elapsed()
    );
    assert!(!conn.is_finished(), "the client connection is still open");
}

#[tokio::test]
async fn a_get_is_answered_by_the_other_instance_when_one_is_killed() {
    let mut cluster = Cluster::start().await;
    cluster.append_everywhere("still here").await;
    cluster.instances[0].kill().await;

    // Round robin sends some of these to the dead instance first; nginx retries each on
    // the live one (and, after the first failure, leaves the dead one out for fail_timeout).
    for n in 1..=4 {
        let r = cluster.nginx.get(&format!("{LOGS}?after=0")).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "poll {n} with one instance killed: {}; error.log:\n{}",
            r.text(),
            cluster.nginx.error_log()
        );
        assert_eq!(texts(&r.json()), ["still here"]);
        let h = cluster.nginx.get("/healthz").await;
        assert_eq!(
            h.status,
            StatusCode::OK,
            "/healthz {n} with one instance killed"
        );
    }
    assert!(
        cluster.nginx.error_log().contains("connect() failed"),
        "nginx tried the killed instance: {}",
        cluster.nginx.error_log()
    );
}

#[tokio::test]
async fn a_post_whose_connect_failed_goes_to_the_other_instance_once() {
    let mut cluster = Cluster::start().await;
    cluster.instances[0].kill().await;

    // A refused connect means the POST was never sent: nginx may (and does) try the next
    // instance, and the line is appended exactly once.
    let mut posted = Vec::new();
    for n in 1..=4 {
        let line = format!("post {n} with one instance killed");
        let r = cluster.nginx.post_text(&LOGS, &line).await;
        assert_eq!(r.status, StatusCode::OK, "POST {n}: {}", r.text());
        posted.push(line);
    }
    assert_eq!(lines_on(&cluster.instances[1]).await, posted);
}

#[tokio::test]
async fn a_get_is_retried_when_an_instance_hangs_up_before_answering() {
    let hang_up = HangUp::start().await;
    let live = start_instance().await;
    live.append("answered").await;
    let nginx = Nginx::start(&[hang_up.addr, live.addr]).await;

    // Round robin sends the first or second GET to the instance that hangs up.
    for n in 1..=2 {
        let r = nginx.get(&format!("{LOGS}?after=0")).await;
        assert_eq!(r.status, StatusCode::OK, "GET {n}: {}", r.text());
        assert_eq!(texts(&r.json()), ["answered"]);
    }
    assert_eq!(
        hang_up.requests(),
        1,
        "one GET reached the instance that hung up (and was retried on the other)"
    );
}

#[tokio::test]
async fn a_post_that_reached_an_instance_is_not_resent_to_another() {
    let hang_up = HangUp::start().await;
    let live = start_instance().await;
    let nginx = Nginx::start(&[hang_up.addr, live.addr]).await;

    // Round robin sends the first or second POST to the instance that hangs up: nginx must
    // answer that one 502 rather than append the line a second time elsewhere (a publisher
    // that retries on 502 would then append it twice).
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for n in 1..=2 {
        let line = format!("post {n}");
        let r = nginx.post_text(&LOGS, &line).await;
        match r.status {
            StatusCode::OK => accepted.push(line),
            StatusCode::BAD_GATEWAY => refused.push(line),
            s => panic!("POST {n}: unexpected {s}: {}", r.text()),
        }
    }
    assert_eq!(
        hang_up.requests(),
        1,
        "one POST reached the hang-up instance"
    );
    assert_eq!(refused.len(), 1, "that POST was answered 502: {refused:?}");
    assert_eq!(
        lines_on(&live).await,
        accepted,
        "the live instance got only the POST sent to it"
    );
}

#[tokio::test]
async fn an_sse_stream_cut_by_its_dying_instance_ends_and_the_client_resumes_elsewhere() {
    let mut cluster = Cluster::start().await;
    cluster.append_everywhere("one").await;

    // Raw bytes: the end of a stream cut mid-body may be an EOF or a reset, both fine here.
    let mut conn = within("connect to nginx", TcpStream::connect(cluster.nginx.addr))
        .await
        .expect("connect to nginx");
    let request = format!(
        "GET {EVENTS} HTTP/1.1\r\nhost: {}\r\naccept: text/event-stream\r\n\r\n",
        cluster.nginx.addr
    );
    conn.write_all(request.as_bytes()).await.expect("send GET");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    within("the first event through nginx", async {
        while !String::from_utf8_lossy(&got).contains("\"line\":\"one\"") {
            let n = conn.read(&mut buf).await.expect("read the stream");
            assert!(
                n > 0,
                "stream ended early: {}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await;

    // The instance nginx picked is the one with an open SSE stream.
    let mut serving = None;
    for (i, instance) in cluster.instances.iter().enumerate() {
        let m = instance.get("/metrics", &[]).await.text();
        if m.contains("pushbench_open_connections{transport=\"sse\"} 1") {
            serving = Some(i);
        }
    }
    let serving = serving.expect("one instance serves the stream");
    cluster.instances[serving].kill().await;

    // nginx does not splice the stream onto the other instance: the client sees it end.
    within("the cut stream to end", async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let survivor = &cluster.instances[1 - serving];
    survivor.append("two").await;

    // The client resumes with Last-Event-ID through nginx, which sends it to the survivor.
    let mut resumed = send_to(
        cluster.nginx.addr,
        Method::GET,
        &EVENTS,
        &[("accept", "text/event-stream"), ("last-event-id", "1")],
        Bytes::new(),
    )
    .await;
    assert_eq!(resumed.status, StatusCode::OK);
    let events = resumed
        .read_events_until("the line after the resume point", |e| {
            e.iter().any(|b| b.id.as_deref() == Some("2"))
        })
        .await;
    let lines: Vec<(u64, String)> = events
        .iter()
        .filter(|e| e.event.is_none())
        .map(check_line_event)
        .collect();
    assert_eq!(
        lines,
        [(2, "two".to_string())],
        "from the resume point on, once"
    );
}
