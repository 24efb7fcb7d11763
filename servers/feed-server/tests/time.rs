//! `GET /_pushbench/time` over a real socket: the answer's shape and headers, a reading that
//! lies between the test's own clock readings around the request, and the methods it refuses.

mod common;

use bytes::Bytes;
use common::*;
use hyper::{Method, StatusCode};
use pushbench_feed::clock::unix_nanos;
use pushbench_protocol::route::{HEALTHZ, TIME};

#[tokio::test]
async fn the_time_is_json_nanoseconds_uncached_and_inside_the_round_trip() {
    let server = TestServer::default().await;
    for _ in 0..3 {
        let before = unix_nanos();
        let r = server.get(TIME, &[]).await;
        let after = unix_nanos();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        // Exactly one field, an integer: what the load generator's clock module decodes.
        let body = r.json();
        let fields = body.as_object().expect("a JSON object");
        assert_eq!(fields.len(), 1, "{body}");
        let unix_ns = body["unix_ns"]
            .as_u64()
            .unwrap_or_else(|| panic!("no unsigned unix_ns in {body}"));
        // One host, one clock: the server read it while the request was under way.
        assert!(
            before <= unix_ns && unix_ns <= after,
            "server time {unix_ns} outside the round trip [{before}, {after}]"
        );
        assert!(after - before < 1_000_000_000, "a round trip over a second");
    }
}

#[tokio::test]
async fn the_time_route_refuses_writes_and_answers_head_as_healthz_does() {
    let server = TestServer::default().await;
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let r = server
            .send(method.clone(), TIME, &[], Bytes::new())
            .await
            .into_full()
            .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        let allow = r.header("allow").expect("an Allow header");
        assert!(allow.contains("GET"), "{method}: Allow {allow}");
        let e = r.error();
        assert!(e.contains(method.as_str()), "{method}: {e}");
    }
    // HEAD: axum serves it from the GET handler, without the body, on every GET route; the
    // time route is no exception (a HEAD carries no time, but refusing it here alone would be
    // a surprise).
    let healthz = server
        .send(Method::HEAD, HEALTHZ, &[], Bytes::new())
        .await
        .into_full()
        .await;
    let time = server
        .send(Method::HEAD, TIME, &[], Bytes::new())
        .await
        .into_full()
        .await;
    assert_eq!(time.status, healthz.status);
    assert_eq!(time.status, StatusCode::OK);
    assert!(time.body.is_empty(), "a HEAD answer with a body");
    assert_eq!(time.header("cache-control"), Some("no-store"));
}
