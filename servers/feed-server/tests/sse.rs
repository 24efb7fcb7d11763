//! The SSE transport over real sockets.

mod common;

use std::time::Duration;

use common::*;
use feed_server::ServerConfig;
use hyper::{Method, StatusCode};
use pushbench_feed::http::{CorsConfig, TokenAuth};
use pushbench_feed::memory::MemoryConfig;
use pushbench_feed::Transport;
use pushbench_sse::SseConfig;

fn sse_config(sse: SseConfig) -> ServerConfig {
    ServerConfig {
        sse,
        ..ServerConfig::default()
    }
}

/// Opens the event stream of [`TOPIC`] and checks it is one.
async fn open(server: &TestServer, query: &str, headers: &[(&str, &str)]) -> Streaming {
    let s = server
        .send(Method::GET, &format!("{EVENTS}{query}"), headers, "")
        .await;
    assert_eq!(s.status, StatusCode::OK, "stream refused");
    assert_eq!(s.header("content-type"), Some("text/event-stream"));
    s
}

/// Reads until the line event with `seq` has arrived.
async fn read_through(s: &mut Streaming, seq: u64) {
    s.read_until(&format!("line event {seq}"), |t| {
        seqs_of(t).last().is_some_and(|&last| last >= seq)
    })
    .await
}

#[tokio::test]
async fn sse_headers_mark_an_uncached_unbuffered_event_stream() {
    let server = TestServer::default().await;
    server.append("a").await;
    let s = open(&server, "", &[]).await;
    assert_eq!(s.header("content-type"), Some("text/event-stream"));
    let cache = s.header("cache-control").expect("cache-control");
    assert!(cache.contains("no-cache"), "cache-control {cache:?}");
    assert!(cache.contains("no-transform"), "cache-control {cache:?}");
    assert_eq!(s.header("x-accel-buffering"), Some("no"));
    assert_eq!(s.header("content-encoding"), None, "never compressed");
}

#[tokio::test]
async fn sse_first_chunk_is_the_retry_hint() {
    let server = TestServer::start(sse_config(SseConfig {
        retry: Some(Duration::from_millis(1500)),
        ..SseConfig::default()
    }))
    .await;
    server.append("a").await;
    let mut s = open(&server, "", &[]).await;
    let first = s.next_chunk().await.expect("a first chunk");
    assert_eq!(&first[..], b"retry: 1500\n\n");
    read_through(&mut s, 1).await;
    let b = blocks(&s.text());
    assert_eq!(b[0].retry.as_deref(), Some("1500"));
    assert!(!b[0].is_event(), "the retry hint dispatches no event");
}

#[tokio::test]
async fn sse_every_event_has_id_equal_to_seq_and_the_line_payload() {
    let server = TestServer::default().await;
    server.append("one\ntwo\nthree").await;
    let mut s = open(&server, "", &[]).await;
    read_through(&mut s, 3).await;
    server.append("four").await;
    read_through(&mut s, 4).await;
    // lines_of checks id == seq and the payload's exact fields.
    assert_eq!(
        lines_of(&s.text()),
        vec![
            (1, "one".to_string()),
            (2, "two".to_string()),
            (3, "three".to_string()),
            (4, "four".to_string()),
        ]
    );
    for e in events(&s.text()) {
        assert_eq!(e.event, None, "line events use the default type");
        assert!(!e.data.unwrap().contains('\n'), "one data line per event");
    }
}

#[tokio::test]
async fn sse_multi_line_post_yields_events_in_order_and_cr_survives_via_json() {
    let server = TestServer::default().await;
    server.append("start").await;
    let mut s = open(&server, "", &[]).await;
    read_through(&mut s, 1).await;
    let receipt = server
        .append("step 1\n10%\r50%\r100%\nquote \" and \\ back\nlast\n")
        .await;
    assert_eq!(receipt["first_seq"], 2);
    assert_eq!(receipt["last_seq"], 5);
    read_through(&mut s, 5).await;
    let raw = s.text();
    assert!(!raw.contains('\r'), "no raw CR on the wire: {raw:?}");
    assert_eq!(
        lines_of(&raw),
        vec![
            (1, "start".to_string()),
            (2, "step 1".to_string()),
            (3, "10%\r50%\r100%".to_string()),
            (4, "quote \" and \\ back".to_string()),
            (5, "last".to_string()),
        ]
    );
}

#[tokio::test]
async fn sse_last_event_id_resumes_exactly_after_it_then_goes_live() {
    let server = TestServer::default().await;
    server.append("1\n2\n3\n4\n5").await;
    let mut s = open(&server, "", &[("last-event-id", "2")]).await;
    read_through(&mut s, 5).await;
    assert_eq!(seqs_of(&s.text()), vec![3, 4, 5]);
    server.append("6\n7").await;
    read_through(&mut s, 7).await;
    let got = lines_of(&s.text());
    assert_eq!(
        got,
        (3..=7).map(|i| (i, i.to_string())).collect::<Vec<_>>(),
        "no duplicate, no gap"
    );
}

#[tokio::test]
async fn sse_query_last_event_id_is_a_resume_fallback() {
    let server = TestServer::default().await;
    server.append("1\n2\n3\n4").await;
    let mut s = open(&server, "?lastEventId=3", &[]).await;
    read_through(&mut s, 4).await;
    server.append("5").await;
    read_through(&mut s, 5).await;
    assert_eq!(seqs_of(&s.text()), vec![4, 5]);
}

#[tokio::test]
async fn sse_query_after_is_a_resume_fallback() {
    let server = TestServer::default().await;
    server.append("1\n2\n3\n4").await;
    let mut s = open(&server, "?after=1", &[]).await;
    read_through(&mut s, 4).await;
    assert_eq!(seqs_of(&s.text()), vec![2, 3, 4]);
}

#[tokio::test]
async fn sse_last_event_id_header_wins_over_the_query() {
    let server = TestServer::default().await;
    server.append("1\n2\n3\n4").await;
    let mut s = open(&server, "?after=1", &[("last-event-id", "3")]).await;
    read_through(&mut s, 4).await;
    assert_eq!(seqs_of(&s.text()), vec![4]);
}

#[tokio::test]
async fn sse_keep_alive_comment_arrives_on_an_idle_stream() {
    let server = TestServer::start(sse_config(SseConfig {
        keep_alive: Duration::from_millis(100),
        ..SseConfig::default()
    }))
    .await;
    server.append("a").await;
    let mut s = open(&server, "", &[]).await;
    read_through(&mut s, 1).await;
    let idle_from = tokio::time::Instant::now();
    s.read_until("a keep-alive comment", |t| {
        blocks(t).iter().any(|b| b.comment && !b.is_event())
    })
    .await;
    let waited = idle_from.elapsed();
    assert!(
        waited >= Duration::from_millis(50) && waited < Duration::from_secs(2),
        "keep-alive after {waited:?}"
    );
    assert!(s.text().ends_with(":\n\n"), "{:?}", s.text());
    // Still alive: a later line arrives on the same stream.
    server.append("b").await;
    read_through(&mut s, 2).await;
    assert_eq!(seqs_of(&s.text()), vec![1, 2]);
}

#[tokio::test]
async fn sse_finish_sends_end_event_with_last_id_and_closes_the_body() {
    let server = TestServer::default().await;
    server.append("a\nb\nc").await;
    let mut s = open(&server, "", &[]).await;
    read_through(&mut s, 3).await;
    server.finish().await;
    s.read_to_end().await;
    assert!(s.ended, "the body ends after end");
    let evs = events(&s.text());
    let last = evs.last().expect("events");
    assert_eq!(last.event.as_deref(), Some("end"));
    assert_eq!(last.id.as_deref(), Some("3"));
    assert_eq!(last.json()["last_seq"], 3);
    assert_eq!(seqs_of(&s.text()), vec![1, 2, 3]);
    assert!(s.text().ends_with("\n\n"), "nothing after end");
}

#[tokio::test]
async fn sse_reconnect_at_the_last_seq_of_a_finished_step_gets_204() {
    let server = TestServer::default().await;
    server.append("a\nb\nc").await;
    server.finish().await;
    let r = server.get(&EVENTS, &[("last-event-id", "3")]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    let r = server.get(&format!("{EVENTS}?lastEventId=3"), &[]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // One line short of the end is not done yet: the last line, then end.
    let mut s = open(&server, "", &[("last-event-id", "2")]).await;
    s.read_to_end().await;
    assert_eq!(seqs_of(&s.text()), vec![3]);
    assert_eq!(
        events(&s.text()).last().unwrap().event.as_deref(),
        Some("end")
    );
}

#[tokio::test]
async fn sse_new_viewer_of_a_finished_step_gets_the_whole_log_then_end() {
    let server = TestServer::default().await;
    server.append("a\nb\nc\nd").await;
    server.finish().await;
    let mut s = open(&server, "", &[]).await;
    s.read_to_end().await;
    assert_eq!(
        lines_of(&s.text()),
        vec![
            (1, "a".to_string()),
            (2, "b".to_string()),
            (3, "c".to_string()),
            (4, "d".to_string()),
        ]
    );
    let end = events(&s.text()).pop().unwrap();
    assert_eq!(end.event.as_deref(), Some("end"));
    assert_eq!(end.id.as_deref(), Some("4"));
}

#[tokio::test]
async fn sse_malformed_last_event_id_is_400_with_json_error() {
    let server = TestServer::default().await;
    server.append("a").await;
    for bad in ["abc", "-1", "1.5"] {
        let r = server.get(&EVENTS, &[("last-event-id", bad)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "Last-Event-ID {bad:?}");
        assert!(r.error().contains("Last-Event-ID"), "{}", r.error());
    }
    let r = server.get(&format!("{EVENTS}?after=x"), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("after"), "{}", r.error());
}

#[tokio::test]
async fn sse_last_event_id_beyond_the_head_is_400() {
    let server = TestServer::default().await;
    server.append("a\nb").await;
    let r = server.get(&EVENTS, &[("last-event-id", "3")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("beyond"), "{}", r.error());
}

#[tokio::test]
async fn sse_unknown_topic_is_404() {
    let server = TestServer::default().await;
    let r = server
        .get("/acme/app/builds/1/steps/nope/logs/events", &[])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.error().contains("unknown topic"), "{}", r.error());
    let r = server
        .get("/acme/app/builds/1/steps/b%20d/logs/events", &[])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "invalid topic segment");
}

#[tokio::test]
async fn sse_token_auth_accepts_bearer_or_query_token() {
    let server = TestServer::start(sse_config(SseConfig {
        auth: TokenAuth::new(Some("t".into())),
        ..SseConfig::default()
    }))
    .await;
    server.append("a").await;
    let r = server.get(&EVENTS, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.error().contains("token"), "{}", r.error());
    let r = server.get(&format!("{EVENTS}?token=wrong"), &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = server
        .get(&EVENTS, &[("authorization", "Bearer wrong")])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let mut s = open(&server, "?token=t", &[]).await;
    read_through(&mut s, 1).await;
    let mut s = open(&server, "", &[("authorization", "Bearer t")]).await;
    read_through(&mut s, 1).await;
}

#[tokio::test]
async fn sse_cors_echoes_an_allowed_origin_with_credentials_and_ignores_others() {
    let server = TestServer::start(sse_config(SseConfig {
        cors: CorsConfig {
            allowed_origins: vec!["http://ok.example".into()],
            allow_credentials: true,
        },
        ..SseConfig::default()
    }))
    .await;
    server.append("a").await;
    let mut s = open(&server, "", &[("origin", "http://ok.example")]).await;
    assert_eq!(
        s.header("access-control-allow-origin"),
        Some("http://ok.example")
    );
    assert_eq!(s.header("access-control-allow-credentials"), Some("true"));
    read_through(&mut s, 1).await;

    let s = open(&server, "", &[("origin", "http://evil.example")]).await;
    assert_eq!(s.header("access-control-allow-origin"), None);

    // The preflight for a resume header is allowed too.
    let r = server
        .send(
            Method::OPTIONS,
            &EVENTS,
            &[
                ("origin", "http://ok.example"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "last-event-id"),
            ],
            "",
        )
        .await
        .into_full()
        .await;
    assert!(r.status.is_success(), "preflight {}", r.status);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://ok.example")
    );
    let allowed = r
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(allowed.contains("last-event-id"), "{allowed:?}");
}

#[tokio::test]
async fn sse_connection_limit_answers_503_with_retry_after() {
    let server = TestServer::start(ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    })
    .await;
    server.append("a").await;
    let mut first = open(&server, "", &[]).await;
    read_through(&mut first, 1).await;
    let r = server.get(&EVENTS, &[]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.error().contains("too many"), "{}", r.error());
    // The first stream is unaffected.
    server.append("b").await;
    read_through(&mut first, 2).await;
    assert!(server
        .metrics()
        .await
        .contains("pushbench_connections_rejected_total{transport=\"sse\"} 1\n"));
}

#[tokio::test]
async fn sse_graceful_shutdown_ends_open_streams_and_serve_returns() {
    let server = TestServer::default().await;
    server.append("a").await;
    let mut s = open(&server, "", &[]).await;
    read_through(&mut s, 1).await;
    let mut idle = open(&server, "?after=1", &[]).await;
    idle.next_chunk().await.expect("retry hint");

    let started = tokio::time::Instant::now();
    server.feed.shutdown.trigger();
    s.read_to_end().await;
    idle.read_to_end().await;
    assert!(s.ended && idle.ended);
    assert!(
        !events(&s.text()).iter().any(|e| e.event.is_some()),
        "a shutdown is no end of step: the client should reconnect"
    );
    let res = within("serve() to return", server.handle)
        .await
        .expect("serve task");
    res.expect("serve returns Ok");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn sse_resume_older_than_history_is_410() {
    let server = TestServer::with_history(4).await;
    server.append("1\n2\n3\n4\n5\n6\n7\n8").await;
    // History holds 5..=8: a client that saw 4 can resume, one that saw 3 cannot.
    let mut s = open(&server, "", &[("last-event-id", "4")]).await;
    read_through(&mut s, 8).await;
    assert_eq!(seqs_of(&s.text()), vec![5, 6, 7, 8]);
    let r = server.get(&EVENTS, &[("last-event-id", "3")]).await;
    assert_eq!(r.status, StatusCode::GONE);
    assert!(r.error().contains("gone"), "{}", r.error());
    assert_eq!(r.json()["oldest_seq"], 5, "{}", r.text());
}

/// A new viewer (no cursor) of a log longer than history sees what is held, not a 410.
#[tokio::test]
async fn sse_new_viewer_of_a_log_longer_than_history_gets_its_tail() {
    let server = TestServer::with_history(4).await;
    server.append("1\n2\n3\n4\n5\n6").await;
    let mut s = open(&server, "", &[]).await;
    read_through(&mut s, 6).await;
    assert_eq!(seqs_of(&s.text()), vec![3, 4, 5, 6]);
}

/// A publish burst larger than the history ring drops lines a subscriber has not read yet,
/// which is exactly what a stalled reader experiences: the server says `lagged` and closes.
/// (Pausing a TCP reader would need megabytes of backlog to fill socket buffers; one POST of
/// more lines than `history` forces the same state deterministically.)
#[tokio::test]
async fn sse_subscriber_behind_history_gets_lagged_event_and_stream_closes() {
    let server = TestServer::start(ServerConfig {
        memory: MemoryConfig {
            history: 4,
            max_topics: 10,
        },
        ..ServerConfig::default()
    })
    .await;
    server.append("1").await;
    let mut s = open(&server, "", &[]).await;
    read_through(&mut s, 1).await;
    // Ten lines at once: the ring keeps 8..=11, so 2..=7 are gone before the stream reads.
    server.append("2\n3\n4\n5\n6\n7\n8\n9\n10\n11").await;
    s.read_to_end().await;
    let evs = events(&s.text());
    let last = evs.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("lagged"), "{:?}", s.text());
    assert_eq!(last.json()["missing_from"], 2);
    assert_eq!(last.json()["oldest_seq"], 8);
    assert_eq!(seqs_of(&s.text()), vec![1], "no line after the gap");
    assert_eq!(server.feed.metrics.lag_drops(Transport::Sse), 1);
    // The reconnect is refused as gone.
    let r = server.get(&EVENTS, &[("last-event-id", "1")]).await;
    assert_eq!(r.status, StatusCode::GONE);
}
