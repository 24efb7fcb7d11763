//! `pushbench_sse::serve`'s protections over real sockets: the header-read timeout against a
//! client that stalls mid-request-line, the connection limit, and the bounded request head.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use pushbench_feed::Shutdown;
use pushbench_sse::{serve, ServeConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Upper bound of every wait.
const T: Duration = Duration::from_secs(5);

async fn start(config: ServeConfig) -> (SocketAddr, Shutdown, tokio::task::JoinHandle<()>) {
    let app = Router::new().route("/", get(|| async { "hello\n" }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { serve(listener, app, config, shutdown).await.unwrap() }
    });
    (addr, shutdown, task)
}

/// Reads until the peer closes; `Err` if that takes longer than `limit`.
async fn read_to_close(s: &mut TcpStream, limit: Duration) -> Result<String, String> {
    let mut all = Vec::new();
    match tokio::time::timeout(limit, s.read_to_end(&mut all)).await {
        Ok(Ok(_)) => Ok(String::from_utf8_lossy(&all).into_owned()),
        Ok(Err(e)) => Err(format!("read error: {e}")),
        Err(_) => Err(format!(
            "still open after {limit:?}; got {:?}",
            String::from_utf8_lossy(&all)
        )),
    }
}

async fn get_root(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    read_to_close(&mut s, T).await.unwrap()
}

#[tokio::test]
async fn a_client_stalling_mid_request_line_is_closed_after_the_header_timeout() {
    let (addr, _shutdown, _task) = start(ServeConfig {
        header_read_timeout: Duration::from_millis(300),
        ..ServeConfig::default()
    })
    .await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /he").await.unwrap();
    let answer = read_to_close(&mut slow, T)
        .await
        .expect("closed by the server");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "closed after {took:?}, before the timeout"
    );
    // hyper has no request to answer; it may say 408 or just close. Never a 200.
    assert!(!answer.contains("200 OK"), "{answer:?}");
    // Others are served meanwhile and after.
    assert!(get_root(addr).await.starts_with("HTTP/1.1 200 "));

    // axum::serve would leave such a client open: that is what this guards against. The same
    // stall well within the timeout is still open.
    let (addr, _shutdown, _task) = start(ServeConfig {
        header_read_timeout: Duration::from_secs(30),
        ..ServeConfig::default()
    })
    .await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /he").await.unwrap();
    assert!(read_to_close(&mut slow, Duration::from_millis(500))
        .await
        .is_err());
}

#[tokio::test]
async fn connections_over_the_limit_get_503_with_retry_after_then_a_close() {
    let (addr, _shutdown, _task) = start(ServeConfig {
        max_connections: Some(2),
        ..ServeConfig::default()
    })
    .await;
    // Two held connections (keep-alive, each answered once so they are surely accepted).
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let n = tokio::time::timeout(T, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 "));
        held.push(s);
    }
    // The third is refused, before it has sent anything and after.
    for send_first in [false, true] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        if send_first {
            s.write_all(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
                .await
                .unwrap();
        }
        let answer = read_to_close(&mut s, T).await.expect("refused and closed");
        let (head, body) = answer.split_once("\r\n\r\n").expect("a whole answer");
        assert!(
            head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nretry-after: 1\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-type: application/json\r\n"));
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        assert_eq!(body.lines().count(), 1, "{body:?}");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        let msg = json["error"].as_str().unwrap();
        assert!(
            msg.contains("too many connections") && msg.contains('2'),
            "{msg}"
        );
    }
    // A slot frees when a connection closes.
    held.pop();
    let deadline = Instant::now() + T;
    loop {
        let answer = get_root(addr).await;
        if answer.starts_with("HTTP/1.1 200 ") {
            break;
        }
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(Instant::now() < deadline, "the slot never freed");
        // The server notices the close asynchronously; there is no event to await here.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_head_over_the_bound_is_431_with_a_message_and_shutdown_ends_the_server() {
    let (addr, shutdown, task) = start(ServeConfig {
        max_header_bytes: 4096,
        ..ServeConfig::default()
    })
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET / HTTP/1.1\r\nhost: t\r\ncookie: {}\r\n\r\n",
        "c".repeat(5000)
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut s, T).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(
        json["error"].as_str().unwrap().contains("4096 bytes"),
        "{json}"
    );
    assert!(get_root(addr).await.starts_with("HTTP/1.1 200 "));
    shutdown.trigger();
    tokio::time::timeout(T, task).await.unwrap().unwrap();
}
