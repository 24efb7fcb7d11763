//! The WebSocket transport over real sockets (tokio-tungstenite client).

mod common;

use common::*;
use futures_util::StreamExt;
use hyper::StatusCode;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(server: &TestServer, query: &str) -> Ws {
    let url = format!("ws://{}{WS}{query}", server.addr);
    let (ws, res) = within("WebSocket handshake", connect_async(url))
        .await
        .expect("WebSocket upgrade");
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws
}

/// What a client sees that matters here: a line, or a close with its code and reason.
#[derive(Debug, PartialEq)]
enum Got {
    Line(serde_json::Value),
    Close(u16, String),
    Gone,
}

/// The next data or close frame (pings and pongs skipped), bounded by [`T`].
async fn next(ws: &mut Ws) -> Got {
    within("a WebSocket frame", async {
        loop {
            match ws.next().await {
                None => return Got::Gone,
                Some(Err(e)) => panic!("WebSocket error: {e}"),
                Some(Ok(Message::Text(t))) => {
                    return Got::Line(serde_json::from_str(t.as_str()).expect("JSON text frame"))
                }
                Some(Ok(Message::Close(frame))) => {
                    let f = frame.expect("close frame with a code");
                    return Got::Close(u16::from(f.code), f.reason.to_string());
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => panic!("unexpected frame {other:?}"),
            }
        }
    })
    .await
}

/// Reads `n` lines and returns their `(seq, line)`.
async fn lines(ws: &mut Ws, n: usize) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        match next(ws).await {
            Got::Line(v) => {
                let obj = v.as_object().expect("object");
                assert_eq!(obj.len(), 3, "seq, ts, line: {v}");
                assert!(v["ts"].as_u64().unwrap() > 0);
                out.push((
                    v["seq"].as_u64().unwrap(),
                    v["line"].as_str().unwrap().to_string(),
                ));
            }
            other => panic!("expected a line, got {other:?} after {out:?}"),
        }
    }
    out
}

fn numbered(range: std::ops::RangeInclusive<u64>) -> Vec<(u64, String)> {
    range.map(|i| (i, format!("l{i}"))).collect()
}

#[tokio::test]
async fn ws_text_frames_carry_line_json_with_seq_from_1() {
    let server = TestServer::default().await;
    server.append("l1\nl2").await;
    let mut ws = connect(&server, "").await;
    assert_eq!(lines(&mut ws, 2).await, numbered(1..=2));
    server.append("l3\nl4\nl5").await;
    assert_eq!(lines(&mut ws, 3).await, numbered(3..=5));
    server.append("cr\rinside").await;
    assert_eq!(lines(&mut ws, 1).await, vec![(6, "cr\rinside".to_string())]);
}

#[tokio::test]
async fn ws_after_resumes_exactly() {
    let server = TestServer::default().await;
    server.append("l1\nl2\nl3\nl4").await;
    let mut ws = connect(&server, "?after=2").await;
    assert_eq!(lines(&mut ws, 2).await, numbered(3..=4));
    server.append("l5").await;
    assert_eq!(lines(&mut ws, 1).await, numbered(5..=5));
}

#[tokio::test]
async fn ws_finish_sends_close_1000_after_the_last_line() {
    let server = TestServer::default().await;
    server.append("l1\nl2").await;
    let mut ws = connect(&server, "").await;
    assert_eq!(lines(&mut ws, 2).await, numbered(1..=2));
    server.append("l3").await;
    server.finish().await;
    assert_eq!(lines(&mut ws, 1).await, numbered(3..=3));
    match next(&mut ws).await {
        Got::Close(code, reason) => {
            assert_eq!(code, 1000);
            assert!(
                reason.contains('3'),
                "reason names the last seq: {reason:?}"
            );
        }
        other => panic!("expected close 1000, got {other:?}"),
    }
    // The client's close reply completes the handshake; the stream then ends.
    assert_eq!(next(&mut ws).await, Got::Gone);
}

async fn refused(server: &TestServer, path_and_query: &str) -> (StatusCode, String) {
    let url = format!("ws://{}{path_and_query}", server.addr);
    match within("WebSocket handshake", connect_async(url)).await {
        Ok(_) => panic!("{path_and_query}: upgrade should have been refused"),
        Err(WsError::Http(res)) => {
            let body = res
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            (res.status(), body)
        }
        Err(e) => panic!("{path_and_query}: expected an HTTP answer, got {e}"),
    }
}

#[tokio::test]
async fn ws_bad_after_is_http_400_before_the_upgrade() {
    let server = TestServer::default().await;
    server.append("l1").await;
    let (status, body) = refused(&server, &format!("{WS}?after=abc")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("after"), "{body:?}");
    let (status, _) = refused(&server, &format!("{WS}?after=5")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "beyond the head");
}

#[tokio::test]
async fn ws_unknown_topic_is_http_404_before_the_upgrade() {
    let server = TestServer::default().await;
    let (status, body) = refused(&server, "/acme/app/builds/1/steps/nope/logs/ws").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("unknown topic"), "{body:?}");
}

#[tokio::test]
async fn ws_server_shutdown_closes_with_1001() {
    let server = TestServer::default().await;
    server.append("l1").await;
    let mut ws = connect(&server, "").await;
    assert_eq!(lines(&mut ws, 1).await, numbered(1..=1));
    server.feed.shutdown.trigger();
    match next(&mut ws).await {
        Got::Close(code, _) => assert_eq!(code, 1001),
        other => panic!("expected close 1001, got {other:?}"),
    }
    // An upgraded connection does not hold the server's graceful shutdown.
    within("serve() to return", server.handle)
        .await
        .expect("serve task")
        .expect("serve returns Ok");
}

#[tokio::test]
async fn ws_subscriber_behind_history_is_closed_with_4008() {
    let server = TestServer::with_history(4).await;
    server.append("l1").await;
    let mut ws = connect(&server, "").await;
    assert_eq!(lines(&mut ws, 1).await, numbered(1..=1));
    // More lines in one append than history holds: 2..=7 are gone before the socket reads.
    server.append("2\n3\n4\n5\n6\n7\n8\n9\n10\n11").await;
    match next(&mut ws).await {
        Got::Close(code, reason) => {
            assert_eq!(code, 4008);
            assert_eq!(reason, "lagged: seq 2 is gone, oldest is 8");
        }
        other => panic!("expected close 4008, got {other:?}"),
    }
    let (status, body) = refused(&server, &format!("{WS}?after=1")).await;
    assert_eq!(status, StatusCode::GONE);
    let body: serde_json::Value = serde_json::from_str(&body).expect("JSON error body");
    assert_eq!(body["oldest_seq"], 8, "{body}");
    assert!(body["error"].is_string(), "{body}");
}

#[tokio::test]
async fn ws_token_is_checked_before_the_upgrade() {
    let mut config = feed_server::ServerConfig::default();
    config.ws.auth = pushbench_feed::http::TokenAuth::new(Some("t".into()));
    let server = TestServer::start(config).await;
    server.append("a").await;
    for query in ["", "?token=wrong"] {
        let url = format!("ws://{}{WS}{query}", server.addr);
        match within("WebSocket handshake", connect_async(url)).await {
            Err(WsError::Http(res)) => assert_eq!(res.status(), StatusCode::UNAUTHORIZED),
            other => panic!("{query:?}: expected 401 before the upgrade, got {other:?}"),
        }
    }
    let mut ws = connect(&server, "?token=t").await;
    assert_eq!(lines(&mut ws, 1).await, vec![(1, "a".to_string())]);
}
