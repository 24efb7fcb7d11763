//! Property tests of feed-server's HTTP inputs over real sockets, issue 13.
//!
//! Every byte a client sends is untrusted: the request line, the headers, the query and the
//! body. One server (the real `feed_server::app`, on port 0) takes generated requests written
//! raw to a TCP socket, so that bytes no well-behaved client library would send reach it too.
//! For every request:
//!
//! - the server answers within 2 s (a complete status line and head), or closes the
//!   connection within 2 s: it never hangs a client that sent a whole request;
//! - the answer's status is below 500: all of these are the client's mistakes, or fine;
//! - no task of the server panics (a panic hook counts them: axum does not catch a handler's
//!   panic, the connection would just close);
//! - the server then still serves a good request (a poll of a live step, answered 200).
//!
//! Inputs: arbitrary request targets (paths with odd and non-ASCII bytes, `%`-escapes, dot
//! segments, overlong segments, odd methods); the query values of `after`, `wait`, `limit`,
//! `lastEventId` (repeated, empty, negative, huge, non-numeric); `Last-Event-ID` and other
//! header names and values of any bytes; POST bodies of any bytes, text with odd line ends and
//! JSON-ish mutations, under any content type, sent with `Content-Length` or chunked. Requests
//! whose framing asks the server to wait for more (a `Content-Length` longer than the body)
//! are not generated: waiting for them is right. Long-polls (`wait`) go to a finished step,
//! which answers at once, so a long wait is never mistaken for a hang.
//!
//! `tests/corpus/http/*.txt` replays requests that pin edge cases: a request's head lines,
//! one per file line (sent with CRLF), then an optional blank line and body; `\r`, `\n`,
//! `\t`, `\\` and `\xHH` are escapes, `connection: close` is added and `content-length` too
//! when there is a body and the head has no framing header.
//!
//! CI runs 64 cases per property (each is a real request). To search harder:
//! `PROPTEST_CASES=5000 cargo test -p feed-server --test prop_http`. A failure is shrunk and
//! its seed saved under `servers/feed-server/tests/`; commit that file, and add the shrunk
//! request to the corpus.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use feed_server::ServerConfig;
use proptest::prelude::*;
use proptest::sample::select;
use pushbench_protocol::Route;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

/// How long a request may take to be answered or refused.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// A step with lines that is not finished: its streams stay open, so only polls without
/// `wait` and stream heads are sent to it.
const LIVE: &str = TOPIC;
/// A finished step: long-polls and streams of it answer at once.
const DONE: &str = "acme/app/builds/2/steps/done";
/// The step the body property appends to (and may finish).
const FUZZ: &str = "acme/app/builds/3/steps/fuzz";
const ADMIN_TOKEN: &str = "fuzz-admin";

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 64;
    }
    config
}

/// Panics seen in the server's threads since the test binary started.
static PANICS: AtomicUsize = AtomicUsize::new(0);
/// The server runtime's thread name: the panic hook counts only those threads' panics, not a
/// failing test's own in another thread.
const SERVER_THREAD: &str = "prop-http-server";

struct Fixture {
    /// Never read, only kept: dropping it would stop the server.
    _rt: Runtime,
    server: TestServer,
}

/// The one server all properties share, with its steps prepared, on a runtime of its own
/// whose workers keep serving between cases.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some(SERVER_THREAD) {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            default_hook(info);
        }));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(SERVER_THREAD)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(async {
            let server = TestServer::start(ServerConfig {
                admin_token: Some(ADMIN_TOKEN.to_owned()),
                ..ServerConfig::default()
            })
            .await;
            server.append("one\ntwo\nthree").await;
            for topic in [DONE, FUZZ] {
                let r = server.post_text(&Route::Logs.path(topic), "a\nb\nc").await;
                assert_eq!(r.status, 200, "{}", r.text());
            }
            let r = server
                .send(hyper::Method::POST, &Route::Finish.path(DONE), &[], "")
                .await
                .into_full()
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
            server
        });
        Fixture { _rt: rt, server }
    })
}

/// What a client saw after sending a request.
#[derive(Debug)]
enum Reply {
    /// A status line (and, unless the connection closed first, the whole head).
    Answered(u16),
    /// The connection closed (EOF or reset) with no status line.
    Closed,
}

/// Sends `request` on a fresh connection; the reply, or `Err` if neither an answer nor a close
/// came within [`ANSWER_WITHIN`].
async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> Result<Reply, String> {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        // The server may answer (400, 431) and close before reading everything: a failed
        // write is not the end, the answer may be waiting.
        let _ = stream.write_all(request).await;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return status_of(&buf).map_or(Reply::Closed, Reply::Answered);
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                return status_of(&buf).map_or(Reply::Closed, Reply::Answered);
            }
        }
    };
    tokio::time::timeout(ANSWER_WITHIN, attempt)
        .await
        .map_err(|_| format!("no answer and no close within {ANSWER_WITHIN:?}"))
}

/// The status of `HTTP/1.x NNN ...`, if `head` starts with one.
fn status_of(head: &[u8]) -> Option<u16> {
    let rest = head.strip_prefix(b"HTTP/1.")?.get(2..)?;
    std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()
}

/// Sends `request` and checks the properties the module docs list.
fn check(request: &[u8]) -> Result<(), TestCaseError> {
    let f = fixture();
    let panics_before = PANICS.load(Ordering::SeqCst);
    // The client runs on a runtime of its own: were its timeout driven by the server's
    // runtime, a server that blocked its threads would also stop the clock that catches it.
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reply = client.block_on(exchange(f.server.addr, request));
    let shown = String::from_utf8_lossy(request);
    let reply = reply.map_err(|e| TestCaseError::fail(format!("{e}: {shown:?}")))?;
    if let Reply::Answered(status) = reply {
        prop_assert!(status < 500, "status {} for {:?}", status, shown);
    }
    // The good request, which also lets a panic in a task that outlived the answer surface.
    let good = client.block_on(exchange(
        f.server.addr,
        format!(
            "GET {}?after=0 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            Route::Logs.path(LIVE)
        )
        .as_bytes(),
    ));
    prop_assert!(
        matches!(good, Ok(Reply::Answered(200))),
        "after {:?}: a good poll got {:?}",
        shown,
        good
    );
    prop_assert_eq!(
        PANICS.load(Ordering::SeqCst),
        panics_before,
        "the server panicked on {:?}",
        shown
    );
    Ok(())
}

/// A request: `METHOD TARGET HTTP/1.1`, `host`, the given headers, `connection: close`, the
/// body's framing, a blank line, the body.
fn request(method: &[u8], target: &[u8], headers: &[(Vec<u8>, Vec<u8>)], body: &Body) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(method);
    r.push(b' ');
    r.extend_from_slice(target);
    r.extend_from_slice(b" HTTP/1.1\r\nhost: 127.0.0.1\r\n");
    for (name, value) in headers {
        r.extend_from_slice(name);
        r.extend_from_slice(b": ");
        r.extend_from_slice(value);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"connection: close\r\n");
    match body {
        Body::None => r.extend_from_slice(b"\r\n"),
        Body::Sized(bytes) => {
            r.extend_from_slice(format!("content-length: {}\r\n\r\n", bytes.len()).as_bytes());
            r.extend_from_slice(bytes);
        }
        Body::Chunked(chunks) => {
            r.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
            for chunk in chunks.iter().filter(|c| !c.is_empty()) {
                r.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                r.extend_from_slice(chunk);
                r.extend_from_slice(b"\r\n");
            }
            r.extend_from_slice(b"0\r\n\r\n");
        }
    }
    r
}

#[derive(Clone, Debug)]
enum Body {
    None,
    Sized(Vec<u8>),
    Chunked(Vec<Vec<u8>>),
}

// ---- generators ----

fn bytes(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// Path segments: the routes' own words, dot segments raw and escaped, escapes of NUL, of a
/// slash and broken ones, non-ASCII and invalid UTF-8, and segments over the 100-byte bound.
fn segment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => select(&[
            "acme", "app", "builds", "1", "2", "steps", "test", "done", "logs", "events", "ws",
            "finish", "topics", "healthz", "metrics", "admin", "drop-connections", "",
        ][..]).prop_map(bytes),
        2 => select(&[
            ".", "..", "%2e%2e", "%2E.", "%2F", "%2f..", "%00", "%ff", "%zz", "%", "%%", "%e9",
            "é", "😀", "~", ";", "@", "*", "\\", ":", "a b", "%20", "+",
        ][..]).prop_map(bytes),
        1 => select(vec![&[0x80u8][..], &[0xFF], &[0x7F], &[0x00], b"\t", b"\r", b"\n"])
            .prop_map(<[u8]>::to_vec),
        1 => (1usize..4).prop_map(|k| vec![b'a'; [100, 101, 5000][k - 1]]),
        1 => prop::collection::vec(any::<u8>(), 1..6),
    ]
}

/// Values for `after`, `limit`, `wait` and `lastEventId`.
fn query_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => select(&[
            "0", "1", "2", "3", "4", "-1", "+1", " 1", "1 ", "%201", "01", "1e3", "0x10", "1.5",
            "", "abc", "%00", "1,2", "18446744073709551615", "18446744073709551614",
            "18446744073709551616", "99999999999999999999999", "0s", "1ms", "30s", "2m", "121s",
            "120s", "1h", "1 s", "-1s", "18446744073709551615s", "584942417355y", "1ns", "10000",
            "10001", "4294967296", "é", "%ff", "%", "%zz", "&", "=", "#",
        ][..]).prop_map(bytes),
        1 => prop::collection::vec(any::<u8>(), 0..8),
    ]
}

/// A query string: `after`, `limit`, `wait` (if `with_wait`), `lastEventId` and a few
/// unknown names, repeated or not, with or without `=`.
fn query(with_wait: bool) -> impl Strategy<Value = Vec<u8>> {
    let names: &'static [&'static str] = if with_wait {
        &[
            "after",
            "limit",
            "wait",
            "lastEventId",
            "token",
            "fraction",
            "x",
            "",
            "after[]",
        ]
    } else {
        &[
            "after",
            "limit",
            "lastEventId",
            "token",
            "fraction",
            "x",
            "",
            "after[]",
        ]
    };
    prop::collection::vec((select(names), any::<bool>(), query_value()), 0..5).prop_map(|params| {
        let mut q = Vec::new();
        for (i, (name, eq, value)) in params.into_iter().enumerate() {
            if i > 0 {
                q.push(b'&');
            }
            q.extend_from_slice(name.as_bytes());
            if eq || !value.is_empty() {
                q.push(b'=');
                q.extend_from_slice(&value);
            }
        }
        q
    })
}

fn method() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => Just(bytes("GET")),
        2 => Just(bytes("POST")),
        2 => select(&["HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "CONNECT", "TRACE", "get",
            "GETT", "G\u{e9}T", "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"][..]).prop_map(bytes),
        1 => prop::collection::vec(any::<u8>(), 1..6),
    ]
}

/// A request target: an origin-form path (of any segments, or a real route's), the asterisk or
/// an absolute form, with a query (without `wait`: it may be a live step) and a fragment.
fn target() -> impl Strategy<Value = Vec<u8>> {
    let path = prop_oneof![
        2 => prop::collection::vec(segment(), 0..9).prop_map(|segs| {
            let mut p = vec![b'/'];
            p.extend(segs.join(&b'/'));
            p
        }),
        1 => select(vec![
            Route::Logs.path(LIVE), Route::Events.path(LIVE), Route::Ws.path(LIVE),
            Route::Logs.path(DONE), Route::Events.path(DONE), Route::Finish.path(FUZZ),
            format!("/admin/drop-connections/{LIVE}"), "/topics".to_owned(),
            "/".to_owned(), "/metrics".to_owned(), "/healthz".to_owned(),
        ]).prop_map(String::into_bytes),
    ];
    (
        select(&["", "", "", "*", "http://127.0.0.1", "//", "http://[::1]:1"][..]),
        path,
        prop::option::of(query(false)),
        prop::option::of(select(&["#", "#frag", "#%00"][..])),
    )
        .prop_map(|(prefix, path, query, fragment)| {
            let mut t = bytes(prefix);
            t.extend(path);
            if let Some(q) = query {
                t.push(b'?');
                t.extend(q);
            }
            if let Some(f) = fragment {
                t.extend_from_slice(f.as_bytes());
            }
            t
        })
}

/// Header names: the ones the routes read, near misses, and any bytes (but never one that
/// frames the body or switches protocols, which would rightly make the server wait).
fn header_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // The ones some route reads, so that their values get past the header parser often.
        4 => select(&[
            "Last-Event-ID", "last-event-id", "If-None-Match", "Authorization", "Origin",
        ][..]).prop_map(bytes),
        2 => select(&[
            "LAST-EVENT-ID", "Accept", "Content-Type", "Cookie", "Accept-Encoding", "Range",
            "If-Modified-Since", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "X-Forwarded-For",
            "Host", "last-event-id ", " last-event-id", "last event id", "", ":", "é",
        ][..]).prop_map(bytes),
        1 => prop::collection::vec(any::<u8>(), 1..10).prop_filter("no framing header", |n| {
            let n = String::from_utf8_lossy(n).to_ascii_lowercase();
            !["content-length", "transfer-encoding", "expect", "upgrade", "connection"]
                .iter()
                .any(|f| n.contains(f))
        }),
    ]
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => query_value(),
        2 => select(&[
            "\"\"", "\"abc\"", "*", "W/\"1\"", "Bearer ", "Bearer fuzz-admin", "Bearer x",
            "Basic Zm9vOmJhcg==", "http://evil.example", "null", "text/event-stream",
            "\u{1}", " ", "\t", "a\u{0}b", "é😀",
        ][..]).prop_map(bytes),
        1 => Just(vec![b'a'; 8000]),
        // What HTTP allows in a value (visible ASCII, space, obs-text): it reaches the routes.
        2 => prop::collection::vec(prop_oneof![0x20u8..=0x7E, 0x80u8..=0xFF], 0..16),
        2 => prop::collection::vec(any::<u8>(), 0..24),
    ]
}

/// Lines a publisher might send: odd line ends, NUL, invalid UTF-8, JSON-ish text.
fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        select(
            &[
                "line",
                "\n",
                "\r\n",
                "\r",
                "\n\n",
                "\0",
                "é",
                "😀",
                "{\"lines\":[\"a\"]}",
                "{",
                "}",
                "[",
                "]",
                "\"",
                "\\",
                ":",
                ",",
                "null",
                "1e999",
                "{\"a\":",
                "\u{FEFF}",
                " ",
            ][..]
        )
        .prop_map(bytes),
        select(vec![
            &[0xFFu8][..],
            &[0x80],
            &[0xE2, 0x82],
            &[0xC0, 0xAF],
            &[0xED, 0xA0, 0x80],
        ])
        .prop_map(<[u8]>::to_vec),
    ];
    prop_oneof![
        3 => prop::collection::vec(piece, 0..16).prop_map(|p| p.concat()),
        1 => prop::collection::vec(any::<u8>(), 0..512),
        1 => (1usize..3).prop_map(|k| vec![b'x'; [4096, 70_000][k - 1]]),
    ]
}

fn body() -> impl Strategy<Value = Body> {
    (
        body_bytes(),
        prop::collection::vec(any::<proptest::sample::Index>(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(bytes, cuts, chunked)| {
            if !chunked {
                return Body::Sized(bytes);
            }
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for cut in cuts {
                chunks.push(bytes[start..cut].to_vec());
                start = cut;
            }
            chunks.push(bytes[start..].to_vec());
            Body::Chunked(chunks)
        })
}

proptest! {
    #![proptest_config(config())]

    /// Odd request lines: any method, any target, no body.
    #[test]
    fn any_request_target_is_answered(method in method(), target in target()) {
        check(&request(&method, &target, &[], &Body::None))?;
    }

    /// The read routes' query values; `wait` only on the finished step, where long-polls end
    /// at once.
    #[test]
    fn any_query_value_is_answered(
        (path, query) in prop_oneof![
            (select(vec![Route::Logs.path(DONE), Route::Events.path(DONE)]), query(true)),
            (select(vec![Route::Logs.path(LIVE), Route::Events.path(LIVE), Route::Ws.path(LIVE)]),
                query(false)),
        ],
    ) {
        let mut target = path.into_bytes();
        target.push(b'?');
        target.extend(query);
        check(&request(b"GET", &target, &[], &Body::None))?;
    }

    /// `Last-Event-ID` values, on a well-formed stream request: numbers of the whole `u64`
    /// range and past it, padded, signed, empty, any visible ASCII, `obs-text` bytes (which
    /// HTTP allows in a value) and any bytes.
    #[test]
    fn any_last_event_id_is_answered(
        path in select(vec![
            Route::Events.path(LIVE), Route::Events.path(DONE), Route::Logs.path(LIVE),
        ]),
        value in prop_oneof![
            3 => any::<u64>().prop_map(|n| n.to_string().into_bytes()),
            3 => (0u64..8).prop_map(|n| n.to_string().into_bytes()),
            2 => query_value(),
            1 => (any::<u64>(), select(&[" ", "0", "+", "-", "\t", "x", ".0"][..]), any::<bool>())
                .prop_map(|(n, pad, before)| if before {
                    format!("{pad}{n}").into_bytes()
                } else {
                    format!("{n}{pad}").into_bytes()
                }),
            1 => "[ -~]{0,16}".prop_map(String::into_bytes),
            1 => prop::collection::vec(0x80u8..=0xFF, 1..6),
            1 => prop::collection::vec(any::<u8>(), 0..12),
        ],
        query in prop::option::of(query(false)),
    ) {
        let mut target = path.into_bytes();
        if let Some(q) = query {
            target.push(b'?');
            target.extend(q);
        }
        check(&request(b"GET", &target, &[(bytes("Last-Event-ID"), value)], &Body::None))?;
    }

    /// Header names and values of any bytes on every route a client reads.
    #[test]
    fn any_header_is_answered(
        path in select(vec![
            Route::Events.path(LIVE), Route::Events.path(DONE), Route::Logs.path(LIVE),
            Route::Logs.path(LIVE), Route::Ws.path(LIVE), "/".to_owned(), "/topics".to_owned(), "/metrics".to_owned(),
            format!("/admin/drop-connections/{DONE}"),
        ]),
        headers in prop::collection::vec((header_name(), header_value()), 1..4),
    ) {
        // The admin route is a POST; the others are reads.
        let method: &[u8] = if path.starts_with("/admin") { b"POST" } else { b"GET" };
        check(&request(method, path.as_bytes(), &headers, &Body::None))?;
    }

    /// Bodies of any bytes under any content type, to the publishing routes (and to a read
    /// route and the finished step, which must refuse them).
    #[test]
    fn any_body_is_answered(
        path in select(vec![
            Route::Logs.path(FUZZ), Route::Logs.path(FUZZ), Route::Logs.path(FUZZ),
            Route::Finish.path(FUZZ), Route::Logs.path(DONE), Route::Events.path(LIVE),
        ]),
        content_type in prop::option::of(prop_oneof![
            select(&["text/plain", "text/plain; charset=utf-8", "TEXT/PLAIN", "text/plain;;",
                "application/json", "text/plainx", "", "multipart/form-data; boundary=x"][..])
                .prop_map(bytes),
            prop::collection::vec(any::<u8>(), 0..12),
        ]),
        body in body(),
    ) {
        let headers: Vec<_> = content_type.into_iter().map(|v| (bytes("content-type"), v)).collect();
        check(&request(b"POST", path.as_bytes(), &headers, &body))?;
    }
}

/// Decodes a corpus file's escapes (see the module docs).
fn unescape(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('\\') => out.push(b'\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&hex, 16).expect("\\xHH in a corpus file"));
            }
            other => panic!("unknown escape \\{other:?} in a corpus file"),
        }
    }
    out
}

/// A corpus file as the request it describes (see the module docs).
fn corpus_request(text: &str) -> Vec<u8> {
    let (head, body) = match text.split_once("\n\n") {
        Some((head, body)) => (head, unescape(body)),
        None => (text.trim_end_matches('\n'), Vec::new()),
    };
    let mut r = Vec::new();
    let mut framed = false;
    for line in head.split('\n') {
        let lower = line.to_ascii_lowercase();
        framed |= lower.starts_with("content-length:") || lower.starts_with("transfer-encoding:");
        r.extend(unescape(line));
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"connection: close\r\n");
    if !framed && !body.is_empty() {
        r.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    r.extend_from_slice(b"\r\n");
    r.extend(body);
    r
}

/// Replays `tests/corpus/http/*.txt` with the same checks as the properties.
#[test]
fn corpus_is_answered() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/http");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "txt"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "only {} files in {}",
        files.len(),
        dir.display()
    );
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        if let Err(e) = check(&corpus_request(&text)) {
            panic!("{}: {e}", path.display());
        }
    }
}
