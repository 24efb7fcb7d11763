//! The log viewer in a real browser: headless Chromium's own `EventSource`, `WebSocket` and
//! `fetch` against a feed-server on port 0, driven through chromedriver (see [`webdriver`]).
//!
//! The page exposes what it counted as `window.viewerState` (seqs received, state, gaps,
//! duplicates, reconnects); the server side records every request it saw (method, path,
//! query, `Last-Event-ID`, `Origin`), so a test checks both what the page showed and what
//! the browser really sent. Every wait is bounded.
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/test.sh installs them); without
//! them the tests fail, naming the missing binary.

#[path = "../common/mod.rs"]
mod common;
mod webdriver;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use common::*;
use feed_server::ServerConfig;
use hyper::{Method, StatusCode};
use pushbench_feed::http::{CorsConfig, TokenAuth};
use pushbench_feed::{FeedContext, MemoryBackend, Metrics, Shutdown};
use pushbench_sse::SseConfig;
use serde_json::Value;
use tokio::net::TcpListener;
use webdriver::Browser;

/// Longest wait for anything the page should do.
const PAGE_WAIT: Duration = Duration::from_secs(10);
const ADMIN_TOKEN: &str = "admin-secret";
/// [`common::TOPIC`], as the page's `?topic=` takes it.
const TOPIC_NAME: &str = TOPIC;

/// What the tests show when a wait fails: the page's state, lines trimmed to the last 30.
const EXPLAIN: &str = "const s = window.viewerState; \
    return s ? JSON.stringify({...s, lines: s.lines.slice(-30)}) : document.body.innerText.slice(0, 500);";

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    query: String,
    last_event_id: Option<String>,
    origin: Option<String>,
    /// `HTTP/1.1` or `HTTP/2.0`.
    version: String,
}

impl Seen {
    /// A request of a log transport: an event stream, a WebSocket upgrade or a poll.
    fn is_stream(&self) -> bool {
        self.method == "GET"
            && (self.path.ends_with("/logs/events")
                || self.path.ends_with("/logs/ws")
                || self.path.ends_with("/logs"))
    }

    fn query_has(&self, pair: &str) -> bool {
        self.query.split('&').any(|p| p == pair)
    }
}

/// Every request a test server saw, in order.
#[derive(Clone, Default)]
struct RequestLog(Arc<Mutex<Vec<Seen>>>);

impl RequestLog {
    fn streams(&self) -> Vec<Seen> {
        let all = self.0.lock().unwrap();
        all.iter().filter(|s| s.is_stream()).cloned().collect()
    }
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn record(State(log): State<RequestLog>, req: Request, next: Next) -> Response {
    let seen = Seen {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or("").to_string(),
        last_event_id: header(&req, "last-event-id"),
        origin: header(&req, "origin"),
        version: format!("{:?}", req.version()),
    };
    log.0.lock().unwrap().push(seen);
    next.run(req).await
}

/// Like [`TestServer::start`], recording every request.
async fn start_server(config: ServerConfig) -> (TestServer, RequestLog) {
    let feed = FeedContext {
        backend: Arc::new(MemoryBackend::new(config.memory)),
        metrics: Metrics::new(config.max_connections),
        shutdown: Shutdown::new(),
    };
    let requests = RequestLog::default();
    let router = feed_server::app(feed.clone(), &config)
        .expect("valid server config")
        .layer(axum::middleware::from_fn_with_state(
            requests.clone(),
            record,
        ));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(feed_server::serve_with(
        listener,
        router,
        feed.clone(),
        config.serve.clone(),
    ));
    (TestServer { addr, feed, handle }, requests)
}

/// A quick browser reconnect (`retry: 200`) and the admin routes.
fn browser_config() -> ServerConfig {
    ServerConfig {
        sse: SseConfig {
            retry: Some(Duration::from_millis(200)),
            ..SseConfig::default()
        },
        admin_token: Some(ADMIN_TOKEN.into()),
        ..ServerConfig::default()
    }
}

/// Appends `body` to step `step` of build 1.
async fn append_to(server: &TestServer, step: &str, body: &str) {
    let r = server
        .post_text(
            &format!("/acme/app/builds/1/steps/{step}/logs"),
            body.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "append: {}", r.text());
}

async fn finish_step(server: &TestServer, step: &str) {
    let r = server
        .send(
            Method::POST,
            &format!("/acme/app/builds/1/steps/{step}/logs/finish"),
            &[],
            Bytes::new(),
        )
        .await
        .into_full()
        .await;
    assert_eq!(r.status, StatusCode::OK, "finish: {}", r.text());
}

/// `POST /admin/drop-connections/...` of [`TOPIC`]; returns how many subscriptions it ended.
async fn drop_connections(server: &TestServer) -> u64 {
    let r = server
        .send(
            Method::POST,
            &format!("/admin/drop-connections/{TOPIC_NAME}"),
            &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            Bytes::new(),
        )
        .await
        .into_full()
        .await;
    assert_eq!(r.status, StatusCode::OK, "drop: {}", r.text());
    r.json()["dropped"].as_u64().expect("dropped count")
}

/// The value of a per-transport metric.
async fn metric(server: &TestServer, name: &str, transport: &str) -> u64 {
    let text = server.metrics().await;
    let key = format!("{name}{{transport=\"{transport}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in metrics:\n{text}"))
}

/// Waits until the page has received a line with seq `n` or later and returns the seqs it
/// received (the caller checks they are exactly `1..=n`: a gap fails at once, not on time-out).
async fn wait_lines(browser: &Browser, n: usize) -> Vec<u64> {
    let v = browser
        .wait_for(
            &format!("{n} lines in the page"),
            &format!(
                "const s = window.viewerState; return s && s.lastSeq >= {n} ? s.lines : null;"
            ),
            PAGE_WAIT,
            EXPLAIN,
        )
        .await;
    serde_json::from_value(v).expect("seqs are numbers")
}

async fn wait_state(browser: &Browser, state: &str) {
    browser
        .wait_for(
            &format!("state {state}"),
            &format!("return window.viewerState && window.viewerState.state === '{state}';"),
            PAGE_WAIT,
            EXPLAIN,
        )
        .await;
}

async fn viewer_state(browser: &Browser) -> Value {
    browser.eval("return window.viewerState;").await
}

fn seqs(range: std::ops::RangeInclusive<u64>) -> Vec<u64> {
    range.collect()
}

/// Log lines that would break a page that treats them as markup, or mishandles CR or UTF-8.
const TRICKY_LINES: [&str; 5] = [
    "<b>bold</b> & <i>\"quoted\"</i>",
    "<img src=x onerror=\"window.pwned=1\">",
    "ünïcødé ✓ 日本語 🚀",
    "Downloading  10%\rDownloading 100%",
    "\ttab and  two spaces",
];

/// One transport, end to end: history then live lines, complete and in order; a dropped
/// connection resumed from the last seq with nothing lost or repeated; the finished step
/// shown, and no request after it.
async fn streams_resumes_after_a_drop_and_stops_when_finished(transport: &str) {
    let (server, requests) = start_server(browser_config()).await;
    server.append(&TRICKY_LINES.join("\n")).await;
    let browser = Browser::start().await;
    browser
        .goto(&format!(
            "http://{}/?topic={TOPIC_NAME}&transport={transport}&interval=100ms",
            server.addr
        ))
        .await;

    // History: complete, in order, shown as text.
    assert_eq!(wait_lines(&browser, 5).await, seqs(1..=5));
    let shown = browser
        .eval("return [1,2,3,4,5].map(n => document.querySelector('#L' + n + ' .tx').textContent);")
        .await;
    let mut expected: Vec<String> = TRICKY_LINES.iter().map(|s| s.to_string()).collect();
    // A carriage return redraws the line, as in a terminal.
    expected[3] = "Downloading 100%".into();
    assert_eq!(shown, serde_json::json!(expected), "lines shown as text");
    let injected = browser
        .eval("return document.querySelectorAll('#log b, #log i, #log img').length + (window.pwned ? 100 : 0);")
        .await;
    assert_eq!(injected, 0, "log text must never become markup");
    wait_state(&browser, "open").await;

    // Live lines.
    server.append("six\nseven\neight\nnine\nten").await;
    assert_eq!(wait_lines(&browser, 10).await, seqs(1..=10));

    // The server drops the connection; lines published meanwhile must still arrive, once.
    let streams_before = requests.streams().len();
    let dropped = drop_connections(&server).await;
    let more: Vec<String> = (11..=20).map(|i| format!("line {i}")).collect();
    server.append(&more.join("\n")).await;
    assert_eq!(wait_lines(&browser, 20).await, seqs(1..=20));
    let after_drop: Vec<Seen> = requests.streams()[streams_before..].to_vec();
    match transport {
        "sse" => {
            assert_eq!(dropped, 1, "the open event stream");
            // The browser's own reconnect, resuming by the id of the last event it got.
            let resumed = after_drop
                .iter()
                .find(|s| s.path.ends_with("/events"))
                .unwrap_or_else(|| panic!("no reconnect after the drop: {after_drop:?}"));
            assert_eq!(resumed.last_event_id.as_deref(), Some("10"), "{resumed:?}");
            wait_state(&browser, "open").await;
            assert!(viewer_state(&browser).await["reconnects"].as_u64() >= Some(1));
        }
        "ws" => {
            assert_eq!(dropped, 1, "the open WebSocket");
            let resumed = after_drop
                .iter()
                .find(|s| s.path.ends_with("/ws"))
                .unwrap_or_else(|| panic!("no reconnect after the drop: {after_drop:?}"));
            assert!(resumed.query_has("after=10"), "{resumed:?}");
            assert!(viewer_state(&browser).await["reconnects"].as_u64() >= Some(1));
        }
        "longpoll" => {
            assert_eq!(dropped, 1, "the held long-poll");
            // The cut poll is answered at once and the page asks again from the same cursor.
            assert!(
                after_drop.iter().any(|s| s.query_has("after=10")),
                "{after_drop:?}"
            );
        }
        _ => assert_eq!(dropped, 0, "short polls hold no connection"),
    }

    // The end of the step: shown, and the browser stops asking.
    server.finish().await;
    wait_state(&browser, "finished").await;
    let st = viewer_state(&browser).await;
    assert_eq!(st["lines"], serde_json::json!(seqs(1..=20)), "{st}");
    assert_eq!(st["finished"], true);
    assert_eq!(
        (st["gaps"].as_u64(), st["dups"].as_u64()),
        (Some(0), Some(0)),
        "{st}"
    );
    assert!(
        st["bytes"].as_u64() > Some(500),
        "payload bytes counted: {st}"
    );
    // Lines 6..=20 were published after Connect: each has a delivery latency.
    assert!(st["latencySamples"].as_u64() >= Some(15), "{st}");
    if transport == "sse" {
        assert_eq!(st["readyState"], 2, "EventSource closed: {st}");
    }
    let marker = browser
        .eval("return [document.getElementById('state').textContent, document.querySelector('#log .note.finished')?.textContent];")
        .await;
    assert_eq!(marker[0], "finished");
    assert!(
        marker[1].as_str().is_some_and(|t| t.contains("finished")),
        "{marker}"
    );
    let streams_at_finish = requests.streams().len();
    // Five retry intervals of the SSE hint, and ten polling intervals.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let late = requests.streams()[streams_at_finish..].to_vec();
    assert!(
        late.is_empty(),
        "requests after the step finished: {late:?}"
    );
    let open_transport = if transport.ends_with("poll") {
        "poll"
    } else {
        transport
    };
    assert_eq!(
        metric(&server, "pushbench_open_connections", open_transport).await,
        0
    );
}

#[tokio::test]
async fn browser_sse_streams_resumes_by_last_event_id_and_stops_when_finished() {
    streams_resumes_after_a_drop_and_stops_when_finished("sse").await;
}

#[tokio::test]
async fn browser_websocket_streams_resumes_after_a_drop_and_stops_when_finished() {
    streams_resumes_after_a_drop_and_stops_when_finished("ws").await;
}

#[tokio::test]
async fn browser_polling_streams_in_order_and_stops_when_finished() {
    streams_resumes_after_a_drop_and_stops_when_finished("poll").await;
}

#[tokio::test]
async fn browser_long_poll_streams_resumes_after_a_cut_and_stops_when_finished() {
    streams_resumes_after_a_drop_and_stops_when_finished("longpoll").await;
}

/// A feed server that lets pages of `page_origin` read it cross-origin, with a reader token.
fn cross_origin_config(page_origin: &str, token: Option<&str>) -> ServerConfig {
    ServerConfig {
        sse: SseConfig {
            retry: Some(Duration::from_millis(200)),
            cors: CorsConfig {
                allowed_origins: vec![page_origin.to_string()],
                allow_credentials: false,
            },
            auth: TokenAuth::new(token.map(str::to_string)),
            ..SseConfig::default()
        },
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn browser_page_from_another_origin_streams_every_transport_through_cors_and_the_token() {
    // The page comes from one server; the feed is another origin (another port), which
    // allows the page's origin and wants a token.
    let (pages, _) = start_server(ServerConfig::default()).await;
    let page_origin = format!("http://{}", pages.addr);
    let (feed, requests) = start_server(cross_origin_config(&page_origin, Some("s3cret"))).await;
    let browser = Browser::start().await;
    for transport in ["sse", "ws", "poll", "longpoll"] {
        let step = format!("cors-{transport}");
        append_to(&feed, &step, "one\ntwo").await;
        browser
            .goto(&format!(
                "{page_origin}/?server=http://{}&token=s3cret&topic=acme/app/builds/1/steps/{step}&transport={transport}&interval=100ms",
                feed.addr
            ))
            .await;
        assert_eq!(wait_lines(&browser, 2).await, seqs(1..=2), "{transport}");
        append_to(&feed, &step, "three").await;
        assert_eq!(wait_lines(&browser, 3).await, seqs(1..=3), "{transport}");
        finish_step(&feed, &step).await;
        wait_state(&browser, "finished").await;
        let st = viewer_state(&browser).await;
        assert_eq!(
            st["lines"],
            serde_json::json!(seqs(1..=3)),
            "{transport}: {st}"
        );
    }
    // The browser really went cross-origin, and the event stream carried the token.
    let sse = requests
        .streams()
        .into_iter()
        .find(|s| s.path.ends_with("/events"))
        .expect("an event stream request");
    assert_eq!(sse.origin.as_deref(), Some(page_origin.as_str()), "{sse:?}");
    assert!(sse.query_has("token=s3cret"), "{sse:?}");
    // The step list came through CORS and the token as well.
    let options = browser
        .wait_for(
            "the step list",
            "const o = [...document.querySelectorAll('#topic option')].map(o => o.value); \
             return o.includes('acme/app/builds/1/steps/cors-sse') ? o : null;",
            PAGE_WAIT,
            "return document.getElementById('topic').innerText;",
        )
        .await;
    assert_eq!(options.as_array().map(Vec::len), Some(4), "{options}");

    // A wrong or missing token: the page says why and shows no line.
    for (token, why) in [("&token=wrong", "invalid token"), ("", "missing token")] {
        browser
            .goto(&format!(
                "{page_origin}/?server=http://{}{token}&topic=acme/app/builds/1/steps/cors-sse&transport=sse",
                feed.addr
            ))
            .await;
        wait_state(&browser, "error").await;
        let st = viewer_state(&browser).await;
        let error = st["errors"][0].as_str().unwrap_or_default();
        assert!(error.contains("401") && error.contains(why), "{st}");
        assert_eq!(st["lines"], serde_json::json!([]), "{st}");
    }
}

#[tokio::test]
async fn browser_auto_scroll_follows_the_tail_and_pauses_while_scrolled_up() {
    let (server, _) = start_server(ServerConfig::default()).await;
    let first: Vec<String> = (1..=200).map(|i| format!("line {i}")).collect();
    server.append(&first.join("\n")).await;
    let browser = Browser::start().await;
    browser
        .goto(&format!(
            "http://{}/?topic={TOPIC_NAME}&transport=sse",
            server.addr
        ))
        .await;
    wait_lines(&browser, 200).await;
    const DISTANCE_FROM_BOTTOM: &str =
        "const l = document.getElementById('log'); return l.scrollHeight - l.scrollTop - l.clientHeight;";
    browser
        .wait_for(
            "the log scrolled to its end",
            &format!("return (() => {{ {DISTANCE_FROM_BOTTOM} }})() < 2;"),
            PAGE_WAIT,
            DISTANCE_FROM_BOTTOM,
        )
        .await;
    // The user scrolls up: new lines arrive but the view stays where the user put it.
    browser
        .eval("const l = document.getElementById('log'); l.scrollTop = 0; l.dispatchEvent(new Event('scroll'));")
        .await;
    server.append("line 201\nline 202").await;
    wait_lines(&browser, 202).await;
    let (top, follow_hidden) = {
        let v = browser
            .eval("return [document.getElementById('log').scrollTop, document.getElementById('follow').hidden];")
            .await;
        (v[0].as_f64(), v[1].as_bool())
    };
    assert_eq!(top, Some(0.0), "scrolled-up view kept");
    assert_eq!(
        follow_hidden,
        Some(false),
        "a 'follow' button offers the tail"
    );
    // Following again jumps to the end and stays there.
    browser
        .eval("document.getElementById('follow').click();")
        .await;
    server.append("line 203").await;
    wait_lines(&browser, 203).await;
    browser
        .wait_for(
            "the log following its end again",
            &format!("return (() => {{ {DISTANCE_FROM_BOTTOM} }})() < 2;"),
            PAGE_WAIT,
            DISTANCE_FROM_BOTTOM,
        )
        .await;
}

/// Whether the page in the current tab has its step's line 1 (its stream is open).
const HAS_FIRST_LINE: &str =
    "return !!(window.viewerState && window.viewerState.lines.length >= 1 && window.viewerState.state === 'open');";

/// Browsers open at most six HTTP/1.1 connections per host. An event stream holds one for as
/// long as it is open, so six open SSE log tabs take them all: a seventh tab's EventSource
/// (and any other request to that host) waits until one closes. Measured here with the
/// viewer itself, one tab per step; see docs/connection-limit.md.
#[tokio::test]
async fn browser_a_seventh_sse_tab_waits_for_one_of_six_connections_per_host() {
    let (pages, _) = start_server(ServerConfig::default()).await;
    let page_origin = format!("http://{}", pages.addr);
    let (feed, requests) = start_server(cross_origin_config(&page_origin, None)).await;
    for tab in 1..=7 {
        append_to(&feed, &format!("tab{tab}"), "line").await;
    }
    let viewer = |server: &str, tab: u32, transport: &str| {
        format!(
            "{page_origin}/?server={server}&topic=acme/app/builds/1/steps/tab{tab}&transport={transport}"
        )
    };
    let feed_url = format!("http://{}", feed.addr);
    let browser = Browser::start().await;

    let mut tabs = vec![browser.current_tab().await];
    browser.goto(&viewer(&feed_url, 1, "sse")).await;
    for tab in 2..=6 {
        tabs.push(browser.new_tab().await);
        browser.goto(&viewer(&feed_url, tab, "sse")).await;
    }
    for (i, handle) in tabs.iter().enumerate() {
        browser.switch_to(handle).await;
        browser
            .wait_for(
                &format!("tab {} streaming", i + 1),
                HAS_FIRST_LINE,
                PAGE_WAIT,
                EXPLAIN,
            )
            .await;
    }
    assert_eq!(metric(&feed, "pushbench_open_connections", "sse").await, 6);

    // The seventh tab: its page loads (from the other origin) but its stream never starts.
    let seventh = browser.new_tab().await;
    browser.goto(&viewer(&feed_url, 7, "sse")).await;
    let seventh_loaded = Instant::now();
    let stalled_for = Duration::from_secs(2);
    tokio::time::sleep(stalled_for).await;
    let st = viewer_state(&browser).await;
    assert_eq!(st["state"], "connecting", "{st}");
    assert_eq!(st["lines"], serde_json::json!([]), "{st}");
    let tab7_requests = |r: &RequestLog| {
        r.streams()
            .into_iter()
            .filter(|s| s.path.contains("/steps/tab7/"))
            .count()
    };
    assert_eq!(
        tab7_requests(&requests),
        0,
        "the seventh stream's request never left the browser"
    );
    assert_eq!(metric(&feed, "pushbench_open_connections", "sse").await, 6);
    // Not just streams: every request to that host waits, here a plain fetch.
    let fetch = browser
        .eval_async(&format!(
            "const done = arguments[0]; \
             const timer = setTimeout(() => done('still waiting after 1 s'), 1000); \
             fetch('{feed_url}/healthz').then(r => {{ clearTimeout(timer); done('answered ' + r.status); }}, \
                                              e => {{ clearTimeout(timer); done('failed ' + e); }});"
        ))
        .await;
    assert_eq!(fetch, "still waiting after 1 s");

    // A WebSocket is not an HTTP connection of that pool: it opens at once.
    browser.new_tab().await;
    let t = Instant::now();
    browser.goto(&viewer(&feed_url, 7, "ws")).await;
    browser
        .wait_for(
            "a WebSocket tab streaming",
            HAS_FIRST_LINE,
            PAGE_WAIT,
            EXPLAIN,
        )
        .await;
    let ws_open = t.elapsed();
    browser.close_tab().await;
    browser.switch_to(&seventh).await;

    // The limit is per host: the same server named differently gets its own six.
    browser.new_tab().await;
    let t = Instant::now();
    browser
        .goto(&viewer(
            &format!("http://localhost:{}", feed.addr.port()),
            7,
            "sse",
        ))
        .await;
    browser
        .wait_for(
            "an SSE tab through another host name",
            HAS_FIRST_LINE,
            PAGE_WAIT,
            EXPLAIN,
        )
        .await;
    let other_host_open = t.elapsed();
    browser.close_tab().await;
    // Still waiting, all this time.
    browser.switch_to(&seventh).await;
    assert_eq!(viewer_state(&browser).await["state"], "connecting");

    // Closing one of the six lets the seventh through.
    browser.switch_to(&tabs[0]).await;
    browser.close_tab().await;
    let t = Instant::now();
    browser.switch_to(&seventh).await;
    browser
        .wait_for(
            "the seventh tab streaming after one closed",
            HAS_FIRST_LINE,
            PAGE_WAIT,
            EXPLAIN,
        )
        .await;
    let seventh_open = t.elapsed();
    let seventh_waited = seventh_loaded.elapsed();
    assert!(tab7_requests(&requests) >= 1);
    eprintln!(
        "six connections per host: the 7th SSE tab stayed 'connecting' for {stalled_for:?} with 6 \
         open (its request never reached the server; a fetch to the host waited too); a WebSocket \
         tab streamed after {ws_open:?}; an SSE tab via another host name after {other_host_open:?}; \
         the 7th streamed {seventh_open:?} after one of the six tabs closed, having waited \
         {seventh_waited:?} in all"
    );
}

/// Ends a spawned server when the test ends, passed or failed.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Refreshes the README's screenshot, `docs/viewer.png`: the real binary with its built-in
/// generator, watched over SSE. Run it on purpose:
/// `cargo test -p feed-server --test browser -- --ignored screenshot`.
#[tokio::test]
#[ignore = "writes docs/viewer.png; run on purpose to refresh the README's screenshot"]
async fn screenshot_of_the_viewer_for_the_readme() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_feed-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--gen-topics",
            "4",
            "--gen-rate",
            "8",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start feed-server");
    let stdout = child.stdout.take().expect("piped stdout");
    let server = KillOnDrop(child);
    // `generator origin unix_ns=N` comes first, then `listening on`.
    let base = std::io::BufReader::new(stdout)
        .lines()
        .map(|l| l.expect("read feed-server's stdout"))
        .find_map(|l| l.trim().strip_prefix("listening on ").map(str::to_string))
        .expect("feed-server printed `listening on`");
    // Some history first, then live lines with their latency.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let browser = Browser::start().await;
    browser
        .goto(&format!(
            "{base}/?topic=acme/app/builds/1/steps/2&transport=sse"
        ))
        .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let png = browser.screenshot().await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/viewer.png");
    std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs")).unwrap();
    std::fs::write(path, &png).unwrap();
    eprintln!("wrote {path} ({} bytes)", png.len());
    drop(server);
}

/// Over HTTP/2 (TLS with ALPN `h2`, the only way browsers speak it) every event stream of a
/// page is a stream of one connection, so the six-connections-per-host limit of HTTP/1.1 is
/// gone: one page opens ten SSE logs and all ten stream (over HTTP/1.1 the seventh waits,
/// as the test above shows). The server's request log shows the ten requests came over
/// HTTP/2.
#[tokio::test]
async fn browser_one_page_streams_ten_sse_logs_over_http2() {
    const LOGS: usize = 10;
    let tls = feed_server::tls::self_signed().expect("self-signed certificate");
    let config = ServerConfig {
        serve: pushbench_sse::ServeConfig {
            tls: Some(tls),
            ..pushbench_sse::ServeConfig::default()
        },
        ..ServerConfig::default()
    };
    let (feed, requests) = start_server(config).await;
    for log in 0..LOGS {
        append_to(&feed, &format!("h2log{log}"), "one\ntwo\nthree").await;
    }
    let browser = Browser::start_with(&["--ignore-certificate-errors"]).await;
    browser
        .goto(&format!("https://localhost:{}/healthz", feed.addr.port()))
        .await;
    browser
        .eval(&format!(
            "window.got = []; window.opened = 0; \
             for (let i = 0; i < {LOGS}; i++) {{ \
               window.got[i] = []; \
               const es = new EventSource('/acme/app/builds/1/steps/h2log' + i + '/logs/events'); \
               es.onopen = () => window.opened++; \
               es.onmessage = (e) => window.got[i].push(JSON.parse(e.data).seq); \
             }} \
             return true;"
        ))
        .await;
    let all = format!(
        "return window.got.length === {LOGS} && window.got.every(g => g.length >= 3) \
         && window.opened === {LOGS};"
    );
    browser
        .wait_for(
            "ten SSE logs streaming on one page",
            &all,
            PAGE_WAIT,
            "return JSON.stringify({opened: window.opened, got: window.got});",
        )
        .await;
    let got = browser.eval("return window.got;").await;
    for (i, seqs) in got.as_array().unwrap().iter().enumerate() {
        assert_eq!(
            seqs,
            &serde_json::json!([1, 2, 3]),
            "log {i}: every line once"
        );
    }
    let streams = requests.streams();
    assert_eq!(streams.len(), LOGS, "one request per log: {streams:?}");
    assert!(
        streams.iter().all(|s| s.version == "HTTP/2.0"),
        "every stream over HTTP/2: {streams:?}"
    );
    assert_eq!(
        metric(&feed, "pushbench_open_connections", "sse").await,
        LOGS as u64
    );
}
