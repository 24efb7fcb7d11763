//! Publishing, health, metrics and routing over real sockets.

mod common;

use std::time::Duration;

use common::*;
use feed_server::publish::PublishConfig;
use feed_server::ServerConfig;
use hyper::{Method, StatusCode};
use pushbench_sse::SseConfig;

#[tokio::test]
async fn publish_crlf_body_yields_lines_without_cr_and_keeps_inner_cr() {
    let server = TestServer::default().await;
    let receipt = server
        .append("one\r\ntwo\r\n10%\r20%\r\n\r\nlast\r\n")
        .await;
    assert_eq!(receipt["first_seq"], 1);
    assert_eq!(receipt["last_seq"], 5);
    let page = server.poll("after=0").await;
    assert_eq!(texts(&page), vec!["one", "two", "10%\r20%", "", "last"]);
    let receipt = server.append("six").await;
    assert_eq!(receipt["first_seq"], 6);
    assert_eq!(receipt["last_seq"], 6);
    assert!(server
        .metrics()
        .await
        .contains("pushbench_lines_appended_total 6\n"));
}

#[tokio::test]
async fn publish_oversize_body_is_413_and_appends_nothing() {
    let server = TestServer::start(ServerConfig {
        publish: PublishConfig {
            max_body_bytes: 16,
            ..PublishConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    server.append("first").await;
    let big = "0123456789\n".repeat(4);
    let r = server.post_text(&LOGS, big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    let page = server.poll("after=0").await;
    assert_eq!(page["last_seq"], 1, "nothing appended");
    assert_eq!(texts(&page), vec!["first"]);
    // Exactly at the limit is fine.
    let r = server.post_text(&LOGS, "0123456789abcde\n").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn publish_non_utf8_body_is_400_and_appends_nothing() {
    let server = TestServer::default().await;
    server.append("first").await;
    let r = server
        .post_text(&LOGS, &b"valid line\nbad \xff\xfe byte\n"[..])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("UTF-8"), "{}", r.error());
    let page = server.poll("after=0").await;
    assert_eq!(
        page["last_seq"], 1,
        "a request is appended whole or not at all"
    );
}

#[tokio::test]
async fn publish_wrong_content_type_is_415() {
    let server = TestServer::default().await;
    for ct in ["application/json", "text/html", ""] {
        let mut headers = vec![];
        if !ct.is_empty() {
            headers.push(("content-type", ct));
        }
        let r = server
            .send(Method::POST, &LOGS, &headers, "a line")
            .await
            .into_full()
            .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        assert!(r.error().contains("text/plain"), "{}", r.error());
    }
    // Nothing was created.
    let r = server.get(&format!("{LOGS}?after=0"), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Parameters and case do not matter.
    let r = server
        .send(
            Method::POST,
            &LOGS,
            &[("content-type", "Text/Plain; charset=utf-8")],
            "ok",
        )
        .await
        .into_full()
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn publish_empty_body_is_400() {
    let server = TestServer::default().await;
    let r = server.post_text(&LOGS, "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("empty"), "{}", r.error());
}

#[tokio::test]
async fn publish_append_after_finish_is_409() {
    let server = TestServer::default().await;
    server.append("a").await;
    server.finish().await;
    let r = server.post_text(&LOGS, "late").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.error().contains("finished"), "{}", r.error());
    let page = server.poll("after=0").await;
    assert_eq!(page["last_seq"], 1);
    assert_eq!(page["finished"], true);
    // Finishing twice is not an error.
    server.finish().await;
}

#[tokio::test]
async fn finish_answers_the_last_seq_and_unknown_topic_is_404() {
    let server = TestServer::default().await;
    server.append("a\nb").await;
    let r = server
        .send(Method::POST, &FINISH, &[], "")
        .await
        .into_full()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        serde_json::json!({"last_seq": 2, "finished": true})
    );
    let r = server
        .send(
            Method::POST,
            "/acme/app/builds/1/steps/nope/logs/finish",
            &[],
            "",
        )
        .await
        .into_full()
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.error().contains("unknown topic"), "{}", r.error());
}

#[tokio::test]
async fn healthz_is_200() {
    let server = TestServer::default().await;
    let r = server.get("/healthz", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "ok\n");
}

#[tokio::test]
async fn metrics_open_sse_connections_follow_an_open_stream() {
    // A short keep-alive makes the server write to, and so notice, a closed connection soon.
    let server = TestServer::start(ServerConfig {
        sse: SseConfig {
            keep_alive: Duration::from_millis(100),
            ..SseConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    server.append("a").await;
    let text = server.metrics().await;
    assert!(text.contains("# TYPE pushbench_open_connections gauge\n"));
    assert!(text.contains("pushbench_open_connections{transport=\"sse\"} 0\n"));
    let r = server.get("/metrics", &[]).await;
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    // Every sample line is `name{labels} value` or `name value` with an integer value.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').expect("name value");
        value
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("bad sample {line:?}"));
    }

    let mut s = server.send(Method::GET, &EVENTS, &[], "").await;
    assert_eq!(s.status, StatusCode::OK);
    s.read_until("line 1", |t| t.contains("id: 1\n")).await;
    wait_for_metric(&server, "pushbench_open_connections{transport=\"sse\"}", 1).await;
    assert!(server
        .metrics()
        .await
        .contains("pushbench_events_sent_total{transport=\"sse\"} 1\n"));
    drop(s);
    wait_for_metric(&server, "pushbench_open_connections{transport=\"sse\"}", 0).await;
}

#[tokio::test]
async fn unknown_route_is_404_json() {
    let server = TestServer::default().await;
    for path in [
        "/nope",
        "/acme/app/builds/1/steps/test/logs/unknown",
        "/acme/app/builds/1/logs",
    ] {
        let r = server.get(path, &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(r.error().contains("no such route"), "{}", r.error());
    }
}
