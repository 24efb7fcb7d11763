//! feed-server over `--backend redis://...`: two servers on one real `redis-server` (started on
//! a free port per test), clients over real sockets. Lines POSTed to A reach B's SSE,
//! WebSocket, poll and long-poll clients; history trimmed in Redis is signalled on every
//! transport as with the memory backend; admin drops and finish sent to A apply on B; a Redis
//! outage is a 503; a bad or unreachable `--backend` fails the binary fast.

mod common;
#[path = "../../feed/tests/support/redis_server.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use feed_server::backend::BackendChoice;
use feed_server::ServerConfig;
use futures_util::StreamExt;
use hyper::{Method, StatusCode};
use pushbench_feed::memory::MemoryConfig;
use redis_server::RedisServer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const ADMIN: &str = "admin-secret";

/// A server on `redis` (keys under `prefix`), keeping `history` lines per topic.
async fn server_on(redis: &RedisServer, prefix: &str, history: usize) -> TestServer {
    let config = ServerConfig {
        backend: BackendChoice::Redis {
            url: redis.url(),
            prefix: prefix.into(),
        },
        memory: MemoryConfig {
            history,
            max_topics: 100,
        },
        admin_token: Some(ADMIN.into()),
        ..ServerConfig::default()
    };
    let backend = config
        .backend
        .connect(config.memory)
        .await
        .expect("connecting to the test redis-server");
    TestServer::start_on(config, backend).await
}

async fn sse(server: &TestServer, headers: &[(&str, &str)]) -> Streaming {
    let s = server.send(Method::GET, &EVENTS, headers, "").await;
    assert_eq!(s.status, StatusCode::OK, "stream refused");
    s
}

async fn ws(server: &TestServer, query: &str) -> Ws {
    let url = format!("ws://{}{WS}{query}", server.addr);
    within("WebSocket handshake", connect_async(url))
        .await
        .expect("WebSocket upgrade")
        .0
}

#[derive(Debug, PartialEq)]
enum Got {
    Line(u64),
    Close(u16, String),
}

async fn next(ws: &mut Ws) -> Got {
    within("a WebSocket frame", async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                    return Got::Line(v["seq"].as_u64().unwrap());
                }
                Some(Ok(Message::Close(frame))) => {
                    let f = frame.expect("close frame with a code");
                    return Got::Close(u16::from(f.code), f.reason.to_string());
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
}

fn seqs(page: &serde_json::Value) -> Vec<u64> {
    page["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn lines_posted_to_one_server_reach_every_transport_on_the_other() {
    let redis = RedisServer::start();
    let a = server_on(&redis, "share", 1000).await;
    let b = server_on(&redis, "share", 1000).await;
    a.append("l1").await;
    let mut stream = sse(&b, &[]).await;
    let mut socket = ws(&b, "?after=0").await;
    // A long-poll held on B, answered by a POST to A.
    let held = {
        let addr = b.addr;
        tokio::spawn(async move {
            send_to(
                addr,
                Method::GET,
                &format!("{LOGS}?after=1&wait=5s"),
                &[],
                Bytes::new(),
            )
            .await
            .into_full()
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.append("l2\nl3").await;
    stream
        .read_until("three lines on B's SSE", |t| seqs_of(t).len() >= 3)
        .await;
    assert_eq!(seqs_of(&stream.text()), vec![1, 2, 3]);
    for seq in 1..=3 {
        assert_eq!(next(&mut socket).await, Got::Line(seq));
    }
    let long_poll = within("the long-poll on B", held).await.unwrap();
    assert_eq!(long_poll.status, StatusCode::OK, "{}", long_poll.text());
    assert_eq!(seqs(&long_poll.json()), vec![2, 3]);
    assert_eq!(seqs(&b.poll("after=0").await), vec![1, 2, 3]);
    // B's topic list has A's topic.
    assert!(b.get("/topics", &[]).await.text().contains(TOPIC));

    // Finished through A: B's streams end as a finished step does.
    a.finish().await;
    stream.read_to_end().await;
    let evs = events(&stream.text());
    assert_eq!(evs.last().unwrap().event.as_deref(), Some("end"), "{evs:?}");
    assert!(matches!(next(&mut socket).await, Got::Close(1000, _)));
    let r = b.post_text(&LOGS, "late").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
}

#[tokio::test]
async fn a_resume_below_trimmed_history_is_signalled_on_every_transport() {
    let redis = RedisServer::start();
    let a = server_on(&redis, "trim", 4).await;
    let b = server_on(&redis, "trim", 4).await;
    a.append("1").await;
    // Open on B, caught up at 1; then more lines in one POST than history keeps.
    let mut stream = sse(&b, &[]).await;
    stream.read_until("line 1", |t| seqs_of(t) == [1]).await;
    let mut socket = ws(&b, "?after=0").await;
    assert_eq!(next(&mut socket).await, Got::Line(1));
    a.append("2\n3\n4\n5\n6\n7\n8\n9\n10\n11").await;
    // Redis keeps 8..=11: the open streams are told 2 is gone.
    stream.read_to_end().await;
    let last = events(&stream.text()).pop().unwrap();
    assert_eq!(last.event.as_deref(), Some("lagged"), "{}", stream.text());
    assert_eq!(last.json()["missing_from"], 2);
    assert_eq!(last.json()["oldest_seq"], 8);
    assert_eq!(
        next(&mut socket).await,
        Got::Close(4008, "lagged: seq 2 is gone, oldest is 8".into())
    );
    // Resumes from before 7 are refused with the oldest seq, on every transport.
    let r = b.get(&EVENTS, &[("last-event-id", "3")]).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text());
    assert_eq!(r.json()["oldest_seq"], 8);
    let url = format!("ws://{}{WS}?after=1", b.addr);
    match within("refused WebSocket", connect_async(url)).await {
        Err(WsError::Http(res)) => {
            assert_eq!(res.status(), StatusCode::GONE);
            let body: serde_json::Value =
                serde_json::from_slice(res.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["oldest_seq"], 8, "{body}");
        }
        other => panic!("expected 410, got {other:?}"),
    }
    for query in ["after=1", "after=1&wait=1s"] {
        let r = b.get(&format!("{LOGS}?{query}"), &[]).await;
        assert_eq!(r.status, StatusCode::GONE, "{query}: {}", r.text());
        assert_eq!(r.json()["oldest_seq"], 8, "{query}");
    }
    // Within history, a resume on B reads Redis.
    assert_eq!(seqs(&b.poll("after=7").await), vec![8, 9, 10, 11]);
    let mut resumed = sse(&b, &[("last-event-id", "9")]).await;
    resumed
        .read_until("10 and 11", |t| seqs_of(t) == [10, 11])
        .await;
}

#[tokio::test]
async fn an_admin_drop_sent_to_one_server_ends_streams_on_both() {
    let redis = RedisServer::start();
    let a = server_on(&redis, "admin", 1000).await;
    let b = server_on(&redis, "admin", 1000).await;
    a.append("l1").await;
    let mut on_a = sse(&a, &[]).await;
    let mut on_b = sse(&b, &[]).await;
    for s in [&mut on_a, &mut on_b] {
        s.read_until("line 1", |t| seqs_of(t) == [1]).await;
    }
    let r = a
        .send(
            Method::POST,
            &format!("/admin/drop-connections/{TOPIC}"),
            &[("authorization", &format!("Bearer {ADMIN}"))],
            Bytes::new(),
        )
        .await
        .into_full()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Totals over both servers.
    assert_eq!(r.json()["dropped"], 2, "{}", r.text());
    assert_eq!(r.json()["open"], 2, "{}", r.text());
    for s in [&mut on_a, &mut on_b] {
        s.read_to_end().await;
        assert!(
            !events(&s.text()).iter().any(|e| e.event.is_some()),
            "a drop is no end of step: {}",
            s.text()
        );
    }
}

#[tokio::test]
async fn a_redis_outage_is_a_503_and_streams_go_on_after_it() {
    let mut redis = RedisServer::start();
    let a = server_on(&redis, "outage", 1000).await;
    let b = server_on(&redis, "outage", 1000).await;
    a.append("l1").await;
    let mut stream = sse(&b, &[]).await;
    stream.read_until("line 1", |t| seqs_of(t) == [1]).await;
    redis.stop();
    let r = a.post_text(&LOGS, "lost?").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert!(r.error().contains("redis"), "{}", r.error());
    assert_eq!(r.header("retry-after"), Some("1"));
    let r = b.get(&format!("{LOGS}?after=0"), &[]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    redis.restart(Duration::from_millis(200));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = a.post_text(&LOGS, "l2").await;
        if r.status == StatusCode::OK {
            assert_eq!(r.json()["first_seq"], 2, "{}", r.text());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Redis did not come back: {}",
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stream.read_until("line 2", |t| seqs_of(t) == [1, 2]).await;
}

/// The binary itself: a bad `--backend` or an unreachable Redis fails at once, naming the flag
/// and the URL.
#[test]
fn a_bad_or_unreachable_backend_fails_fast_naming_it() {
    let bin = env!("CARGO_BIN_EXE_feed-server");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = format!("redis://127.0.0.1:{port}");
    for (backend, expect) in [
        ("redis://:x", "redis://:x"),
        ("postgres://db", "--backend"),
        (unreachable.as_str(), unreachable.as_str()),
    ] {
        let started = Instant::now();
        let out = std::process::Command::new(bin)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--gen-topics",
                "0",
                "--backend",
                backend,
            ])
            .output()
            .expect("running feed-server");
        assert!(!out.status.success(), "{backend}: started anyway");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--backend"), "{backend}: {stderr}");
        assert!(stderr.contains(expect), "{backend}: {stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{backend}: took {:?}",
            started.elapsed()
        );
    }
}
