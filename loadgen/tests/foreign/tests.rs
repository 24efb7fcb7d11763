//! The foreign server on its own, spoken to by hand: so that a failing end-to-end test means
//! pushbench is wrong, not the server. The event stream is checked with a reference parser
//! written here from the WHATWG rules, not with pushbench's.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

use super::{ForeignServer, Options, PostCounts};

const TOPIC: &str = "acme/app/builds/7/steps/1";
/// Long enough for anything on loopback; only reached when something is broken.
const PATIENCE: Duration = Duration::from_secs(5);

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }
}

/// Reads a response head from `stream`, leaving what followed it in `buf`.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Response {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut res = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(len) = res.parse(buf).expect("valid response head") {
            let response = Response {
                status: res.code.unwrap(),
                headers: res
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8(h.value.to_vec()).unwrap(),
                        )
                    })
                    .collect(),
                body: Vec::new(),
            };
            buf.drain(..len);
            return response;
        }
        read_more(stream, buf).await;
    }
}

/// Appends the next bytes the server sends; panics at end of stream or after [`PATIENCE`].
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) {
    let n = timeout(PATIENCE, stream.read_buf(buf))
        .await
        .expect("the server answers")
        .expect("read");
    assert!(n > 0, "the server closed the connection");
}

/// A whole response with a `Content-Length` body (or none, for 304).
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Response {
    let mut response = read_head(stream, buf).await;
    let len: usize = match response.header("content-length") {
        Some(v) => v.parse().unwrap(),
        None => {
            assert_eq!(response.status, 304, "a body without Content-Length");
            0
        }
    };
    while buf.len() < len {
        read_more(stream, buf).await;
    }
    response.body = buf.drain(..len).collect();
    response
}

async fn get(stream: &mut TcpStream, target: &str, headers: &str) -> Response {
    let request = format!("GET {target} HTTP/1.1\r\nHost: foreign\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    read_response(stream, &mut Vec::new()).await
}

/// POSTs one line the way pushbench's publisher does; checks the server closed afterwards.
async fn post(server: &ForeignServer, path: &str, line: &str) -> Response {
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: foreign\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{line}",
        line.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let response = read_response(&mut stream, &mut buf).await;
    let rest = timeout(PATIENCE, stream.read_to_end(&mut buf))
        .await
        .expect("the server closes after a POST")
        .unwrap();
    assert_eq!(rest, 0, "nothing after the response");
    response
}

fn line(i: u64) -> String {
    format!("pb:{i}:{i}000000 line {i} xxxxxxxx")
}

/// WHATWG event-stream interpretation of a complete byte stream: `(type, data, last id)` of
/// each dispatched event. Written from the standard, independently of pushbench's parser.
fn parse_event_stream(bytes: &[u8]) -> Vec<(String, String, String)> {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let (mut events, mut data, mut kind, mut id) =
        (Vec::new(), String::new(), String::new(), String::new());
    let mut rest = text;
    // Only complete lines: a line still being written is left for later.
    while let Some(end) = rest.find(['\r', '\n']) {
        let line = &rest[..end];
        let eol = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + eol..];
        if line.is_empty() {
            if !data.is_empty() {
                data.pop();
                let kind = if kind.is_empty() { "message" } else { &kind };
                events.push((kind.to_string(), std::mem::take(&mut data), id.clone()));
            }
            data.clear();
            kind.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "event" => kind = value.to_string(),
            "id" if !value.contains('\0') => id = value.to_string(),
            _ => {}
        }
    }
    events
}

/// Decodes the complete chunks of a chunked body: the data and each chunk's size.
fn dechunk(mut bytes: &[u8]) -> (Vec<u8>, Vec<usize>) {
    let (mut data, mut sizes) = (Vec::new(), Vec::new());
    while let Some(eol) = bytes.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&bytes[..eol]).unwrap(), 16).unwrap();
        if bytes.len() < eol + 2 + size + 2 {
            break;
        }
        assert_eq!(&bytes[eol + 2 + size..eol + 4 + size], b"\r\n", "chunk end");
        data.extend_from_slice(&bytes[eol + 2..eol + 2 + size]);
        sizes.push(size);
        bytes = &bytes[eol + 4 + size..];
    }
    (data, sizes)
}

fn expected_events(ids: std::ops::RangeInclusive<u64>) -> Vec<(String, String, String)> {
    ids.map(|i| ("message".to_string(), line(i), i.to_string()))
        .collect()
}

#[tokio::test]
async fn publishing_appends_closes_and_fails_every_nth() {
    let server = ForeignServer::start(Options {
        fail_every: Some(3),
    });
    let mut statuses = Vec::new();
    for i in 1..=7 {
        let r = post(&server, &format!("/pub/{TOPIC}"), &line(i)).await;
        assert_eq!(r.header("connection"), Some("close"));
        assert!(!r.body.is_empty(), "a body with every answer");
        statuses.push(r.status);
    }
    assert_eq!(statuses, [200, 200, 503, 200, 200, 503, 200]);
    // Another build: counted apart, after the first.
    let r = post(&server, "/pub/acme/app/builds/8/steps/2", &line(1)).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        server.posts_by_build(),
        [
            (
                "acme/app/builds/7".to_string(),
                PostCounts {
                    received: 7,
                    unavailable: 2,
                    appended: 5
                }
            ),
            (
                "acme/app/builds/8".to_string(),
                PostCounts {
                    received: 1,
                    unavailable: 0,
                    appended: 1
                }
            ),
        ]
    );
    let kept: Vec<String> = server.lines(TOPIC).iter().map(|l| l.to_string()).collect();
    assert_eq!(kept, [line(1), line(2), line(4), line(5), line(7)]);
    // Too short a topic, a GET on the publish route, an unknown kind: 404 with a body.
    for (method, path) in [
        ("POST", "/pub/acme/app/builds/7"),
        ("GET", "/pub/acme/app/builds/7/steps/1"),
        ("GET", "/sub/acme/app/builds/7/steps/1/feed"),
        ("GET", "/"),
    ] {
        let mut s = TcpStream::connect(server.addr()).await.unwrap();
        let request =
            format!("{method} {path} HTTP/1.1\r\nHost: foreign\r\nContent-Length: 0\r\n\r\n");
        s.write_all(request.as_bytes()).await.unwrap();
        let r = read_response(&mut s, &mut Vec::new()).await;
        assert_eq!(r.status, 404, "{method} {path}");
        assert!(!r.body.is_empty());
    }
    assert_eq!(server.posts().received, 8, "404s are not POSTs received");
}

#[tokio::test]
async fn the_event_stream_is_legal_awkward_and_endless() {
    let server = ForeignServer::start(Options::default());
    // Close-delimited, from now on: the head says the server has fixed where it starts.
    let mut live = TcpStream::connect(server.addr()).await.unwrap();
    live.write_all(
        format!(
            "GET /sub/{TOPIC}/sse HTTP/1.1\r\nHost: foreign\r\nAccept: text/event-stream\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut body = Vec::new();
    let head = read_head(&mut live, &mut body).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(head.header("content-length"), None);
    assert_eq!(head.header("transfer-encoding"), None);
    assert_eq!(head.header("connection"), Some("close"));
    for i in 1..=12 {
        assert_eq!(
            post(&server, &format!("/pub/{TOPIC}"), &line(i))
                .await
                .status,
            200
        );
    }
    while parse_event_stream(&body).len() < 12 {
        read_more(&mut live, &mut body).await;
    }
    assert_eq!(parse_event_stream(&body), expected_events(1..=12));
    assert!(body.starts_with(&[0xEF, 0xBB, 0xBF]), "a BOM first");
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    assert!(
        body.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n'),
        "CR alone"
    );
    assert!(
        has(b"\n\n") && has(b"\r\r") && has(b"\r\n\r\n"),
        "LF, CR, CRLF"
    );
    assert!(
        has(b"data:pb:") && has(b"data: pb:"),
        "data: with and without the space"
    );
    for needle in [
        &b"retry: soon"[..],
        b"foo: bar",
        b": keep-alive",
        b"\rfoo\r",
        b"event\n",
    ] {
        assert!(has(needle), "{:?}", String::from_utf8_lossy(needle));
    }
    assert!(!has(b"event:"), "never a named event");

    // Chunked, resumed after id 4: the log's lines 5..=12 at once.
    let mut resumed = TcpStream::connect(server.addr()).await.unwrap();
    resumed
        .write_all(
            format!("GET /sub/{TOPIC}/sse?chunked=1 HTTP/1.1\r\nHost: foreign\r\nLast-Event-ID: 4\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut raw = Vec::new();
    let head = read_head(&mut resumed, &mut raw).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(head.header("content-length"), None);
    while parse_event_stream(&dechunk(&raw).0).len() < 8 {
        read_more(&mut resumed, &mut raw).await;
    }
    let (data, sizes) = dechunk(&raw);
    assert_eq!(parse_event_stream(&data), expected_events(5..=12));
    assert_eq!(sizes[..2], [1, 2], "the BOM in two writes");
    // Ids 6 and 10 byte by byte: every byte of those events is a chunk of its own.
    let bytewise = super::sse::event(6, &line(6)).len() + super::sse::event(10, &line(10)).len();
    assert!(
        sizes.iter().filter(|&&s| s == 1).count() >= bytewise,
        "{sizes:?}"
    );
    // Idle: comments only, and the stream stays open.
    let events_end = data.len();
    while dechunk(&raw).0.len() < events_end + b": keep-alive\n".len() * 2 {
        read_more(&mut resumed, &mut raw).await;
    }
    assert!(dechunk(&raw).0[events_end..].starts_with(b": keep-alive\n: keep-alive\n"));

    // Stopping the server ends the streams.
    drop(server);
    let mut rest = Vec::new();
    timeout(PATIENCE, live.read_to_end(&mut rest))
        .await
        .expect("the stream ends when the server stops")
        .ok();
}

async fn next_text(ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>) -> String {
    match timeout(PATIENCE, ws.next()).await.expect("a frame") {
        Some(Ok(Message::Text(t))) => t.to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
async fn websocket_resumes_answers_pings_and_never_closes() {
    let server = ForeignServer::start(Options::default());
    for i in 1..=3 {
        post(&server, &format!("/pub/{TOPIC}"), &line(i)).await;
    }
    let url = format!("ws://{}/sub/{TOPIC}/ws?after=1", server.addr());
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let (mut ws, response) = tokio_tungstenite::client_async(url.as_str(), stream)
        .await
        .expect("handshake");
    assert_eq!(response.status(), 101);
    // Without `after`: from the handshake on.
    let url = format!("ws://{}/sub/{TOPIC}/ws", server.addr());
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let (mut from_now, _) = tokio_tungstenite::client_async(url.as_str(), stream)
        .await
        .expect("handshake");
    assert_eq!(next_text(&mut ws).await, line(2));
    assert_eq!(next_text(&mut ws).await, line(3));
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    match timeout(PATIENCE, ws.next()).await.expect("a frame") {
        Some(Ok(Message::Pong(p))) => assert_eq!(&p[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
    post(&server, &format!("/pub/{TOPIC}"), &line(4)).await;
    assert_eq!(next_text(&mut ws).await, line(4));
    assert_eq!(next_text(&mut from_now).await, line(4));
    ws.close(None).await.unwrap();
    drop(server);
    // No close frame from the server: the connection just ends.
    let last = timeout(PATIENCE, from_now.next()).await.expect("the end");
    assert!(
        !matches!(last, Some(Ok(Message::Close(_)))),
        "the server sent a close frame"
    );
}

#[tokio::test]
async fn polling_by_query_etag_and_long_poll_on_one_connection() {
    let server = ForeignServer::start(Options::default());
    for i in 1..=5 {
        post(&server, &format!("/pub/{TOPIC}"), &line(i)).await;
    }
    let all: String = (1..=5).map(|i| line(i) + "\n").collect();
    let mut conn = TcpStream::connect(server.addr()).await.unwrap();
    let poll = format!("/sub/{TOPIC}/poll");

    let r = get(&mut conn, &format!("{poll}?since=0"), "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("etag"), Some("\"5\""));
    assert_eq!(r.text(), all);
    let r = get(&mut conn, &format!("{poll}?since=3"), "").await;
    assert_eq!(r.text(), line(4) + "\n" + &line(5) + "\n");
    let r = get(&mut conn, &format!("{poll}?since=5"), "").await;
    assert_eq!((r.status, r.body.len()), (304, 0));
    // The cursor as an ETag; none at all is the whole log.
    let r = get(&mut conn, &poll, "If-None-Match: \"4\"\r\n").await;
    assert_eq!((r.status, r.text()), (200, line(5) + "\n"));
    assert_eq!(r.header("etag"), Some("\"5\""));
    assert_eq!(
        get(&mut conn, &poll, "If-None-Match: \"5\"\r\n")
            .await
            .status,
        304
    );
    assert_eq!(get(&mut conn, &poll, "").await.text(), all);
    // Long poll with nothing new: held for `wait`, then 304.
    let asked = Instant::now();
    let r = get(&mut conn, &format!("{poll}?since=5&wait=300"), "").await;
    assert_eq!(r.status, 304);
    assert!(
        asked.elapsed() >= Duration::from_millis(290),
        "{:?}",
        asked.elapsed()
    );
    // Long poll answered by a new line (whether it arrives before or during the wait).
    let request =
        format!("GET {poll}?wait=5000 HTTP/1.1\r\nHost: foreign\r\nIf-None-Match: \"5\"\r\n\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    post(&server, &format!("/pub/{TOPIC}"), &line(6)).await;
    let r = read_response(&mut conn, &mut Vec::new()).await;
    assert_eq!((r.status, r.text()), (200, line(6) + "\n"));
    assert_eq!(r.header("etag"), Some("\"6\""));
}
