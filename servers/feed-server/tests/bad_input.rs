//! Bad input over raw sockets (issue 13): oversized bodies and heads, overlong URIs, and every
//! error answer carrying a one-line JSON message. Raw `TcpStream`s, not an HTTP client, so
//! the tests see exactly what a client gets: when the answer comes (before the body is sent?),
//! whether `100 Continue` precedes it, and whether the connection ends in a reset.

mod common;

use std::net::SocketAddr;

use common::*;
use feed_server::publish::PublishConfig;
use feed_server::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One raw answer: status, header lines (lower-cased names) and body.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Checks the answer is a one-line JSON error and returns its message.
    fn error(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        assert_eq!(self.body.lines().count(), 1, "one line: {:?}", self.body);
        let json: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body));
        let message = json["error"].as_str().expect("an error field").to_string();
        assert!(!message.is_empty());
        message
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    within("connect", TcpStream::connect(addr))
        .await
        .expect("connect")
}

/// Reads one answer (head, then a `content-length` body) from `s`.
async fn read_answer(s: &mut TcpStream) -> Raw {
    within("an answer", async {
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.expect("read the answer");
            assert!(
                n > 0,
                "closed before a whole head: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').expect("header line");
                (n.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| v.parse().expect("numeric content-length"))
            .unwrap_or(0);
        let mut body = buf[head_end..].to_vec();
        while body.len() < len {
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.expect("read the body");
            assert!(n > 0, "closed before the whole body");
            body.extend_from_slice(&chunk[..n]);
        }
        Raw {
            status,
            headers,
            body: String::from_utf8(body).expect("UTF-8 body"),
        }
    })
    .await
}

/// Sends `request` on a fresh connection and reads the answer.
async fn exchange(addr: SocketAddr, request: &[u8]) -> Raw {
    let mut s = connect(addr).await;
    s.write_all(request).await.expect("send the request");
    read_answer(&mut s).await
}

/// After an answer that closes the connection: the server closes with a FIN, not a reset.
async fn expect_clean_close(s: &mut TcpStream) {
    within("the close", async {
        let mut chunk = [0u8; 4096];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) => return,
                Ok(_) => continue,
                Err(e) => panic!("the connection ended in an error, not a close: {e}"),
            }
        }
    })
    .await
}

fn post_head(extra: &str) -> String {
    format!("POST /{TOPIC}/logs HTTP/1.1\r\nhost: test\r\ncontent-type: text/plain\r\n{extra}\r\n")
}

/// 5 MB declared against the 1 MiB default: 413 at once, though not a byte of body was sent.
#[tokio::test]
async fn a_content_length_over_the_limit_is_413_before_the_body_is_sent() {
    let server = TestServer::default().await;
    server.append("first").await;
    let mut s = connect(server.addr).await;
    s.write_all(post_head("content-length: 5000000\r\n").as_bytes())
        .await
        .unwrap();
    let r = read_answer(&mut s).await;
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.error().contains("5000000 bytes"), "{}", r.error());
    assert!(
        r.error().contains("1048576"),
        "names the limit: {}",
        r.error()
    );
    assert_eq!(r.header("connection"), Some("close"));
    drop(s);

    // A client that sends the whole body before reading still gets the answer, and a clean
    // close: the server lingers, reading what it will not use, instead of resetting.
    let mut s = connect(server.addr).await;
    s.write_all(post_head("content-length: 5000000\r\n").as_bytes())
        .await
        .unwrap();
    let (mut rd, mut wr) = s.split();
    let body = vec![b'x'; 5_000_000];
    let send = async {
        // Without the linger the server's close resets the connection mid-body, and a client
        // such as curl reports the failed send rather than the answer ("connection closed").
        let sent = wr.write_all(&body).await;
        let _ = wr.shutdown().await;
        sent
    };
    let read = async {
        let mut all = Vec::new();
        within("the answer and close", rd.read_to_end(&mut all))
            .await
            .expect("no reset before the answer was read");
        String::from_utf8_lossy(&all).into_owned()
    };
    let (sent, text) = tokio::join!(send, read);
    sent.expect("the whole body could be sent: the server read it to the end, no reset");
    assert!(text.starts_with("HTTP/1.1 413 "), "{text:?}");
    assert_eq!(server.poll("").await["last_seq"], 1, "nothing appended");
}

#[tokio::test]
async fn expect_100_continue_with_too_large_a_length_gets_413_and_no_100_continue() {
    let server = TestServer::default().await;
    let mut s = connect(server.addr).await;
    s.write_all(post_head("content-length: 5000000\r\nexpect: 100-continue\r\n").as_bytes())
        .await
        .unwrap();
    let r = read_answer(&mut s).await;
    assert_eq!(
        r.status, 413,
        "the first answer is the refusal, not 100: {r:?}"
    );
    r.error();
    expect_clean_close(&mut s).await;

    // Within the limit, the client is told to go on.
    let mut s = connect(server.addr).await;
    s.write_all(post_head("content-length: 4\r\nexpect: 100-continue\r\n").as_bytes())
        .await
        .unwrap();
    let r = read_answer(&mut s).await;
    assert_eq!(r.status, 100, "{r:?}");
    s.write_all(b"a\nb\n").await.unwrap();
    let r = read_answer(&mut s).await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn a_chunked_body_is_413_as_soon_as_it_crosses_the_limit() {
    let server = TestServer::start(ServerConfig {
        publish: PublishConfig {
            max_body_bytes: 64 * 1024,
            ..PublishConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    server.append("first").await;
    let mut s = connect(server.addr).await;
    s.write_all(post_head("transfer-encoding: chunked\r\n").as_bytes())
        .await
        .unwrap();
    // 80 KiB in 16 KiB chunks, then nothing more: no last chunk, so an answer now can only
    // come from crossing the limit.
    let line = "y".repeat(1023) + "\n";
    let chunk = line.repeat(16);
    for _ in 0..5 {
        s.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
    }
    let r = read_answer(&mut s).await;
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.error().contains("65536"), "{}", r.error());
    assert_eq!(r.header("connection"), Some("close"));
    expect_clean_close(&mut s).await;
    assert_eq!(server.poll("").await["last_seq"], 1, "nothing appended");
}

#[tokio::test]
async fn a_request_head_over_16_kib_is_431_with_a_message() {
    let server = TestServer::default().await;
    // 200 KB in one header: what the user sent.
    let mut s = connect(server.addr).await;
    let head = format!(
        "GET /healthz HTTP/1.1\r\nhost: test\r\nx-big: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let (mut rd, mut wr) = s.split();
    let send = async {
        let _ = wr.write_all(head.as_bytes()).await;
    };
    let (_, r) = tokio::join!(send, read_answer_half(&mut rd));
    assert_eq!(r.status, 431, "{r:?}");
    assert!(r.error().contains("16384 bytes"), "{}", r.error());

    // Just under the bound is served.
    let head = format!(
        "GET /healthz HTTP/1.1\r\nhost: test\r\nx-big: {}\r\n\r\n",
        "a".repeat(15_000)
    );
    let r = exchange(server.addr, head.as_bytes()).await;
    assert_eq!(r.status, 200, "{r:?}");
    // Many small headers add up the same way.
    let many: String = (0..1000)
        .map(|i| format!("x-h{i}: {}\r\n", "b".repeat(20)))
        .collect();
    let r = exchange(
        server.addr,
        format!("GET /healthz HTTP/1.1\r\nhost: test\r\n{many}\r\n").as_bytes(),
    )
    .await;
    assert_eq!(r.status, 431, "{r:?}");
}

/// [`read_answer`] on a read half.
async fn read_answer_half(rd: &mut tokio::net::tcp::ReadHalf<'_>) -> Raw {
    let mut buf = Vec::new();
    within("an answer", async {
        let mut chunk = [0u8; 4096];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("reset before the answer was read whole: {e}"),
            }
        }
    })
    .await;
    let text = String::from_utf8(buf).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a whole head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    Raw {
        status,
        headers,
        body: body.to_string(),
    }
}

#[tokio::test]
async fn a_malformed_request_line_is_400_with_a_message() {
    let server = TestServer::default().await;
    let r = exchange(server.addr, b"GET /healthz HTTP/1.1\r\nbad header\r\n\r\n").await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.error().contains("malformed"), "{}", r.error());
}

#[tokio::test]
async fn a_uri_over_8_kib_is_414_with_a_message() {
    let server = TestServer::default().await;
    let path = format!("/{TOPIC}/logs?after=0&x={}", "z".repeat(9000));
    let r = exchange(
        server.addr,
        format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(r.status, 414, "{r:?}");
    assert!(r.error().contains("8192"), "{}", r.error());
}

#[tokio::test]
async fn routing_errors_and_rejections_say_what_was_wrong() {
    let server = TestServer::default().await;
    server.append("a").await;
    let get = |path: String| format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");

    // 405 keeps its Allow header.
    let r = exchange(
        server.addr,
        format!("DELETE /{TOPIC}/logs HTTP/1.1\r\nhost: test\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(r.status, 405, "{r:?}");
    let allow = r.header("allow").expect("an Allow header").to_string();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let e = r.error();
    assert!(e.contains("DELETE") && e.contains("not allowed"), "{e}");

    // 404 from routing (the fallback) and from the handler (unknown topic).
    let r = exchange(server.addr, get("/nowhere".into()).as_bytes()).await;
    assert_eq!(r.status, 404, "{r:?}");
    assert!(r.error().contains("no such route"), "{}", r.error());
    let r = exchange(
        server.addr,
        get("/acme/app/builds/1/steps/none/logs".into()).as_bytes(),
    )
    .await;
    assert_eq!(r.status, 404, "{r:?}");
    r.error();

    // 415: a body that is not text/plain.
    let r = exchange(
        server.addr,
        format!(
            "POST /{TOPIC}/logs HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
             content-length: 2\r\n\r\n{{}}"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 415, "{r:?}");
    assert!(r.error().contains("text/plain"), "{}", r.error());

    // axum's own rejection: a WebSocket route asked without the upgrade.
    let r = exchange(server.addr, get(format!("/{TOPIC}/logs/ws")).as_bytes()).await;
    assert!((400..500).contains(&r.status), "a client error, got {r:?}");
    assert!(!r.error().is_empty());

    // A HEAD of a missing route gets the status and headers, and no body.
    let mut s = connect(server.addr).await;
    s.write_all(b"HEAD /nowhere HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    within("the HEAD answer", async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut c = [0u8; 1024];
            let n = s.read(&mut c).await.unwrap();
            assert!(n > 0);
            head.extend_from_slice(&c[..n]);
        }
    })
    .await;
    let text = String::from_utf8_lossy(&head);
    assert!(text.starts_with("HTTP/1.1 404 "), "{text}");
    assert!(
        text.ends_with("\r\n\r\n"),
        "no body after a HEAD answer: {text:?}"
    );
    // And the connection still serves the next request.
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let r = read_answer(&mut s).await;
    assert_eq!(r.status, 200, "{r:?}");
}
